// CreateProject: a new project; its secret is shown once, here.
import type { MethodImpl } from "@connectrpc/connect";
import type { AdminService } from "../../../../gen/otp/v1/admin_service_pb.js";
import type { AdminDeps } from "./deps.js";
import { brandingPatch, projectMessage } from "./messages.js";

export function createProject(deps: AdminDeps): MethodImpl<typeof AdminService.method.createProject> {
  return async (req) => {
    const { project, secret } = await deps.admin.createProject(req.name, req.live, brandingPatch(req.branding));
    return { project: projectMessage(project), secret };
  };
}
