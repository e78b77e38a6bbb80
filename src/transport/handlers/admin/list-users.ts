// ListUsers: a tenant's users, newest first.
import type { MethodImpl } from "@connectrpc/connect";
import type { AdminService } from "../../../../gen/otp/v1/admin_service_pb.js";
import type { AdminDeps } from "./deps.js";
import { tenantOf, userMessage } from "./messages.js";

export function listUsers(deps: AdminDeps): MethodImpl<typeof AdminService.method.listUsers> {
  return async (req) => ({
    users: (await deps.admin.listUsers(tenantOf(req.tenant), req.limit ?? 100)).map(userMessage),
  });
}
