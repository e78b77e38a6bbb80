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

/**
 * Builds an error without recording where it was built. For expected
 * answers (a wrong code, a limit reached, an unknown route), which an
 * attacker can ask for as fast as the service answers: a stack trace nobody
 * reads was the largest single cost of such an answer (about a tenth of the
 * CPU of a request refused for its credentials). A cause keeps its own.
 */
export function withoutStackTrace<T>(make: () => T): T {
  const frames = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = frames;
  }
}

/**
 * An Error that records no frames unless told to: for Error subclasses,
 * whose constructors cannot wrap their super() call in withoutStackTrace.
 */
export class ExpectedError extends Error {
  constructor(message: string, options?: { cause?: unknown }, recordStack = false) {
    const frames = Error.stackTraceLimit;
    if (!recordStack) Error.stackTraceLimit = 0;
    super(message, options);
    Error.stackTraceLimit = frames;
  }
}

/** A call's failure for one of the reasons above; only `internal` records where it was raised (see withoutStackTrace). */
export class DomainError extends ExpectedError {
  override name = "DomainError";
  constructor(
    readonly reason: Reason,
    message: string,
    readonly details: DomainErrorDetails = {},
    options?: { cause?: unknown },
  ) {
    super(message, options, reason === "internal");
  }
}

export function invalidFields(violations: readonly FieldViolation[]): DomainError {
  const first = violations[0];
  const reason = violations.length > 0 && violations.every((v) => v.reason === "invalid_email") ? "invalid_email" : "invalid_argument";
  return new DomainError(reason, first ? `${first.field} ${first.description}` : "The request is malformed.", { violations });
}
