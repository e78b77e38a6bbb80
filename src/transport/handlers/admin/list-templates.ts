// ListTemplates: a tenant's custom templates.
import type { MethodImpl } from "@connectrpc/connect";
import type { AdminService } from "../../../../gen/otp/v1/admin_service_pb.js";
import type { AdminDeps } from "./deps.js";
import { templateMessage, tenantOf } from "./messages.js";

export function listTemplates(deps: AdminDeps): MethodImpl<typeof AdminService.method.listTemplates> {
  return async (req) => ({
    templates: (await deps.admin.listTemplates(tenantOf(req.tenant))).map(templateMessage),
  });
}
