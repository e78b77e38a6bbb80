// The migration layout: numbered files once each, function files whenever
// their content changes, and the check an instance that may not migrate makes.
import { readdirSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Db } from "../../src/storage/db.js";
import { checkSchemaVersion, migrate, SchemaTooOldError } from "../../src/storage/migrate.js";
import { createMigratedDatabase, type TestDatabase } from "../support/database.js";

/** How many numbered migrations the repository has. */
const NUMBERED = readdirSync(new URL("../../migrations", import.meta.url)).filter((f) => /^\d+_.+\.sql$/.test(f)).length;

let database: TestDatabase;
let db: Db;

beforeAll(async () => {
  const migrated = await createMigratedDatabase(2);
  database = migrated;
  db = migrated.db;
});
afterAll(async () => {
  await database?.drop();
});

describe("migrate", () => {
  it("applies nothing a second time", async () => {
    expect(await migrate(db)).toEqual({ applied: [], total: NUMBERED });
    const { rows } = await db.query("SELECT name FROM schema_functions ORDER BY name");
    expect(rows.map((r) => r.name)).toEqual(["otp_send.sql"]);
  });

  it("re-applies a function file whose recorded hash differs, and only that file", async () => {
    await db.query("UPDATE schema_functions SET sha256 = 'an older version' WHERE name = 'otp_send.sql'");
    await db.query("DROP FUNCTION otp_send");
    expect((await migrate(db)).applied).toEqual(["functions/otp_send.sql"]);
    const { rows } = await db.query("SELECT count(*)::int AS n FROM pg_proc WHERE proname = 'otp_send'");
    expect(rows[0].n).toBe(1);
    expect((await migrate(db)).applied).toEqual([]);
  });

  it("leaves no dead column behind: the outbox has no claimed_until", async () => {
    const { rows } = await db.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'outbox'");
    expect(rows.map((r) => r.column_name)).not.toContain("claimed_until");
  });
});

describe("the schema check of an instance that may not migrate", () => {
  it("passes on a current schema, and names a function in another version without refusing", async () => {
    expect(await checkSchemaVersion(db)).toEqual({ current: NUMBERED, required: NUMBERED, differing: [] });
    await db.query("UPDATE schema_functions SET sha256 = 'another version' WHERE name = 'otp_send.sql'");
    expect((await checkSchemaVersion(db)).differing).toEqual(["otp_send.sql"]);
    await migrate(db);
  });

  it("refuses a database that lacks a function file", async () => {
    await db.query("DELETE FROM schema_functions WHERE name = 'otp_send.sql'");
    await expect(checkSchemaVersion(db)).rejects.toThrow(SchemaTooOldError);
    await expect(checkSchemaVersion(db)).rejects.toThrow(/otp_send\.sql.*npm run migrate/);
    await migrate(db);
    expect((await checkSchemaVersion(db)).differing).toEqual([]);
  });
});
