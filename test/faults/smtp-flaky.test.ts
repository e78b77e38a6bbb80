// The SMTP server answers 4xx to some recipients (twice, then accepts) and 5xx
// to others, while a service process delivers a mixed batch:
// - 4xx: retried, delivered exactly once, with attempts > 1;
// - 5xx: 'failed' after exactly one attempt, and never tried again;
// - the good recipients are delivered promptly, whatever the bad ones do.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, demoCredentials, killAll, postJson, sleep, startService, waitFor, type Service } from "./support/service.js";
import { startFaultSmtp, type FaultSmtp } from "./support/smtp.js";
import { FAULTS_ENABLED, freshDatabase, RUN, tempDir, type FaultDatabase } from "./support/suite.js";

const TEMP_FAILURES = 2;

describe.runIf(FAULTS_ENABLED)("SMTP answering 4xx to some recipients and 5xx to others", () => {
  let db: FaultDatabase;
  let smtp: FaultSmtp;
  let data: Awaited<ReturnType<typeof tempDir>>;
  let svc: Service | undefined;
  const temp = Array.from({ length: 5 }, (_, i) => `temp-${i}-${RUN}@example.com`);
  const perm = Array.from({ length: 5 }, (_, i) => `perm-${i}-${RUN}@example.com`);
  const good = Array.from({ length: 20 }, (_, i) => `good-${i}-${RUN}@example.com`);
  const acceptedAt = new Map<string, number>();
  type Row = { recipient: string; status: string; attempts: number; last_error: string | null };
  let rows: Map<string, Row>;

  beforeAll(async () => {
    db = await freshDatabase();
    smtp = await startFaultSmtp();
    data = await tempDir("flaky");
    smtp.reject = ({ to, attempt }) => {
      if (to.startsWith("temp-")) return attempt <= TEMP_FAILURES ? 451 : undefined;
      if (to.startsWith("perm-")) return 550;
      return undefined;
    };
    svc = await startService("flaky", {
      DATABASE_URL: db.url,
      SMTP_URL: smtp.url,
      SEED_DEMO: "true",
      DATA_DIR: data.path,
      OUTBOX_POLL_MS: "200",
    });
    const { basic } = demoCredentials(data.path);
    // The bad recipients first, so they are claimed before and beside the good ones.
    const order = [...perm, ...temp, ...good];
    for (const email of order) {
      const a = await postJson(svc.url, "/v1/otps/email/login_or_create", { email, expiration_minutes: 10 }, { authorization: basic });
      expect(a.status, `${email}: ${a.text}`).toBe(200);
      acceptedAt.set(email, Date.now());
    }
    const all = [...temp, ...perm, ...good];
    rows = await waitFor(
      "every row to be finished",
      async () => {
        const { rows: r } = await db.pool.query<Row>(
          "SELECT recipient, status, attempts, last_error FROM outbox WHERE recipient = ANY($1)",
          [all],
        );
        return r.length === all.length && r.every((x) => x.status !== "pending" && x.status !== "sending")
          ? new Map(r.map((x) => [x.recipient, x]))
          : undefined;
      },
      30_000,
    );
    // Room for a retry storm to show itself, had there been one.
    await sleep(3_000);
    const { rows: again } = await db.pool.query<Row>("SELECT recipient, status, attempts, last_error FROM outbox WHERE recipient = ANY($1)", [all]);
    rows = new Map(again.map((x) => [x.recipient, x]));
  });

  afterAll(async () => {
    await killAll([svc]);
    await smtp?.close();
    await db?.drop();
    await data?.remove();
  });

  it("delivers each 4xx recipient exactly once, after retries (attempts > 1)", () => {
    const report = temp.map((t) => ({ to: t, delivered: smtp.acceptedTo(t).length, attempts: rows.get(t)?.attempts, status: rows.get(t)?.status }));
    console.log("[smtp-flaky] 4xx recipients:", JSON.stringify(report));
    for (const t of temp) {
      expect(smtp.acceptedTo(t), t).toHaveLength(1);
      const row = rows.get(t)!;
      expect(row.status).toBe("sent");
      expect(row.attempts).toBe(TEMP_FAILURES + 1);
      expect(row.last_error).toMatch(/451/);
    }
  });

  it("marks each 5xx recipient failed after exactly one attempt, with no retry", () => {
    const seen = perm.map((p) => smtp.attempts.filter((a) => a.to === p).length);
    console.log("[smtp-flaky] 5xx recipients: DATA attempts seen by the server per recipient:", seen.join(","));
    for (const p of perm) {
      const row = rows.get(p)!;
      expect(row.status, p).toBe("failed");
      expect(row.attempts).toBe(1);
      expect(row.last_error).toMatch(/550/);
      expect(smtp.attempts.filter((a) => a.to === p)).toHaveLength(1);
      expect(smtp.acceptedTo(p)).toHaveLength(0);
    }
  });

  it("delivers every good recipient once and promptly, whatever the bad ones do", () => {
    const latencies = good.map((g) => {
      const mails = smtp.acceptedTo(g);
      expect(mails, g).toHaveLength(1);
      expect(rows.get(g)!.attempts).toBe(1);
      return mails[0]!.at - acceptedAt.get(g)!;
    });
    console.log(`[smtp-flaky] good recipients: ${good.length} delivered, latency from 200 to SMTP acceptance (ms): ${latencies.join(",")}`);
    expect(Math.max(...latencies)).toBeLessThan(2_000);
    expect(smtp.duplicates().size).toBe(0);
  });

  it("stays healthy", async () => {
    expect((await call(`${svc!.url}/healthz`)).status).toBe(200);
  });
});

// A recipient the SMTP server is slow to accept (8 s before it answers DATA,
// as a content scanner or tarpit would be) must not hold the others up.
describe.runIf(FAULTS_ENABLED)("a recipient the SMTP server takes 8 s to accept", () => {
  const SLOW_MS = 8_000;
  let db: FaultDatabase;
  let smtp: FaultSmtp;
  let data: Awaited<ReturnType<typeof tempDir>>;
  let svc: Service | undefined;
  const slow = `slow-${RUN}@example.com`;
  const good = Array.from({ length: 8 }, (_, i) => `after-slow-${i}-${RUN}@example.com`);
  const latencies: number[] = [];

  beforeAll(async () => {
    [db, smtp, data] = await Promise.all([freshDatabase(), startFaultSmtp(), tempDir("slow-rcpt")]);
    smtp.delay = ({ to }) => (to === slow ? SLOW_MS : 0);
    svc = await startService("slow-recipient", { DATABASE_URL: db.url, SMTP_URL: smtp.url, SEED_DEMO: "true", DATA_DIR: data.path, OUTBOX_POLL_MS: "200" });
    const { basic } = demoCredentials(data.path);
    expect((await postJson(svc.url, "/v1/otps/email/login_or_create", { email: slow, expiration_minutes: 10 }, { authorization: basic })).status).toBe(200);
    await waitFor("the slow mail to be in DATA", () => (smtp.inProgress() > 0 ? true : undefined), 10_000, 20);
    const acceptedAt = new Map<string, number>();
    for (const email of good) {
      expect((await postJson(svc.url, "/v1/otps/email/login_or_create", { email, expiration_minutes: 10 }, { authorization: basic })).status).toBe(200);
      acceptedAt.set(email, Date.now());
    }
    await waitFor("the other mails", () => (good.every((g) => smtp.acceptedTo(g).length > 0) ? true : undefined), SLOW_MS + 10_000, 20);
    for (const g of good) latencies.push(smtp.acceptedTo(g)[0]!.at - acceptedAt.get(g)!);
  });

  afterAll(async () => {
    await killAll([svc]);
    await smtp?.close();
    await db?.drop();
    await data?.remove();
  });

  // The worker keeps OUTBOX_CONCURRENCY deliveries going and claims as slots
  // free, so one slow SMTP transaction holds up no other delivery.
  it("delivers the others promptly while the slow one is still in DATA", () => {
    console.log(`[smtp-flaky] with one recipient taking ${SLOW_MS / 1000} s: latency of the ${good.length} others (ms) ${latencies.join(",")}`);
    expect(Math.max(...latencies)).toBeLessThan(2_000);
  });
});
