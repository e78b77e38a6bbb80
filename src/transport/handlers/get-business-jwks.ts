// GetBusinessJwks: the public keys that verify a business's legacy bearer
// tokens; each business has its own. An unknown business is not_found.
import type { MethodImpl } from "@connectrpc/connect";
import type { OtpService } from "../../../gen/otp/v1/otp_service_pb.js";
import type { HandlerDeps } from "./deps.js";
import { browserClient } from "./request-client.js";

export function getBusinessJwks(deps: HandlerDeps): MethodImpl<typeof OtpService.method.getBusinessJwks> {
  return async (req, ctx) => ({ keys: [...(await deps.keys.businessJwks(req.businessId.toString(), browserClient(ctx).ipAddress))] });
}
