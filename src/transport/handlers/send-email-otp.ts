// SendEmailOtp: a passcode for an address that already belongs to a user
// (or, with user_id or a session, is added to that user).
import type { MethodImpl } from "@connectrpc/connect";
import type { OtpService } from "../../../gen/otp/v1/otp_service_pb.js";
import { requestIdOf } from "../context.js";
import type { HandlerDeps } from "./deps.js";
import { emailSendOf } from "./request-client.js";

export function sendEmailOtp(deps: HandlerDeps): MethodImpl<typeof OtpService.method.sendEmailOtp> {
  return async (req, ctx) => {
    const result = await deps.emailOtp.sendToUser({
      ...emailSendOf(req, ctx),
      userId: req.userId,
      session: { token: req.sessionToken || undefined, jwt: req.sessionJwt || undefined },
    });
    return { requestId: requestIdOf(ctx.values), userId: result.userId, emailId: result.emailId, statusCode: 200 };
  };
}
