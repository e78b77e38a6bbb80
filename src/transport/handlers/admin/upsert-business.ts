// UpsertBusiness: a legacy business and its branding, created or changed.
import type { MethodImpl } from "@connectrpc/connect";
import type { AdminService } from "../../../../gen/otp/v1/admin_service_pb.js";
import type { AdminDeps } from "./deps.js";
import { brandingPatch, businessMessage } from "./messages.js";

export function upsertBusiness(deps: AdminDeps): MethodImpl<typeof AdminService.method.upsertBusiness> {
  return async (req) => {
    const { business, created } = await deps.admin.upsertBusiness(req.businessId.toString(), req.name, brandingPatch(req.branding));
    return { business: businessMessage(business), created };
  };
}
