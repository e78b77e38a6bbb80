// The production start (issue 16, issue 12 "starting never builds"): the
// built tree, read-only, run by an unprivileged user with
// `node dist/server/server.mjs`, as the image and the Kubernetes manifests
// run it. It migrates nothing (the migrate step does, as its own process),
// needs no DDL (a role with only deploy/postgres/runtime-grants.sql's
// grants), writes nothing (not even DATA_DIR), spawns nothing, serves a
// whole sign-in with real Postgres and SMTP, and stops cleanly on SIGTERM.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { PEPPER, createTestProject } from "../support/app.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { codeIn, startSmtp, type TestSmtp } from "../support/smtp.js";
import { createPool } from "../../src/storage/db.js";
import {
  childPids,
  createRuntimeRole,
  listeningUrl,
  NOBODY_UID,
  readOnlyBuiltTree,
  runNode,
  runningAsRoot,
  uidOf,
  writableDir,
  type BuiltTree,
} from "./support.js";

let tree: BuiltTree;
let database: TestDatabase;
let smtp: TestSmtp;
let dataDir: Awaited<ReturnType<typeof writableDir>>;
const roles: { drop(): Promise<void> }[] = [];

beforeAll(async () => {
  [tree, database, smtp, dataDir] = await Promise.all([readOnlyBuiltTree(), createTestDatabase(), startSmtp(), writableDir("otp-prod-data-")]);
});
afterAll(async () => {
  await smtp?.close();
  await database?.drop();
  for (const role of roles) await role.drop();
  await tree?.remove();
  await dataDir?.remove();
});

const serviceEnv = (databaseUrl: string, extra: Record<string, string> = {}) => ({
  DATABASE_URL: databaseUrl,
  OTP_PEPPER: PEPPER,
  SMTP_URL: smtp.url,
  PORT: "0",
  DATA_DIR: dataDir.dir,
  MIGRATE_ON_START: "false",
  OUTBOX_POLL_MS: "200",
  ...extra,
});

describe("the migrate step", () => {
  // Each test here has a database of its own, never migrated before it.
  it("refuses to start an instance that may not migrate on a schema older than it needs, saying what to run", async () => {
    const empty = await createTestDatabase();
    try {
      const proc = runNode(tree.dir, "dist/server/server.mjs", serviceEnv(empty.url));
      const { code } = await proc.exit;
      expect(code).toBe(1);
      expect(proc.output()).toMatch(/schema is at version 0 but this build needs version \d+/);
      expect(proc.output()).toContain("npm run migrate");
      expect(proc.output()).not.toMatch(/\n\s+at /); // a message, not a stack trace
    } finally {
      await empty.drop();
    }
  });

  it("applies the migrations and exits, then applies nothing the second time", async () => {
    const database = await createTestDatabase();
    onTestFinished(() => database.drop());
    const first = runNode(tree.dir, "dist/server/migrate.mjs", { DATABASE_URL: database.url });
    expect((await first.exit).code, first.output()).toBe(0);
    const [applied] = first.logs();
    expect(applied!.msg).toBe("migrations applied");
    const files = applied!.applied as string[];
    expect(files.filter((f) => !f.startsWith("functions/")).length).toBe(applied!.schema_version);
    expect(files).toContain("functions/otp_send.sql");

    const second = runNode(tree.dir, "dist/server/migrate.mjs", { DATABASE_URL: database.url });
    expect((await second.exit).code, second.output()).toBe(0);
    expect(second.logs()[0]).toMatchObject({ msg: "schema up to date", applied: [] });
  });

  it("names DATABASE_URL when it is missing", async () => {
    const proc = runNode(tree.dir, "dist/server/migrate.mjs", {});
    expect((await proc.exit).code).toBe(2);
    expect(proc.output()).toContain("DATABASE_URL is required");
  });
});

describe("a production start from a read-only tree, as an unprivileged user, with a runtime role that has no DDL rights", () => {
  // The migrate step has run on this database, as the release process runs it.
  beforeAll(async () => {
    const migrated = runNode(tree.dir, "dist/server/migrate.mjs", { DATABASE_URL: database.url });
    expect((await migrated.exit).code, migrated.output()).toBe(0);
  });

  it("serves a whole sign-in, writes nothing, spawns nothing, and stops on SIGTERM", async () => {
    const before = await tree.snapshot();
    const runtime = await createRuntimeRole(database.url);
    roles.push(runtime);

    // The runtime role really cannot change the schema.
    const probe = new pg.Client({ connectionString: runtime.url });
    await probe.connect();
    await expect(probe.query("CREATE TABLE should_fail (id int)")).rejects.toThrow(/permission denied/);
    await expect(probe.query("ALTER TABLE outbox ADD COLUMN should_fail int")).rejects.toThrow(/must be owner/);
    await probe.end();

    const owner = createPool(database.url, 2);
    const project = await createTestProject(owner);
    await owner.end();

    const proc = runNode(tree.dir, "dist/server/server.mjs", serviceEnv(runtime.url));
    try {
      const url = await listeningUrl(proc);
      if (runningAsRoot) expect(await uidOf(proc.pid)).toBe(NOBODY_UID);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);

      const email = `prod-${Date.now()}@example.com`;
      const headers = { "content-type": "application/json", authorization: project.authorization };
      const sent = await fetch(`${url}/v1/otps/email/login_or_create`, { method: "POST", headers, body: JSON.stringify({ email }) });
      expect(sent.status, await sent.clone().text()).toBe(200);
      const { email_id } = (await sent.json()) as { email_id: string };
      const [mail] = await smtp.waitFor(smtp.mails.length + 1).then((m) => m.filter((x) => x.to === email));
      const auth = await fetch(`${url}/v1/otps/authenticate`, {
        method: "POST",
        headers,
        body: JSON.stringify({ method_id: email_id, code: codeIn(mail!), session_duration_minutes: 5 }),
      });
      expect(auth.status, await auth.clone().text()).toBe(200);
      expect(((await auth.json()) as { session_jwt: string }).session_jwt).toMatch(/^ey/);

      // The page is served from the build, not rebuilt.
      const page = await fetch(`${url}/signin`);
      expect(page.status).toBe(200);
      // Nothing but JSON log lines (the old start-up build printed its own).
      expect(proc.output().split("\n").filter(Boolean).filter((l) => !l.startsWith("{"))).toEqual([]);

      expect(await childPids(proc.pid)).toEqual([]);
      expect(await dataDir.list()).toEqual([]);
      expect(await tree.snapshot()).toEqual(before);
    } finally {
      proc.child.kill("SIGTERM");
    }
    const exit = await proc.exit;
    expect(exit.code, proc.output()).toBe(0);
    expect(proc.output()).not.toMatch(/EACCES|EROFS|esbuild/);
  });
});
