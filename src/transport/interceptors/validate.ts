// Enforces the `(buf.validate.field)` rules written in proto/ on every
// request message, for every protocol (the REST routes call violationsOf
// for the fields they could decode). protovalidate runs the rules; this file
// only turns its violations into the domain's FieldViolations, keeping the
// answers callers have always had: one violation per field (the most basic
// one: required, then NUL, length, list, format), in the order of the
// fields, each described by the phrase that follows the field's name.
import { createRegistry, getOption, hasOption, type DescField, type DescMessage, type Message, type Registry } from "@bufbuild/protobuf";
import { createValidator, type Violation } from "@bufbuild/protovalidate";
import { field as fieldRulesOption, type FieldRules } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import type { Interceptor } from "@connectrpc/connect";
import { invalidFields, type FieldViolation, type Reason } from "../../domain/errors.js";
import { file_otp_v1_rules } from "../../../gen/otp/v1/rules_pb.js";

// The predefined rules of proto/otp/v1/rules.proto must be known to the
// validator; it is created once, and compiles each message's rules once.
const registry: Registry = createRegistry(file_otp_v1_rules);
const validator = createValidator({ registry, regexMatch: nativeMatch });

const compiled = new Map<string, RegExp>();

/**
 * Runs the schema's RE2 patterns on the platform's RegExp, about ten times
 * faster per send than protovalidate's RE2 engine in JavaScript. The
 * patterns come only from proto/ (no rule builds one from input), are
 * written in the subset both engines read alike (\x{…} code points, a
 * leading (?i)), and are the ones the service ran as RegExp before.
 */
function nativeMatch(pattern: string, against: string): boolean {
  let re = compiled.get(pattern);
  if (re === undefined) {
    const insensitive = pattern.startsWith("(?i)");
    re = new RegExp((insensitive ? pattern.slice(4) : pattern).replaceAll("\\x{", "\\u{"), insensitive ? "iu" : "u");
    compiled.set(pattern, re);
  }
  return re.test(against);
}

/** How basic a rule is: the lowest rank of a field's violations is the one reported. */
function rank(ruleId: string): number {
  if (ruleId === "required") return 0;
  if (ruleId === "string.not_contains") return 1;
  if (ruleId === "string.max_len") return 2;
  if (ruleId === "string.in") return 3;
  if (ruleId === "otp.display_name") return 5;
  return 4;
}

/** Reasons more specific than invalid_argument, by rule id. */
const REASON_BY_RULE: Readonly<Record<string, Reason>> = { "otp.recipient_email": "invalid_email" };

/** What a standard rule's violation says, in the words this API has always used. */
function describe(field: DescField, violation: Violation): string {
  const id = violation.ruleId;
  if (id === "required") return "is required";
  if (id.startsWith("otp.")) return violation.message;
  const rules: FieldRules | undefined = hasOption(field, fieldRulesOption) ? getOption(field, fieldRulesOption) : undefined;
  const type = rules?.type;
  if (type?.case === "string") {
    if (id === "string.not_contains") return "must not contain NUL characters";
    if (id === "string.max_len") return `must be at most ${type.value.maxLen} characters`;
    if (id === "string.in") return `must be one of: ${type.value.in.join(", ")}`;
    if (id === "string.ip") return "is not a valid IP address";
  }
  if (id === "enum.defined_only" && field.fieldKind === "enum") {
    return `must be one of: ${field.enum.values.filter((v) => v.number !== 0).map((v) => v.name).join(", ")}`;
  }
  if ((type?.case === "int32" || type?.case === "int64") && /^int(32|64)\.(gte|lte)/.test(id)) {
    const min = type.value.greaterThan.case === "gte" ? type.value.greaterThan.value : "-∞";
    const max = type.value.lessThan.case === "lte" ? type.value.lessThan.value : "∞";
    return `must be between ${min} and ${max}`;
  }
  return violation.message;
}

/** Two members of one oneof given (JSON can say so): named by the one declared first, as project_id and business_id always were. */
export function bothInOneof(a: DescField, b: DescField): FieldViolation {
  const members = a.oneof?.fields ?? [];
  const [first, second] = members.indexOf(a) < members.indexOf(b) ? [a, b] : [b, a];
  return { field: first.name, description: `and ${second.name} may not both be given` };
}

const NO_VIOLATIONS: FieldViolation[] = [];

/** The request's shape violations, one per field, in field order. */
export function violationsOf(schema: DescMessage, message: Message): FieldViolation[] {
  const result = validator.validate(schema, message as never);
  if (result.kind === "valid") return NO_VIOLATIONS;
  if (result.kind === "error") throw result.error;
  const byPath = new Map<string, { violation: Violation; field: DescField; path: string; order: number[]; said?: string }>();
  for (const violation of result.violations) {
    const fields = violation.field.filter((p): p is DescField => p.kind === "field");
    // A required oneof left unset is named by its first member, in the
    // words the domain used before the oneof: "project_id: or business_id is required".
    const oneof = violation.field.at(-1);
    const said = oneof?.kind === "oneof" ? `or ${oneof.fields.slice(1).map((f) => f.name).join(" or ")} is required` : undefined;
    if (oneof?.kind === "oneof" && oneof.fields[0]) fields.push(oneof.fields[0]);
    const field = fields.at(-1);
    if (!field) continue;
    const path = fields.map((f) => f.name).join(".");
    const known = byPath.get(path);
    if (known && rank(known.violation.ruleId) <= rank(violation.ruleId)) continue;
    byPath.set(path, { violation, field, path, order: fields.map((f) => f.parent.fields.indexOf(f)), said });
  }
  return [...byPath.values()]
    .sort((a, b) => compareOrder(a.order, b.order))
    .map(({ violation, field, path, said }) => {
      const reason = REASON_BY_RULE[violation.ruleId];
      return { field: path, description: said ?? describe(field, violation), ...(reason ? { reason } : {}) };
    });
}

function compareOrder(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
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
