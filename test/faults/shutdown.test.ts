// SIGTERM with work in flight. The promises (README "ordered shutdown",
// server.ts main()):
// - requests already in flight complete (here: ten requests whose bodies are
//   still arriving; a burst of sends racing the signal may be refused or
//   reset, but any answer it gets is a success);
// - new connections are refused at once;
// - the process exits 0 within SHUTDOWN_GRACE_MS + 5 s;
// - outbox rows it had claimed are handed back ('pending'), not left
//   'sending' behind a 60 s lease; what it did send stays sent, once.
// Two scenarios: a slow SMTP server (1.5 s per DATA, shorter than the grace)
// and a wedged one (it never answers DATA within the test), against the
// service as `node --import tsx src/server.ts` runs it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectionRefused, countBy, demoCredentials, killAll, postJson, sleep, startService, waitFor, type Exit, type Service } from "./support/service.js";
import { rawConnect } from "./support/raw-http.js";
import { startFaultSmtp, type FaultSmtp } from "./support/smtp.js";
import { FAULTS_ENABLED, freshDatabase, RUN, tempDir, type FaultDatabase } from "./support/suite.js";

interface Row {
  recipient: string;
  status: string;
  attempts: number;
}

async function outboxRows(db: FaultDatabase, prefix: string): Promise<Row[]> {
  return (await db.pool.query<Row>("SELECT recipient, status, attempts FROM outbox WHERE recipient LIKE $1 ORDER BY id", [`${prefix}%`])).rows;
}


interface Variant {
  readonly name: string;
  readonly preload: readonly string[];
  /** Shipped as is: the async-exit-hook defect decides the outcome. */
  readonly exitHook: boolean;
}
const VARIANTS: readonly Variant[] = [{ name: "as shipped", preload: [], exitHook: false }];

for (const variant of VARIANTS) {
const itUnlessHook = variant.exitHook ? it.fails : it;
const tag = `[shutdown ${variant.name}]`;

describe.runIf(FAULTS_ENABLED)(`${variant.name}: SIGTERM with requests and deliveries in flight (slow SMTP: 1.5 s per DATA)`, () => {
  const GRACE_MS = 4_000;
  let db: FaultDatabase;
  let smtp: FaultSmtp;
  let data: Awaited<ReturnType<typeof tempDir>>;
  let svc: Service | undefined;
  let after: Service | undefined;
  let exit: Exit | undefined;
  let signalledAt = 0;
  let exitedAfterMs = 0;
  let refusedAfterMs: number | undefined;
  let trickled: { status: number; body: string; ending: string }[] = [];
  let burst: string[] = [];
  let rowsAtExit: Row[] = [];
  const prefix = `sd-${RUN}-`;

  beforeAll(async () => {
    [db, smtp, data] = await Promise.all([freshDatabase(), startFaultSmtp(), tempDir("shutdown")]);
    smtp.delay = () => 1_500;
    const env = { DATABASE_URL: db.url, SMTP_URL: smtp.url, SEED_DEMO: "true", DATA_DIR: data.path, OUTBOX_POLL_MS: "200", SHUTDOWN_GRACE_MS: String(GRACE_MS) };
    svc = await startService(`shutdown-slow-smtp-${variant.exitHook ? "shipped" : "nohook"}`, env, { preload: variant.preload });
    const auth = { authorization: demoCredentials(data.path).basic };

    // Mail in flight: 8 sends, delivered 4 at a time, 1.5 s each.
    for (let i = 0; i < 8; i++) {
      expect((await postJson(svc.url, "/v1/otps/email/login_or_create", { email: `${prefix}mail-${i}@example.com`, expiration_minutes: 10 }, auth)).status).toBe(200);
    }
    await waitFor("a delivery in flight", () => (smtp.inProgress() > 0 ? true : undefined), 10_000, 20);

    // Requests in flight: 10 connections with the headers and part of the body sent.
    const inFlight = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const body = JSON.stringify({ email: `${prefix}inflight-${i}@example.com`, expiration_minutes: 10 });
        const conn = await rawConnect(svc!.port);
        await conn.write(
          `POST /v1/otps/email/login_or_create HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${auth.authorization}\r\n` +
            `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 10)}`,
        );
        return { conn, rest: body.slice(10) };
      }),
    );
    await sleep(200);
    // And a burst of ordinary requests racing the signal: each is either
    // answered or refused; a reset would be a request lost in flight.
    const burstDone = Promise.all(
      Array.from({ length: 20 }, (_, i) => postJson(svc!.url, "/v1/otps/email/login_or_create", { email: `${prefix}burst-${i}@example.com`, expiration_minutes: 10 }, auth, 20_000)),
    );
    await sleep(2);
    svc.signal("SIGTERM");
    signalledAt = Date.now();
    const exited = svc.exit.then((e) => {
      exitedAfterMs = Date.now() - signalledAt;
      return e;
    });

    // New connections: refused once the listener is closed.
    await waitFor(
      "new connections to be refused",
      async () => {
        if (!(await connectionRefused(svc!.port, 500))) return undefined;
        refusedAfterMs = Date.now() - signalledAt;
        return refusedAfterMs;
      },
      GRACE_MS,
      20,
    ).catch(() => {});
    // The in-flight requests' bodies arrive after the signal: they still get their answers.
    await sleep(300);
    trickled = await Promise.all(
      inFlight.map(async ({ conn, rest }) => {
        await conn.write(rest);
        const res = await conn.response;
        conn.socket.destroy();
        return { status: res.status, body: res.body, ending: res.ending };
      }),
    );
    burst = (await burstDone).map((a) => (a.status ? String(a.status) : /ECONNREFUSED/.test(a.error ?? "") ? "refused" : /ECONNRESET|UND_ERR_SOCKET/.test(a.error ?? "") ? "reset" : `failed: ${a.error}`));
    exit = await Promise.race([exited, sleep(GRACE_MS + 10_000).then(() => undefined)]);
    rowsAtExit = await outboxRows(db, prefix);
  });

  afterAll(async () => {
    await killAll([svc, after]);
    await smtp?.close();
    await db?.drop();
    await data?.remove();
  });

  itUnlessHook("lets in-flight requests complete", () => {
    console.log(
      `${tag} slow SMTP: 10 requests in flight (body completed after SIGTERM) answered ${JSON.stringify(countBy(trickled, (t) => t.status || t.ending))}; ` +
        `burst of 20 racing the signal: ${JSON.stringify(countBy(burst, (s) => s))}`,
    );
    for (const t of trickled) {
      expect(t.status, `${t.ending} ${t.body}`).toBe(200);
      expect(JSON.parse(t.body)).toMatchObject({ status_code: 200 });
    }
    // Those racing the signal may be refused or reset before any answer
    // (still queued in the listen backlog when the listener closed); an
    // answer, if there is one, is a success.
    expect(burst.filter((b) => /^\d+$/.test(b) && b !== "200")).toEqual([]);
  });

  it("refuses new connections", () => {
    console.log(`${tag} slow SMTP: new connections refused ${refusedAfterMs} ms after SIGTERM`);
    expect(refusedAfterMs).toBeDefined();
    expect(refusedAfterMs!).toBeLessThan(1_000);
  });

  itUnlessHook(`exits 0 within SHUTDOWN_GRACE_MS + 5 s`, () => {
    console.log(`${tag} slow SMTP: exit ${JSON.stringify(exit && { code: exit.code, signal: exit.signal })} ${exitedAfterMs} ms after SIGTERM (grace ${GRACE_MS} ms)`);
    expect(exit?.code).toBe(0);
    expect(exitedAfterMs).toBeLessThanOrEqual(GRACE_MS + 5_000);
  });

  itUnlessHook("leaves no outbox row 'sending'; a new process delivers the rest, each once", async () => {
    const byStatus = countBy(rowsAtExit, (r) => r.status);
    console.log(`${tag} slow SMTP: outbox at exit ${JSON.stringify(byStatus)}; mails accepted by SMTP so far ${smtp.accepted.length}`);
    expect(byStatus.sending ?? 0).toBe(0);
    // What it marked sent was handed to SMTP; the rest waits for the next process.
    after = await startService("shutdown-after", { DATABASE_URL: db.url, SMTP_URL: smtp.url, SEED_DEMO: "true", DATA_DIR: data.path, OUTBOX_POLL_MS: "200" });
    smtp.delay = undefined;
    await waitFor("the next process to deliver the rest", async () => ((await outboxRows(db, prefix)).every((r) => r.status === "sent") ? true : undefined), 30_000);
    await sleep(1_000);
    const recipients = rowsAtExit.map((r) => r.recipient);
    expect(recipients.map((to) => smtp.acceptedTo(to).length)).toEqual(recipients.map(() => 1));
  });
});

describe.runIf(FAULTS_ENABLED)(`${variant.name}: SIGTERM while the SMTP server never answers DATA`, () => {
  const GRACE_MS = 2_000;
  let db: FaultDatabase;
  let smtp: FaultSmtp;
  let data: Awaited<ReturnType<typeof tempDir>>;
  let svc: Service | undefined;
  let exit: Exit | undefined;
  let exitedAfterMs = 0;
  let claimedAtSignal: Row[] = [];
  let rowsAtExit: Row[] = [];
  const prefix = `wedged-${RUN}-`;

  beforeAll(async () => {
    [db, smtp, data] = await Promise.all([freshDatabase(), startFaultSmtp(), tempDir("shutdown-wedged")]);
    smtp.delay = () => 120_000;
    svc = await startService(`shutdown-wedged-smtp-${variant.exitHook ? "shipped" : "nohook"}`, {
      DATABASE_URL: db.url,
      SMTP_URL: smtp.url,
      SEED_DEMO: "true",
      DATA_DIR: data.path,
      OUTBOX_POLL_MS: "200",
      SHUTDOWN_GRACE_MS: String(GRACE_MS),
    }, { preload: variant.preload });
    const auth = { authorization: demoCredentials(data.path).basic };
    for (let i = 0; i < 4; i++) {
      expect((await postJson(svc.url, "/v1/otps/email/login_or_create", { email: `${prefix}${i}@example.com`, expiration_minutes: 10 }, auth)).status).toBe(200);
    }
    claimedAtSignal = await waitFor(
      "the rows to be claimed and in DATA",
      async () => {
        const r = await outboxRows(db, prefix);
        return smtp.inProgress() >= 1 && r.some((x) => x.status === "sending") ? r.filter((x) => x.status === "sending") : undefined;
      },
      10_000,
      50,
    );
    const signalledAt = Date.now();
    svc.signal("SIGTERM");
    exit = await Promise.race([svc.exit, sleep(GRACE_MS + 15_000).then(() => undefined)]);
    exitedAfterMs = Date.now() - signalledAt;
    rowsAtExit = await outboxRows(db, prefix);
  });

  afterAll(async () => {
    await killAll([svc]);
    await smtp?.close();
    await db?.drop();
    await data?.remove();
  });

  // The worker waits at most the grace period for a wedged delivery, then
  // hands the row back.
  it("exits 0 within SHUTDOWN_GRACE_MS + 5 s and hands its claimed rows back ('pending')", () => {
    console.log(
      `${tag} wedged SMTP: ${claimedAtSignal.length} rows claimed at SIGTERM; exit ${JSON.stringify(exit && { code: exit.code, signal: exit.signal })} ` +
        `${exitedAfterMs} ms after SIGTERM (grace ${GRACE_MS} ms); outbox at exit ${JSON.stringify(countBy(rowsAtExit, (r) => r.status))}`,
    );
    expect(exit).toBeDefined();
    expect(exitedAfterMs).toBeLessThanOrEqual(GRACE_MS + 5_000);
    const claimed = new Set(claimedAtSignal.map((r) => r.recipient));
    expect(rowsAtExit.filter((r) => claimed.has(r.recipient)).map((r) => r.status)).toEqual(claimedAtSignal.map(() => "pending"));
    expect(exit?.code).toBe(0);
  });

  it("still exits within SHUTDOWN_GRACE_MS + 5 s (forced)", () => {
    expect(exit).toBeDefined();
    expect(exitedAfterMs).toBeLessThanOrEqual(GRACE_MS + 5_000 + 500);
  });
});
}
