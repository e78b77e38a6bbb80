// An in-memory AdminStore for unit tests of the admin and template use
// cases: projects, businesses, templates and users in maps.
import type {
  AdminStore,
  AdminUserRecord,
  BrandingPatch,
  BusinessRecord,
  ProjectRecord,
  TemplateRecord,
  TenantRef,
} from "../../src/domain/admin-records.js";

const NO_BRANDING = { senderName: null, senderAddress: null, replyTo: null, logoUrl: null, accentColor: null, supportUrl: null, defaultLocale: "en" };

export class FakeAdminStore implements AdminStore {
  readonly projects = new Map<string, ProjectRecord & { tenantId: string; secretHash: string; previous?: { hash: string; until: number } }>();
  readonly businesses = new Map<string, BusinessRecord & { tenantId: string }>();
  readonly templates = new Map<string, TemplateRecord & { tenantId: string }>();
  readonly users = new Map<string, { tenantId: string; emails: Map<string, string> }>();
  /** How many look-ups reached the store (for caching tests). */
  lookups = 0;
  private nextTenant = 1;

  async createProject(p: { projectId: string; name: string; live: boolean; secretHash: string; branding: BrandingPatch }): Promise<ProjectRecord> {
    const record = { projectId: p.projectId, name: p.name, live: p.live, branding: NO_BRANDING, createdAt: 0 };
    this.projects.set(p.projectId, { ...record, tenantId: String(this.nextTenant++), secretHash: p.secretHash });
    return record;
  }
  async listProjects(): Promise<ProjectRecord[]> {
    return [...this.projects.values()];
  }
  async updateProject(projectId: string, name: string | undefined): Promise<ProjectRecord | undefined> {
    const p = this.projects.get(projectId);
    if (!p) return undefined;
    const updated = { ...p, name: name || p.name };
    this.projects.set(projectId, updated);
    return updated;
  }
  async rotateSecret(projectId: string, secretHash: string, previousValidUntil: number): Promise<boolean> {
    const p = this.projects.get(projectId);
    if (!p) return false;
    this.projects.set(projectId, { ...p, secretHash, previous: { hash: p.secretHash, until: previousValidUntil } });
    return true;
  }
  async upsertBusiness(businessId: string, name: string): Promise<{ business: BusinessRecord; created: boolean }> {
    const existing = this.businesses.get(businessId);
    const business = { businessId, name, branding: NO_BRANDING, createdAt: 0, tenantId: existing?.tenantId ?? String(this.nextTenant++) };
    this.businesses.set(businessId, business);
    return { business, created: !existing };
  }
  async listBusinesses(): Promise<BusinessRecord[]> {
    return [...this.businesses.values()];
  }
  async tenantId(ref: TenantRef): Promise<string | undefined> {
    return "projectId" in ref ? this.projects.get(ref.projectId)?.tenantId : this.businesses.get(ref.businessId)?.tenantId;
  }
  async saveTemplate(tenantId: string, t: Omit<TemplateRecord, "updatedAt">, replace: boolean): Promise<TemplateRecord | undefined> {
    const existing = this.templates.get(t.id);
    if (replace && existing?.tenantId !== tenantId) return undefined;
    const saved = { ...t, updatedAt: 0 };
    this.templates.set(t.id, { ...saved, tenantId });
    return saved;
  }
  async listTemplates(tenantId: string): Promise<TemplateRecord[]> {
    this.lookups++;
    return [...this.templates.values()].filter((t) => t.tenantId === tenantId);
  }
  async template(tenantId: string, id: string): Promise<TemplateRecord | undefined> {
    this.lookups++;
    const t = this.templates.get(id);
    return t?.tenantId === tenantId ? t : undefined;
  }
  async deleteTemplate(id: string): Promise<boolean> {
    return this.templates.delete(id);
  }
  async addUser(tenantId: string, u: { userId: string; emailId: string; address: string }) {
    for (const [userId, user] of this.users) {
      const emailId = user.tenantId === tenantId ? user.emails.get(u.address) : undefined;
      if (emailId) return { userId, emailId, created: false };
    }
    this.users.set(u.userId, { tenantId, emails: new Map([[u.address, u.emailId]]) });
    return { userId: u.userId, emailId: u.emailId, created: true };
  }
  async listUsers(tenantId: string): Promise<AdminUserRecord[]> {
    return [...this.users.entries()]
      .filter(([, u]) => u.tenantId === tenantId)
      .map(([userId, u]) => ({ userId, status: "active", emails: [...u.emails.keys()], createdAt: 0 }));
  }
  async removeUser(userId: string): Promise<boolean> {
    return this.users.delete(userId);
  }
  async auditEvents(): Promise<never[]> {
    return [];
  }
  async deliveries(): Promise<undefined> {
    return undefined;
  }
}
