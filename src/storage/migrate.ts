// Applies the numbered, forward-only SQL files in migrations/: at start-up,
// or as a separate step (`npm run migrate`, dist/server/migrate.mjs) when
// instances run without DDL rights (MIGRATE_ON_START=false), in which case
// they only check the schema's version. All pending files run in one
// transaction under a transaction-level advisory lock (which also holds
// through PgBouncer's transaction pooling), so several instances may start at
// once and exactly one applies them.
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { Db } from "./db.js";

const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations/", import.meta.url));
// Any constant works; it only has to be the same for every instance.
const LOCK_ID = 7_400_113_001;

interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d+_.+\.sql$/.test(f)).sort();
  const migrations = await Promise.all(
    files.map(async (name) => ({ version: Number.parseInt(name, 10), name, sql: await readFile(dir + name, "utf8") })),
  );
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${m.name} is out of sequence: expected number ${i + 1}`);
  });
  return migrations;
}

/** Applies what is pending; returns the names applied by this call and how many exist. */
export async function migrate(db: Db): Promise<{ applied: string[]; total: number }> {
  const migrations = await loadMigrations();
  const client = await db.connect();
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock($1)", [LOCK_ID]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         version    integer PRIMARY KEY,
         name       text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    const { rows } = await client.query<{ version: number }>("SELECT version FROM schema_migrations");
    const done = new Set(rows.map((r) => r.version));
    const applied: string[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await client.query(m.sql);
      await client.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [m.version, m.name]);
      applied.push(m.name);
    }
    await client.query("COMMIT");
    return { applied, total: migrations.length };
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/** True when the database has recorded at least `expected` migrations. */
export async function isMigrated(db: Db, expected: number): Promise<boolean> {
  const { rows } = await db.query<{ n: string }>("SELECT count(*) AS n FROM schema_migrations");
  return Number(rows[0]?.n) >= expected;
}

/** How many migrations this build has: the schema version it needs. */
export async function requiredSchemaVersion(): Promise<number> {
  return (await loadMigrations()).length;
}

/** The highest migration the database has recorded; 0 when none ran yet. */
export async function schemaVersion(db: Db): Promise<number> {
  const exists = await db.query<{ t: string | null }>("SELECT to_regclass('schema_migrations') AS t");
  if (exists.rows[0]?.t == null) return 0;
  const { rows } = await db.query<{ v: number | null }>("SELECT max(version) AS v FROM schema_migrations");
  return Number(rows[0]?.v ?? 0);
}

/** The database's schema is older than this build needs (and this instance may not migrate). */
export class SchemaTooOldError extends Error {
  override name = "SchemaTooOldError";
}

/**
 * For instances that do not migrate: refuses a schema older than this build
 * needs. A newer one is fine (a rolling deploy migrates before the new
 * instances start, while old ones still serve).
 */
export async function checkSchemaVersion(db: Db): Promise<{ current: number; required: number }> {
  const [current, required] = await Promise.all([schemaVersion(db), requiredSchemaVersion()]);
  if (current < required) {
    throw new SchemaTooOldError(
      `the database schema is at version ${current} but this build needs version ${required}; ` +
        "MIGRATE_ON_START=false, so run the migrate step first (`npm run migrate`, or `node dist/server/migrate.mjs` in the image) with a role that may change the schema",
    );
  }
  return { current, required };
}
