// ListAuditEvents: a tenant's audit log in a time range, newest first.
import type { MethodImpl } from "@connectrpc/connect";
import type { AdminService } from "../../../../gen/otp/v1/admin_service_pb.js";
import type { AdminDeps } from "./deps.js";
import { auditMessage, msOf, tenantOf } from "./messages.js";

export function listAuditEvents(deps: AdminDeps): MethodImpl<typeof AdminService.method.listAuditEvents> {
  return async (req) => ({
    events: (
      await deps.admin.auditEvents(tenantOf(req.tenant), msOf(req.since), msOf(req.until), req.limit ?? 100)
    ).map(auditMessage),
  });
}
