// The SignIn use case through in-memory fakes of its ports (the sign-in
// store, the key store) and a fake clock: what a right, wrong, expired,
// exhausted or superseded code does, the lock on an address, and the
// guessing budget. No database.
import { describe, expect, it } from "vitest";
import { MINUTE, POLICY, refusal, setup } from "../support/sign-in-use-case.js";

describe("SignIn.authenticateOtp: the code", () => {
  it("the right code: the user is active, the address verified, the code spent, the check audited and its guess refunded", async () => {
    const { store, issue, authenticate } = setup();
    const { emailId, userId } = issue();
    const { user, issued } = await authenticate(emailId, "123456");
    expect(user).toMatchObject({ userId, status: "active", emails: [{ emailId, email: "jane@example.com", verified: true }] });
    expect(issued).toBeUndefined();
    expect(store.email(emailId).codes[0]!.usedAt).not.toBeNull();
    expect(store.auditLog).toEqual([expect.objectContaining({ action: "authenticate", outcome: "ok", emailId, userId })]);
    expect([...store.guesses.values()]).toEqual([0]);
    // Spent: the same code again is stale.
    expect((await refusal(authenticate(emailId, "123456"))).reason).toBe("unable_to_auth_otp_code");
  });

  it("a wrong code: otp_code_not_found; the try is counted, audited and its guess kept", async () => {
    const { store, issue, authenticate } = setup();
    const { emailId } = issue();
    const err = await refusal(authenticate(emailId, "654321"));
    expect(err.reason).toBe("otp_code_not_found");
    expect(store.email(emailId).codes[0]!.failedAttempts).toBe(1);
    expect(store.email(emailId).consecutiveFailures).toBe(1);
    expect(store.auditLog.map((e) => e.outcome)).toEqual(["wrong"]);
    expect([...store.guesses.values()]).toEqual([1]);
  });

  it("an unknown method_id answers as a wrong code does", async () => {
    const { issue, authenticate } = setup();
    issue();
    const unknown = await refusal(authenticate("email-nope", "123456"));
    const { emailId } = issue("111111", "other@example.com");
    const wrong = await refusal(authenticate(emailId, "222222"));
    expect([unknown.reason, unknown.message]).toEqual([wrong.reason, wrong.message]);
  });

  it("expiry: the right code after its TTL is unable_to_auth_otp_code (expired); a second earlier it works", async () => {
    const { clock, store, issue, authenticate } = setup();
    const late = issue("123456", "late@example.com");
    const onTime = issue("123456", "ontime@example.com");
    clock.advance(10 * MINUTE - 1_000);
    await expect(authenticate(onTime.emailId, "123456")).resolves.toBeDefined();
    clock.advance(1_000);
    const err = await refusal(authenticate(late.emailId, "123456"));
    expect(err.reason).toBe("unable_to_auth_otp_code");
    expect(err.message).toMatch(/expired/);
    expect(store.auditLog.at(-1)).toMatchObject({ outcome: "stale", reason: "expired" });
  });

  it("perCode wrong tries exhaust the code: the right code is then stale; one fewer leaves it usable", async () => {
    const { issue, authenticate } = setup();
    const usable = issue("123456", "usable@example.com");
    for (let i = 0; i < POLICY.attempts.perCode - 1; i++) await refusal(authenticate(usable.emailId, "000000"));
    await expect(authenticate(usable.emailId, "123456")).resolves.toBeDefined();

    const dead = issue("123456", "dead@example.com");
    for (let i = 0; i < POLICY.attempts.perCode; i++) await refusal(authenticate(dead.emailId, "000000"));
    const err = await refusal(authenticate(dead.emailId, "123456"));
    expect(err.reason).toBe("unable_to_auth_otp_code");
    expect(err.message).toMatch(/exhausted/);
  });

  it("a superseded code is stale; the newer one works", async () => {
    const { issue, authenticate } = setup();
    const first = issue("111111");
    issue("222222");
    expect((await refusal(authenticate(first.emailId, "111111"))).message).toMatch(/superseded/);
    await expect(authenticate(first.emailId, "222222")).resolves.toBeDefined();
  });

  it("ip_address match: the code from another address is refused, from the send's address accepted", async () => {
    const { issue, authenticate } = setup();
    const { emailId } = issue();
    const err = await refusal(authenticate(emailId, "123456", { match: { ipAddress: "198.51.100.1" } }));
    expect(err.message).toMatch(/ip_address/);
    await expect(authenticate(emailId, "123456", { match: { ipAddress: "203.0.113.9" } })).resolves.toBeDefined();
  });
});

describe("SignIn.authenticateOtp: the lock and the guessing budget", () => {
  it("lockThreshold failures lock the address: even the right code is user_lock_limit_reached until lockMinutes pass", async () => {
    const { clock, issue, authenticate } = setup();
    let sent = issue("123456");
    for (let i = 0; i < POLICY.attempts.lockThreshold; i++) {
      // A fresh code whenever one is exhausted: only tries at a live code count towards the lock.
      if (i % POLICY.attempts.perCode === 0) sent = issue("123456");
      await refusal(authenticate(sent.emailId, "000000"));
    }
    sent = issue("123456");
    const err = await refusal(authenticate(sent.emailId, "123456"));
    expect(err.reason).toBe("user_lock_limit_reached");
    expect(err.details.retryAfterMs).toBe(POLICY.attempts.lockMinutes * MINUTE);

    clock.advance(POLICY.attempts.lockMinutes * MINUTE);
    sent = issue("123456");
    await expect(authenticate(sent.emailId, "123456")).resolves.toBeDefined();
  });

  it("over the guessing budget: rate_limited before any check (nothing audited, no try counted)", async () => {
    const { store, issue, authenticate } = setup({ guessLimit: { burst: 2, periodMs: 36_000 } });
    const { emailId } = issue();
    await refusal(authenticate(emailId, "000000"));
    await refusal(authenticate(emailId, "000001"));
    const err = await refusal(authenticate(emailId, "123456"));
    expect(err.reason).toBe("rate_limited");
    expect(err.details).toMatchObject({ retryAfterMs: 36_000, limit: "guess" });
    expect(store.auditLog).toHaveLength(2);
    expect(store.email(emailId).codes[0]!.usedAt).toBeNull();
  });
});
