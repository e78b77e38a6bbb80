// Overload is refused, not queued: the admission policy of sends, with a
// fake clock and a fake count of queued mail.
import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/domain/errors.js";
import { BACKLOG_SAMPLE_MS, SendAdmission, type AdmissionLimits, type QueuedMail } from "../../src/domain/send-admission.js";
import { FakeClock } from "../support/fake-clock.js";

const TWO_MINUTES = 120_000;

class FakeQueue implements QueuedMail {
  constructor(public n = 0) {}
  count(): Promise<number> {
    return Promise.resolve(this.n);
  }
}

function setup(limits: Partial<AdmissionLimits> = {}, queued = 0) {
  const clock = new FakeClock();
  const queue = new FakeQueue(queued);
  const loop = { lateMs: 0, delayMs: () => loop.lateMs };
  // By default the in-flight limit is the maximum: the target latency is far off.
  const admission = new SendAdmission(
    { maxInFlight: 4, minInFlight: 1, targetLatencyMs: 1e9, maxMailWaitMs: 10_000, backlogFloor: 10, maxLoopDelayMs: 40, ...limits },
    queue,
    clock,
    loop,
  );
  return { clock, queue, admission, loop };
}

/** Lets the background count of queued mail land. */
const settle = () => new Promise((r) => setImmediate(r));

function refusalOf(fn: () => unknown): DomainError {
  try {
    fn();
  } catch (err) {
    if (err instanceof DomainError) return err;
    throw err;
  }
  throw new Error("expected the send to be refused");
}

describe("send admission", () => {
  it("admits sends up to the in-flight limit and refuses the next at once with a retry delay", () => {
    const { admission } = setup({ maxInFlight: 2 });
    admission.admit(TWO_MINUTES);
    admission.admit(TWO_MINUTES);
    const err = refusalOf(() => admission.admit(TWO_MINUTES));
    expect(err.reason).toBe("rate_limited");
    expect(err.details.limit).toBe("capacity");
    expect(err.details.retryAfterMs).toBeGreaterThanOrEqual(1_000);
  });

  it("allows in flight what it completes within the target latency (Little's law), between the minimum and the maximum", () => {
    const { clock, admission } = setup({ maxInFlight: 100, minInFlight: 4, targetLatencyMs: 50 });
    // Until a whole window has been watched, the maximum.
    expect(admission.inFlightLimit()).toBe(100);
    // 400 sends/s completed for four seconds: 400 × 50 ms = 20 may be in progress.
    for (let t = 0; t < 4_000; t += 10) {
      for (let i = 0; i < 4; i++) admission.admit(TWO_MINUTES)(false);
      clock.advance(10);
    }
    expect(admission.inFlightLimit()).toBe(20);
    const held = Array.from({ length: 20 }, () => admission.admit(TWO_MINUTES));
    expect(() => admission.admit(TWO_MINUTES)).toThrow(DomainError);
    for (const release of held) release(false);
    // Throughput collapses (a database under strain): the minimum still gets through.
    clock.advance(5_000);
    expect(admission.inFlightLimit()).toBe(4);
    // Very high throughput: never more than the maximum.
    for (let i = 0; i < 100_000; i++) admission.admit(TWO_MINUTES)(false);
    expect(admission.inFlightLimit()).toBe(100);
  });

  it("tells the transport, without taking a slot, what admit() would refuse now", () => {
    const { admission } = setup({ maxInFlight: 2 });
    expect(admission.refusalNow()).toBeUndefined();
    expect(admission.refusalNow()).toBeUndefined();
    const release = admission.admit(TWO_MINUTES);
    admission.admit(TWO_MINUTES);
    const err = admission.refusalNow();
    expect(err?.reason).toBe("rate_limited");
    expect(err?.details.retryAfterMs).toBeGreaterThanOrEqual(1_000);
    release(false);
    expect(admission.refusalNow()).toBeUndefined();
  });

  it("admits again once a send in progress is over, and counts each release once", () => {
    const { admission } = setup({ maxInFlight: 1 });
    const release = admission.admit(TWO_MINUTES);
    expect(() => admission.admit(TWO_MINUTES)).toThrow(DomainError);
    release(false);
    release(false);
    expect(admission.sendsInFlight()).toBe(0);
    admission.admit(TWO_MINUTES);
    expect(() => admission.admit(TWO_MINUTES)).toThrow(DomainError);
  });

  it("always admits a backlog at or below the floor, even with no deliveries measured", async () => {
    const { admission } = setup({ backlogFloor: 10 }, 9);
    // Its own send, made while the first count was under way, stays in the estimate.
    admission.admit(TWO_MINUTES)(true);
    await settle();
    expect(admission.backlog()).toBe(10);
    expect(() => admission.admit(TWO_MINUTES)).not.toThrow();
  });

  it("refuses when the queued mail cannot be delivered before the allowed wait, at the measured rate", async () => {
    const { clock, queue, admission } = setup({ maxInFlight: 1000, maxMailWaitMs: 10_000, backlogFloor: 10 });
    // 100 mails/s delivered over the last four seconds.
    for (let t = 0; t < 4_000; t += 10) {
      admission.delivered();
      clock.advance(10);
    }
    expect(admission.deliveryRate()).toBeCloseTo(100, 0);
    // 500 queued: 5 s at 100/s — under the 10 s allowed.
    queue.n = 500;
    admission.admit(TWO_MINUTES)(false);
    await settle();
    expect(() => admission.admit(TWO_MINUTES)(false)).not.toThrow();
    // 2,000 queued: 20 s — refused, with a retry once the excess is delivered.
    queue.n = 2_000;
    clock.advance(BACKLOG_SAMPLE_MS);
    admission.admit(TWO_MINUTES)(false);
    await settle();
    const err = refusalOf(() => admission.admit(TWO_MINUTES));
    expect(err.details.retryAfterMs).toBeGreaterThanOrEqual(9_000);
    expect(err.details.retryAfterMs).toBeLessThanOrEqual(12_000);
  });

  it("never tells a caller to come back later than the wait it allows, however slow delivery is", async () => {
    const { clock, queue, admission } = setup({ maxInFlight: 1000, maxMailWaitMs: 10_000, backlogFloor: 10 });
    // One mail in the last four seconds, with 10,000 queued: the excess would take 11 hours.
    clock.advance(3_000);
    admission.delivered();
    clock.advance(500);
    expect(admission.deliveryRate()).toBeGreaterThan(0);
    queue.n = 10_000;
    admission.admit(TWO_MINUTES)(false);
    await settle();
    const err = refusalOf(() => admission.admit(TWO_MINUTES));
    expect(err.details.retryAfterMs).toBeGreaterThanOrEqual(1_000);
    expect(err.details.retryAfterMs).toBeLessThanOrEqual(10_000);
  });

  it("weighs the wait against half the code's life when that is shorter than the allowed wait", async () => {
    const { clock, queue, admission } = setup({ maxInFlight: 1000, maxMailWaitMs: 60_000, backlogFloor: 10 });
    for (let t = 0; t < 4_000; t += 10) {
      admission.delivered();
      clock.advance(10);
    }
    // 4,000 queued at 100/s: 40 s. Fine for a 10-minute code, not for a 1-minute one.
    queue.n = 4_000;
    admission.admit(10 * 60_000)(false);
    await settle();
    expect(() => admission.admit(10 * 60_000)(false)).not.toThrow();
    expect(() => admission.admit(60_000)).toThrow(DomainError);
  });

  it("refuses above the floor when nothing is being delivered (mail is down)", async () => {
    const { clock, queue, admission } = setup({ backlogFloor: 10 });
    queue.n = 11;
    clock.advance(10_000);
    admission.admit(TWO_MINUTES)(false);
    await settle();
    expect(admission.deliveryRate()).toBe(0);
    expect(() => admission.admit(TWO_MINUTES)).toThrow(DomainError);
  });

  it("moves its estimate with its own sends and deliveries between counts", async () => {
    const { admission } = setup({ maxInFlight: 100, backlogFloor: 5 }, 0);
    admission.admit(TWO_MINUTES)(false);
    await settle();
    for (let i = 0; i < 5; i++) admission.admit(TWO_MINUTES)(true);
    expect(admission.backlog()).toBe(5);
    // The sixth queued mail puts it over the floor with nothing delivered: refused, before any new count.
    admission.admit(TWO_MINUTES)(true);
    expect(() => admission.admit(TWO_MINUTES)).toThrow(DomainError);
    admission.delivered(3);
    expect(admission.backlog()).toBe(3);
    expect(() => admission.admit(TWO_MINUTES)).not.toThrow();
  });

  it("forgets deliveries older than its window", () => {
    const { clock, admission } = setup();
    clock.advance(10_000);
    admission.delivered(400);
    expect(admission.deliveryRate()).toBeGreaterThan(90);
    clock.advance(5_000);
    expect(admission.deliveryRate()).toBe(0);
  });

  it("keeps its last estimate when counting fails", async () => {
    const { clock, admission } = setup({ backlogFloor: 0 });
    const failing = new SendAdmission({ maxInFlight: 4, minInFlight: 1, targetLatencyMs: 1e9, maxMailWaitMs: 10_000, backlogFloor: 0, maxLoopDelayMs: 40 }, { count: () => Promise.reject(new Error("db down")) }, clock);
    failing.admit(TWO_MINUTES)(false);
    await settle();
    expect(failing.backlog()).toBe(0);
    expect(() => failing.admit(TWO_MINUTES)(false)).not.toThrow();
    expect(admission.sendsInFlight()).toBe(0);
  });
});

describe("send admission and the instance's own lateness", () => {
  it("while the event loop runs later than the bound, lets in only the sends that run at once, refusing the rest at the door too", () => {
    const { admission, loop } = setup({ maxInFlight: 4, minInFlight: 2, maxLoopDelayMs: 40 });
    loop.lateMs = 41;
    const first = admission.admit(TWO_MINUTES);
    admission.admit(TWO_MINUTES);
    expect(admission.refusalNow()?.reason).toBe("rate_limited");
    const refused = refusalOf(() => admission.admit(TWO_MINUTES));
    expect(refused.details).toMatchObject({ retryAfterMs: 1_000, limit: "capacity" });
    expect(admission.sendsInFlight()).toBe(2);

    // Once a send ends there is room again, late or not…
    first(true);
    expect(admission.refusalNow()).toBeUndefined();
    admission.admit(TWO_MINUTES);
    // …and once the loop keeps up, the usual limit applies.
    loop.lateMs = 40;
    admission.admit(TWO_MINUTES)(true);
  });

  it("does not look at the loop when the bound is 0", () => {
    const { admission, loop } = setup({ maxInFlight: 4, minInFlight: 1, maxLoopDelayMs: 0 });
    loop.lateMs = 10_000;
    admission.admit(TWO_MINUTES);
    expect(admission.refusalNow()).toBeUndefined();
  });
});
