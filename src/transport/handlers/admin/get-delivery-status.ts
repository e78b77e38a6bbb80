// GetDeliveryStatus: how the mail to an address went.
import type { MethodImpl } from "@connectrpc/connect";
import type { AdminService } from "../../../../gen/otp/v1/admin_service_pb.js";
import type { AdminDeps } from "./deps.js";
import { deliveryMessage } from "./messages.js";

export function getDeliveryStatus(deps: AdminDeps): MethodImpl<typeof AdminService.method.getDeliveryStatus> {
  return async (req) => ({ deliveries: (await deps.admin.deliveries(req.emailId)).map(deliveryMessage) });
}
