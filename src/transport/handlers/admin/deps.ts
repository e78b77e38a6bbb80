import type { Admin } from "../../../domain/admin.js";
import type { BusinessDirectory } from "../../../domain/business-directory.js";
import type { ProjectAuthenticator } from "../../../domain/project-auth.js";
import type { TenantKeys } from "../../../domain/signing-keys.js";
import type { TemplateDirectory } from "../../../domain/template-directory.js";

/** What the admin handlers call into. */
export interface AdminDeps {
  readonly admin: Admin;
  readonly templates: TemplateDirectory;
  /** Each tenant's signing keys, rotated here. */
  readonly keys: TenantKeys;
  /** Caches that must forget a tenant the admin API changed. */
  readonly businesses: BusinessDirectory;
  readonly projects: ProjectAuthenticator;
}
