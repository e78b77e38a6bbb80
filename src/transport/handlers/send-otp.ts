// SendOtp (legacy portal): the same answer whether or not the address is a
// customer of the business; the domain sees to it, timing included.
import type { MethodImpl } from "@connectrpc/connect";
import type { OtpService } from "../../../gen/otp/v1/otp_service_pb.js";
import type { HandlerDeps } from "./deps.js";
import { browserClient } from "./request-client.js";

export function sendOtp(deps: HandlerDeps): MethodImpl<typeof OtpService.method.sendOtp> {
  return async (req, ctx) => {
    const business = await deps.businesses.known(req.businessId.toString(), browserClient(ctx).ipAddress);
    await deps.sender.sendLegacy(business, req.email, browserClient(ctx));
    return { wasSuccessful: true, status: 200 };
  };
}
