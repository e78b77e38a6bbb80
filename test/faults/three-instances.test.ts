// Three service processes on one database, started together on an empty
// one (so they race to migrate it), behind no load balancer but the test
// spreading calls round-robin. The promises:
// - rate limits are rows, so 200 concurrent sends to ONE address across the
//   three accept exactly the burst (RATE_LIMIT_EMAIL_BURST, 3): 3 × 200 and
//   197 × 429, and exactly 3 mails go out;
// - with many distinct addresses the outbox is drained by all three (each
//   instance has its own SMTP port here, so the test sees who delivered),
//   and no Message-ID is delivered twice.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, countBy, killAll, postJson, sleep, startService, waitFor, type Service } from "./support/service.js";
import { startFaultSmtp, type FaultSmtp } from "./support/smtp.js";
import { FAULTS_ENABLED, freshDatabase, RUN, tempDir, type FaultDatabase } from "./support/suite.js";

const ADMIN_TOKEN = "faults-admin-token-0123456789";
const BURST = 3;
const ONE_EMAIL_SENDS = 200;
const DISTINCT = 300;

describe.runIf(FAULTS_ENABLED)("three service processes on one database", () => {
  let db: FaultDatabase;
  let smtp: FaultSmtp;
  const dirs: Awaited<ReturnType<typeof tempDir>>[] = [];
  let services: Service[] = [];
  let auth: { authorization: string };
  let projectId: string;

  beforeAll(async () => {
    [db, smtp] = await Promise.all([freshDatabase(), startFaultSmtp({ ports: [0, 0, 0] })]);
    for (let i = 0; i < 3; i++) dirs.push(await tempDir(`three-${i}`));
    services = await Promise.all(
      [0, 1, 2].map((i) =>
        startService(`three-${i}`, {
          DATABASE_URL: db.url,
          SMTP_URL: smtp.urlFor(i),
          DATA_DIR: dirs[i]!.path,
          SEED_DEMO: "false",
          ADMIN_TOKEN,
          OUTBOX_POLL_MS: "200",
          DB_POOL_SIZE: "10",
        }),
      ),
    );
    const created = await postJson(services[0]!.url, "/admin/v1/projects", { name: "Three" }, { authorization: `Bearer ${ADMIN_TOKEN}` });
    expect(created.status, created.text).toBe(200);
    const { project, secret } = created.json<{ project: { project_id: string }; secret: string }>();
    projectId = project.project_id;
    auth = { authorization: `Basic ${Buffer.from(`${project.project_id}:${secret}`).toString("base64")}` };
  });

  afterAll(async () => {
    await killAll(services);
    await smtp?.close();
    await db?.drop();
    for (const d of dirs) await d.remove();
  });

  it("started all three on an empty database at once, and a new tenant gets one signing key however many instances ask", async () => {
    for (const s of services) expect((await call(`${s.url}/readyz`)).status).toBe(200);
    // Each instance creates the tenant's first key on demand: asked at once,
    // they must agree on one.
    const sets = await Promise.all(services.map((s) => call(`${s.url}/v1/sessions/jwks/${projectId}`)));
    const kids = sets.map((a) => {
      expect(a.status, a.text).toBe(200);
      return a.json<{ keys: { kid: string }[] }>().keys.map((k) => k.kid);
    });
    expect(new Set(kids.flat()).size).toBe(1);
    const { rows } = await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM signing_keys WHERE retired_at IS NULL");
    expect(Number(rows[0]!.n)).toBe(1);
  });

  it(`accepts exactly ${BURST} of ${ONE_EMAIL_SENDS} concurrent sends to one address spread over the three`, async () => {
    const email = `one-${RUN}@example.com`;
    const answers = await Promise.all(
      Array.from({ length: ONE_EMAIL_SENDS }, (_, i) =>
        postJson(services[i % 3]!.url, "/v1/otps/email/login_or_create", { email, expiration_minutes: 10 }, auth, 30_000),
      ),
    );
    const byStatus = countBy(answers, (a) => a.status);
    const acceptedBy = countBy(
      answers.map((a, i) => ({ a, i })).filter(({ a }) => a.status === 200),
      ({ i }) => `instance ${i % 3}`,
    );
    await sleep(2_000);
    await waitFor("the accepted sends' mails", () => (smtp.acceptedTo(email).length >= BURST ? true : undefined), 15_000);
    await sleep(1_500);
    console.log(
      `[three-instances] ${ONE_EMAIL_SENDS} concurrent sends to one address: ${JSON.stringify(byStatus)}; accepted by ${JSON.stringify(acceptedBy)}; ` +
        `mails to it ${smtp.acceptedTo(email).length}; slowest answer ${Math.max(...answers.map((a) => a.ms)).toFixed(0)} ms`,
    );
    expect(byStatus).toEqual({ 200: BURST, 429: ONE_EMAIL_SENDS - BURST });
    for (const a of answers.filter((x) => x.status === 429)) expect(a.json()).toMatchObject({ error_type: "too_many_requests" });
    expect(smtp.acceptedTo(email)).toHaveLength(BURST);
  });

  it(`drains ${DISTINCT} distinct sends with all three instances and delivers no Message-ID twice`, async () => {
    const emails = Array.from({ length: DISTINCT }, (_, i) => `many-${i}-${RUN}@example.com`);
    const started = Date.now();
    const statuses: number[] = [];
    for (let i = 0; i < emails.length; i += 30) {
      const batch = await Promise.all(
        emails.slice(i, i + 30).map((email, j) => postJson(services[(i + j) % 3]!.url, "/v1/otps/email/login_or_create", { email, expiration_minutes: 10 }, auth, 30_000)),
      );
      statuses.push(...batch.map((a) => a.status));
    }
    expect(countBy(statuses, (s) => s)).toEqual({ 200: DISTINCT });
    await waitFor("every distinct send to be delivered", () => (emails.every((e) => smtp.acceptedTo(e).length > 0) ? true : undefined), 90_000, 200);
    const drainedMs = Date.now() - started;
    await sleep(2_000);
    const mails = smtp.accepted.filter((m) => m.to.startsWith("many-"));
    const perPort = countBy(mails, (m) => `instance ${smtp.ports.indexOf(m.port)}`);
    const { rows } = await db.pool.query<{ status: string; n: string }>(
      "SELECT status, count(*) AS n FROM outbox WHERE recipient LIKE 'many-%' GROUP BY status",
    );
    console.log(
      `[three-instances] ${DISTINCT} distinct sends: delivered ${new Set(mails.map((m) => m.to)).size} in ${(drainedMs / 1000).toFixed(1)} s, ` +
        `${mails.length} mails, by ${JSON.stringify(perPort)}, duplicate Message-IDs ${smtp.duplicates().size}, outbox ${JSON.stringify(rows)}`,
    );
    expect(smtp.duplicates().size).toBe(0);
    expect(mails).toHaveLength(DISTINCT);
    for (const i of [0, 1, 2]) expect(perPort[`instance ${i}`] ?? 0, `instance ${i} delivered some`).toBeGreaterThan(0);
    expect(rows).toEqual([{ status: "sent", n: String(DISTINCT) }]);
  });
});
