// Tenant look-ups for the send and sign-in use cases. Tenants are written
// only through PgAdminStore (the admin API, the CLI and the demo seed).
import type { ProjectCredentials, Tenant, TenantStore } from "../domain/tenants.js";
import { query, type Db } from "./db.js";

interface TenantRow {
  id: string;
  kind: "project" | "business";
  external_id: string;
  name: string;
  live: boolean;
  mail_from_name: string | null;
  mail_from_address: string | null;
  default_locale: string;
  secret_hash: string | null;
  previous_secret_hash: string | null;
  previous_secret_expires_at: Date | null;
}

const COLUMNS =
  "id, kind, external_id, name, live, mail_from_name, mail_from_address, default_locale, secret_hash, " +
  "previous_secret_hash, previous_secret_expires_at";

function toTenant(row: TenantRow): Tenant {
  return {
    id: String(row.id),
    kind: row.kind,
    externalId: row.external_id,
    name: row.name,
    live: row.live,
    mailFromName: row.mail_from_name,
    mailFromAddress: row.mail_from_address,
    defaultLocale: row.default_locale,
  };
}

export class PgTenantStore implements TenantStore {
  constructor(private readonly db: Db) {}

  async projectCredentials(projectId: string): Promise<ProjectCredentials | undefined> {
    const { rows } = await query<TenantRow>(this.db, {
      text: `SELECT ${COLUMNS} FROM tenants WHERE kind = 'project' AND external_id = $1`,
      values: [projectId],
    });
    const row = rows[0];
    return row
      ? {
          tenant: toTenant(row),
          secretHash: row.secret_hash!,
          previousSecretHash: row.previous_secret_hash,
          previousSecretExpiresAt: row.previous_secret_expires_at?.getTime() ?? null,
        }
      : undefined;
  }

  /** True once any project or business exists (start-up checks it once). */
  async anyTenant(): Promise<boolean> {
    const { rows } = await query<{ any: boolean }>(this.db, { text: "SELECT EXISTS (SELECT 1 FROM tenants) AS any" });
    return rows[0]?.any === true;
  }

  async business(businessId: string): Promise<Tenant | undefined> {
    const { rows } = await query<TenantRow>(this.db, {
      text: `SELECT ${COLUMNS} FROM tenants WHERE kind = 'business' AND external_id = $1`,
      values: [businessId],
    });
    return rows[0] ? toTenant(rows[0]) : undefined;
  }
}
