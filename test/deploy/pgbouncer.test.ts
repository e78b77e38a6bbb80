// The service through PgBouncer in transaction pooling mode (Debian's
// pgbouncer 1.18, which does not carry named prepared statements across
// server connections), with no setting changed on either side: migrations
// at start, whole sign-ins in parallel, and the outbox's delivery.
import pg from "pg";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { build, type App } from "../../src/server.js";
import { migrate } from "../../src/storage/migrate.js";
import { PEPPER, createTestProject, type TestProject } from "../support/app.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { codeIn, startSmtp, type TestSmtp } from "../support/smtp.js";
import { pgbouncerBinary, startPgBouncer, type PgBouncer } from "./pgbouncer-process.js";

const binary = pgbouncerBinary();
if (!binary) console.warn("pgbouncer.test.ts skipped: no pgbouncer binary (apt-get install pgbouncer; .ci/run installs it)");

describe.skipIf(!binary)("through PgBouncer, transaction pooling", () => {
  let database: TestDatabase;
  let bouncer: PgBouncer;
  let smtp: TestSmtp;
  let app: App;
  let url: string;
  let project: TestProject;

  beforeAll(async () => {
    [database, smtp] = await Promise.all([createTestDatabase(), startSmtp()]);
    // Two server connections for a pool of ten clients: consecutive
    // statements of one client run on different server connections.
    bouncer = await startPgBouncer(inject("serverUrl"), { poolSize: 2, binary });
    const config = loadConfig({
      DATABASE_URL: bouncer.through(database.url),
      OTP_PEPPER: PEPPER,
      SMTP_URL: smtp.url,
      PORT: "0",
      DB_POOL_SIZE: "10",
      OUTBOX_POLL_MS: "200",
      RATE_LIMIT_EMAIL_BURST: "100",
      // Twelve sign-ins at once on a pool of ten: a loop made late by the
      // other test files would hold two of them back (SEND_MAX_LOOP_DELAY_MS).
      SEND_MAX_LOOP_DELAY_MS: "0",
    });
    app = await build(config, { logger: pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }) });
    url = await app.listen();
    project = await createTestProject(app.db);
  });
  afterAll(async () => {
    await app?.close();
    await bouncer?.stop();
    await smtp?.close();
    await database?.drop();
  });

  it("is the hostile setup: a named prepared statement breaks through it", async () => {
    const single = await startPgBouncer(inject("serverUrl"), { poolSize: 1, binary });
    const clients = [0, 1].map(() => new pg.Client({ connectionString: single.through(database.url) }));
    try {
      for (const c of clients) await c.connect();
      const named = { name: "probe", text: "SELECT $1::int AS n", values: [1] };
      await clients[0]!.query(named);
      await expect(clients[1]!.query(named)).rejects.toThrow(/prepared statement "probe" already exists/);
    } finally {
      for (const c of clients) await c.end().catch(() => {});
      await single.stop();
    }
  });

  it("migrates through it, and again with nothing to do", async () => {
    expect((await app.db.query("SELECT count(*)::int AS n FROM schema_migrations")).rows[0].n).toBeGreaterThan(0);
    const again = await migrate(app.db);
    expect(again.applied).toEqual([]);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
  });

  it("serves whole sign-ins in parallel: send, mail delivered by the outbox, authenticate, session", async () => {
    const headers = { "content-type": "application/json", authorization: project.authorization };
    const post = (path: string, body: unknown) => fetch(`${url}${path}`, { method: "POST", headers, body: JSON.stringify(body) });
    const signIn = async (i: number) => {
      const email = `bouncer-${i}-${Date.now()}@example.com`;
      const sent = await post("/v1/otps/email/login_or_create", { email });
      expect(sent.status, await sent.clone().text()).toBe(200);
      const { email_id, user_id } = (await sent.json()) as { email_id: string; user_id: string };
      const deadline = Date.now() + 15_000;
      let mail = smtp.mails.find((m) => m.to === email);
      while (!mail && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 25));
        mail = smtp.mails.find((m) => m.to === email);
      }
      expect(mail, `no mail to ${email}`).toBeDefined();
      const auth = await post("/v1/otps/authenticate", { method_id: email_id, code: codeIn(mail!), session_duration_minutes: 30 });
      expect(auth.status, await auth.clone().text()).toBe(200);
      const { session_token } = (await auth.json()) as { session_token: string };
      const session = await post("/v1/sessions/authenticate", { session_token });
      expect(session.status, await session.clone().text()).toBe(200);
      expect(((await session.json()) as { user: { user_id: string } }).user.user_id).toBe(user_id);
    };
    await Promise.all(Array.from({ length: 12 }, (_, i) => signIn(i)));

    const { rows } = await app.db.query<{ status: string; n: number }>("SELECT status, count(*)::int AS n FROM outbox GROUP BY status");
    expect(rows).toEqual([{ status: "sent", n: 12 }]);
  });
});
