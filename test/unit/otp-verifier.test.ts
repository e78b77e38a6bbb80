// The attempt verdicts and their bookkeeping, with a fake clock.
import { describe, expect, it } from "vitest";
import { failureEffects, judgeAttempt, type EmailState, type StoredCode } from "../../src/domain/otp-verifier.js";
import { Secrets } from "../../src/domain/secrets.js";
import { FakeClock } from "../support/fake-clock.js";

const secrets = new Secrets({ id: 1, secret: "unit-test-pepper-0123456789abcdef0123" });
const LIMITS = { perCode: 5, lockThreshold: 100, lockMinutes: 60 };
const clock = new FakeClock();

function code(id: string, value: string, over: Partial<StoredCode> = {}): StoredCode {
  return {
    id,
    codeHash: secrets.hashCode("t1", "a@example.com", value),
    keyId: 1,
    expiresAt: clock.now() + 120_000,
    usedAt: null,
    supersededAt: null,
    exhaustedAt: null,
    failedAttempts: 0,
    ipAddress: "203.0.113.7",
    userAgent: "UA-1",
    ...over,
  };
}

function state(codes: StoredCode[], over: Partial<EmailState> = {}): EmailState {
  return { tenantId: "t1", emailId: "e1", userId: "u1", address: "a@example.com", lockedUntil: null, consecutiveFailures: 0, codes, ...over };
}

describe("judgeAttempt", () => {
  const now = clock.now();

  it("accepts the live code", () => {
    expect(judgeAttempt(state([code("2", "123456")]), "123456", now, secrets)).toEqual({ kind: "ok", codeId: "2" });
  });

  it("calls a wrong code wrong, against the live code", () => {
    expect(judgeAttempt(state([code("2", "123456")]), "654321", now, secrets)).toEqual({ kind: "wrong", codeId: "2" });
  });

  it("treats an unknown email like a wrong code", () => {
    expect(judgeAttempt(undefined, "123456", now, secrets)).toEqual({ kind: "wrong", codeId: undefined });
  });

  it("knows a superseded, used, exhausted or expired code", () => {
    const newer = code("3", "111111");
    expect(judgeAttempt(state([newer, code("2", "123456", { supersededAt: now - 1 })]), "123456", now, secrets)).toEqual({ kind: "stale", why: "superseded" });
    expect(judgeAttempt(state([code("2", "123456", { usedAt: now - 1 })]), "123456", now, secrets)).toEqual({ kind: "stale", why: "used" });
    expect(judgeAttempt(state([code("2", "123456", { exhaustedAt: now - 1 })]), "123456", now, secrets)).toEqual({ kind: "stale", why: "exhausted" });
    expect(judgeAttempt(state([code("2", "123456")]), "123456", now + 120_000, secrets)).toEqual({ kind: "stale", why: "expired" });
  });

  it("refuses a locked email even with the right code, until the lock ends", () => {
    const locked = state([code("2", "123456")], { lockedUntil: now + 1_000 });
    expect(judgeAttempt(locked, "123456", now, secrets)).toEqual({ kind: "locked", until: now + 1_000 });
    expect(judgeAttempt(locked, "123456", now + 1_000, secrets).kind).toBe("ok");
  });

  it("checks the client when asked", () => {
    const s = state([code("2", "123456")]);
    expect(judgeAttempt(s, "123456", now, secrets, { ipAddress: "203.0.113.8" })).toEqual({ kind: "client_mismatch", codeId: "2", field: "ip_address" });
    expect(judgeAttempt(s, "123456", now, secrets, { userAgent: "UA-2" })).toEqual({ kind: "client_mismatch", codeId: "2", field: "user_agent" });
    expect(judgeAttempt(s, "123456", now, secrets, { ipAddress: "203.0.113.7", userAgent: "UA-1" }).kind).toBe("ok");
  });
});

describe("failureEffects", () => {
  const now = clock.now();

  it("counts a try against the live code and kills it on the fifth", () => {
    const s4 = state([code("2", "123456", { failedAttempts: 3 })]);
    expect(failureEffects(s4, { kind: "wrong", codeId: "2" }, now, LIMITS)).toEqual({ codeId: "2", exhaustCode: false, countsTowardLock: true, lockUntil: null });
    const s5 = state([code("2", "123456", { failedAttempts: 4 })]);
    expect(failureEffects(s5, { kind: "wrong", codeId: "2" }, now, LIMITS).exhaustCode).toBe(true);
  });

  it("locks the email on the hundredth consecutive failure at a live code, for the configured time", () => {
    const s = state([code("2", "123456")], { consecutiveFailures: 98 });
    expect(failureEffects(s, { kind: "wrong", codeId: "2" }, now, LIMITS).lockUntil).toBeNull();
    const t = state([code("2", "123456")], { consecutiveFailures: 99 });
    expect(failureEffects(t, { kind: "wrong", codeId: "2" }, now, LIMITS)).toEqual({ codeId: "2", exhaustCode: false, countsTowardLock: true, lockUntil: now + 3_600_000 });
  });

  it("does not count a try when there is no live code to guess, so nobody locks a customer out without codes sent to them", () => {
    const t = state([code("2", "123456")], { consecutiveFailures: 99 });
    expect(failureEffects(t, { kind: "stale", why: "used" }, now, LIMITS)).toEqual({ codeId: undefined, exhaustCode: false, countsTowardLock: false, lockUntil: null });
    expect(failureEffects(t, { kind: "wrong", codeId: undefined }, now, LIMITS)).toEqual({ codeId: undefined, exhaustCode: false, countsTowardLock: false, lockUntil: null });
  });
});
