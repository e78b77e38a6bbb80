// The protovalidate rules of a scalar field as JSON Schema keywords, so the
// OpenAPI document shows clients the limits the service enforces: string
// lengths and lists, integer ranges. Formats written as CEL (email, passcode,
// URLs) are described by the field's comment and the error they answer.
import { getOption, hasOption, type DescField } from "@bufbuild/protobuf";
import { field as fieldRules, Ignore } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";

export function ruleKeywords(f: DescField): Record<string, unknown> {
  if (!hasOption(f, fieldRules)) return {};
  const rules = getOption(f, fieldRules);
  const type = rules.type;
  const out: Record<string, unknown> = {};
  if (type.case === "string") {
    if (type.value.maxLen !== undefined && type.value.maxLen > 0n) out.maxLength = Number(type.value.maxLen);
    if (rules.required) out.minLength = 1;
    // An empty string is the field left out, unless the field is required.
    if (type.value.in.length > 0) out.enum = rules.ignore === Ignore.IF_ZERO_VALUE ? ["", ...type.value.in] : [...type.value.in];
  }
  if (type.case === "int32" || type.case === "int64") {
    if (type.value.greaterThan.case === "gte") out.minimum = Number(type.value.greaterThan.value);
    if (type.value.lessThan.case === "lte") out.maximum = Number(type.value.lessThan.value);
  }
  return out;
}
