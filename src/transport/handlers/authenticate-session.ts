// AuthenticateSession: a live session by token or JWT, optionally extended.
import type { MethodImpl } from "@connectrpc/connect";
import type { SessionService } from "../../../gen/otp/v1/otp_service_pb.js";
import { requestIdOf } from "../context.js";
import type { HandlerDeps } from "./deps.js";
import { projectOf } from "./request-client.js";
import { sessionMessage, userMessage } from "./records.js";

export function authenticateSession(deps: HandlerDeps): MethodImpl<typeof SessionService.method.authenticateSession> {
  return async (req, ctx) => {
    const issued = await deps.signIn.authenticateSession(
      projectOf(ctx),
      { token: req.sessionToken || undefined, jwt: req.sessionJwt || undefined },
      req.sessionDurationMinutes,
      req.sessionCustomClaims,
    );
    return {
      requestId: requestIdOf(ctx.values),
      session: sessionMessage(issued.session),
      sessionToken: issued.token,
      sessionJwt: issued.jwt,
      user: userMessage(issued.user),
      statusCode: 200,
    };
  };
}
