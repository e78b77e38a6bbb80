// Shared set-up for the fault suite: whether it is enabled, fresh databases
// on the run's Postgres server, temp dirs, and a whole stack (service, SMTP,
// database, DATA_DIR), all cleaned up by the caller.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../../support/database.js";
import { killAll, type Service, startService } from "./service.js";
import { type FaultSmtp, startFaultSmtp } from "./smtp.js";

/** True under test/faults/vitest.config.ts; the default config skips the fault suite. */
export const FAULTS_ENABLED = process.env.OTP_FAULT_TESTS === "1";

export interface FaultDatabase extends TestDatabase {
  /** A small pool for the test's own queries. */
  readonly pool: pg.Pool;
}

export async function freshDatabase(): Promise<FaultDatabase> {
  const db = await createTestDatabase();
  const pool = new pg.Pool({ connectionString: db.url, max: 3 });
  pool.on("error", () => {});
  return {
    url: db.url,
    pool,
    async drop() {
      await pool.end().catch(() => {});
      await db.drop();
    },
  };
}

export async function tempDir(tag: string): Promise<{ path: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `otp-faults-${tag}-`));
  return { path: dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A run-unique tag for addresses, so reruns on a reused database never collide. */
export const RUN = Date.now().toString(36);

/** One service process with a fresh database, its own SMTP server and DATA_DIR (demo tenants seeded). */
export interface FaultStack {
  readonly db: FaultDatabase;
  readonly smtp: FaultSmtp;
  readonly data: { path: string; remove(): Promise<void> };
  readonly svc: Service;
  /** Kills the service, then stops the SMTP server and drops the database and DATA_DIR. */
  close(): Promise<void>;
}

export async function startFaultStack(name: string, env: Record<string, string>): Promise<FaultStack> {
  const [db, smtp, data] = await Promise.all([freshDatabase(), startFaultSmtp(), tempDir(name)]);
  const close = async (svc?: Service) => {
    await killAll([svc]);
    await smtp.close();
    await db.drop();
    await data.remove();
  };
  try {
    const svc = await startService(name, { DATABASE_URL: db.url, SMTP_URL: smtp.url, SEED_DEMO: "true", DATA_DIR: data.path, ...env });
    return { db, smtp, data, svc, close: () => close(svc) };
  } catch (err) {
    await close();
    throw err;
  }
}
