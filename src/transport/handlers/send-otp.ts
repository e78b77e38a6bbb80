// SendOtp (legacy portal): the same answer whether or not the address is a
// customer of the business; the domain runs the same statement either way and
// simply queues no mail for a stranger.
import type { MethodImpl } from "@connectrpc/connect";
import type { OtpService } from "../../../gen/otp/v1/otp_service_pb.js";
import { browserClient, knownBusiness } from "./client.js";
import type { HandlerDeps } from "./deps.js";

export function sendOtp(deps: HandlerDeps): MethodImpl<typeof OtpService.method.sendOtp> {
  return async (req, ctx) => {
    // A customer's send writes a code and a mail, a stranger's does not:
    // answering no sooner than a fixed floor keeps that out of the timing.
    const floor = sleep(deps.legacyMinResponseMs);
    try {
      const business = await knownBusiness(deps, req.businessId);
      await deps.sender.send({
        tenant: business,
        email: req.email,
        ttlMinutes: deps.legacyCodeTtlMinutes,
        locale: business.defaultLocale,
        client: browserClient(ctx),
        ifUnknown: "ignore",
      });
      return { wasSuccessful: true, status: 200 };
    } finally {
      await floor;
    }
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
