// The service as a developer runs it, minus the embedded Postgres: no SMTP
// server (mail goes to the dev mailbox), the demo tenants seeded and their
// credentials in a temporary DATA_DIR, on a fresh test database. On a real
// database the dev mailbox needs UNSAFE_DEV_MAILBOX (see docs/security.md).
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { loadConfig } from "../../src/config.js";
import { build, type App } from "../../src/server.js";
import { PEPPER } from "./app.js";
import { createTestDatabase } from "./database.js";

export const DEV_ADMIN_TOKEN = "dev-service-admin-token-0123456789";

export interface DevService {
  readonly app: App;
  readonly url: string;
  readonly dataDir: string;
  close(): Promise<void>;
}

export async function startDevService(env: Record<string, string> = {}): Promise<DevService> {
  const database = await createTestDatabase();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "otp-dev-service-"));
  const config = loadConfig({
    DATABASE_URL: database.url,
    OTP_PEPPER: PEPPER,
    UNSAFE_DEV_MAILBOX: "true",
    SEED_DEMO: "true",
    ADMIN_TOKEN: DEV_ADMIN_TOKEN,
    PORT: "0",
    DATA_DIR: dataDir,
    DB_POOL_SIZE: "5",
    OUTBOX_POLL_MS: "200",
    // Test files share the CPUs: their event loops run late for reasons of their own.
    SEND_MAX_LOOP_DELAY_MS: "0",
    ...env,
  });
  const app = await build(config, { logger: pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }) });
  const url = await app.listen();
  return {
    app,
    url,
    dataDir,
    async close() {
      await app.close();
      await database.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
