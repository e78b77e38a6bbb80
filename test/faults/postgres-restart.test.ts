// Postgres stops in the middle of a steady load of sends and comes back
// (a new embedded Postgres on the same data directory and port). The
// service process is never restarted. The promises:
// - during the outage every send answers a clear 503 in its route's shape
//   (Stytch error_type service_unavailable, the legacy envelope with Status
//   503, Connect code "unavailable"), each within a few seconds: never a hang,
//   never a 500;
// - /readyz is 503 during the outage and 200 after it;
// - after the restart the service recovers on its own and sends succeed,
//   and every send it accepted, before or after, is mailed.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, startEmbeddedPostgres, type EmbeddedDatabase } from "../../src/storage/embedded.js";
import { call, demoCredentials, killAll, sleep, startService, waitFor, type Answer, type Service } from "./support/service.js";
import { startFaultSmtp, type FaultSmtp } from "./support/smtp.js";
import { FAULTS_ENABLED, RUN, tempDir } from "./support/suite.js";

const OUTAGE_MS = 10_000;
/** "Within a few seconds": the pool's connect timeout is 3 s. */
const MAX_ANSWER_MS = 5_000;

type Kind = "stytch" | "stytch-uncached" | "legacy" | "connect-legacy" | "connect-stytch" | "readyz";
const KINDS: readonly Kind[] = ["stytch", "stytch-uncached", "legacy", "connect-legacy", "connect-stytch", "readyz"];

interface Sample {
  readonly kind: Kind;
  readonly start: number;
  readonly end: number;
  readonly email: string;
  readonly answer: Answer;
}

describe.runIf(FAULTS_ENABLED)("Postgres stopped mid-load and started again", () => {
  let pgDir: string;
  let pg: EmbeddedDatabase | undefined;
  let pgPort: number;
  let smtp: FaultSmtp;
  let data: Awaited<ReturnType<typeof tempDir>>;
  let svc: Service | undefined;
  const samples: Sample[] = [];
  const t = { stopping: 0, stopped: 0, starting: 0, started: 0, recovered: 0, end: 0 };
  const logger = pino({ level: "silent" });

  beforeAll(async () => {
    pgDir = await mkdtemp(path.join(os.tmpdir(), "otp-faults-pg-"));
    pgPort = await freePort();
    pg = await startEmbeddedPostgres(pgDir, pgPort, logger);
    smtp = await startFaultSmtp();
    data = await tempDir("pg-restart");
    svc = await startService("pg-restart", {
      DATABASE_URL: pg.url,
      SMTP_URL: smtp.url,
      SEED_DEMO: "true",
      DATA_DIR: data.path,
      OUTBOX_POLL_MS: "200",
      RATE_LIMIT_IP_BURST: "100000",
      // The wrong-secret stream measures the outage, not the failed-auth
      // throttle (test/integration covers that): give it room.
      AUTH_FAILURE_LIMIT_CLIENT_BURST: "100000",
      AUTH_FAILURE_LIMIT_PROJECT_BURST: "100000",
      AUTH_MAX_QUEUED_HASHES: "10000",
    });
    const creds = demoCredentials(data.path);
    const wrong = () => `Basic ${Buffer.from(`${creds.project_id}:wrong-${Math.random()}`).toString("base64")}`;
    let n = 0;
    const fire = (kind: Kind): Promise<void> => {
      n += 1;
      const email = `pg-${kind}-${n}-${RUN}@example.com`;
      const json = { "content-type": "application/json" };
      const start = Date.now();
      const base = svc!.url;
      const request = {
        stytch: () => call(`${base}/v1/otps/email/login_or_create`, { method: "POST", headers: { ...json, authorization: creds.basic }, body: JSON.stringify({ email, expiration_minutes: 10 }) }),
        "stytch-uncached": () => call(`${base}/v1/otps/email/login_or_create`, { method: "POST", headers: { ...json, authorization: wrong() }, body: JSON.stringify({ email }) }),
        legacy: () => call(`${base}/api/sys/users/sendOtp?email=${encodeURIComponent(email)}&businessId=7`),
        "connect-legacy": () => call(`${base}/otp.v1.OtpService/SendOtp`, { method: "POST", headers: json, body: JSON.stringify({ email, businessId: "7" }) }),
        "connect-stytch": () => call(`${base}/otp.v1.OtpService/LoginOrCreateEmailOtp`, { method: "POST", headers: { ...json, authorization: creds.basic }, body: JSON.stringify({ email, expirationMinutes: 10 }) }),
        readyz: () => call(`${base}/readyz`),
      }[kind];
      return request().then((answer) => {
        samples.push({ kind, start, end: Date.now(), email, answer });
      });
    };
    let loading = true;
    const inFlight = new Set<Promise<void>>();
    const load = (async () => {
      while (loading) {
        for (const kind of KINDS) {
          const p = fire(kind);
          inFlight.add(p);
          void p.finally(() => inFlight.delete(p));
        }
        await sleep(150);
      }
      await Promise.all(inFlight);
    })();

    await sleep(3_000);
    t.stopping = Date.now();
    await pg.stop();
    pg = undefined;
    t.stopped = Date.now();
    await sleep(OUTAGE_MS);
    t.starting = Date.now();
    pg = await startEmbeddedPostgres(pgDir, pgPort, logger);
    t.started = Date.now();
    t.recovered = await waitFor(
      "a send to succeed after the restart",
      () => samples.find((s) => s.kind === "stytch" && s.start >= t.started && s.answer.status === 200)?.end,
      30_000,
    );
    await sleep(5_000);
    loading = false;
    await load;
    t.end = Date.now();
  });

  afterAll(async () => {
    await killAll([svc]);
    await pg?.stop();
    await smtp?.close();
    await data?.remove();
    if (pgDir) await rm(pgDir, { recursive: true, force: true });
  });

  const phase = (s: Sample) =>
    s.end < t.stopping ? "before" : s.start >= t.stopped + 500 && s.end < t.starting ? "outage" : s.start >= t.recovered + 2_000 ? "after" : "transition";

  it("answers every request, within a few seconds, and never with a 500", () => {
    const table: Record<string, Record<string, number>> = {};
    for (const s of samples) {
      const key = `${phase(s)}:${s.kind}`;
      const status = s.answer.status ? String(s.answer.status) : `network error`;
      table[key] = { ...table[key], [status]: (table[key]?.[status] ?? 0) + 1 };
    }
    const slowest = Math.max(...samples.map((s) => s.answer.ms));
    console.log(
      `[postgres-restart] ${samples.length} requests; Postgres stopped in ${t.stopped - t.stopping} ms, down ${t.starting - t.stopped} ms, ` +
        `started in ${t.started - t.starting} ms; first successful send ${t.recovered - t.started} ms after the start; slowest answer ${slowest.toFixed(0)} ms; ` +
        `5xx other than 503: ${samples.filter((s) => s.answer.status >= 500 && s.answer.status !== 503).length}\n` +
        JSON.stringify(table, null, 1),
    );
    const broken = samples.filter((s) => s.answer.status === 0 || (s.answer.status >= 500 && s.answer.status !== 503));
    expect(broken.map((s) => `${phase(s)} ${s.kind} ${s.answer.status} ${s.answer.error ?? s.answer.text}`)).toEqual([]);
    const slow = samples.filter((s) => s.answer.ms > MAX_ANSWER_MS);
    expect(slow.map((s) => `${phase(s)} ${s.kind} ${s.answer.ms.toFixed(0)} ms`)).toEqual([]);
  });

  it("answers a clear 503 in each route's shape during the outage, and /readyz is 503", () => {
    const outage = samples.filter((s) => phase(s) === "outage");
    for (const kind of KINDS) expect(outage.filter((s) => s.kind === kind).length, kind).toBeGreaterThan(10);
    for (const s of outage) {
      const label = `${s.kind}: ${s.answer.status} ${s.answer.text}`;
      expect(s.answer.status, label).toBe(503);
      const body = s.answer.json();
      switch (s.kind) {
        case "stytch":
        case "stytch-uncached":
          expect(body, label).toMatchObject({ status_code: 503, error_type: "service_unavailable" });
          break;
        case "legacy":
          expect(body, label).toEqual({ WasSuccessful: false, Value: null, Status: 503, Message: expect.any(String), Errors: null });
          break;
        case "connect-legacy":
        case "connect-stytch":
          expect(body, label).toMatchObject({ code: "unavailable" });
          break;
        case "readyz":
          expect(body, label).toEqual({ status: "unavailable" });
          break;
      }
    }
  });

  it("recovers on its own: every request succeeds after the restart, /readyz is 200", () => {
    const after = samples.filter((s) => phase(s) === "after");
    for (const kind of KINDS) expect(after.filter((s) => s.kind === kind).length, kind).toBeGreaterThan(5);
    for (const s of after) {
      const expected = s.kind === "stytch-uncached" ? 401 : 200;
      expect(s.answer.status, `${s.kind}: ${s.answer.text}`).toBe(expected);
    }
    const before = samples.filter((s) => phase(s) === "before");
    for (const s of before) expect(s.answer.status, `${s.kind}: ${s.answer.text}`).toBe(s.kind === "stytch-uncached" ? 401 : 200);
  });

  it("mails every Stytch send it accepted, before, around and after the outage", async () => {
    const accepted = samples.filter((s) => (s.kind === "stytch" || s.kind === "connect-stytch") && s.answer.status === 200);
    await waitFor("the accepted sends to be mailed", () => (accepted.every((s) => smtp.acceptedTo(s.email).length > 0) ? true : undefined), 30_000);
    const counts = accepted.map((s) => smtp.acceptedTo(s.email).length);
    console.log(`[postgres-restart] accepted Stytch sends ${accepted.length}, mailed ${counts.filter((c) => c > 0).length}, duplicates ${smtp.duplicates().size}`);
    expect(counts).toEqual(accepted.map(() => 1));
  });
});
