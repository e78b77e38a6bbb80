// Shape rules, declared once and keyed by proto field name: every request
// field with that name, in any message, obeys them. Rules that need state
// (does this user exist, is this code right) belong to the domain instead.
import { isIP } from "node:net";
import { unsafeDisplayNameReason, unsafeTextReason } from "../domain/display-name.js";
import { LOCALES } from "../domain/locales.js";

export interface FieldRule {
  /** The zero value (empty string, 0) is a violation. */
  readonly required?: boolean;
  readonly maxLength?: number;
  readonly min?: number;
  readonly max?: number;
  readonly oneOf?: readonly string[];
  readonly format?: "email" | "ip" | "passcode" | "https_url" | "color" | "single_line" | "plain_text" | "display_name";
  /** The reason to report when the format fails, if more specific than invalid_argument. */
  readonly formatReason?: "invalid_email";
}

// RFC 5321 limits: 64 octets before the @, 254 in all. Printable ASCII and
// UTF-8 letters; no whitespace, control characters, quotes or angle brackets
// (so nothing can break out of a mail header or a log line).
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this rule refuses
const EMAIL = /^[^\s@<>()[\]\\,;:"\x00-\x1f\x7f]{1,64}@(?=.{1,253}$)([a-z0-9\u00a1-\uffff](?:[a-z0-9\u00a1-\uffff-]{0,61}[a-z0-9\u00a1-\uffff])?\.)+[a-z\u00a1-\uffff]{2,63}$/iu;

export const FIELD_RULES: Readonly<Record<string, FieldRule>> = {
  email: { required: true, maxLength: 254, format: "email", formatReason: "invalid_email" },
  expiration_minutes: { min: 1, max: 10 },
  locale: { oneOf: LOCALES },
  business_id: { min: 1, max: Number.MAX_SAFE_INTEGER },
  ip_address: { maxLength: 45, format: "ip" },
  user_agent: { maxLength: 1024 },
  user_id: { maxLength: 128 },
  session_token: { maxLength: 256 },
  session_jwt: { maxLength: 8192 },
  method_id: { required: true, maxLength: 128 },
  code: { required: true, format: "passcode" },
  otp: { required: true, format: "passcode" },
  session_duration_minutes: { min: 5, max: 527_040 },
  session_id: { maxLength: 128 },
  project_id: { maxLength: 128 },
  // Admin API.
  // A tenant's name stands in for its sender name only when it is a safe
  // display name (see the outbox worker); it may hold "<", "&" and the like.
  name: { maxLength: 200, format: "plain_text" },
  sender_name: { maxLength: 100, format: "display_name" },
  sender_address: { maxLength: 254, format: "email" },
  reply_to: { maxLength: 254, format: "email" },
  logo_url: { maxLength: 2048, format: "https_url" },
  support_url: { maxLength: 2048, format: "https_url" },
  accent_color: { format: "color" },
  default_locale: { oneOf: LOCALES },
  kind: { oneOf: ["login", "signup"] },
  template_id: { maxLength: 128 },
  subject: { maxLength: 300 },
  text_body: { maxLength: 100_000 },
  html_body: { maxLength: 200_000 },
  grace_minutes: { min: 0, max: 10_080 },
  limit: { min: 1, max: 1000 },
  login_template_id: { maxLength: 128 },
  signup_template_id: { maxLength: 128 },
};

function isHttpsUrl(value: string): boolean {
  try {
    return new URL(value).protocol === "https:" && !/[\s"'<>]/.test(value);
  } catch {
    return false;
  }
}

/** Per message, the fields whose zero value is a violation beyond FIELD_RULES. */
export const REQUIRED_IN: Readonly<Record<string, readonly string[]>> = {
  "otp.v1.SendOtpRequest": ["business_id"],
  "otp.v1.ExchangeOtpRequest": ["business_id"],
  "otp.v1.GetJwksRequest": ["project_id"],
  "otp.v1.CreateProjectRequest": ["name"],
  "otp.v1.UpdateProjectRequest": ["project_id"],
  "otp.v1.RotateProjectSecretRequest": ["project_id"],
  "otp.v1.UpsertBusinessRequest": ["business_id", "name"],
  "otp.v1.SetTemplateRequest": ["kind", "name", "subject", "text_body", "html_body"],
  "otp.v1.DeleteTemplateRequest": ["template_id"],
  "otp.v1.RemoveUserRequest": ["user_id"],
  "otp.v1.GetDeliveryStatusRequest": ["email_id"],
};

/** What is wrong with a value: phrased to follow the field name, and whether its format is what failed. */
export interface Problem {
  readonly description: string;
  readonly format: boolean;
}

/** Returns what is wrong with a value, or undefined. */
export function checkValue(rule: FieldRule, value: unknown, present: boolean): Problem | undefined {
  const format = formatProblem(rule, value);
  if (format !== undefined) return { description: format, format: true };
  const other = otherProblem(rule, value, present);
  return other === undefined ? undefined : { description: other, format: false };
}

function otherProblem(rule: FieldRule, value: unknown, present: boolean): string | undefined {
  if (typeof value === "string") {
    if (value === "") return rule.required ? "is required" : undefined;
    if (value.includes("\u0000")) return "must not contain NUL characters";
    if (rule.maxLength !== undefined && [...value].length > rule.maxLength) {
      return `must be at most ${rule.maxLength} characters`;
    }
    if (rule.oneOf && !rule.oneOf.includes(value)) return `must be one of: ${rule.oneOf.join(", ")}`;
    return undefined;
  }
  if (typeof value === "number" || typeof value === "bigint") {
    if (!present || value === 0 || value === 0n) {
      if (rule.required) return "is required";
      if (!present) return undefined;
    }
    if ((rule.min !== undefined && value < rule.min) || (rule.max !== undefined && value > rule.max)) {
      return `must be between ${rule.min ?? "-∞"} and ${rule.max ?? "∞"}`;
    }
  }
  return undefined;
}

/** A string that passes the length and list rules but not its format. */
function formatProblem(rule: FieldRule, value: unknown): string | undefined {
  if (typeof value !== "string" || value === "" || value.includes("\u0000")) return undefined;
  if (rule.maxLength !== undefined && [...value].length > rule.maxLength) return undefined;
  if (rule.oneOf && !rule.oneOf.includes(value)) return undefined;
  // No separator, control, format or private-use character anywhere
  // (invisible spaces, direction overrides, zero-width joiners).
  if (rule.format === "email" && (/[\p{Z}\p{C}]/u.test(value) || !EMAIL.test(value))) return "is not a valid email address";
  if (rule.format === "ip" && isIP(value) === 0) return "is not a valid IP address";
  if (rule.format === "passcode" && !/^\d{6}$/.test(value)) return "must be 6 digits";
  if (rule.format === "https_url" && !isHttpsUrl(value)) return "must be an https:// URL";
  if (rule.format === "color" && !/^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(value)) return "must be a colour like #1f6feb";
  if (rule.format === "single_line" && /[\p{Cc}\u2028\u2029]/u.test(value)) return "must be a single line without control characters";
  if (rule.format === "plain_text") return unsafeTextReason(value);
  if (rule.format === "display_name") return unsafeDisplayNameReason(value);
  return undefined;
}
