// SendEmailOtp: a passcode for an address that already belongs to a user
// (or, with user_id, is added to that user).
import type { MethodImpl } from "@connectrpc/connect";
import type { OtpService } from "../../../gen/otp/v1/otp_service_pb.js";
import { DomainError } from "../../domain/errors.js";
import { requestIdOf } from "../context.js";
import { rejectUnknownTemplates, stytchSend } from "./client.js";
import type { HandlerDeps } from "./deps.js";

export function sendEmailOtp(deps: HandlerDeps): MethodImpl<typeof OtpService.method.sendEmailOtp> {
  return async (req, ctx) => {
    rejectUnknownTemplates(req);
    if (req.sessionToken || req.sessionJwt) {
      throw new DomainError("session_not_found", "The session_token or session_jwt matches no active session.");
    }
    const result = await deps.sender.send({
      ...stytchSend(req, ctx),
      ifUnknown: "fail",
      forUserId: req.userId || undefined,
    });
    if (!result.sent) throw new DomainError("internal", "a send that may not skip reported nothing sent");
    return { requestId: requestIdOf(ctx.values), userId: result.userId, emailId: result.emailId, statusCode: 200 };
  };
}
