// Failures that only the transport can have: a route or method that does
// not exist, a body too large or not JSON, an admin API turned off. The
// domain never sees them; the one error table maps them with the domain's.
// Each is an expected answer, built without a stack trace (ExpectedError,
// in the domain's errors).
import { ExpectedError } from "../domain/errors.js";

export type TransportReason =
  | "admin_disabled"
  | "payload_too_large"
  | "unsupported_media_type"
  | "route_not_found"
  | "method_not_allowed"
  /** A development page refusing a request that did not come from itself. */
  | "forbidden";

export class TransportError extends ExpectedError {
  override name = "TransportError";
  constructor(
    readonly reason: TransportReason,
    message: string,
  ) {
    super(message);
  }
}
