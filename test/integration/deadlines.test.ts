// Deadlines honoured end to end. Another connection holds a lock on the
// outbox, so a send's statement waits in Postgres; the caller's deadline
// (grpc-timeout / connect-timeout-ms, sent as a header with no deadline
// kept by the client itself, so the answer seen is the server's) passes:
// the server cancels the statement, answers deadline_exceeded, and the
// send has queued no mail. Without a lock the same call succeeds, and its
// mail leaves at once although the call (and its signal) ended first. The
// legacy portal's public RPCs are the exception: their work runs to its end.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OtpService } from "../../gen/otp/v1/otp_service_pb.js";
import { emailFactory, mailbox, sleep } from "../support/answers.js";
import { settledOutbox, startTestEnv, type TestEnv } from "../support/app.js";

let env: TestEnv;
beforeAll(async () => {
  env = await startTestEnv();
});
afterAll(async () => {
  await env?.close();
});

const email = emailFactory();
const { mailsTo, waitForMailTo } = mailbox(() => env.smtp);

/** Another connection locks the outbox against inserts until released. */
async function lockOutbox(): Promise<{ client: pg.Client; release(): Promise<void> }> {
  const client = new pg.Client({ connectionString: env.database.url });
  await client.connect();
  await client.query("BEGIN");
  await client.query("LOCK TABLE outbox IN EXCLUSIVE MODE");
  return {
    client,
    async release() {
      await client.query("ROLLBACK");
      await client.end();
    },
  };
}

/** The service's send statements now waiting on a lock (the outbox worker's poll waits too, and is not counted). */
async function waitingStatements(observer: pg.Client): Promise<number> {
  // Inside a transaction (the lock's) pg_stat_activity is read once and kept: read it afresh.
  await observer.query("SELECT pg_stat_clear_snapshot()");
  const { rows } = await observer.query<{ n: string }>(
    "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'otp-service' AND wait_event_type = 'Lock' AND query LIKE '%otp_send(%'",
  );
  return Number(rows[0]!.n);
}

const TRANSPORTS = [
  { name: "gRPC", header: ["grpc-timeout", "400m"], make: (baseUrl: string) => createGrpcTransport({ baseUrl }) },
  { name: "gRPC-Web", header: ["grpc-timeout", "400m"], make: (baseUrl: string) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }) },
  { name: "Connect", header: ["connect-timeout-ms", "400"], make: (baseUrl: string) => createConnectTransport({ baseUrl, httpVersion: "1.1" }) },
] as const;

describe("a deadline that passes while the send waits in Postgres", () => {
  for (const t of TRANSPORTS) {
    it(`over ${t.name}: the statement is cancelled, the answer is deadline_exceeded, and no mail is queued`, async () => {
      const client = createClient(OtpService, t.make(env.url));
      const address = email(`deadline-${t.name.toLowerCase()}`);
      const lock = await lockOutbox();
      const started = Date.now();
      let failure: unknown;
      try {
        await client.loginOrCreateEmailOtp({ email: address }, { headers: { authorization: env.project.authorization, [t.header[0]]: t.header[1] } });
      } catch (err) {
        failure = err;
      }
      const elapsed = Date.now() - started;
      try {
        expect(failure).toBeInstanceOf(ConnectError);
        expect((failure as ConnectError).code, String(failure)).toBe(Code.DeadlineExceeded);
        // Answered at the deadline, not at the 10 s statement_timeout.
        expect(elapsed).toBeLessThan(5_000);
        // Nothing of the call is still waiting in Postgres.
        let waiting = await waitingStatements(lock.client);
        for (let i = 0; i < 50 && waiting > 0; i++) {
          await sleep(20);
          waiting = await waitingStatements(lock.client);
        }
        expect(waiting).toBe(0);
      } finally {
        await lock.release();
      }
      // Nothing of the call was left waiting on the lock, and nothing of it was queued: no mail can follow.
      expect(await settledOutbox(env.app.db, address)).toBe(0);
      expect(mailsTo(address)).toHaveLength(0);
    });
  }

  it.each([
    ["Connect", "connect-timeout-ms", "9999999999"],
    ["gRPC", "grpc-timeout", "99999999H"],
    ["gRPC-Web", "grpc-timeout", "99999999H"],
  ] as const)("over %s, the longest deadline the protocol allows (%s: %s) is a long one, not one that passes at once", async (name, header, value) => {
    // Each is longer than a timer can hold (2^31 - 1 ms), which Node would run after 1 ms instead.
    const client = createClient(OtpService, TRANSPORTS.find((t) => t.name === name)!.make(env.url));
    const address = email(`deadline-long-${name.toLowerCase()}`);
    const res = await client.loginOrCreateEmailOtp({ email: address }, { headers: { authorization: env.project.authorization, [header]: value } });
    expect(res.statusCode).toBe(200);
    await waitForMailTo(address, 1);
  });

  it("with time to spare, the same call succeeds and its mail is sent", async () => {
    const client = createClient(OtpService, createGrpcTransport({ baseUrl: env.url }));
    const address = email("deadline-ok");
    const res = await client.loginOrCreateEmailOtp({ email: address }, { headers: { authorization: env.project.authorization, "grpc-timeout": "10S" } });
    expect(res.statusCode).toBe(200);
    await waitForMailTo(address, 1);
  });

  it("a lock released before the deadline: the send completes and reports success", async () => {
    const client = createClient(OtpService, createGrpcTransport({ baseUrl: env.url }));
    const address = email("deadline-race");
    const lock = await lockOutbox();
    const call = client.loginOrCreateEmailOtp({ email: address }, { headers: { authorization: env.project.authorization, "grpc-timeout": "5S" } });
    await sleep(200);
    await lock.release();
    expect((await call).statusCode).toBe(200);
    await waitForMailTo(address, 1);
  });
});

/** Polls until `ok` holds, for at most `ms`; whether it came to hold. */
async function eventually(ok: () => Promise<boolean>, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > until) return false;
    await sleep(20);
  }
  return true;
}

describe("a caller that hangs up while its send waits in Postgres", () => {
  const LONG = { "grpc-timeout": "30S", "connect-timeout-ms": "30000" } as const;
  for (const t of [TRANSPORTS[0], TRANSPORTS[2]]) {
    it(`over ${t.name}: the statement is cancelled when the caller goes, not at its deadline, and no mail is queued`, async () => {
      const client = createClient(OtpService, t.make(env.url));
      const address = email(`hang-up-${t.name.toLowerCase()}`);
      const lock = await lockOutbox();
      const hangUp = new AbortController();
      const call = client
        .loginOrCreateEmailOtp({ email: address }, { signal: hangUp.signal, headers: { authorization: env.project.authorization, [t.header[0]]: LONG[t.header[0]] } })
        .catch((err: unknown) => err);
      try {
        expect(await eventually(async () => (await waitingStatements(lock.client)) === 1, 5_000)).toBe(true);
        hangUp.abort();
        expect(ConnectError.from(await call).code).toBe(Code.Canceled);
        // Well before the 30 s deadline, nothing of the call waits in Postgres any more.
        expect(await eventually(async () => (await waitingStatements(lock.client)) === 0, 3_000)).toBe(true);
      } finally {
        await lock.release();
      }
      expect(await settledOutbox(env.app.db, address)).toBe(0);
      expect(mailsTo(address)).toHaveLength(0);
    });
  }
});

const TEN_SECONDS = { "grpc-timeout": "10S", "connect-timeout-ms": "10000" } as const;

describe("mail queued by a call with a deadline", () => {
  // Only a wake delivers here: the poll that would otherwise pick up
  // whatever a wake left behind comes once a minute.
  let quiet: TestEnv;
  const quietMail = mailbox(() => quiet.smtp);
  beforeAll(async () => {
    quiet = await startTestEnv({ OUTBOX_POLL_MS: "60000" });
    // The environment's first mail starts the SMTP thread (from source, through
    // tsx) and its first session: on a loaded CI machine that took seconds, and
    // it is not what these cases measure. One mail without a deadline first.
    const warmUp = email("deadline-wake-warm-up");
    await createClient(OtpService, createConnectTransport({ baseUrl: quiet.url, httpVersion: "1.1" })).loginOrCreateEmailOtp(
      { email: warmUp },
      { headers: { authorization: quiet.project.authorization } },
    );
    await quietMail.waitForMailTo(warmUp, 1, 30_000);
  });
  afterAll(async () => {
    await quiet?.close();
  });

  for (const t of TRANSPORTS) {
    it(`over ${t.name}: is delivered at once, though the call has ended (and its signal with it) before the mail is out`, async () => {
      const client = createClient(OtpService, t.make(quiet.url));
      const address = email(`deadline-wake-${t.name.toLowerCase()}`);
      const res = await client.loginOrCreateEmailOtp({ email: address }, { headers: { authorization: quiet.project.authorization, [t.header[0]]: TEN_SECONDS[t.header[0]] } });
      expect(res.statusCode).toBe(200);
      await quietMail.waitForMailTo(address, 1, 3_000);
      expect(await settledOutbox(quiet.app.db, address, 3_000)).toBe(1);
    });
  }
});

describe("a public legacy call's deadline does not decide its work", () => {
  // A customer's legacy send writes more than a stranger's (a code, a mail);
  // were its statement cancelled at the caller's deadline, a deadline set
  // between the two would answer deadline_exceeded for customers alone, and
  // leave their limits uncharged where a stranger's are: an oracle by
  // status. So the legacy routes' work runs to its end whatever the deadline,
  // and the answer waits for the same floor either way.
  for (const t of TRANSPORTS) {
    it(`over ${t.name}: a customer's send whose deadline passes while it waits completes, its mail is sent, and the answer is a stranger's`, async () => {
      const client = createClient(OtpService, t.make(env.url));
      const businessId = BigInt(env.businessId);
      const headers = { [t.header[0]]: t.header[1] };
      const outcome = (call: Promise<unknown>) => call.then(() => "ok", (err: unknown) => Code[ConnectError.from(err).code]);
      const before = mailsTo(env.customer).length;
      const lock = await lockOutbox();
      let customer: Promise<string>;
      try {
        customer = outcome(client.sendOtp({ email: env.customer, businessId }, { headers }));
        // The customer's statement waits on the lock (a stranger's writes no outbox row, so it does not)...
        for (let i = 0; i < 100 && (await waitingStatements(lock.client)) === 0; i++) await sleep(20);
        expect(await waitingStatements(lock.client)).toBe(1);
        // ...until well past its deadline.
        await sleep(800);
      } finally {
        await lock.release();
      }
      const stranger = await outcome(client.sendOtp({ email: email(`legacy-stranger-${t.name.toLowerCase()}`), businessId }, { headers }));
      expect(await customer).toBe(stranger);
      await waitForMailTo(env.customer, before + 1);
    });
  }
});
