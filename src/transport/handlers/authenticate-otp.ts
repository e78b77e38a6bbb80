// AuthenticateOtp: a passcode for a verified email and, when asked, a session.
import type { MethodImpl } from "@connectrpc/connect";
import type { OtpService } from "../../../gen/otp/v1/otp_service_pb.js";
import { requestIdOf } from "../context.js";
import type { HandlerDeps } from "./deps.js";
import { browserClient, projectOf, stytchClient } from "./request-client.js";
import { sessionMessage, userMessage } from "./records.js";

export function authenticateOtp(deps: HandlerDeps): MethodImpl<typeof OtpService.method.authenticateOtp> {
  return async (req, ctx) => {
    const client = stytchClient(req.attributes);
    const { user, issued } = await deps.signIn.authenticateOtp({
      tenant: projectOf(ctx),
      methodId: req.methodId,
      code: req.code,
      client,
      peer: browserClient(ctx).ipAddress,
      match: {
        ipAddress: req.options?.ipMatchRequired ? (req.attributes?.ipAddress ?? "") : undefined,
        userAgent: req.options?.userAgentMatchRequired ? (req.attributes?.userAgent ?? "") : undefined,
      },
      sessionDurationMinutes: req.sessionDurationMinutes,
      existing: { token: req.sessionToken || undefined, jwt: req.sessionJwt || undefined },
      customClaims: req.sessionCustomClaims,
    });
    return {
      requestId: requestIdOf(ctx.values),
      userId: user.userId,
      methodId: req.methodId,
      user: userMessage(user),
      sessionToken: issued?.token ?? "",
      sessionJwt: issued?.jwt ?? "",
      session: issued ? sessionMessage(issued.session) : undefined,
      statusCode: 200,
    };
  };
}
