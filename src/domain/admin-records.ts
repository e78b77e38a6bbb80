// What the admin API reads and writes, and the storage port it goes through.

export interface BrandingRecord {
  readonly senderName: string | null;
  readonly senderAddress: string | null;
  readonly replyTo: string | null;
  readonly logoUrl: string | null;
  readonly accentColor: string | null;
  readonly supportUrl: string | null;
  readonly defaultLocale: string;
}

export interface ProjectRecord {
  readonly projectId: string;
  readonly name: string;
  readonly live: boolean;
  readonly branding: BrandingRecord;
  readonly createdAt: number;
}

export interface BusinessRecord {
  readonly businessId: string;
  readonly name: string;
  readonly branding: BrandingRecord;
  readonly createdAt: number;
}

export interface TemplateRecord {
  readonly id: string;
  readonly kind: "login" | "signup";
  readonly name: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
  readonly updatedAt: number;
}

export interface AdminUserRecord {
  readonly userId: string;
  readonly status: string;
  readonly emails: readonly string[];
  readonly createdAt: number;
}

export interface AuditRecord {
  readonly occurredAt: number;
  readonly action: string;
  readonly userId: string | null;
  readonly emailId: string | null;
  readonly ipAddress: string | null;
  readonly userAgent: string | null;
  readonly outcome: string;
  readonly reason: string | null;
}

export interface DeliveryRecord {
  readonly messageId: string;
  readonly status: string;
  readonly attempts: number;
  readonly lastError: string | null;
  readonly createdAt: number;
  readonly sentAt: number | null;
}

/** A tenant named by an admin call: a project id or a business number. */
export type TenantRef = { readonly projectId: string } | { readonly businessId: string };

/** Partial branding: undefined leaves a value as it is, "" clears it. */
export type BrandingPatch = Partial<Record<keyof BrandingRecord, string>>;

export interface AdminStore {
  createProject(p: { projectId: string; name: string; live: boolean; secretHash: string; branding: BrandingPatch }): Promise<ProjectRecord>;
  listProjects(): Promise<ProjectRecord[]>;
  updateProject(projectId: string, name: string | undefined, branding: BrandingPatch): Promise<ProjectRecord | undefined>;
  rotateSecret(projectId: string, secretHash: string, previousValidUntil: number): Promise<boolean>;
  upsertBusiness(businessId: string, name: string, branding: BrandingPatch): Promise<{ business: BusinessRecord; created: boolean }>;
  listBusinesses(): Promise<BusinessRecord[]>;
  tenantId(ref: TenantRef): Promise<string | undefined>;
  saveTemplate(tenantId: string, t: Omit<TemplateRecord, "updatedAt">, replace: boolean): Promise<TemplateRecord | undefined>;
  listTemplates(tenantId: string): Promise<TemplateRecord[]>;
  template(tenantId: string, id: string): Promise<TemplateRecord | undefined>;
  deleteTemplate(id: string): Promise<boolean>;
  addUser(tenantId: string, u: { userId: string; emailId: string; address: string }): Promise<{ userId: string; emailId: string; created: boolean }>;
  listUsers(tenantId: string, limit: number): Promise<AdminUserRecord[]>;
  removeUser(userId: string): Promise<boolean>;
  auditEvents(tenantId: string, since: number | undefined, until: number | undefined, limit: number): Promise<AuditRecord[]>;
  /** The mails sent to an address, newest first; undefined when no address has this id. */
  deliveries(emailId: string): Promise<DeliveryRecord[] | undefined>;
}
