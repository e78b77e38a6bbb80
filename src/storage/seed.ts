// The demo tenants: business 7 with the customer jane.doe@example.com, and a
// test project whose secret is shown once and kept in dev-credentials.json.
import { hashSecret } from "../domain/password-hash.js";
import { newId, newSecret } from "../domain/ids.js";
import { readDemoCredentials, writeDemoCredentials, type DemoCredentials } from "./dev-state.js";
import type { PgTenantStore } from "./tenant-store.js";

const DEMO_BUSINESS_ID = 7;
const DEMO_CUSTOMER = "jane.doe@example.com";

/** Returns the demo credentials and whether this call created them. */
export async function seedDemo(tenants: PgTenantStore, dataDir: string): Promise<{ credentials: DemoCredentials; created: boolean }> {
  if (!(await tenants.business(String(DEMO_BUSINESS_ID)))) {
    const business = await tenants.upsertBusiness({ businessId: String(DEMO_BUSINESS_ID), name: "Demo Studio" });
    await tenants.addUser(business.id, { userId: newId("user", false), emailId: newId("email", false), address: DEMO_CUSTOMER });
  }

  const existing = await readDemoCredentials(dataDir);
  if (existing && (await tenants.projectCredentials(existing.project_id))) return { credentials: existing, created: false };

  const credentials: DemoCredentials = {
    project_id: newId("project", false),
    secret: newSecret(false),
    business_id: DEMO_BUSINESS_ID,
  };
  await tenants.createProject({
    projectId: credentials.project_id,
    name: "Demo Project",
    secretHash: await hashSecret(credentials.secret),
    live: false,
  });
  await writeDemoCredentials(dataDir, credentials);
  return { credentials, created: true };
}
