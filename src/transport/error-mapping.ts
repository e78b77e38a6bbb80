// The one place where a failure becomes what a caller sees: a Connect code
// (with google.rpc details), an HTTP status, a Stytch error_type, a legacy
// message. Causes of unexpected failures are logged here and never sent.
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import {
  BadRequest_FieldViolationSchema,
  BadRequestSchema,
  ErrorInfoSchema,
  RetryInfoSchema,
} from "../../gen/google/rpc/error_details_pb.js";
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
  internal: { code: Code.Internal, http: 500, stytch: "internal_server_error", legacy: "Something went wrong on our side." },
};

const REASON_BY_CODE: Partial<Record<Code, WireReason>> = {
  [Code.InvalidArgument]: "invalid_argument",
  [Code.Unauthenticated]: "unauthenticated",
  [Code.ResourceExhausted]: "rate_limited",
  [Code.Unavailable]: "unavailable",
  [Code.NotFound]: "route_not_found",
  [Code.Unimplemented]: "method_not_allowed",
  [Code.DeadlineExceeded]: "deadline_exceeded",
};

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
  if (err instanceof ConnectError && REASON_BY_CODE[err.code]) {
    // Raised by Connect itself (e.g. an undecodable message): safe to show.
    const reason = REASON_BY_CODE[err.code]!;
    return { reason, message: err.rawMessage, violations: [], retryAfterSeconds: undefined };
  }
  logger?.error({ err }, "unexpected failure");
  return { reason: "internal", message: ERROR_MAP.internal.legacy, violations: [], retryAfterSeconds: undefined };
}

function findDomainError(err: unknown): DomainError | undefined {
  if (err instanceof DomainError) return err;
  if (err instanceof ConnectError && err.cause instanceof DomainError) return err.cause;
  return undefined;
}

/** The Connect error for a failure: code, retry-after metadata, google.rpc details. */
export function toConnectError(err: unknown, logger: Logger): ConnectError {
  if (err instanceof ConnectError && !(err.cause instanceof DomainError || err.cause instanceof TransportError) && REASON_BY_CODE[err.code]) {
    return err;
  }
  const failure = toFailure(err, logger);
  const mapping = ERROR_MAP[failure.reason];
  const details = [
    { desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason: mapping.stytch, domain: "otp.v1" }) },
  ];
  const metadata = new Headers();
  if (failure.retryAfterSeconds !== undefined) {
    metadata.set("retry-after", String(failure.retryAfterSeconds));
    details.push({
      desc: RetryInfoSchema,
      value: create(RetryInfoSchema, { retryDelay: durationFromMs(failure.retryAfterSeconds * 1000) }),
    } as never);
  }
  if (failure.violations.length > 0) {
    details.push({
      desc: BadRequestSchema,
      value: create(BadRequestSchema, {
        fieldViolations: failure.violations.map((v) =>
          create(BadRequest_FieldViolationSchema, { field: v.field, description: `${v.field} ${v.description}` }),
        ),
      }),
    } as never);
  }
  const message = failure.violations.length > 0 ? describeViolations(failure.violations, "proto") : failure.message;
  return new ConnectError(message, mapping.code, metadata, details, err);
}

/** "email is required; expiration_minutes must be between 1 and 10". */
export function describeViolations(violations: readonly FieldViolation[], names: "proto" | "json"): string {
  return violations.map((v) => `${names === "proto" ? v.field : v.jsonField} ${v.description}`).join("; ");
}
