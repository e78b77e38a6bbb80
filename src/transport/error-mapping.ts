// The one error table: what each reason becomes for each contract — a
// Connect code (Connect, gRPC, gRPC-Web), an HTTP status, a Stytch
// error_type, the legacy envelope's message. error-writer.ts writes the
// bytes from these rows. Causes of unexpected failures are logged here
// (toFailure) and never sent.
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import { DomainError, type FieldViolation, type Reason } from "../domain/errors.js";
import { TransportError, type TransportReason } from "./transport-error.js";

/** Every reason a caller can be given: the domain's and the transport's. */
export type WireReason = Reason | TransportReason;

interface Mapping {
  readonly code: Code;
  readonly http: number;
  readonly stytch: string;
  /** What the legacy envelope's Message says. */
  readonly legacy: string;
}

export const ERROR_MAP: Readonly<Record<WireReason, Mapping>> = {
  invalid_argument: { code: Code.InvalidArgument, http: 400, stytch: "bad_request", legacy: "The request is missing a parameter or has a malformed one." },
  invalid_email: { code: Code.InvalidArgument, http: 400, stytch: "invalid_email", legacy: "The email parameter is missing or malformed." },
  unauthenticated: { code: Code.Unauthenticated, http: 401, stytch: "unauthorized_credentials", legacy: "Unauthorized." },
  email_not_found: { code: Code.NotFound, http: 404, stytch: "email_not_found", legacy: "Not found." },
  user_not_found: { code: Code.NotFound, http: 404, stytch: "user_not_found", legacy: "Not found." },
  session_not_found: { code: Code.NotFound, http: 404, stytch: "session_not_found", legacy: "Not found." },
  template_not_found: { code: Code.InvalidArgument, http: 400, stytch: "bad_request", legacy: "Unknown template." },
  otp_code_not_found: { code: Code.NotFound, http: 404, stytch: "otp_code_not_found", legacy: "The one-time password is invalid or expired." },
  unable_to_auth_otp_code: { code: Code.Unauthenticated, http: 401, stytch: "unable_to_auth_otp_code", legacy: "The one-time password is invalid or expired." },
  user_lock_limit_reached: { code: Code.ResourceExhausted, http: 429, stytch: "user_lock_limit_reached", legacy: "Too many failed attempts. Wait before trying again." },
  not_found: { code: Code.NotFound, http: 404, stytch: "not_found", legacy: "Not found." },
  admin_disabled: { code: Code.NotFound, http: 404, stytch: "route_not_found", legacy: "No such route." },
  rate_limited: { code: Code.ResourceExhausted, http: 429, stytch: "too_many_requests", legacy: "Too many one-time password requests. Wait before requesting another code." },
  unavailable: { code: Code.Unavailable, http: 503, stytch: "service_unavailable", legacy: "The service is temporarily unavailable. Try again shortly." },
  deadline_exceeded: { code: Code.DeadlineExceeded, http: 504, stytch: "request_timeout", legacy: "The request took too long. Try again." },
  payload_too_large: { code: Code.ResourceExhausted, http: 413, stytch: "request_too_large", legacy: "The request is too large." },
  unsupported_media_type: { code: Code.InvalidArgument, http: 415, stytch: "bad_request", legacy: "Unsupported content type." },
  route_not_found: { code: Code.NotFound, http: 404, stytch: "route_not_found", legacy: "No such route." },
  method_not_allowed: { code: Code.Unimplemented, http: 405, stytch: "method_not_allowed", legacy: "Method not allowed on this route." },
  forbidden: { code: Code.PermissionDenied, http: 403, stytch: "forbidden", legacy: "Forbidden." },
  internal: { code: Code.Internal, http: 500, stytch: "internal_server_error", legacy: "Something went wrong on our side." },
};

/**
 * Errors Connect raises itself (an undecodable JSON message, a deadline that
 * passed, an unknown service in a health check), by code: safe to show as
 * they are. A NotFound here names something the request asked for, as a
 * domain not_found does; an unknown route or RPC is never one of these (the
 * router's fallback raises route_not_found).
 */
const CONNECT_RAISED: Partial<Record<Code, WireReason>> = {
  [Code.InvalidArgument]: "invalid_argument",
  [Code.Unauthenticated]: "unauthenticated",
  [Code.ResourceExhausted]: "rate_limited",
  [Code.Unavailable]: "unavailable",
  [Code.NotFound]: "not_found",
  [Code.Unimplemented]: "method_not_allowed",
  [Code.DeadlineExceeded]: "deadline_exceeded",
};

/** The reason for an error Connect raised with this code; undefined: not one to show. */
export function connectRaised(code: Code): WireReason | undefined {
  return CONNECT_RAISED[code];
}

/** Connect's wire name of a code: Code.InvalidArgument → "invalid_argument". */
export function connectCodeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

/** A failure reduced to what may be shown to a caller. */
export interface Failure {
  readonly reason: WireReason;
  readonly message: string;
  readonly violations: readonly FieldViolation[];
  readonly retryAfterSeconds: number | undefined;
}

/**
 * Reduces anything thrown to a Failure; logs what callers must not see
 * (pass no logger for an error that was mapped, and logged, before).
 */
export function toFailure(err: unknown, logger?: Logger): Failure {
  const transport = err instanceof ConnectError ? err.cause : err;
  if (transport instanceof TransportError) {
    return { reason: transport.reason, message: transport.message, violations: [], retryAfterSeconds: undefined };
  }
  const domain = findDomainError(err);
  if (domain) {
    if (domain.reason === "internal" || domain.reason === "unavailable") {
      logger?.error({ err: domain.cause ?? domain, reason: domain.reason }, "call failed");
    }
    return {
      reason: domain.reason,
      message: domain.message,
      violations: domain.details.violations ?? [],
      retryAfterSeconds:
        domain.details.retryAfterMs === undefined ? undefined : Math.max(1, Math.ceil(domain.details.retryAfterMs / 1000)),
    };
  }
  const raised = err instanceof ConnectError ? connectRaised(err.code) : undefined;
  if (raised) return { reason: raised, message: (err as ConnectError).rawMessage, violations: [], retryAfterSeconds: undefined };
  logger?.error({ err }, "unexpected failure");
  return { reason: "internal", message: ERROR_MAP.internal.legacy, violations: [], retryAfterSeconds: undefined };
}

function findDomainError(err: unknown): DomainError | undefined {
  if (err instanceof DomainError) return err;
  if (err instanceof ConnectError && err.cause instanceof DomainError) return err.cause;
  return undefined;
}
