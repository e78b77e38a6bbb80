// SMTP on its own thread: the main thread hands each mail over as bytes and
// hears how it went. Against a real SMTP server over TCP: a mail arrives
// whole, a refusal comes back with the codes the outbox worker decides by,
// the bytes are handed over rather than shared, a mail's deadline crosses
// with it, a thread that dies fails only the mail it held and the next mail
// starts a new one, and a closed pool refuses mail.
import { once } from "node:events";
import net, { type AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { deliveryCause } from "../../src/mail/outbox-worker.js";
import { smtpResponseCode } from "../../src/mail/mailer.js";
import type { SmtpPoolOptions } from "../../src/mail/smtp-pool.js";
import { ThreadedSmtpPool } from "../../src/mail/threaded-smtp-pool.js";
import { envelopeTo, rawMail, startSmtp, testPoolOptions, type TestSmtp } from "../support/smtp.js";

const message = rawMail;
const envelope = envelopeTo;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function threadedPool(port: number, overrides: Partial<SmtpPoolOptions> = {}): ThreadedSmtpPool {
  const pool = new ThreadedSmtpPool(testPoolOptions(port, 2, overrides));
  cleanups.push(() => pool.close());
  return pool;
}

async function setUp(): Promise<{ smtp: TestSmtp; pool: ThreadedSmtpPool }> {
  const smtp = await startSmtp();
  cleanups.push(() => smtp.close());
  return { smtp, pool: threadedPool(Number(new URL(smtp.url).port)) };
}

/** The thread the pool runs its sessions on (a private field: tests only). */
const threadOf = (pool: ThreadedSmtpPool) => (pool as unknown as { thread: import("node:worker_threads").Worker | undefined }).thread;

describe("ThreadedSmtpPool", () => {
  it("delivers the bytes it is given, whole, from a thread other than the caller's", async () => {
    const { smtp, pool } = await setUp();
    await Promise.all(["a", "b", "c"].map((n) => pool.send(envelope(`${n}@example.com`), message(`${n}@example.com`))));
    const got = await smtp.waitFor(3);
    expect(got.map((m) => m.to).sort()).toEqual(["a@example.com", "b@example.com", "c@example.com"]);
    expect(got.find((m) => m.to === "b@example.com")?.text).toContain("Your code is 123456.");
    expect(threadOf(pool)?.threadId).toBeGreaterThan(0);
  });

  it("hands a buffer of its own over (the caller's copy is emptied) and copies a slice of a shared one", async () => {
    const { smtp, pool } = await setUp();
    const own = Buffer.from(new Uint8Array(message("own@example.com")).buffer);
    const shared = Buffer.concat([Buffer.from("prefix"), message("slice@example.com")]).subarray(6);
    const whole = shared.buffer.byteLength;
    await pool.send(envelope("own@example.com"), own);
    await pool.send(envelope("slice@example.com"), shared);
    expect(own.byteLength).toBe(0);
    expect(shared.buffer.byteLength).toBe(whole);
    expect((await smtp.waitFor(2)).map((m) => m.to).sort()).toEqual(["own@example.com", "slice@example.com"]);
  });

  it("brings a refusal back with its reply code, so the worker tells a permanent refusal from a passing one", async () => {
    const { smtp, pool } = await setUp();
    smtp.reject = ({ to }) => (to.startsWith("gone") ? 550 : to.startsWith("busy") ? 451 : undefined);
    const refused = await pool.send(envelope("gone@example.com"), message("gone@example.com")).catch((err: unknown) => err);
    const deferred = await pool.send(envelope("busy@example.com"), message("busy@example.com")).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(Error);
    expect(smtpResponseCode(refused)).toBe(550);
    expect(deliveryCause(refused)).toBe("SMTP 550");
    expect(smtpResponseCode(deferred)).toBe(451);
    await pool.send(envelope("fine@example.com"), message("fine@example.com"));
    expect((await smtp.waitFor(1)).map((m) => m.to)).toEqual(["fine@example.com"]);
  });

  it("fails the mail a dead thread held as a dropped connection, and the next mail starts a new thread", async () => {
    // A server that accepts and never greets: every mail stays under way.
    const silent = net.createServer(() => {});
    silent.listen(0, "127.0.0.1");
    await once(silent, "listening");
    cleanups.push(() => new Promise<void>((resolve) => silent.close(() => resolve())));
    const pool = threadedPool((silent.address() as AddressInfo).port, { greetingTimeoutMs: 30_000 });
    const held = pool.send(envelope("held@example.com"), message("held@example.com")).catch((err: unknown) => err);
    await new Promise((resolve) => silent.once("connection", resolve));
    const first = threadOf(pool)!;
    await first.terminate();
    const err = await held;
    expect(err).toBeInstanceOf(Error);
    expect(deliveryCause(err)).toBe("ECONNECTION");
    const next = pool.send(envelope("next@example.com"), message("next@example.com")).catch((e: unknown) => e);
    await new Promise((resolve) => silent.once("connection", resolve));
    expect(threadOf(pool)).toBeDefined();
    expect(threadOf(pool)).not.toBe(first);
    await threadOf(pool)!.terminate();
    expect(deliveryCause(await next)).toBe("ECONNECTION");
  });

  it("hands the mails of one turn of the event loop over in one message", async () => {
    const { smtp, pool } = await setUp();
    await pool.send(envelope("warm@example.com"), message("warm@example.com"));
    const thread = threadOf(pool)!;
    const posted: unknown[] = [];
    const post = thread.postMessage.bind(thread);
    thread.postMessage = (value: unknown, transfer?: readonly import("node:worker_threads").TransferListItem[]) => {
      posted.push(value);
      post(value, transfer);
    };
    const to = Array.from({ length: 20 }, (_, i) => `turn-${i}@example.com`);
    await Promise.all(to.map((t) => pool.send(envelope(t), message(t))));
    expect(posted).toHaveLength(1);
    expect((posted[0] as { mails: unknown[] }).mails).toHaveLength(20);
    expect((await smtp.waitFor(21)).filter((m) => m.to.startsWith("turn-"))).toHaveLength(20);
  });

  it("fails a mail handed over as its thread dies, and never sends it later", async () => {
    const { smtp, pool } = await setUp();
    await pool.send(envelope("before@example.com"), message("before@example.com"));
    const dying = threadOf(pool)!;
    const stopped = dying.terminate();
    const late = await pool.send(envelope("late@example.com"), message("late@example.com")).catch((err: unknown) => err);
    await stopped;
    expect(deliveryCause(late)).toBe("ECONNECTION");
    await pool.send(envelope("after@example.com"), message("after@example.com"));
    const got = (await smtp.waitFor(2)).map((m) => m.to);
    expect(got).toEqual(["before@example.com", "after@example.com"]);
  });

  it("carries each mail's deadline to the SMTP thread: a mail the relay holds past it is given up there, and the relay never gets to accept it", async () => {
    const smtp = await startSmtp();
    cleanups.push(() => smtp.close());
    const pool = threadedPool(Number(new URL(smtp.url).port), { socketTimeoutMs: 20_000 });
    // The thread started and a session open, the mail reaches the relay long before its deadline.
    await pool.send(envelope("warm@example.com"), message("warm@example.com"));
    let answer: (() => void) | undefined;
    smtp.hold = ({ to }) => (to === "slow@example.com" ? new Promise<void>((resolve) => (answer = resolve)) : undefined);
    let outcome: unknown;
    pool.send(envelope("slow@example.com"), message("slow@example.com"), Date.now() + 2_000).then(
      () => (outcome = "sent"),
      (err: unknown) => (outcome = err),
    );
    // Nothing else would end it before the socket timeout (20 s).
    await expect.poll(() => outcome, { timeout: 10_000 }).toBeDefined();
    expect((outcome as Error).message).toMatch(/deadline/);
    expect(deliveryCause(outcome)).toBe("ETIMEDOUT");
    // The relay was holding it, and answers only now, to a session the pool has reset.
    expect(answer).toBeDefined();
    answer!();
    await expect.poll(() => smtp.dropped.length, { timeout: 10_000 }).toBe(1);
    await pool.send(envelope("next@example.com"), message("next@example.com"));
    expect((await smtp.waitFor(2)).map((m) => m.to)).toEqual(["warm@example.com", "next@example.com"]);
  });

  it("refuses mail once closed, and its thread ends", async () => {
    const { pool } = await setUp();
    await pool.send(envelope("one@example.com"), message("one@example.com"));
    const thread = threadOf(pool)!;
    const ended = new Promise((resolve) => thread.once("exit", resolve));
    pool.close();
    await expect(pool.send(envelope("two@example.com"), message("two@example.com"))).rejects.toThrow(/closed/);
    await ended;
  });
});
