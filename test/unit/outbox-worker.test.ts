// The outbox worker's policy, through in-memory fakes of its ports and a
// fake clock: what is delivered, retried (when), expired or given up.
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { afterFailedDelivery, retryDelay } from "../../src/domain/delivery-policy.js";
import type { OutboxRow, ReservedDelivery } from "../../src/domain/outbox.js";
import { Secrets } from "../../src/domain/secrets.js";
import { OutboxWorker } from "../../src/mail/outbox-worker.js";
import { FakeClock } from "../support/fake-clock.js";
import { FakeOutbox, ScriptedMailer, smtpError } from "../support/fake-outbox.js";

const secrets = new Secrets({ id: 1, secret: "unit-test-pepper-0123456789abcdef" });
const MINUTE = 60_000;

function setup(options: { maxAttempts?: number; random?: number; leaseMs?: number } = {}) {
  const clock = new FakeClock();
  const outbox = new FakeOutbox(clock);
  const mailer = new ScriptedMailer();
  const observed: string[] = [];
  const worker = new OutboxWorker(outbox, mailer, secrets, pino({ level: "silent" }), {
    concurrency: 4,
    pollMs: 60_000,
    maxAttempts: options.maxAttempts ?? 100,
    defaultFrom: "no-reply@example.com",
    clock,
    random: () => options.random ?? 0.5,
    leaseMs: options.leaseMs,
    observer: { delivered: () => observed.push("sent"), attemptFailed: (r) => observed.push(r) },
  });
  let n = 0;
  const rowOf = (id: string, code: string, ttlMs: number): OutboxRow => {
    const messageId = `<m${id}@example.com>`;
    return {
      id,
      recipient: `user${id}@example.com`,
      locale: "en",
      template: "login",
      payload: secrets.encrypt(code, messageId),
      keyId: secrets.keyId,
      expiresAt: new Date(clock.now() + ttlMs),
      messageId,
      attempts: 0,
      createdAt: new Date(clock.now()),
      tenantName: "Acme",
      mailFromName: null,
      mailFromAddress: null,
      replyTo: null,
      branding: { logoUrl: null, accentColor: null, supportUrl: null },
      custom: undefined,
    };
  };
  /** What a send with a place does: insert its row claimed, then hand it over with the code. */
  const handOver = (place: ReservedDelivery, code = "123456"): string => {
    const id = String(++n);
    const row = rowOf(id, code, 10 * MINUTE);
    outbox.addClaimed(row, place.leaseMs);
    place.deliver({ ...row, attempts: 1 }, code);
    return id;
  };
  const queue = (code = "123456", ttlMs = 10 * MINUTE): string => {
    const id = String(++n);
    outbox.add(rowOf(id, code, ttlMs));
    return id;
  };
  const pass = async () => {
    worker.wake();
    await worker.idle();
  };
  return { clock, outbox, mailer, worker, observed, queue, handOver, pass };
}

describe("the retry policy", () => {
  it("backs off exponentially with equal jitter, capped at 30 s", () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((a) => retryDelay(a, 0))).toEqual([500, 1_000, 2_000, 4_000, 8_000, 15_000, 15_000]);
    expect([1, 2, 3, 6, 20].map((a) => retryDelay(a, 0.999_999))).toEqual([1_000, 2_000, 4_000, 30_000, 30_000].map((x) => expect.closeTo(x, 0)));
  });

  it("never retries a permanent refusal, and stops at the attempts backstop", () => {
    const now = 0;
    const valid = { attempts: 1, expiresAt: 10 * MINUTE };
    expect(afterFailedDelivery({ ...valid, smtpStatus: 550 }, now, 100, 0.5)).toEqual({ action: "fail", why: "rejected" });
    expect(afterFailedDelivery({ ...valid, smtpStatus: 421 }, now, 100, 0.5)).toEqual({ action: "retry", delayMs: 750 });
    expect(afterFailedDelivery({ ...valid, attempts: 5, smtpStatus: undefined }, now, 5, 0.5)).toEqual({ action: "fail", why: "attempts" });
  });

  it("expires instead of retrying when the next try would come after the code's expiry", () => {
    expect(afterFailedDelivery({ attempts: 6, expiresAt: 20_000, smtpStatus: undefined }, 0, 100, 0.5)).toEqual({ action: "expire" });
    expect(afterFailedDelivery({ attempts: 6, expiresAt: 30_000, smtpStatus: undefined }, 0, 100, 0.5)).toEqual({ action: "retry", delayMs: 22_500 });
  });
});

describe("OutboxWorker", () => {
  it("delivers a queued row with the decrypted code, then wipes it", async () => {
    const { outbox, mailer, observed, queue, pass } = setup();
    const id = queue("654321");
    await pass();
    expect(mailer.sent).toHaveLength(1);
    expect(mailer.sent[0]!.code).toBe("654321");
    expect(mailer.sent[0]!.text).toContain("654321");
    expect(mailer.sent[0]!.from).toEqual({ name: "Acme", address: "no-reply@example.com" });
    expect(outbox.get(id)).toMatchObject({ status: "sent", row: { payload: null } });
    expect(observed).toEqual(["sent"]);
  });

  it("retries a temporary failure after the backoff, not before", async () => {
    const { clock, outbox, mailer, observed, queue, pass } = setup({ random: 0 });
    const id = queue();
    mailer.answer(smtpError(421), new Error("connect ECONNREFUSED"));
    await pass();
    expect(outbox.get(id)).toMatchObject({ status: "pending", retryDelays: [500] });
    clock.advance(499);
    await pass();
    expect(outbox.get(id).row.attempts).toBe(1);
    clock.advance(1);
    await pass();
    expect(outbox.get(id)).toMatchObject({ status: "pending", retryDelays: [500, 1_000] });
    clock.advance(1_000);
    await pass();
    expect(outbox.get(id)).toMatchObject({ status: "sent", row: { attempts: 3 } });
    expect(mailer.sent).toHaveLength(1);
    expect(observed).toEqual(["retry", "retry", "sent"]);
  });

  it("marks a permanent refusal failed at once", async () => {
    const { outbox, mailer, observed, queue, pass } = setup();
    const id = queue();
    mailer.answer(smtpError(550));
    await pass();
    expect(outbox.get(id)).toMatchObject({ status: "failed", lastError: "550 refused", row: { payload: null } });
    expect(observed).toEqual(["failed"]);
  });

  it("gives up at OUTBOX_MAX_ATTEMPTS, saying so", async () => {
    const { clock, outbox, mailer, queue, pass } = setup({ maxAttempts: 2, random: 0 });
    const id = queue();
    mailer.answer(smtpError(451), smtpError(451));
    await pass();
    clock.advance(500);
    await pass();
    expect(outbox.get(id)).toMatchObject({ status: "failed", lastError: "gave up after 2 attempts: 451 refused" });
  });

  it("expires a row whose code would expire before the next try, and one already expired when claimed", async () => {
    const { clock, outbox, mailer, observed, queue, pass } = setup({ random: 0.5 });
    const soon = queue("111111", 600);
    mailer.answer(smtpError(421));
    await pass();
    expect(outbox.get(soon).status).toBe("expired");

    const stale = queue("222222", 1_000);
    clock.advance(1_000);
    await pass();
    expect(outbox.get(stale)).toMatchObject({ status: "expired", row: { payload: null } });
    expect(mailer.sent).toHaveLength(0);
    expect(observed).toEqual(["expired", "expired"]);
  });

  it("fails a row it cannot decrypt (a pepper that is gone) without sending", async () => {
    const { outbox, mailer, queue, pass } = setup();
    const id = queue();
    outbox.get(id).row = { ...outbox.get(id).row, keyId: 9 };
    await pass();
    expect(outbox.get(id)).toMatchObject({ status: "failed", lastError: "cannot decrypt with pepper 9" });
    expect(mailer.sent).toHaveLength(0);
  });

  it("gives claimed rows back on stop", async () => {
    const { outbox, mailer, worker, queue } = setup();
    const id = queue();
    mailer.answer("never"); // claimed, then stuck in SMTP
    worker.wake();
    await expect.poll(() => outbox.get(id).status).toBe("sending");
    await worker.stop(10);
    expect(outbox.get(id)).toMatchObject({ status: "pending", row: { attempts: 0 } });
  });
});

describe("recording deliveries", () => {
  it("records the rows delivered since the last claim with the claim that refills their slots, in no statement of their own", async () => {
    const { outbox, mailer, queue, pass } = setup();
    const ids = Array.from({ length: 10 }, () => queue());
    await pass();
    expect(mailer.sent).toHaveLength(10);
    for (const id of ids) expect(outbox.get(id).status, id).toBe("sent");
    expect(outbox.markedAlone).toEqual([]);
    // Each delivered row is recorded once, by a claim made after its delivery.
    expect(outbox.claims.flatMap((c) => c.delivered).sort()).toEqual([...ids].sort());
  });

  it("keeps the rows a failed claim should have recorded for the next claim, without sending them again", async () => {
    const { outbox, mailer, queue, pass } = setup();
    const id = queue();
    // The claim that takes the row succeeds; the one that would record its delivery fails.
    outbox.failingClaims.add(2);
    await pass();
    expect(outbox.get(id).status).toBe("sending");
    await pass();
    expect(outbox.get(id).status).toBe("sent");
    expect(mailer.sent).toHaveLength(1);
  });

  it("records what the last deliveries sent when stopped, with no claim to carry it", async () => {
    const { outbox, mailer, worker, queue } = setup();
    const id = queue();
    worker.wake();
    await worker.stop(1_000);
    expect(mailer.sent).toHaveLength(1);
    expect(outbox.get(id).status).toBe("sent");
    expect(outbox.markedAlone).toEqual([[id]]);
  });
});

describe("mail handed over by this instance's sends", () => {
  it("has a place for as many mails as its concurrency, reserved or in delivery; then none until one is freed", () => {
    const { worker } = setup();
    const places = Array.from({ length: 4 }, () => worker.reserve());
    expect(places.every((p) => p?.leaseMs === 60_000)).toBe(true);
    expect(worker.reserve()).toBeUndefined();
    places[0]!.cancel();
    places[0]!.cancel(); // a second settle frees nothing more
    expect(worker.reserve()).toBeDefined();
    expect(worker.reserve()).toBeUndefined();
  });

  it("delivers a handed-over row with the code it was given: no claim, no decryption; then records it sent on its own", async () => {
    const { outbox, mailer, worker, observed, handOver } = setup();
    const place = worker.reserve()!;
    const id = handOver(place, "246810");
    // The row's payload is not what is read: a key that is gone does not matter.
    outbox.get(id).row = { ...outbox.get(id).row, keyId: 9 };
    await worker.idle();
    expect(mailer.sent.map((m) => m.code)).toEqual(["246810"]);
    expect(outbox.claims).toEqual([]);
    expect(outbox.get(id)).toMatchObject({ status: "sent", row: { payload: null } });
    expect(outbox.markedAlone).toEqual([[id]]);
    expect(observed).toEqual(["sent"]);
    // Its place is free again.
    expect(Array.from({ length: 4 }, () => worker.reserve()).every(Boolean)).toBe(true);
  });

  it("begins a handed-over delivery after the turn that handed it over (the send's answer does not wait for its mail)", async () => {
    const { mailer, worker, handOver } = setup();
    handOver(worker.reserve()!);
    for (let i = 0; i < 10; i++) await Promise.resolve();
    expect(mailer.sent).toHaveLength(0);
    await worker.idle();
    expect(mailer.sent).toHaveLength(1);
  });

  it("records the deliveries that end while a record is under way together, in the next statement", async () => {
    const { outbox, mailer, worker, handOver } = setup();
    const ids = Array.from({ length: 4 }, () => handOver(worker.reserve()!));
    await worker.idle();
    expect(mailer.sent).toHaveLength(4);
    for (const id of ids) expect(outbox.get(id).status, id).toBe("sent");
    expect(outbox.markedAlone.flat().sort()).toEqual([...ids].sort());
    expect(outbox.markedAlone.length).toBeLessThan(4);
  });

  it("stopping waits for every record, also one a record under way starts when it ends", async () => {
    const { outbox, mailer, worker, handOver } = setup();
    outbox.markSentDelay = () => new Promise((resolve) => setTimeout(resolve, 20));
    let endFirst = () => {};
    let endSecond = () => {};
    mailer.answer(new Promise<void>((resolve) => (endFirst = resolve)), new Promise<void>((resolve) => (endSecond = resolve)));
    const first = handOver(worker.reserve()!);
    const second = handOver(worker.reserve()!);
    // Both are in SMTP when the stop begins; the first ends and its record
    // starts; the second ends while that record runs, so its own record
    // starts only when the first's ends.
    const stopped = worker.stop(1_000);
    endFirst();
    await expect.poll(() => mailer.sent.length).toBe(1);
    endSecond();
    await stopped;
    expect(outbox.get(first).status).toBe("sent");
    expect(outbox.get(second).status).toBe("sent");
    expect(outbox.markedAlone).toEqual([[first], [second]]);
  });

  it("a temporary failure goes back to the outbox for a retry by the claim", async () => {
    const { clock, outbox, mailer, worker, handOver, pass } = setup({ random: 0 });
    mailer.answer(smtpError(421));
    const id = handOver(worker.reserve()!);
    await worker.idle();
    expect(outbox.get(id)).toMatchObject({ status: "pending", retryDelays: [500] });
    clock.advance(500);
    await pass();
    expect(outbox.get(id)).toMatchObject({ status: "sent", row: { attempts: 2 } });
    expect(mailer.sent).toHaveLength(1);
  });

  it("does not start a delivery past half the lease after the place was reserved: the row waits for the claim when its lease ends", async () => {
    const { clock, outbox, mailer, worker, handOver, pass } = setup();
    const place = worker.reserve()!;
    clock.advance(30_001);
    const id = handOver(place);
    await worker.idle();
    expect(mailer.sent).toHaveLength(0);
    expect(outbox.get(id).status).toBe("sending");
    await pass();
    expect(mailer.sent).toHaveLength(0);
    clock.advance(60_000);
    await pass();
    expect(mailer.sent).toHaveLength(1);
    expect(outbox.get(id).status).toBe("sent");
  });

  it("stopping: no more places; a row handed over now is given back at once; one in delivery is given back after the grace", async () => {
    const { outbox, mailer, worker, handOver } = setup();
    mailer.answer("never");
    const stuck = handOver(worker.reserve()!);
    const late = worker.reserve()!;
    await worker.stop(10);
    expect(worker.reserve()).toBeUndefined();
    expect(outbox.get(stuck)).toMatchObject({ status: "pending", row: { attempts: 0 } });
    const id = handOver(late);
    await expect.poll(() => outbox.get(id).status).toBe("pending");
    expect(mailer.sent).toHaveLength(0);
  });
});

describe("delivery deadlines", () => {
  it("gives a claimed row's delivery a deadline 5 s before its lease ends, counted from before the claim", async () => {
    const { clock, mailer, queue, pass } = setup();
    const claimedAt = clock.now();
    queue();
    await pass();
    expect(mailer.sent[0]!.deadline).toBe(claimedAt + 60_000 - 5_000);
  });

  it("gives a handed-over row's delivery a deadline 5 s before its lease ends, counted from the reservation, however late the delivery begins", async () => {
    const { clock, mailer, worker, handOver } = setup();
    const place = worker.reserve()!;
    const reservedAt = clock.now();
    clock.advance(20_000);
    handOver(place);
    await worker.idle();
    expect(mailer.sent[0]!.deadline).toBe(reservedAt + 60_000 - 5_000);
  });

  it("keeps a quarter of a short lease as the margin", async () => {
    const { clock, mailer, queue, pass } = setup({ leaseMs: 2_000 });
    const claimedAt = clock.now();
    queue();
    await pass();
    expect(mailer.sent[0]!.deadline).toBe(claimedAt + 1_500);
  });

  it("treats a delivery given up at its deadline as a failed attempt: retried after the backoff, not before", async () => {
    const { clock, outbox, mailer, observed, queue, pass } = setup({ random: 0 });
    const id = queue();
    mailer.answer(Object.assign(new Error("SMTP delivery passed its deadline and was given up"), { code: "ETIMEDOUT" }));
    await pass();
    expect(outbox.get(id)).toMatchObject({ status: "pending", retryDelays: [500], lastError: expect.stringMatching(/deadline/) });
    clock.advance(500);
    await pass();
    expect(outbox.get(id)).toMatchObject({ status: "sent", row: { attempts: 2 } });
    expect(observed).toEqual(["retry", "sent"]);
  });
});
