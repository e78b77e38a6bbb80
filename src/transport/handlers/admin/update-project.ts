// UpdateProject: a new name or branding.
import type { MethodImpl } from "@connectrpc/connect";
import type { AdminService } from "../../../../gen/otp/v1/admin_service_pb.js";
import type { AdminDeps } from "./deps.js";
import { brandingPatch, projectMessage } from "./messages.js";

export function updateProject(deps: AdminDeps): MethodImpl<typeof AdminService.method.updateProject> {
  return async (req) => ({
    project: projectMessage(await deps.admin.updateProject(req.projectId, req.name || undefined, brandingPatch(req.branding))),
  });
}
