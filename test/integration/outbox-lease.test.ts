// Two instances share the outbox, against real Postgres and SMTP; the relay
// holds the reply to the first copy of a mail until the test lets it go,
// well past the lease of the instance that claimed it. That instance gives
// its delivery up before the lease ends (the SMTP session is reset, the
// attempt recorded for a retry), so the other instance never sends the mail
// while the first is still sending it: the relay accepts it once, on the
// retry, and the held copy, whose sender is gone, is dropped.
import { pino } from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Secrets } from "../../src/domain/secrets.js";
import { createSmtpMailer, type Mailer } from "../../src/mail/mailer.js";
import { OutboxWorker } from "../../src/mail/outbox-worker.js";
import { PgOutboxStore } from "../../src/storage/outbox-store.js";
import { PEPPER, startTestEnv, type TestEnv } from "../support/app.js";

/** Short, so the test waits it out; each instance's delivery deadline follows from it. */
const LEASE_MS = 3_000;
const secrets = new Secrets({ id: 1, secret: PEPPER });

let env: TestEnv;
const instances: { worker: OutboxWorker; mailer: Mailer }[] = [];
beforeAll(async () => {
  env = await startTestEnv();
  // The app's own worker (a 60 s lease) stays out of it: the two below are the instances.
  await env.app.worker.stop();
});
afterAll(async () => {
  for (const { worker, mailer } of instances) {
    await worker.stop(1_000);
    mailer.close();
  }
  await env?.close();
});

/**
 * An instance's delivery: its own worker and SMTP pool (on a thread of its
 * own), on the shared database. Warmed up with a mail of its own (the
 * thread started, a session open), so its deliveries reach the relay in
 * far less time than their deadline.
 */
async function instance(name: string): Promise<OutboxWorker> {
  const mailer = createSmtpMailer(env.smtp.url, 2);
  const worker = new OutboxWorker(new PgOutboxStore(env.app.db), mailer, secrets, pino({ level: "silent" }), {
    concurrency: 2,
    pollMs: 100,
    maxAttempts: 10,
    defaultFrom: "no-reply@otp.localhost",
    leaseMs: LEASE_MS,
  });
  instances.push({ worker, mailer });
  const to = `warm-${name}@example.com`;
  await mailer.send({ from: { name: "", address: "no-reply@otp.localhost" }, to, subject: "warm", text: "warm", html: "", messageId: `<${to}>`, code: "" });
  return worker;
}

async function rowOf(messageId: string): Promise<{ status: string; attempts: number; last_error: string | null }> {
  const { rows } = await env.app.db.query("SELECT status, attempts, last_error FROM outbox WHERE message_id = $1", [messageId]);
  return rows[0];
}

it("gives a delivery that outlasts its lease up before the lease ends, so another instance never sends the mail at the same time; the retry delivers it once", async () => {
  const messageId = "<slow-relay@test>";
  let answer: (() => void) | undefined;
  env.smtp.hold = (mail) =>
    mail.messageId === messageId && answer === undefined ? new Promise<void>((resolve) => (answer = resolve)) : undefined;
  await env.app.db.query(
    `INSERT INTO outbox (tenant_id, email_id, recipient, locale, template, payload, key_id, expires_at, message_id)
     SELECT tenant_id, id, address, 'en', 'login', $2, $3, now() + interval '10 minutes', $1
     FROM emails WHERE address = $4 LIMIT 1`,
    [messageId, secrets.encrypt("424242", messageId), secrets.keyId, env.customer],
  );

  const first = await instance("a");
  const second = await instance("b");
  // The first instance claims the row; its mail reaches the relay, which holds the reply.
  first.start();
  await expect.poll(() => answer, { timeout: 10_000 }).toBeDefined();
  // The second starts delivering while the first is still sending.
  second.start();

  // Delivered by a later attempt. Without a deadline the first instance
  // would still be sending (the socket timeout is 30 s) when its lease ran
  // out, and the second would claim the row and send it again.
  await expect.poll(async () => (await rowOf(messageId)).status, { timeout: 20_000, interval: 100 }).toBe("sent");
  answer!();
  await expect.poll(() => env.smtp.dropped.length + env.smtp.mails.filter((m) => m.messageId === messageId).length, { timeout: 10_000 }).toBe(2);

  expect(env.smtp.mails.filter((m) => m.messageId === messageId)).toHaveLength(1);
  expect(env.smtp.dropped).toEqual([messageId]);
  const row = await rowOf(messageId);
  expect(row.attempts).toBe(2);
  expect(row.last_error).toMatch(/deadline/);
});
