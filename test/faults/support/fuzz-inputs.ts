// The fuzz suite's inputs (fast-check): the routes and endpoints, the field
// names of every request, hostile strings and values, bodies as text and as
// bytes, content types, and what one request is made of.
import fc from "fast-check";

export interface Target {
  readonly method: string;
  /** With {id} for a path variable. */
  readonly path: string;
  readonly kind: "stytch" | "legacy" | "public" | "admin" | "connect";
}

export const REST: readonly Target[] = [
  { method: "GET", path: "/api/sys/users/sendOtp", kind: "legacy" },
  { method: "POST", path: "/v1/otps/email/send", kind: "stytch" },
  { method: "POST", path: "/v1/otps/email/login_or_create", kind: "stytch" },
  { method: "POST", path: "/v1/otps/authenticate", kind: "stytch" },
  { method: "POST", path: "/api/sys/users/exchange", kind: "legacy" },
  { method: "POST", path: "/v1/sessions/authenticate", kind: "stytch" },
  { method: "POST", path: "/v1/sessions/revoke", kind: "stytch" },
  { method: "GET", path: "/v1/sessions/jwks/{id}", kind: "public" },
  { method: "POST", path: "/admin/v1/projects", kind: "admin" },
  { method: "GET", path: "/admin/v1/projects", kind: "admin" },
  { method: "PATCH", path: "/admin/v1/projects/{id}", kind: "admin" },
  { method: "POST", path: "/admin/v1/projects/{id}/rotate_secret", kind: "admin" },
  { method: "PUT", path: "/admin/v1/businesses/{id}", kind: "admin" },
  { method: "GET", path: "/admin/v1/businesses", kind: "admin" },
  { method: "PUT", path: "/admin/v1/templates", kind: "admin" },
  { method: "GET", path: "/admin/v1/templates", kind: "admin" },
  { method: "DELETE", path: "/admin/v1/templates/{id}", kind: "admin" },
  { method: "POST", path: "/admin/v1/users", kind: "admin" },
  { method: "GET", path: "/admin/v1/users", kind: "admin" },
  { method: "DELETE", path: "/admin/v1/users/{id}", kind: "admin" },
  { method: "GET", path: "/admin/v1/audit_events", kind: "admin" },
  { method: "GET", path: "/admin/v1/deliveries/{id}", kind: "admin" },
];

export const RPCS: Record<string, readonly string[]> = {
  "otp.v1.OtpService": ["SendEmailOtp", "LoginOrCreateEmailOtp", "SendOtp", "AuthenticateOtp", "ExchangeOtp"],
  "otp.v1.SessionService": ["AuthenticateSession", "RevokeSession", "GetJwks"],
  "otp.v1.AdminService": [
    "CreateProject", "ListProjects", "UpdateProject", "RotateProjectSecret", "UpsertBusiness", "ListBusinesses", "SetTemplate",
    "ListTemplates", "DeleteTemplate", "AddUser", "ListUsers", "RemoveUser", "ListAuditEvents", "GetDeliveryStatus",
  ],
};
export const CONNECT: readonly Target[] = Object.entries(RPCS).flatMap(([service, rpcs]) =>
  rpcs.map((rpc) => ({ method: "POST", path: `/${service}/${rpc}`, kind: "connect" as const })),
);

// Field names of every request, in proto and JSON spelling.
export const FIELDS = [
  "email", "expiration_minutes", "expirationMinutes", "locale", "business_id", "businessId", "method_id", "methodId", "code", "otp",
  "session_token", "sessionToken", "session_jwt", "session_duration_minutes", "sessionDurationMinutes", "session_custom_claims",
  "sessionCustomClaims", "attributes", "ip_address", "user_agent", "project_id", "projectId", "user_id", "userId", "session_id",
  "name", "live", "branding", "sender_name", "sender_address", "reply_to", "logo_url", "support_url", "accent_color", "default_locale",
  "kind", "template_id", "templateId", "subject", "text_body", "html_body", "grace_minutes", "limit", "since", "until", "email_id",
  "login_template_id", "signup_template_id", "create_user_as_pending", "page_token", "__proto__", "constructor",
];

/** Percent-encodes the UTF-8 bytes of any string (lone surrogates included, as U+FFFD). */
export function enc(s: string): string {
  return [...Buffer.from(s, "utf8")].map((b) => (/[A-Za-z0-9\-_.~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`)).join("");
}

/** n levels of nesting, as JSON text (no recursion, so any depth). */
export function nested(depth: number, kind: "array" | "object", leaf = "1"): string {
  return kind === "array" ? "[".repeat(depth) + leaf + "]".repeat(depth) : '{"a":'.repeat(depth) + leaf + "}".repeat(depth);
}

export const hostileString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom(
    "", " ", "\u0000", "\ud800", "\udfff", "jane.doe@example.com", "JANE.DOE@EXAMPLE.COM ", "sandbox@stytch.com", "a@b", "@", "a@b.c",
    "x@xn--80ak6aa92e.com", "ü@exämple.com", "a\r\nBcc: x@y.z@example.com", "<script>@example.com", "000000", "123456", "12345",
    "1234567", "9".repeat(400), "-1", "0", "1e309", "NaN", "Infinity", "0x1f", "true", "null", "{}", "[]", "%00", "../../etc/passwd",
    "project-test-00000000-0000-0000-0000-000000000000", "email-test-00000000-0000-0000-0000-000000000000",
    "user-test-00000000-0000-0000-0000-000000000000", "https://example.com/logo.png", "javascript:alert(1)", "#0a7d5a", "en", "pt-br",
    "xx", "login", "signup", "{{code}}", "{{", "{{nope}}", "2026-01-01T00:00:00Z", "not-a-date",
  ),
  fc.integer({ min: 1, max: 100_000 }).map((n) => "x".repeat(n)),
);
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: hostileString },
  fc.integer(),
  fc.constantFrom(0, -1, 1, 10, 11, 527_041, 2 ** 31, 2 ** 53, 2 ** 64, -(2 ** 63), 1.5, 1e308, -0),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.jsonValue({ maxDepth: 4 }),
  fc.array(hostileString, { maxLength: 5 }),
  fc.dictionary(fc.constantFrom(...FIELDS), hostileString, { maxKeys: 4 }),
);
export const fieldBody = fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), fc.string({ maxLength: 10 })), hostileValue, { maxKeys: 8 }).map((o) => JSON.stringify(o));

export const bodyText = fc.oneof(
  { weight: 6, arbitrary: fieldBody },
  { weight: 2, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constantFrom(...FIELDS), fc.constantFrom(10, 100, 1_000, 5_000), fc.constantFrom<"array" | "object">("array", "object")).map(
      ([field, depth, kind]) => `{"${field}":${nested(depth, kind)}}`,
    ),
  },
);

/** Bytes: invalid UTF-8, protobuf-shaped garbage, gRPC envelopes. */
export const bodyBytes = fc.oneof(
  fc.uint8Array({ maxLength: 512 }),
  // Length-delimited protobuf fields with random (often invalid UTF-8) content.
  fc.array(fc.tuple(fc.integer({ min: 1, max: 12 }), fc.uint8Array({ maxLength: 40 })), { maxLength: 4 }).map((fields) =>
    Uint8Array.from(fields.flatMap(([n, bytes]) => [(n << 3) | 2, bytes.length, ...bytes])),
  ),
  // A gRPC / Connect envelope: flags, a length (often a lie), then bytes.
  fc.tuple(fc.constantFrom(0, 1, 2, 128, 255), fc.constantFrom(0, 5, 1 << 20, 0xffffffff), fc.uint8Array({ maxLength: 64 })).map(([flags, length, bytes]) => {
    const b = new Uint8Array(5 + bytes.length);
    b[0] = flags;
    new DataView(b.buffer).setUint32(1, length >>> 0);
    b.set(bytes, 5);
    return b;
  }),
  fc.constant(Buffer.from([0x7b, 0x22, 0x65, 0x6d, 0x61, 0x69, 0x6c, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x7d])), // {"email":"\xff\xfe\xc3("}
);

export const CONTENT_TYPES = [
  "application/json", "application/json; charset=utf-8", "application/json; charset=utf-16", "APPLICATION/JSON", "application/json;",
  "text/plain", "application/proto", "application/x-protobuf", "application/connect+json", "application/connect+proto",
  "application/grpc-web+json", "application/grpc-web+proto", "application/grpc-web-text", "multipart/form-data; boundary=x",
  "application/x-www-form-urlencoded", "application/jsonx", "", "*/*",
];
export const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 });


export interface Built {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string | Uint8Array | undefined;
  readonly label: string;
}

/** A body, short enough for a log line. */
export function describeBody(body: string | Uint8Array | undefined): string {
  if (body === undefined) return "none";
  if (typeof body === "string") return body.length > 200 ? `${JSON.stringify(body.slice(0, 120))}… (${body.length} chars)` : JSON.stringify(body);
  return `${body.length} bytes ${Buffer.from(body.slice(0, 40)).toString("hex")}`;
}
