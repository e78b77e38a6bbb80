// ListBusinesses: every business.
import type { MethodImpl } from "@connectrpc/connect";
import type { AdminService } from "../../../../gen/otp/v1/admin_service_pb.js";
import type { AdminDeps } from "./deps.js";
import { businessMessage } from "./messages.js";

export function listBusinesses(deps: AdminDeps): MethodImpl<typeof AdminService.method.listBusinesses> {
  return async () => ({ businesses: (await deps.admin.listBusinesses()).map(businessMessage) });
}
