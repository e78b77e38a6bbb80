// AddUser: a user (a business's customer) with one verified email.
import type { MethodImpl } from "@connectrpc/connect";
import type { AdminService } from "../../../../gen/otp/v1/admin_service_pb.js";
import type { AdminDeps } from "./deps.js";
import { tenantOf } from "./messages.js";

export function addUser(deps: AdminDeps): MethodImpl<typeof AdminService.method.addUser> {
  return async (req) => deps.admin.addUser(tenantOf(req.tenant), req.email);
}
