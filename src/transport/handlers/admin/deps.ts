import type { Admin } from "../../../domain/admin.js";
import type { TemplateDirectory } from "../../../domain/template-directory.js";

/** What the admin handlers call into. */
export interface AdminDeps {
  readonly admin: Admin;
  readonly templates: TemplateDirectory;
}
