import type { Admin } from "../../../domain/admin.js";
import type { TenantKeys } from "../../../domain/signing-keys.js";

/** What the admin handlers call into. Cache invalidation is the Admin use case's business. */
export interface AdminDeps {
  readonly admin: Admin;
  /** Each tenant's signing keys, rotated here. */
  readonly keys: TenantKeys;
}
