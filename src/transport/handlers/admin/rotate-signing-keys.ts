// RotateSigningKeys: a tenant's new signing key; the previous ones stay
// published unless revoked at once.
import type { MethodImpl } from "@connectrpc/connect";
import type { AdminService } from "../../../../gen/otp/v1/admin_service_pb.js";
import { requiredTenantRef } from "../../../domain/admin.js";
import { tenantOf } from "./messages.js";
import type { AdminDeps } from "./deps.js";

export function rotateSigningKeys(deps: AdminDeps): MethodImpl<typeof AdminService.method.rotateSigningKeys> {
  return async (req) => {
    const published = await deps.keys.rotate(requiredTenantRef(tenantOf(req.tenant)), req.revokePrevious);
    return { kid: published[0]!.kid, publishedKids: published.map((k) => k.kid) };
  };
}
