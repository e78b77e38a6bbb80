// The operator's use cases. Shapes (lengths, formats, URLs, colours) are
// checked by the transport's field rules; what needs state or the template
// language is checked here.
import { randomBytes } from "node:crypto";
import { checkTemplate } from "./template-language.js";
import type { Clock } from "./clock.js";
import { DomainError, invalidFields } from "./errors.js";
import { newId, newSecret } from "./ids.js";
import type {
  AdminStore,
  AdminUserRecord,
  AuditRecord,
  BrandingPatch,
  BusinessRecord,
  DeliveryRecord,
  ProjectRecord,
  TemplateRecord,
  TenantRef,
} from "./admin-records.js";
import { normalizeAddress } from "./otp-sender.js";
import { hashSecret } from "./password-hash.js";

/** In-process caches that must forget what the admin API changed (this instance's; others expire theirs). */
export interface AdminCaches {
  readonly businesses?: { forget(businessId: string): void };
  readonly projects?: { forget(projectId: string): void };
  readonly templates?: { forget(templateId: string): void };
}

export class Admin {
  constructor(
    private readonly store: AdminStore,
    private readonly clock: Clock,
    private readonly caches: AdminCaches = {},
  ) {}

  async createProject(name: string, live: boolean, branding: BrandingPatch): Promise<{ project: ProjectRecord; secret: string }> {
    const secret = newSecret(live);
    const project = await this.store.createProject({
      projectId: newId("project", live),
      name,
      live,
      secretHash: await hashSecret(secret),
      branding,
    });
    return { project, secret };
  }

  listProjects(): Promise<ProjectRecord[]> {
    return this.store.listProjects();
  }

  async updateProject(projectId: string, name: string | undefined, branding: BrandingPatch): Promise<ProjectRecord> {
    return (await this.store.updateProject(projectId, name, branding)) ?? notFound("project_id", "names no project");
  }

  async rotateSecret(projectId: string, graceMinutes: number): Promise<{ secret: string; previousValidUntil: number }> {
    const live = projectId.startsWith("project-live-");
    const secret = newSecret(live);
    const previousValidUntil = this.clock.now() + graceMinutes * 60_000;
    if (!(await this.store.rotateSecret(projectId, await hashSecret(secret), previousValidUntil))) {
      notFound("project_id", "names no project");
    }
    this.caches.projects?.forget(projectId);
    return { secret, previousValidUntil };
  }

  async upsertBusiness(businessId: string, name: string, branding: BrandingPatch): Promise<{ business: BusinessRecord; created: boolean }> {
    const result = await this.store.upsertBusiness(businessId, name, branding);
    this.caches.businesses?.forget(result.business.businessId);
    return result;
  }

  listBusinesses(): Promise<BusinessRecord[]> {
    return this.store.listBusinesses();
  }

  async setTemplate(ref: TenantRef | undefined, t: Omit<TemplateRecord, "id" | "updatedAt"> & { id: string | undefined }): Promise<TemplateRecord> {
    const tenantId = await this.tenant(ref);
    const problems = checkTemplate(t);
    if (problems.length > 0) {
      throw invalidFields(
        problems.map(({ part, problem }) => {
          const field = `${part === "subject" ? "subject" : `${part}_body`}`;
          return { field, description: problem };
        }),
      );
    }
    const saved = await this.store.saveTemplate(tenantId, { ...t, id: t.id ?? newTemplateId() }, t.id !== undefined);
    if (!saved) return notFound("template_id", "names no template of this tenant");
    this.caches.templates?.forget(saved.id);
    return saved;
  }

  async listTemplates(ref: TenantRef | undefined): Promise<TemplateRecord[]> {
    return this.store.listTemplates(await this.tenant(ref));
  }

  async deleteTemplate(id: string): Promise<void> {
    if (!(await this.store.deleteTemplate(id))) notFound("template_id", "names no template");
    this.caches.templates?.forget(id);
  }

  async addUser(ref: TenantRef | undefined, email: string): Promise<{ userId: string; emailId: string; created: boolean }> {
    const tenantId = await this.tenant(ref);
    const live = ref !== undefined && "projectId" in ref && ref.projectId.startsWith("project-live-");
    return this.store.addUser(tenantId, { userId: newId("user", live), emailId: newId("email", live), address: normalizeAddress(email) });
  }

  async listUsers(ref: TenantRef | undefined, limit: number): Promise<AdminUserRecord[]> {
    return this.store.listUsers(await this.tenant(ref), limit);
  }

  async removeUser(userId: string): Promise<void> {
    if (!(await this.store.removeUser(userId))) notFound("user_id", "names no user");
  }

  async auditEvents(ref: TenantRef | undefined, since: number | undefined, until: number | undefined, limit: number): Promise<AuditRecord[]> {
    return this.store.auditEvents(await this.tenant(ref), since, until, limit);
  }

  async deliveries(emailId: string): Promise<DeliveryRecord[]> {
    return (await this.store.deliveries(emailId)) ?? notFound("email_id", "names no email address");
  }

  private async tenant(given: TenantRef | undefined): Promise<string> {
    const ref = requiredTenantRef(given);
    const id = await this.store.tenantId(ref);
    if (id === undefined) {
      return "projectId" in ref
        ? notFound("project_id", "names no project")
        : notFound("business_id", "names no business");
    }
    return id;
  }
}

/**
 * The tenant an operation needs. The schema makes project_id and business_id
 * one oneof that must be set; an empty project_id still names none.
 */
export function requiredTenantRef(ref: TenantRef | undefined): TenantRef {
  if (!ref) throw invalidFields([{ field: "project_id", description: "or business_id is required" }]);
  return ref;
}

function newTemplateId(): string {
  return `template-${randomBytes(12).toString("hex")}`;
}

function notFound(field: string, description: string): never {
  throw new DomainError("not_found", `${field} ${description}`, { violations: [{ field, description }] });
}
