// The send path's admission at the door. Under overload a refusal that
// costs as much as a send (body read and parsed, caller authenticated,
// interceptors run) makes the excess queue behind itself: refusals then
// arrive as late as the accepted sends. So before any of that, a send
// request asks the domain's admission whether a send arriving now would be
// refused (SendAdmission.refusalNow: the one home of that policy), and if so
// it is answered at once in its route's own shape: the REST routes' error
// body with Retry-After, Connect resource_exhausted (HTTP 429), gRPC and
// gRPC-Web status 8 trailers-only. The bytes come from the same table and
// writer as every other error (error-writer.ts: RestRouter.fail for REST,
// writeRpcError for the RPC protocols). The refusal depends on nothing
// the caller sent, so it reveals nothing about an address or a tenant.
import type { DescMethod } from "@bufbuild/protobuf";
import type { Logger } from "pino";
import { OtpService } from "../../gen/otp/v1/otp_service_pb.js";
import type { DomainError } from "../domain/errors.js";
import { writeRpcError } from "./error-writer.js";
import type { NodeRequest, NodeResponse, RestRouter, RouteMatch } from "./rest.js";

/** What the gate asks: the refusal a send arriving now would meet (see SendAdmission.refusalNow). */
export interface SendCapacity {
  refusalNow(): DomainError | undefined;
}

/** The RPCs that send a passcode: the ones admission guards. */
const SEND_METHODS: ReadonlySet<DescMethod> = new Set<DescMethod>([
  OtpService.method.sendEmailOtp,
  OtpService.method.loginOrCreateEmailOtp,
  OtpService.method.sendOtp,
]);

const SEND_RPC_PATHS: ReadonlyMap<string, DescMethod> = new Map([...SEND_METHODS].map((m) => [`/${m.parent.typeName}/${m.name}`, m]));

/**
 * Returns a check for each request: true when it was a send refused for
 * capacity (and has been answered), false to go on as usual.
 */
export function createSendGate(
  capacity: SendCapacity,
  rest: RestRouter,
  logger: Logger,
  /** Told of each refusal (for the metrics the interceptors would have counted). */
  refused?: (method: DescMethod, req: NodeRequest) => void,
) {
  return (req: NodeRequest, res: NodeResponse, pathname: string, found: readonly RouteMatch[]): boolean => {
    const route = found.length > 0 ? found.find((f) => f.route.verb === req.method)?.route : undefined;
    const method = route ? (SEND_METHODS.has(route.method) ? route.method : undefined) : req.method === "POST" ? SEND_RPC_PATHS.get(pathname) : undefined;
    if (!method) return false;
    const refusal = capacity.refusalNow();
    if (!refusal) return false;
    refused?.(method, req);
    if (route) void rest.fail(route.shape.errors, req, res, refusal, undefined, route.method);
    else writeRpcError(req, res, refusal, logger);
    return true;
  };
}
