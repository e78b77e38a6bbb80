// RotateProjectSecret: a new secret; the old one works for a grace period.
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { MethodImpl } from "@connectrpc/connect";
import type { AdminService } from "../../../../gen/otp/v1/admin_service_pb.js";
import type { AdminDeps } from "./deps.js";

export function rotateProjectSecret(deps: AdminDeps): MethodImpl<typeof AdminService.method.rotateProjectSecret> {
  return async (req) => {
    const { secret, previousValidUntil } = await deps.admin.rotateSecret(req.projectId, req.graceMinutes ?? 60);
    return { secret, previousValidUntil: timestampFromMs(previousValidUntil) };
  };
}
