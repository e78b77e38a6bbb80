// Applies the numbered, forward-only SQL files in migrations/ at start-up.
// All pending files run in one transaction under an advisory lock, so several
// instances may start at once and exactly one applies them.
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
