// GetJwks: the public keys that verify a project's session JWTs (public, as
// Stytch's is); each project has its own. An unknown project is not_found.
import type { MethodImpl } from "@connectrpc/connect";
import type { SessionService } from "../../../gen/otp/v1/otp_service_pb.js";
import { requestIdOf } from "../context.js";
import type { HandlerDeps } from "./deps.js";
import { browserClient } from "./request-client.js";

export function getJwks(deps: HandlerDeps): MethodImpl<typeof SessionService.method.getJwks> {
  return async (req, ctx) => ({ keys: [...(await deps.keys.projectJwks(req.projectId, browserClient(ctx).ipAddress))], requestId: requestIdOf(ctx.values), statusCode: 200 });
}
