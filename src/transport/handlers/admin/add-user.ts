// AddUser: a user (a business's customer) with one verified email.
import type { MethodImpl } from "@connectrpc/connect";
import type { AdminService } from "../../../../gen/otp/v1/admin_service_pb.js";
import { tenantRef } from "../../../domain/admin.js";
import type { AdminDeps } from "./deps.js";

export function addUser(deps: AdminDeps): MethodImpl<typeof AdminService.method.addUser> {
  return async (req) => deps.admin.addUser(tenantRef(req.projectId, req.businessId), req.email);
}
