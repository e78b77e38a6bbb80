// Applies migrations/ (docs/adr/0003-migrations-and-function-files.md): at
// start-up, or as a separate step (`npm run migrate`, dist/server/migrate.mjs)
// when instances run without DDL rights (MIGRATE_ON_START=false), in which
// case they only check the schema's version.
// - migrations/NNN_name.sql: numbered, forward-only, each applied once
//   (recorded in schema_migrations; the highest number is the schema version).
// - migrations/functions/name.sql: one file per SQL function, the only place
//   its code lives, re-applied whenever the file's SHA-256 differs from the
//   one recorded in schema_functions; applied after the numbered files.
// Everything pending runs in one transaction under a transaction-level
// advisory lock (which also holds through PgBouncer's transaction pooling),
// so several instances may start at once and exactly one applies it.
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { type Db, withTransaction } from "./db.js";

const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations/", import.meta.url));
const FUNCTIONS_DIR = `${MIGRATIONS_DIR}functions/`;
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

interface FunctionFile {
  /** The file name, e.g. otp_send.sql. */
  readonly name: string;
  readonly sql: string;
  readonly sha256: string;
}

async function loadFunctions(dir = FUNCTIONS_DIR): Promise<FunctionFile[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".sql")).sort();
  return Promise.all(
    files.map(async (name) => {
      const sql = await readFile(dir + name, "utf8");
      return { name, sql, sha256: createHash("sha256").update(sql).digest("hex") };
    }),
  );
}

/**
 * Applies what is pending; returns the files applied by this call (function
 * files as functions/NAME) and how many numbered migrations exist.
 */
export async function migrate(db: Db): Promise<{ applied: string[]; total: number }> {
  const [migrations, functions] = await Promise.all([loadMigrations(), loadFunctions()]);
  return withTransaction(db, async (client) => {
    await client.query("SELECT pg_advisory_xact_lock($1)", [LOCK_ID]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         version    integer PRIMARY KEY,
         name       text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now()
       );
       CREATE TABLE IF NOT EXISTS schema_functions (
         name       text PRIMARY KEY,
         sha256     text NOT NULL,
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
    const recorded = await functionHashes(client);
    for (const f of functions) {
      if (recorded.get(f.name) === f.sha256) continue;
      await client.query(f.sql);
      await client.query(
        `INSERT INTO schema_functions (name, sha256) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET sha256 = excluded.sha256, applied_at = now()`,
        [f.name, f.sha256],
      );
      applied.push(`functions/${f.name}`);
    }
    return { applied, total: migrations.length };
  });
}

async function functionHashes(db: Pick<Db, "query">): Promise<Map<string, string>> {
  const exists = await db.query<{ t: string | null }>("SELECT to_regclass('schema_functions') AS t");
  if (exists.rows[0]?.t == null) return new Map();
  const { rows } = await db.query<{ name: string; sha256: string }>("SELECT name, sha256 FROM schema_functions");
  return new Map(rows.map((r) => [r.name, r.sha256]));
}

/** This build's function files the database lacks, and those it holds in another version. */
async function functionDrift(db: Db): Promise<{ missing: string[]; differing: string[] }> {
  const [functions, recorded] = await Promise.all([loadFunctions(), functionHashes(db)]);
  return {
    missing: functions.filter((f) => !recorded.has(f.name)).map((f) => f.name),
    differing: functions.filter((f) => recorded.has(f.name) && recorded.get(f.name) !== f.sha256).map((f) => f.name),
  };
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

const RUN_MIGRATE =
  "MIGRATE_ON_START=false, so run the migrate step first (`npm run migrate`, or `node dist/server/migrate.mjs` in the image) with a role that may change the schema";

/**
 * For instances that do not migrate: refuses a schema older than this build
 * needs, or one lacking a function this build calls. A newer schema is fine
 * (a rolling deploy migrates before the new instances start, while old ones
 * still serve); so is a function in another version, since the database
 * cannot tell an older one from a newer one: `differing` names them for the log.
 */
export async function checkSchemaVersion(db: Db): Promise<{ current: number; required: number; differing: string[] }> {
  const [current, required] = await Promise.all([schemaVersion(db), requiredSchemaVersion()]);
  if (current < required) {
    throw new SchemaTooOldError(`the database schema is at version ${current} but this build needs version ${required}; ${RUN_MIGRATE}`);
  }
  const { missing, differing } = await functionDrift(db);
  if (missing.length > 0) {
    throw new SchemaTooOldError(`the database lacks the function files ${missing.join(", ")} of migrations/functions/; ${RUN_MIGRATE}`);
  }
  return { current, required, differing };
}
