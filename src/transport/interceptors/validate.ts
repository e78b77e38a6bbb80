// Enforces FIELD_RULES on every request message, for every protocol. Each
// message type's list of (field, rule) pairs is worked out once.
import { isFieldSet, ScalarType, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import { invalidFields, type FieldViolation } from "../../domain/errors.js";
import { checkValue, FIELD_RULES, REQUIRED_IN, type FieldRule } from "../validation-rules.js";

type Plan = readonly (
  | { readonly field: DescField; readonly rule: FieldRule }
  | { readonly field: DescField & { fieldKind: "message" }; readonly nested: Plan }
)[];

const plans = new WeakMap<DescMessage, Plan>();

function planFor(schema: DescMessage, seen = new Set<DescMessage>()): Plan {
  const cached = plans.get(schema);
  if (cached) return cached;
  seen.add(schema);
  const plan: Plan[number][] = [];
  for (const field of schema.fields) {
    const required = REQUIRED_IN[schema.typeName]?.includes(field.name) ?? false;
    // Every string field is checked (NUL characters at least), with its rule if it has one.
    const rule = required ? { ...FIELD_RULES[field.name], required } : (FIELD_RULES[field.name] ?? (field.scalar === ScalarType.STRING ? {} : undefined));
    if (field.fieldKind === "scalar" && rule) plan.push({ field, rule });
    if (field.fieldKind === "message" && !seen.has(field.message) && !field.message.typeName.startsWith("google.")) {
      const nested = planFor(field.message, seen);
      if (nested.length > 0) plan.push({ field, nested });
    }
  }
  plans.set(schema, plan);
  return plan;
}

export function violationsOf(schema: DescMessage, message: Message, prefix = ""): FieldViolation[] {
  const out: FieldViolation[] = [];
  for (const step of planFor(schema)) {
    const value = (message as unknown as Record<string, unknown>)[step.field.localName];
    const field = prefix + step.field.name;
    if ("rule" in step) {
      const problem = checkValue(step.rule, value, isFieldSet(message, step.field));
      if (problem) {
        const reason = problem.format ? step.rule.formatReason : undefined;
        out.push({ field, description: problem.description, ...(reason ? { reason } : {}) });
      }
    } else if (value !== undefined) {
      out.push(...violationsOf(step.field.message, value as Message, `${field}.`));
    }
  }
  return out;
}

export function validationInterceptor(): Interceptor {
  return (next) => async (req) => {
    if (!req.stream) {
      const violations = violationsOf(req.method.input, req.message);
      if (violations.length > 0) throw invalidFields(violations);
    }
    return next(req);
  };
}
