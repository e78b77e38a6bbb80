// violationsOf: the protovalidate rules written in proto/ applied to the generated
// request messages, nested messages included.
import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  LoginOrCreateEmailOtpRequestSchema,
  SendEmailOtpRequestSchema,
  SendOtpRequestSchema,
} from "../../gen/otp/v1/otp_service_pb.js";
import { UpsertBusinessRequestSchema } from "../../gen/otp/v1/admin_service_pb.js";
import { jsonPath } from "../../src/transport/error-writer.js";
import { unsafeDisplayNameReason } from "../../src/domain/display-name.js";
import { violationsOf } from "../../src/transport/interceptors/validate.js";

const VALID = "jane@example.com";

function check<Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>) {
  return violationsOf(schema, create(schema, init));
}

const sendEmail = (init: MessageInitShape<typeof SendEmailOtpRequestSchema>) => check(SendEmailOtpRequestSchema, init);

describe("email", () => {
  it("is required", () => {
    expect(sendEmail({})).toEqual([{ field: "email", description: "is required" }]);
    expect(check(LoginOrCreateEmailOtpRequestSchema, {})).toEqual([
      { field: "email", description: "is required" },
    ]);
    expect(check(SendOtpRequestSchema, { businessId: 1n })).toEqual([
      { field: "email", description: "is required" },
    ]);
  });

  it.each([
    "jane.doe+tag@example.co.uk",
    "ünï@例え.jp",
    "a@b.co",
    `${"a".repeat(64)}@example.com`,
    "UPPER@EXAMPLE.COM",
  ])("accepts %j", (email) => {
    expect(sendEmail({ email })).toEqual([]);
  });

  it.each([
    "bad",
    "a@b",
    "a b@c.com",
    "a@b.com\r\nBcc: x@y.com",
    "a@b.com\nBcc: x@y.com",
    `${"a".repeat(65)}@example.com`,
    "@example.com",
    "jane@",
    "jane@@example.com",
    "<jane@example.com>",
    '"jane"@example.com',
    "jane@example..com",
    "jane@-example.com",
    "jane@example.c",
    "jane\t@example.com",
    "a@exa\u3000mple.com",
    "a@exa\u2003mple.com",
    "a@exa\u202emple.com",
    "a@exa\u200bmple.com",
    "a@exa\ufeffmple.com",
  ])("rejects %j as an invalid email", (email) => {
    expect(sendEmail({ email })).toEqual([
      { field: "email", description: "is not a valid email address", reason: "invalid_email" },
    ]);
  });

  it("rejects an address longer than 254 characters", () => {
    // 64 + 1 + 190: every part within its own limit, 255 in all.
    const email = `${"a".repeat(64)}@${"b".repeat(60)}.${"c".repeat(60)}.${"d".repeat(60)}.eee.com`;
    expect([...email].length).toBe(255);
    expect(sendEmail({ email: email.slice(1) })).toEqual([]);
    const violations = sendEmail({ email });
    expect(violations.map((v) => v.field)).toEqual(["email"]);
    expect(violations[0]!.description).toBe("must be at most 254 characters");
    expect(violations[0]!.reason).toBeUndefined();
  });
});

describe("expiration_minutes", () => {
  it("may be unset", () => {
    expect(sendEmail({ email: VALID })).toEqual([]);
  });

  it.each([1, 2, 10])("accepts %i", (expirationMinutes) => {
    expect(sendEmail({ email: VALID, expirationMinutes })).toEqual([]);
  });

  it.each([0, 11, -1, 1440])("rejects %i", (expirationMinutes) => {
    expect(sendEmail({ email: VALID, expirationMinutes })).toEqual([
      { field: "expiration_minutes", description: "must be between 1 and 10" },
    ]);
  });

  it("applies to LoginOrCreateEmailOtp too", () => {
    expect(check(LoginOrCreateEmailOtpRequestSchema, { email: VALID, expirationMinutes: 0 })).toHaveLength(1);
    expect(check(LoginOrCreateEmailOtpRequestSchema, { email: VALID, expirationMinutes: 10 })).toEqual([]);
  });
});

describe("locale", () => {
  it.each(["en", "es", "pt-br", "fr", ""])("accepts %j", (locale) => {
    expect(sendEmail({ email: VALID, locale })).toEqual([]);
  });

  it.each(["de", "EN", "pt-BR", "pt"])("rejects %j", (locale) => {
    expect(sendEmail({ email: VALID, locale })).toEqual([
      { field: "locale", description: "must be one of: en, es, pt-br, fr" },
    ]);
  });
});

describe("attributes (nested message)", () => {
  it("may be absent or empty", () => {
    expect(sendEmail({ email: VALID })).toEqual([]);
    expect(sendEmail({ email: VALID, attributes: {} })).toEqual([]);
  });

  it.each(["203.0.113.7", "2001:db8::1", "::ffff:192.0.2.1"])("accepts ip_address %j", (ipAddress) => {
    expect(sendEmail({ email: VALID, attributes: { ipAddress } })).toEqual([]);
  });

  it.each(["not-an-ip", "256.1.1.1", "203.0.113.7, 10.0.0.1"])("rejects ip_address %j under its nested path", (ipAddress) => {
    expect(sendEmail({ email: VALID, attributes: { ipAddress } })).toEqual([
      { field: "attributes.ip_address", description: "is not a valid IP address" },
    ]);
  });

  it("limits user_agent to 1024 characters", () => {
    expect(sendEmail({ email: VALID, attributes: { userAgent: "x".repeat(1024) } })).toEqual([]);
    expect(sendEmail({ email: VALID, attributes: { userAgent: "x".repeat(1025) } })).toEqual([
      { field: "attributes.user_agent", description: "must be at most 1024 characters" },
    ]);
  });
});

describe("business_id", () => {
  it("0 is missing: required", () => {
    expect(check(SendOtpRequestSchema, { email: VALID, businessId: 0n })).toEqual([
      { field: "business_id", description: "is required" },
    ]);
  });

  it("accepts a positive id up to 2^53-1", () => {
    expect(check(SendOtpRequestSchema, { email: VALID, businessId: 1n })).toEqual([]);
    expect(check(SendOtpRequestSchema, { email: VALID, businessId: BigInt(Number.MAX_SAFE_INTEGER) })).toEqual([]);
  });

  it("rejects a negative id or one past 2^53-1", () => {
    const between = `must be between 1 and ${Number.MAX_SAFE_INTEGER}`;
    expect(check(SendOtpRequestSchema, { email: VALID, businessId: -5n })).toEqual([
      { field: "business_id", description: between },
    ]);
    expect(check(SendOtpRequestSchema, { email: VALID, businessId: BigInt(Number.MAX_SAFE_INTEGER) + 1n })).toEqual([
      { field: "business_id", description: between },
    ]);
  });
});

describe("several violations", () => {
  it("are all reported, in field order, nested ones included", () => {
    const violations = sendEmail({
      email: "bad",
      expirationMinutes: 11,
      attributes: { ipAddress: "nope" },
      locale: "de",
      userId: "u".repeat(129),
    });
    expect(violations.map((v) => v.field)).toEqual([
      "email",
      "expiration_minutes",
      "attributes.ip_address",
      "locale",
      "user_id",
    ]);
    expect(violations.map((v) => jsonPath(SendEmailOtpRequestSchema, v.field))).toEqual([
      "email",
      "expirationMinutes",
      "attributes.ipAddress",
      "locale",
      "userId",
    ]);
    // Only the email's format failure carries the more specific reason.
    expect(violations.filter((v) => v.reason !== undefined).map((v) => v.field)).toEqual(["email"]);
  });
});

describe("sender display names (branding.sender_name, and tenant names, which stand in for it)", () => {
  const upsert = (senderName: string, name = "Harbour Yoga") =>
    check(UpsertBusinessRequestSchema, { businessId: 7n, name, branding: { senderName } });

  it.each(["Harbour Yoga", "Café Ünïcode — Lisboa", "Smith, Jones & Co.", "ヨガ教室", "Yoga 🧘‍♀️", "نرم‌افزار"])("accepts %j", (senderName) => {
    expect(upsert(senderName)).toEqual([]);
  });

  it.each([
    ["a right-to-left override", "Bank\u202Emoc.evil"],
    ["a bidi isolate", "Bank\u2067x\u2069"],
    ["a left-to-right mark", "Bank\u200E"],
    ["a zero-width space", "Ba\u200Bnk"],
    ["a control character", "Bank\u0007"],
    ["a line break", "Bank\r\nBcc: x@y.z"],
    ["an @", "security@bank.example"],
    ["a full-width @", "security\uFF20bank.example"],
    ["angle brackets", "Bank <ceo@bank.example>"],
    ["a quote", 'Bank" <x'],
  ])("refuses %s, as the domain's display-name rule does", (_what, senderName) => {
    const violations = upsert(senderName);
    expect(violations).toHaveLength(1);
    expect(violations[0]!.field).toBe("branding.sender_name");
    // The outbox worker asks the domain whether a tenant's name may stand in for the sender: the same rule, the same words.
    expect(violations[0]!.description).toBe(unsafeDisplayNameReason(senderName));
  });

  it("refuses bidi and invisible characters in tenant names too (they may stand in for the sender name)", () => {
    expect(upsert("Harbour Yoga", "Bank\u202Emoc")).toEqual([expect.objectContaining({ field: "name" })]);
    expect(upsert("Harbour Yoga", "Bank\u200Bx")).toEqual([expect.objectContaining({ field: "name" })]);
    // Other characters are fine in a name; such a name is just never shown as a sender (see the outbox worker).
    expect(upsert("Harbour Yoga", 'Acme <Labs> & "Co"')).toEqual([]);
  });
});
