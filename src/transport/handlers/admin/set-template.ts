// SetTemplate: a tenant's custom template, checked, then stored.
import type { MethodImpl } from "@connectrpc/connect";
import type { AdminService } from "../../../../gen/otp/v1/admin_service_pb.js";
import type { AdminDeps } from "./deps.js";
import { templateKindOf, templateMessage, tenantOf } from "./messages.js";

export function setTemplate(deps: AdminDeps): MethodImpl<typeof AdminService.method.setTemplate> {
  return async (req) => {
    const template = await deps.admin.setTemplate(tenantOf(req.tenant), {
      id: req.templateId || undefined,
      kind: templateKindOf(req.kind),
      name: req.name,
      subject: req.subject,
      text: req.textBody,
      html: req.htmlBody,
    });
    return { template: templateMessage(template) };
  };
}
