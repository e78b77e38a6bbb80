// RevokeSession: ends a session named by id, token or JWT.
import type { MethodImpl } from "@connectrpc/connect";
import type { SessionService } from "../../../gen/otp/v1/otp_service_pb.js";
import { requestIdOf } from "../context.js";
import type { HandlerDeps } from "./deps.js";
import { projectOf } from "./request-client.js";

export function revokeSession(deps: HandlerDeps): MethodImpl<typeof SessionService.method.revokeSession> {
  return async (req, ctx) => {
    await deps.signIn.revokeSession(projectOf(ctx), {
      sessionId: req.sessionId || undefined,
      token: req.sessionToken || undefined,
      jwt: req.sessionJwt || undefined,
    });
    return { requestId: requestIdOf(ctx.values), statusCode: 200 };
  };
}
