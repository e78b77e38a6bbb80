// A fresh database per test file, on the run's Postgres server, so files can
// run in parallel without seeing each other's rows or rate limits.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";
import { createPool, type Db } from "../../src/storage/db.js";
import { migrate } from "../../src/storage/migrate.js";

export interface TestDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const serverUrl = inject("serverUrl");
  const name = `otp_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** A fresh database with the migrations applied and a pool on it; drop() ends the pool first. */
export async function createMigratedDatabase(poolSize: number): Promise<TestDatabase & { readonly db: Db }> {
  const database = await createTestDatabase();
  const db = createPool(database.url, poolSize);
  await migrate(db);
  return {
    url: database.url,
    db,
    async drop() {
      await db.end();
      await database.drop();
    },
  };
}
