// The rules in proto/ cover every request field the way the API promises:
// every string a caller sends refuses NUL characters, and the locale lists
// accept exactly the languages the mail is written in.
import { getOption, hasOption, ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { field as fieldRules } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { describe, expect, it } from "vitest";
import { AdminService } from "../../gen/otp/v1/admin_service_pb.js";
import { OtpService, SessionService } from "../../gen/otp/v1/otp_service_pb.js";
import { LOCALES } from "../../src/domain/locales.js";

function stringFields(message: DescMessage, seen = new Set<DescMessage>()): DescField[] {
  if (seen.has(message) || message.typeName.startsWith("google.")) return [];
  seen.add(message);
  return message.fields.flatMap((f) =>
    f.fieldKind === "scalar" && f.scalar === ScalarType.STRING ? [f] : f.fieldKind === "message" ? stringFields(f.message, seen) : [],
  );
}

const requests = [OtpService, SessionService, AdminService].flatMap((s) => s.methods.map((m) => m.input));
const fields = [...new Set(requests.flatMap((r) => stringFields(r)))];

describe("request string fields", () => {
  it("exist (the walk finds them)", () => {
    expect(fields.length).toBeGreaterThan(40);
  });

  it.each(fields.map((f) => [`${f.parent.typeName}.${f.name}`, f] as const))("%s refuses NUL characters", (_, field) => {
    const rules = hasOption(field, fieldRules) ? getOption(field, fieldRules) : undefined;
    expect(rules?.type.case === "string" ? rules.type.value.notContains : undefined).toBe("\u0000");
  });

  it("list exactly the mail's languages wherever a locale is chosen", () => {
    const locales = fields.filter((f) => f.name === "locale" || f.name === "default_locale");
    expect(locales.length).toBe(3);
    for (const f of locales) {
      const rules = getOption(f, fieldRules);
      expect(rules.type.case === "string" ? rules.type.value.in : []).toEqual([...LOCALES]);
    }
  });
});
