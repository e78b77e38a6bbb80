// LoginOrCreateEmailOtp: a passcode for any address, creating its user first
// when the project has none.
import type { MethodImpl } from "@connectrpc/connect";
import type { OtpService } from "../../../gen/otp/v1/otp_service_pb.js";
import { requestIdOf } from "../context.js";
import type { HandlerDeps } from "./deps.js";
import { emailSendOf } from "./request-client.js";

export function loginOrCreateEmailOtp(deps: HandlerDeps): MethodImpl<typeof OtpService.method.loginOrCreateEmailOtp> {
  return async (req, ctx) => {
    const result = await deps.emailOtp.loginOrCreate({
      ...emailSendOf(req, ctx),
      pending: req.createUserAsPending,
    });
    return {
      requestId: requestIdOf(ctx.values),
      userId: result.userId,
      emailId: result.emailId,
      userCreated: result.userCreated,
      statusCode: 200,
    };
  };
}
