// The demo tenants: business 7 with the customer jane.doe@example.com, and a
// test project whose secret is shown once and kept in dev-credentials.json.
import { hashSecret } from "../domain/password-hash.js";
import { newId, newSecret } from "../domain/ids.js";
import { PgAdminStore } from "./admin-store.js";
import type { Db } from "./db.js";
import { readDemoCredentials, writeDemoCredentials, type DemoCredentials } from "./dev-state.js";
import { PgTenantStore } from "./tenant-store.js";

const DEMO_BUSINESS_ID = 7;
const DEMO_CUSTOMER = "jane.doe@example.com";

/** Returns the demo credentials and whether this call created them. */
export async function seedDemo(db: Db, dataDir: string): Promise<{ credentials: DemoCredentials; created: boolean }> {
  const tenants = new PgTenantStore(db);
  // Written through the admin store, the one API that writes tenants.
  const admin = new PgAdminStore(db);
  if (!(await tenants.business(String(DEMO_BUSINESS_ID)))) {
    await admin.upsertBusiness(String(DEMO_BUSINESS_ID), "Demo Studio", {});
    const tenantId = (await admin.tenantId({ businessId: String(DEMO_BUSINESS_ID) }))!;
    await admin.addUser(tenantId, { userId: newId("user", false), emailId: newId("email", false), address: DEMO_CUSTOMER });
  }

  const existing = await readDemoCredentials(dataDir);
  if (existing && (await tenants.projectCredentials(existing.project_id))) return { credentials: existing, created: false };

  const credentials: DemoCredentials = {
    project_id: newId("project", false),
    secret: newSecret(false),
    business_id: DEMO_BUSINESS_ID,
  };
  await admin.createProject({
    projectId: credentials.project_id,
    name: "Demo Project",
    secretHash: await hashSecret(credentials.secret),
    live: false,
    branding: {},
  });
  await writeDemoCredentials(dataDir, credentials);
  return { credentials, created: true };
}
