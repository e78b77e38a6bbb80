// LoginOrCreateEmailOtp: a passcode for any address, creating its user first
// when the project has none.
import type { MethodImpl } from "@connectrpc/connect";
import type { OtpService } from "../../../gen/otp/v1/otp_service_pb.js";
import { requestIdOf } from "../context.js";
import { chosenTemplates, sentOrThrow, stytchSend } from "./client.js";
import type { HandlerDeps } from "./deps.js";

export function loginOrCreateEmailOtp(deps: HandlerDeps): MethodImpl<typeof OtpService.method.loginOrCreateEmailOtp> {
  return async (req, ctx) => {
    const templates = await chosenTemplates(deps, ctx, req);
    const result = sentOrThrow(
      await deps.sender.send({
        ...stytchSend(req, ctx),
        ...templates,
        ifUnknown: req.createUserAsPending ? "create-pending" : "create-active",
      }),
    );
    return {
      requestId: requestIdOf(ctx.values),
      userId: result.userId,
      emailId: result.emailId,
      userCreated: result.userCreated,
      statusCode: 200,
    };
  };
}
