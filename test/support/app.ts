// Starts the real service with build() on port 0, against a fresh database
// and the in-process SMTP server, with a project and a business to call as.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pino, type Logger } from "pino";
import { loadConfig } from "../../src/config.js";
import { newId } from "../../src/domain/ids.js";
import { hashSecret } from "../../src/domain/password-hash.js";
import { build, type App } from "../../src/server.js";
import { PgAdminStore } from "../../src/storage/admin-store.js";
import type { Db } from "../../src/storage/db.js";
import { PgTenantStore } from "../../src/storage/tenant-store.js";
import { createTestDatabase, type TestDatabase } from "./database.js";
import { startSmtp, type TestSmtp } from "./smtp.js";

export const PEPPER = "test-pepper-0123456789abcdef0123456789abcdef";

export interface TestProject {
  readonly projectId: string;
  readonly secret: string;
  /** "Basic …" for the Authorization header. */
  readonly authorization: string;
}

export interface TestEnv {
  readonly app: App;
  readonly url: string;
  readonly smtp: TestSmtp;
  readonly database: TestDatabase;
  /** Tenant lookups, as the send and sign-in use cases make them. */
  readonly tenants: PgTenantStore;
  readonly project: TestProject;
  readonly businessId: number;
  readonly customer: string;
  /** Another service instance on the same database. */
  startInstance(env?: Record<string, string>): Promise<{ app: App; url: string }>;
  createProject(name?: string): Promise<TestProject>;
  close(): Promise<void>;
}

/** A test project with a fresh id and secret, as callers authenticate with it. */
export async function createTestProject(db: Db, name = "Acme"): Promise<TestProject & { readonly tenantId: string }> {
  const admin = new PgAdminStore(db);
  const projectId = newId("project", false);
  const secret = `secret-test-${newId("request-id", false)}`;
  await admin.createProject({ projectId, name, secretHash: await hashSecret(secret), live: false, branding: {} });
  const tenantId = (await admin.tenantId({ projectId }))!;
  return { projectId, secret, tenantId, authorization: `Basic ${Buffer.from(`${projectId}:${secret}`).toString("base64")}` };
}

/** A business (created, or renamed if it exists); returns its internal tenant id. */
export async function createTestBusiness(db: Db, businessId: number | bigint, name = "Harbour Yoga"): Promise<string> {
  const admin = new PgAdminStore(db);
  await admin.upsertBusiness(String(businessId), name, {});
  return (await admin.tenantId({ businessId: String(businessId) }))!;
}

/** A user with one verified address in the tenant (a customer, for a business). */
export async function addTestUser(db: Db, tenantId: string, address: string): Promise<{ userId: string; emailId: string }> {
  return new PgAdminStore(db).addUser(tenantId, { userId: newId("user", false), emailId: newId("email", false), address });
}

export async function startTestEnv(
  env: Record<string, string> = {},
  options: { logger?: Logger; /** Default: a random one from 7000. */ businessId?: number } = {},
): Promise<TestEnv> {
  const database = await createTestDatabase();
  const smtp = await startSmtp();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "otp-test-data-"));
  const instances: App[] = [];
  const startInstance = async (extra: Record<string, string> = {}) => {
    const config = loadConfig({
      DATABASE_URL: database.url,
      OTP_PEPPER: PEPPER,
      SMTP_URL: smtp.url,
      PORT: "0",
      DATA_DIR: dataDir,
      DB_POOL_SIZE: "10",
      OUTBOX_POLL_MS: "200",
      // Test files share the CPUs: their event loops run late for reasons
      // of their own. The check has its own tests, which turn it on.
      SEND_MAX_LOOP_DELAY_MS: "0",
      ...env,
      ...extra,
    });
    const app = await build(config, { logger: options.logger ?? pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }) });
    instances.push(app);
    return { app, url: await app.listen() };
  };
  const first = await startInstance();
  const db = first.app.db;
  const tenants = new PgTenantStore(db);
  const createProject = (name = "Acme") => createTestProject(db, name);
  const project = await createProject();
  const businessId = options.businessId ?? 7000 + Math.floor(Math.random() * 1000);
  const customer = "jane.doe@example.com";
  await addTestUser(db, await createTestBusiness(db, businessId), customer);
  return {
    app: first.app,
    url: first.url,
    smtp,
    database,
    tenants,
    project,
    businessId,
    customer,
    startInstance,
    createProject,
    async close() {
      for (const app of instances) await app.close();
      await smtp.close();
      await database.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Waits until no mail to `recipient` (undefined: to anyone) is still queued or being sent (every
 * request that queued one has been answered before this is called), and
 * returns how many were queued in all. A sent row's mail has reached the
 * test SMTP server: it records a mail before answering 250. So after this,
 * no further mail to `recipient` can arrive, without sleeping to find out.
 */
export async function settledOutbox(db: Db, recipient: string | undefined, timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await db.query<{ total: string; open: string }>(
      `SELECT count(*) AS total, count(*) FILTER (WHERE status IN ('pending', 'sending')) AS open FROM outbox
       WHERE $1::text IS NULL OR recipient = $1`,
      [recipient ?? null],
    );
    if (rows[0]!.open === "0") return Number(rows[0]!.total);
    if (Date.now() > deadline) throw new Error(`mail to ${recipient ?? "anyone"} still queued after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
