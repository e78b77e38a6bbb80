// ExchangeOtp (legacy portal): a customer's passcode for a bearer token. A
// wrong, expired or used code and an unknown address all get one answer,
// naming the otp field.
import type { MethodImpl } from "@connectrpc/connect";
import type { OtpService } from "../../../gen/otp/v1/otp_service_pb.js";
import { DomainError } from "../../domain/errors.js";
import { browserClient, knownBusiness } from "./client.js";
import type { HandlerDeps } from "./deps.js";

export function exchangeOtp(deps: HandlerDeps): MethodImpl<typeof OtpService.method.exchangeOtp> {
  return async (req, ctx) => {
    const business = await knownBusiness(deps, req.businessId);
    try {
      const token = await deps.signIn.exchangeOtp(business, req.email, req.otp, browserClient(ctx));
      return { wasSuccessful: true, value: token, status: 200 };
    } catch (err) {
      if (err instanceof DomainError && (err.reason === "otp_code_not_found" || err.reason === "unable_to_auth_otp_code")) {
        throw new DomainError("invalid_argument", "otp is invalid or expired", {
          violations: [{ field: "otp", jsonField: "otp", description: "is invalid or expired" }],
        });
      }
      throw err;
    }
  };
}
