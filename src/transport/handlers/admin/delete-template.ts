// DeleteTemplate: queued mail that chose it falls back to the built-in copy.
import type { MethodImpl } from "@connectrpc/connect";
import type { AdminService } from "../../../../gen/otp/v1/admin_service_pb.js";
import type { AdminDeps } from "./deps.js";

export function deleteTemplate(deps: AdminDeps): MethodImpl<typeof AdminService.method.deleteTemplate> {
  return async (req) => {
    await deps.admin.deleteTemplate(req.templateId);
    return {};
  };
}
