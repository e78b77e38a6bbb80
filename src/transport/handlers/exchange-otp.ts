// ExchangeOtp (legacy portal): a customer's passcode for a bearer token. The
// domain answers every failed check alike (naming the otp field) and no
// sooner than the legacy response floor.
import type { MethodImpl } from "@connectrpc/connect";
import type { OtpService } from "../../../gen/otp/v1/otp_service_pb.js";
import type { HandlerDeps } from "./deps.js";
import { browserClient } from "./request-client.js";

export function exchangeOtp(deps: HandlerDeps): MethodImpl<typeof OtpService.method.exchangeOtp> {
  return async (req, ctx) => {
    const business = await deps.businesses.known(req.businessId.toString(), browserClient(ctx).ipAddress);
    const token = await deps.signIn.exchangeOtp(business, req.email, req.otp, browserClient(ctx));
    return { wasSuccessful: true, value: token, status: 200 };
  };
}
