// GetJwks: the public keys that verify session JWTs (public, as Stytch's is).
import type { MethodImpl } from "@connectrpc/connect";
import type { SessionService } from "../../../gen/otp/v1/otp_service_pb.js";
import { requestIdOf } from "../context.js";
import type { HandlerDeps } from "./deps.js";

export function getJwks(deps: HandlerDeps): MethodImpl<typeof SessionService.method.getJwks> {
  return async (_req, ctx) => ({ keys: [...deps.signIn.jwks()], requestId: requestIdOf(ctx.values), statusCode: 200 });
}
