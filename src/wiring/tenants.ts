// The first tenants: the demo ones when SEED_DEMO says so, a hint in the log
// when there are none, and the admin token of embedded mode.
import type { Logger } from "pino";
import type { Config } from "../config.js";
import { dataDirFailure } from "../start-failure.js";
import type { Db } from "../storage/db.js";
import { loadOrCreateAdminToken, type DemoCredentials } from "../storage/dev-state.js";
import { seedDemo } from "../storage/seed.js";
import { PgTenantStore } from "../storage/tenant-store.js";

export interface Tenants {
  /** The admin API's bearer token; undefined: the admin API is off. */
  readonly adminToken: string | undefined;
  /** Set when the demo tenants were seeded. */
  readonly demo: DemoCredentials | undefined;
}

export async function prepareTenants(config: Config, db: Db, embedded: boolean, logger: Logger): Promise<Tenants> {
  const tenants = new PgTenantStore(db);
  const seeded = config.seedDemo
    ? (await seedDemo(db, config.dataDir).catch((err) => Promise.reject(dataDirFailure(err, config.dataDir)))).credentials
    : undefined;
  if (!seeded && !(await tenants.anyTenant())) {
    logger.warn(
      {
        create_project: "npm run admin -- project create --name NAME",
        create_business: "npm run admin -- business upsert --id NUMBER --name NAME",
        ...(config.adminToken === undefined ? { first: "set ADMIN_TOKEN on the service: the admin API is off without it" } : {}),
      },
      "no tenant exists yet: every send is refused until a project or business is created (OTP_URL and ADMIN_TOKEN tell the CLI where and how)",
    );
  }
  // Embedded mode always has an admin API, its token kept beside the demo credentials.
  const adminToken = config.adminToken ?? (embedded ? await loadOrCreateAdminToken(config.dataDir) : undefined);
  const demo = seeded && embedded ? { ...seeded, admin_token: adminToken } : seeded;
  return { adminToken, demo };
}
