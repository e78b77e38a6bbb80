// ListProjects: every project.
import type { MethodImpl } from "@connectrpc/connect";
import type { AdminService } from "../../../../gen/otp/v1/admin_service_pb.js";
import type { AdminDeps } from "./deps.js";
import { projectMessage } from "./messages.js";

export function listProjects(deps: AdminDeps): MethodImpl<typeof AdminService.method.listProjects> {
  return async () => ({ projects: (await deps.admin.listProjects()).map(projectMessage) });
}
