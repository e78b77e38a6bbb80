// The admin API's SQL.
import type {
  AdminStore,
  AdminUserRecord,
  AuditRecord,
  BrandingPatch,
  BrandingRecord,
  BusinessRecord,
  DeliveryRecord,
  ProjectRecord,
  TemplateRecord,
  TenantRef,
} from "../domain/admin-records.js";
import { query, type Db } from "./db.js";
import type { TenantMailColumns } from "./mail-columns.js";

interface TenantRow extends TenantMailColumns {
  external_id: string;
  name: string;
  live: boolean;
  created_at: Date;
  default_locale: string;
}

const TENANT_COLUMNS =
  "external_id, name, live, created_at, mail_from_name, mail_from_address, reply_to, logo_url, accent_color, support_url, default_locale";

// Branding columns in the order of brandingValues(); a NULL parameter keeps
// the column, "" clears it. The current values are named tenants.<column>,
// as an INSERT's ON CONFLICT DO UPDATE requires.
const BRANDING_SET = `
  mail_from_name    = CASE WHEN $B1::text IS NULL THEN tenants.mail_from_name    ELSE nullif($B1, '') END,
  mail_from_address = CASE WHEN $B2::text IS NULL THEN tenants.mail_from_address ELSE nullif($B2, '') END,
  reply_to          = CASE WHEN $B3::text IS NULL THEN tenants.reply_to          ELSE nullif($B3, '') END,
  logo_url          = CASE WHEN $B4::text IS NULL THEN tenants.logo_url          ELSE nullif($B4, '') END,
  accent_color      = CASE WHEN $B5::text IS NULL THEN tenants.accent_color      ELSE nullif($B5, '') END,
  support_url       = CASE WHEN $B6::text IS NULL THEN tenants.support_url       ELSE nullif($B6, '') END,
  default_locale    = coalesce(nullif($B7, ''), tenants.default_locale)`;

function brandingSet(first: number): string {
  return BRANDING_SET.replace(/\$B(\d)/g, (_, n: string) => `$${first + Number(n) - 1}`);
}

function brandingValues(b: BrandingPatch): (string | null)[] {
  return [b.senderName, b.senderAddress, b.replyTo, b.logoUrl, b.accentColor, b.supportUrl, b.defaultLocale].map((v) => v ?? null);
}

function branding(r: TenantRow): BrandingRecord {
  return {
    senderName: r.mail_from_name,
    senderAddress: r.mail_from_address,
    replyTo: r.reply_to,
    logoUrl: r.logo_url,
    accentColor: r.accent_color,
    supportUrl: r.support_url,
    defaultLocale: r.default_locale,
  };
}

const toProject = (r: TenantRow): ProjectRecord => ({
  projectId: r.external_id,
  name: r.name,
  live: r.live,
  branding: branding(r),
  createdAt: r.created_at.getTime(),
});

const toBusiness = (r: TenantRow): BusinessRecord => ({
  businessId: r.external_id,
  name: r.name,
  branding: branding(r),
  createdAt: r.created_at.getTime(),
});

interface TemplateRow {
  id: string;
  kind: "login" | "signup";
  name: string;
  subject: string;
  text_body: string;
  html_body: string;
  updated_at: Date;
}

const TEMPLATE_COLUMNS = "id, kind, name, subject, text_body, html_body, updated_at";

const toTemplate = (r: TemplateRow): TemplateRecord => ({
  id: r.id,
  kind: r.kind,
  name: r.name,
  subject: r.subject,
  text: r.text_body,
  html: r.html_body,
  updatedAt: r.updated_at.getTime(),
});

export class PgAdminStore implements AdminStore {
  constructor(private readonly db: Db) {}

  async createProject(p: { projectId: string; name: string; live: boolean; secretHash: string; branding: BrandingPatch }): Promise<ProjectRecord> {
    const { rows } = await query<TenantRow>(this.db, {
      text: `INSERT INTO tenants (kind, external_id, name, live, secret_hash, mail_from_name, mail_from_address, reply_to,
                                  logo_url, accent_color, support_url, default_locale)
             VALUES ('project', $1, $2, $3, $4, nullif($5, ''), nullif($6, ''), nullif($7, ''), nullif($8, ''),
                     nullif($9, ''), nullif($10, ''), coalesce(nullif($11, ''), 'en'))
             RETURNING ${TENANT_COLUMNS}`,
      values: [p.projectId, p.name, p.live, p.secretHash, ...brandingValues(p.branding)],
    });
    return toProject(rows[0]!);
  }

  async listProjects(): Promise<ProjectRecord[]> {
    const { rows } = await query<TenantRow>(this.db, {
      text: `SELECT ${TENANT_COLUMNS} FROM tenants WHERE kind = 'project' ORDER BY created_at, id`,
    });
    return rows.map(toProject);
  }

  async updateProject(projectId: string, name: string | undefined, b: BrandingPatch): Promise<ProjectRecord | undefined> {
    const { rows } = await query<TenantRow>(this.db, {
      text: `UPDATE tenants SET name = coalesce(nullif($2, ''), name), ${brandingSet(3)}
             WHERE kind = 'project' AND external_id = $1 RETURNING ${TENANT_COLUMNS}`,
      values: [projectId, name ?? null, ...brandingValues(b)],
    });
    return rows[0] ? toProject(rows[0]) : undefined;
  }

  async rotateSecret(projectId: string, secretHash: string, previousValidUntil: number): Promise<boolean> {
    const { rowCount } = await query(this.db, {
      text: `UPDATE tenants SET previous_secret_hash = secret_hash, secret_hash = $2,
               previous_secret_expires_at = to_timestamp($3::double precision / 1000)
             WHERE kind = 'project' AND external_id = $1`,
      values: [projectId, secretHash, previousValidUntil],
    });
    return rowCount === 1;
  }

  async upsertBusiness(businessId: string, name: string, b: BrandingPatch): Promise<{ business: BusinessRecord; created: boolean }> {
    // One statement: a new business gets the branding given (unset columns at
    // their defaults), an existing one has it applied as a patch.
    const { rows } = await query<TenantRow & { created: boolean }>(this.db, {
      text: `INSERT INTO tenants (kind, external_id, name, mail_from_name, mail_from_address, reply_to, logo_url, accent_color,
                                  support_url, default_locale)
             VALUES ('business', $1, $2, nullif($3, ''), nullif($4, ''), nullif($5, ''), nullif($6, ''), nullif($7, ''),
                     nullif($8, ''), coalesce(nullif($9, ''), 'en'))
             ON CONFLICT (kind, external_id) DO UPDATE SET name = excluded.name, ${brandingSet(3)}
             RETURNING ${TENANT_COLUMNS}, (xmax = 0) AS created`,
      values: [businessId, name, ...brandingValues(b)],
    });
    return { business: toBusiness(rows[0]!), created: rows[0]!.created };
  }

  async listBusinesses(): Promise<BusinessRecord[]> {
    const { rows } = await query<TenantRow>(this.db, {
      text: `SELECT ${TENANT_COLUMNS} FROM tenants WHERE kind = 'business' ORDER BY external_id::bigint`,
    });
    return rows.map(toBusiness);
  }

  async tenantId(ref: TenantRef): Promise<string | undefined> {
    const [kind, id] = "projectId" in ref ? ["project", ref.projectId] : ["business", ref.businessId];
    const { rows } = await query<{ id: string }>(this.db, {
      text: "SELECT id FROM tenants WHERE kind = $1 AND external_id = $2",
      values: [kind, id],
    });
    return rows[0] ? String(rows[0].id) : undefined;
  }

  async saveTemplate(tenantId: string, t: Omit<TemplateRecord, "updatedAt">, replace: boolean): Promise<TemplateRecord | undefined> {
    const { rows } = await query<TemplateRow>(this.db, {
      text: replace
        ? `UPDATE templates SET kind = $3, name = $4, subject = $5, text_body = $6, html_body = $7, updated_at = now()
           WHERE id = $1 AND tenant_id = $2 RETURNING ${TEMPLATE_COLUMNS}`
        : `INSERT INTO templates (id, tenant_id, kind, name, subject, text_body, html_body)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${TEMPLATE_COLUMNS}`,
      values: [t.id, tenantId, t.kind, t.name, t.subject, t.text, t.html],
    });
    return rows[0] ? toTemplate(rows[0]) : undefined;
  }

  async listTemplates(tenantId: string): Promise<TemplateRecord[]> {
    const { rows } = await query<TemplateRow>(this.db, {
      text: `SELECT ${TEMPLATE_COLUMNS} FROM templates WHERE tenant_id = $1 ORDER BY created_at, id`,
      values: [tenantId],
    });
    return rows.map(toTemplate);
  }

  async template(tenantId: string, id: string): Promise<TemplateRecord | undefined> {
    const { rows } = await query<TemplateRow>(this.db, {
      text: `SELECT ${TEMPLATE_COLUMNS} FROM templates WHERE tenant_id = $1 AND id = $2`,
      values: [tenantId, id],
    });
    return rows[0] ? toTemplate(rows[0]) : undefined;
  }

  async deleteTemplate(id: string): Promise<boolean> {
    const { rowCount } = await query(this.db, { text: "DELETE FROM templates WHERE id = $1", values: [id] });
    return rowCount === 1;
  }

  async addUser(tenantId: string, u: { userId: string; emailId: string; address: string }) {
    // The statement reads the address with the snapshot it started with: when
    // another call inserts it in between, the insert does nothing and the read
    // does not see that row yet. Run again, it sees it.
    for (let attempt = 0; attempt < 3; attempt++) {
      const added = await this.addUserOnce(tenantId, u);
      if (added) return added;
    }
    throw new Error(`the address of user ${u.userId} was neither added nor found`);
  }

  private async addUserOnce(tenantId: string, u: { userId: string; emailId: string; address: string }) {
    const { rows } = await query<{ user_id: string; email_id: string; created: boolean }>(this.db, {
      text: `WITH e AS (INSERT INTO emails (id, tenant_id, user_id, address, verified)
                        VALUES ($2, $1, $3, $4, true)
                        ON CONFLICT (tenant_id, address) DO NOTHING
                        RETURNING id, user_id),
                  u AS (INSERT INTO users (id, tenant_id, status) SELECT user_id, $1, 'active' FROM e)
             SELECT user_id, id AS email_id, true AS created FROM e
             UNION ALL
             SELECT user_id, id, false FROM emails WHERE tenant_id = $1 AND address = $4 AND NOT EXISTS (SELECT 1 FROM e)`,
      values: [tenantId, u.emailId, u.userId, u.address],
    });
    const r = rows[0];
    return r ? { userId: r.user_id, emailId: r.email_id, created: r.created } : undefined;
  }

  async listUsers(tenantId: string, limit: number): Promise<AdminUserRecord[]> {
    const { rows } = await query<{ id: string; status: string; created_at: Date; emails: string[] }>(this.db, {
      text: `SELECT u.id, u.status, u.created_at,
                    coalesce(array_agg(e.address ORDER BY e.created_at) FILTER (WHERE e.id IS NOT NULL), '{}') AS emails
             FROM users u LEFT JOIN emails e ON e.user_id = u.id
             WHERE u.tenant_id = $1 GROUP BY u.id ORDER BY u.created_at DESC, u.id LIMIT $2`,
      values: [tenantId, limit],
    });
    return rows.map((r) => ({ userId: r.id, status: r.status, emails: r.emails, createdAt: r.created_at.getTime() }));
  }

  async removeUser(userId: string): Promise<boolean> {
    const { rows } = await query<{ n: string }>(this.db, {
      text: `WITH em AS (SELECT id FROM emails WHERE user_id = $1),
                  c AS (DELETE FROM otp_codes WHERE email_id IN (SELECT id FROM em)),
                  o AS (DELETE FROM outbox WHERE email_id IN (SELECT id FROM em)),
                  s AS (DELETE FROM sessions WHERE user_id = $1),
                  e AS (DELETE FROM emails WHERE user_id = $1),
                  u AS (DELETE FROM users WHERE id = $1 RETURNING 1)
             SELECT count(*) AS n FROM u`,
      values: [userId],
    });
    return Number(rows[0]!.n) > 0;
  }

  async auditEvents(tenantId: string, since: number | undefined, until: number | undefined, limit: number): Promise<AuditRecord[]> {
    const { rows } = await query<{
      occurred_at: Date;
      action: string;
      user_id: string | null;
      email_id: string | null;
      ip_address: string | null;
      user_agent: string | null;
      outcome: string;
      reason: string | null;
    }>(this.db, {
      text: `SELECT occurred_at, action, user_id, email_id, ip_address, user_agent, outcome, reason
             FROM audit_events
             WHERE tenant_id = $1
               AND occurred_at >= coalesce(to_timestamp($2::double precision / 1000), '-infinity')
               AND occurred_at < coalesce(to_timestamp($3::double precision / 1000), 'infinity')
             ORDER BY occurred_at DESC, id DESC LIMIT $4`,
      values: [tenantId, since ?? null, until ?? null, limit],
    });
    return rows.map((r) => ({
      occurredAt: r.occurred_at.getTime(),
      action: r.action,
      userId: r.user_id,
      emailId: r.email_id,
      ipAddress: r.ip_address,
      userAgent: r.user_agent,
      outcome: r.outcome,
      reason: r.reason,
    }));
  }

  async deliveries(emailId: string): Promise<DeliveryRecord[] | undefined> {
    const { rows } = await query<{
      message_id: string;
      status: string;
      attempts: number;
      last_error: string | null;
      created_at: Date;
      sent_at: Date | null;
    }>(this.db, {
      text: `SELECT message_id, status, attempts, last_error, created_at, sent_at FROM outbox
             WHERE email_id = $1 ORDER BY id DESC LIMIT 50`,
      values: [emailId],
    });
    if (rows.length === 0) {
      const known = await query(this.db, { text: "SELECT 1 FROM emails WHERE id = $1", values: [emailId] });
      if (known.rowCount === 0) return undefined;
    }
    return rows.map((r) => ({
      messageId: r.message_id,
      status: r.status,
      attempts: r.attempts,
      lastError: r.last_error,
      createdAt: r.created_at.getTime(),
      sentAt: r.sent_at?.getTime() ?? null,
    }));
  }
}
