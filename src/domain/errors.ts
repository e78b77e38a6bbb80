// The closed set of reasons a call can fail. The transport maps each reason,
// in one place, to a Connect code, an HTTP status, the legacy envelope and a
// Stytch error_type; causes are logged there and never sent to callers.

export type Reason =
  | "invalid_argument"
  | "invalid_email"
  | "unauthenticated"
  | "email_not_found"
  | "user_not_found"
  | "session_not_found"
  | "template_not_found"
  | "not_found"
  | "otp_code_not_found"
  | "unable_to_auth_otp_code"
  | "user_lock_limit_reached"
  | "rate_limited"
  | "unavailable"
  | "deadline_exceeded"
  | "internal";

/**
 * One field that failed a rule. `field` is a proto field path
 * ("attributes.ip_address"); the transport spells it as each contract does
 * (JSON names in the legacy envelope) from the request's descriptor.
 */
export interface FieldViolation {
  readonly field: string;
  /** What is wrong, to follow the field's name: "is required". */
  readonly description: string;
  /** A reason more specific than invalid_argument, e.g. invalid_email. */
  readonly reason?: Reason;
}

export interface DomainErrorDetails {
  readonly violations?: readonly FieldViolation[];
  /** For rate_limited: how long until a retry can succeed. */
  readonly retryAfterMs?: number;
  /** Which limit was hit (email, ip, tenant); for logs and metrics only. */
  readonly limit?: string;
}

export class DomainError extends Error {
  override name = "DomainError";
  constructor(
    readonly reason: Reason,
    message: string,
    readonly details: DomainErrorDetails = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function invalidFields(violations: readonly FieldViolation[]): DomainError {
  const first = violations[0];
  const reason = violations.length > 0 && violations.every((v) => v.reason === "invalid_email") ? "invalid_email" : "invalid_argument";
  return new DomainError(reason, first ? `${first.field} ${first.description}` : "The request is malformed.", { violations });
}
