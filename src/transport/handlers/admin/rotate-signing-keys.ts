// RotateSigningKeys: a tenant's new signing key; the previous ones stay
// published unless revoked at once.
import type { MethodImpl } from "@connectrpc/connect";
import type { AdminService } from "../../../../gen/otp/v1/admin_service_pb.js";
import { tenantRef } from "../../../domain/admin.js";
import { invalidFields } from "../../../domain/errors.js";
import type { AdminDeps } from "./deps.js";

export function rotateSigningKeys(deps: AdminDeps): MethodImpl<typeof AdminService.method.rotateSigningKeys> {
  return async (req) => {
    const ref = tenantRef(req.projectId, req.businessId);
    if (!ref) throw invalidFields([{ field: "project_id", description: "or business_id is required" }]);
    const published = await deps.keys.rotate(ref, req.revokePrevious);
    return { kid: published[0]!.kid, publishedKids: published.map((k) => k.kid) };
  };
}
