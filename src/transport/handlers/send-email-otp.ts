// SendEmailOtp: a passcode for an address that already belongs to a user
// (or, with user_id, is added to that user).
import type { MethodImpl } from "@connectrpc/connect";
import type { OtpService } from "../../../gen/otp/v1/otp_service_pb.js";
import { requestIdOf } from "../context.js";
import { chosenTemplates, projectOf, sentOrThrow, stytchSend } from "./client.js";
import type { HandlerDeps } from "./deps.js";

export function sendEmailOtp(deps: HandlerDeps): MethodImpl<typeof OtpService.method.sendEmailOtp> {
  return async (req, ctx) => {
    const templates = await chosenTemplates(deps, ctx, req);
    // A session names the user to add the address to, like user_id does.
    const sessionUser =
      req.sessionToken || req.sessionJwt
        ? await deps.signIn.sessionUserId(projectOf(ctx), { token: req.sessionToken || undefined, jwt: req.sessionJwt || undefined })
        : undefined;
    const result = sentOrThrow(
      await deps.sender.send({
        ...stytchSend(req, ctx),
        ...templates,
        ifUnknown: "fail",
        forUserId: sessionUser ?? (req.userId || undefined),
      }),
    );
    return { requestId: requestIdOf(ctx.values), userId: result.userId, emailId: result.emailId, statusCode: 200 };
  };
}
