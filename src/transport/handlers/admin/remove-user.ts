// RemoveUser: the user and everything hanging off them.
import type { MethodImpl } from "@connectrpc/connect";
import type { AdminService } from "../../../../gen/otp/v1/admin_service_pb.js";
import type { AdminDeps } from "./deps.js";

export function removeUser(deps: AdminDeps): MethodImpl<typeof AdminService.method.removeUser> {
  return async (req) => {
    await deps.admin.removeUser(req.userId);
    return {};
  };
}
