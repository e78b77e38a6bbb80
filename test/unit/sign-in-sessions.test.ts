// The SignIn use case's sessions and legacy exchange through in-memory
// fakes of its ports and a fake clock: a session started by a code, checked
// and extended by token or JWT, revoked, expired; custom claims refused;
// the legacy exchange's one answer and its response floor. No database.
import { describe, expect, it } from "vitest";
import type { Tenant } from "../../src/domain/tenants.js";
import { hashToken, legacyIssuerOf, SESSION_CLAIM } from "../../src/domain/sign-in.js";
import { MINUTE, project, refusal, setup } from "../support/sign-in-use-case.js";

const business: Tenant = { ...project, id: "42", kind: "business", externalId: "7", name: "Harbour Yoga" };

/** Signs in jane@example.com with a 60-minute session. */
async function signedIn(s: ReturnType<typeof setup>, address = "jane@example.com") {
  const { emailId, userId } = s.issue("123456", address);
  const { issued } = await s.authenticate(emailId, "123456", { sessionDurationMinutes: 60 });
  return { emailId, userId, issued: issued! };
}

describe("SignIn sessions", () => {
  it("a code with session_duration_minutes starts a session: a 256-bit token stored only hashed, and a JWT naming it", async () => {
    const s = setup();
    const { emailId, userId, issued } = await signedIn(s);
    expect(issued.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const stored = s.store.sessions.get(issued.session.id)!;
    expect(stored.tokenHash).toEqual(hashToken(issued.token));
    expect(stored).toMatchObject({ userId, startedAt: s.clock.now(), expiresAt: s.clock.now() + 60 * MINUTE, ipAddress: "203.0.113.9" });
    expect(stored.factors).toEqual([expect.objectContaining({ email_factor: { email_id: emailId, email_address: "jane@example.com" } })]);
    const claims = await s.keys.verify(project, issued.jwt, { issuer: `stytch.com/${project.externalId}`, audience: project.externalId, nowMs: s.clock.now() });
    expect(claims).toMatchObject({ sub: userId, [SESSION_CLAIM]: { id: issued.session.id } });
  });

  it("authenticateSession by token or by JWT: the same session, extended when a duration is given", async () => {
    const s = setup();
    const { issued } = await signedIn(s);
    s.clock.advance(10 * MINUTE);
    const byToken = await s.signIn.authenticateSession(project, { token: issued.token }, 120, undefined);
    expect(byToken.session).toMatchObject({ id: issued.session.id, lastAccessedAt: s.clock.now(), expiresAt: s.clock.now() + 120 * MINUTE });
    const byJwt = await s.signIn.authenticateSession(project, { jwt: byToken.jwt }, undefined, { role: "admin" });
    expect(byJwt.session).toMatchObject({ id: issued.session.id, expiresAt: byToken.session.expiresAt, customClaims: { role: "admin" } });
    expect(byJwt.user.status).toBe("active");
  });

  it("a session past its expiry is session_not_found", async () => {
    const s = setup();
    const { issued } = await signedIn(s);
    s.clock.advance(60 * MINUTE);
    expect((await refusal(s.signIn.authenticateSession(project, { token: issued.token }, undefined, undefined))).reason).toBe("session_not_found");
  });

  it("revokeSession by token: the token and the JWT are then session_not_found, and a second revoke too", async () => {
    const s = setup();
    const { issued } = await signedIn(s);
    await s.signIn.revokeSession(project, { token: issued.token });
    for (const handle of [{ token: issued.token }, { jwt: issued.jwt }]) {
      expect((await refusal(s.signIn.authenticateSession(project, handle, undefined, undefined))).reason).toBe("session_not_found");
    }
    expect((await refusal(s.signIn.revokeSession(project, { token: issued.token }))).reason).toBe("session_not_found");
  });

  it("a revoke that lands between the session's check and its refresh wins: session_not_found, no JWT, nothing extended", async () => {
    const s = setup();
    const { issued } = await signedIn(s);
    // The check reads the session while it is live; the revoke commits before the refresh's write.
    const find = s.store.sessionByTokenHash.bind(s.store);
    s.store.sessionByTokenHash = async (tenantId, tokenHash) => {
      const live = await find(tenantId, tokenHash);
      await s.store.revokeSession(issued.session.id);
      return live;
    };
    const expiresAt = s.store.sessions.get(issued.session.id)!.expiresAt;
    expect((await refusal(s.signIn.authenticateSession(project, { token: issued.token }, 600, undefined))).reason).toBe("session_not_found");
    expect(s.store.sessions.get(issued.session.id)!.expiresAt).toBe(expiresAt);
  });

  it("revokeSession by session_id ends that session only; another tenant cannot name it", async () => {
    const s = setup();
    const first = await signedIn(s);
    const second = await signedIn(s);
    expect((await refusal(s.signIn.revokeSession(business, { sessionId: first.issued.session.id }))).reason).toBe("session_not_found");
    await s.signIn.revokeSession(project, { sessionId: first.issued.session.id });
    await expect(s.signIn.authenticateSession(project, { token: second.issued.token }, undefined, undefined)).resolves.toBeDefined();
  });

  it("a code presented with another user's session: session_not_found, and no session is changed", async () => {
    const s = setup();
    const jane = await signedIn(s, "jane@example.com");
    const { emailId } = s.issue("654321", "joe@example.com");
    const err = await refusal(s.authenticate(emailId, "654321", { existing: { token: jane.issued.token }, sessionDurationMinutes: 5 }));
    expect(err.reason).toBe("session_not_found");
    expect(s.store.sessions.get(jane.issued.session.id)!.expiresAt).toBe(jane.issued.session.expiresAt);
  });

  it("a code with the user's own session extends it instead of starting another", async () => {
    const s = setup();
    const { emailId, issued } = await signedIn(s);
    s.issue("222222");
    s.clock.advance(MINUTE);
    const again = await s.authenticate(emailId, "222222", { existing: { token: issued.token }, sessionDurationMinutes: 30 });
    expect(again.issued!.session.id).toBe(issued.session.id);
    expect(again.issued!.session.expiresAt).toBe(s.clock.now() + 30 * MINUTE);
    expect(s.store.sessions.size).toBe(1);
  });

  it.each([
    [{ sub: "someone-else" }, /reserved claim "sub"/],
    [{ [SESSION_CLAIM]: {} }, /reserved claim/],
    [{ big: "x".repeat(4_100) }, /at most 4 KB/],
  ])("custom claims %j are invalid_argument, before any check", async (claims, message) => {
    const s = setup();
    const { emailId } = s.issue();
    const err = await refusal(s.authenticate(emailId, "123456", { customClaims: claims }));
    expect(err.reason).toBe("invalid_argument");
    expect(err.message).toMatch(message);
    expect(s.store.auditLog).toEqual([]);
  });
});

describe("SignIn.exchangeOtp (legacy)", () => {
  it("the right code: a token for the customer, issued by the business, for the policy's TTL", async () => {
    const s = setup();
    const { userId } = s.issue("123456", "jane@example.com", business);
    const jwt = await s.signIn.exchangeOtp(business, " Jane@Example.com ", "123456", { ipAddress: "203.0.113.9", userAgent: "UA" });
    const claims = await s.keys.verify(business, jwt, { issuer: legacyIssuerOf(business), audience: "business:7", nowMs: s.clock.now() });
    expect(claims).toMatchObject({ sub: userId, email: "jane@example.com", business_id: 7 });
    expect(claims!.exp! - claims!.iat!).toBe(60 * 60);
  });

  it("a wrong code, a spent code and an unknown address get one answer", async () => {
    const s = setup();
    s.issue("123456", "jane@example.com", business);
    const client = { ipAddress: "203.0.113.9", userAgent: "UA" };
    const wrong = await refusal(s.signIn.exchangeOtp(business, "jane@example.com", "000000", client));
    await s.signIn.exchangeOtp(business, "jane@example.com", "123456", client);
    const spent = await refusal(s.signIn.exchangeOtp(business, "jane@example.com", "123456", client));
    const stranger = await refusal(s.signIn.exchangeOtp(business, "nobody@example.com", "123456", client));
    for (const err of [spent, stranger]) expect([err.reason, err.message, err.details]).toEqual([wrong.reason, wrong.message, wrong.details]);
    expect(wrong.message).toBe("otp is invalid or expired");
  });

  it("answers no sooner than legacyMinResponseMs, success or failure", async () => {
    const s = setup({ legacyMinResponseMs: 40 });
    s.issue("123456", "jane@example.com", business);
    const client = { ipAddress: "203.0.113.9", userAgent: "UA" };
    for (const code of ["000000", "123456"]) {
      const started = performance.now();
      await s.signIn.exchangeOtp(business, "jane@example.com", code, client).catch(() => undefined);
      // Timers may fire up to a millisecond early.
      expect(performance.now() - started).toBeGreaterThanOrEqual(39);
    }
  });
});
