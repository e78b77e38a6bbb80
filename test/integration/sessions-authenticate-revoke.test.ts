// POST /v1/sessions/authenticate and /v1/sessions/revoke, and
// AuthenticateOtp extending an existing session instead of starting one.
// Real Postgres, real SMTP.
import { describe, expect, it } from "vitest";
import { PgSignInStore } from "../../src/storage/sign-in-store.js";
import { expectStytchError, JWT, REQUEST_ID } from "../support/answers.js";
import {
  authenticateSession,
  revokeSession,
  SESSION_CLAIM,
  signIn,
  verify,
} from "../support/sessions.js";
import { env, post, sendCode, useSignInEnv } from "../support/sign-in.js";

useSignInEnv();

const SESSION_AUTH_KEYS = ["request_id", "session", "session_jwt", "session_token", "status_code", "user"].sort();

describe("POST /v1/sessions/authenticate", () => {
  it("by session_token: 200 with the session, its token, a fresh JWT and the user", async () => {
    const signed = await signIn("by-token");
    const res = await authenticateSession({ session_token: signed.token });
    expect(res.status, res.text).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(SESSION_AUTH_KEYS);
    expect(res.body.status_code).toBe(200);
    expect(res.body.request_id).toMatch(REQUEST_ID);
    expect(res.body.session.session_id).toBe(signed.sessionId);
    expect(res.body.session.user_id).toBe(signed.sent.userId);
    expect(res.body.session_token).toBe(signed.token);
    expect(res.body.session_jwt).toMatch(JWT);
    expect(res.body.user.user_id).toBe(signed.sent.userId);
    expect(res.body.user.emails).toEqual([{ email_id: signed.sent.emailId, email: signed.sent.email, verified: true }]);
    const { payload } = await verify(res.body.session_jwt);
    expect(payload.sub).toBe(signed.sent.userId);
    expect((payload[SESSION_CLAIM] as { id: string }).id).toBe(signed.sessionId);
  });

  it("by session_jwt: 200 with the same session", async () => {
    const signed = await signIn("by-jwt");
    const res = await authenticateSession({ session_jwt: signed.jwt });
    expect(res.status, res.text).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(SESSION_AUTH_KEYS);
    expect(res.body.session.session_id).toBe(signed.sessionId);
    expect(res.body.user.user_id).toBe(signed.sent.userId);
    expect(res.body.session_jwt).toMatch(JWT);
  });

  it("with session_duration_minutes 60 moves expires_at later, and it stays moved", async () => {
    const signed = await signIn("extend", { session_duration_minutes: 5 });
    const before = Date.parse(signed.body.session.expires_at);
    expect(Math.abs(before - Date.now() - 5 * 60_000)).toBeLessThan(10_000);

    const res = await authenticateSession({ session_token: signed.token, session_duration_minutes: 60 });
    expect(res.status, res.text).toBe(200);
    const after = Date.parse(res.body.session.expires_at);
    expect(after).toBeGreaterThan(before + 50 * 60_000);
    expect(Math.abs(after - Date.now() - 60 * 60_000)).toBeLessThan(10_000);

    const again = await authenticateSession({ session_token: signed.token });
    expect(again.status, again.text).toBe(200);
    expect(Date.parse(again.body.session.expires_at)).toBe(after);
  });

  it("an unknown session_token → 404 session_not_found", async () => {
    expectStytchError(
      await authenticateSession({ session_token: "no-such-session-token-0123456789abcdef0123456789" }),
      404,
      "session_not_found",
    );
  });

  it("needs the project's credentials, and another project cannot see the session", async () => {
    const signed = await signIn("isolation");
    expectStytchError(await authenticateSession({ session_token: signed.token }, null), 401, "unauthorized_credentials");
    const other = await env().createProject("Other");
    expectStytchError(
      await authenticateSession({ session_token: signed.token }, other.authorization),
      404,
      "session_not_found",
    );
    expectStytchError(await revokeSession({ session_token: signed.token }, other.authorization), 404, "session_not_found");
    // Still alive for its own project.
    expect((await authenticateSession({ session_token: signed.token })).status).toBe(200);
  });
});

describe("POST /v1/sessions/revoke", () => {
  it("by session_token: 200 {request_id, status_code}; then the token and the JWT → 404 session_not_found", async () => {
    const signed = await signIn("revoke-token");
    const res = await revokeSession({ session_token: signed.token });
    expect(res.status, res.text).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(["request_id", "status_code"]);
    expect(res.body.status_code).toBe(200);
    expect(res.body.request_id).toMatch(REQUEST_ID);
    expectStytchError(await authenticateSession({ session_token: signed.token }), 404, "session_not_found");
    expectStytchError(await authenticateSession({ session_jwt: signed.jwt }), 404, "session_not_found");
  });

  it("by session_id: 200; then → 404 session_not_found; the user's other session lives on", async () => {
    const signed = await signIn("revoke-id");
    // A second session for the same user.
    const again = await sendCode(signed.sent.email);
    const second = await post("/v1/otps/authenticate", { method_id: again.emailId, code: again.code, session_duration_minutes: 60 });
    expect(second.status, second.text).toBe(200);
    expect(second.body.session.session_id).not.toBe(signed.sessionId);

    const res = await revokeSession({ session_id: signed.sessionId });
    expect(res.status, res.text).toBe(200);
    expectStytchError(await authenticateSession({ session_token: signed.token }), 404, "session_not_found");
    const other = await authenticateSession({ session_token: second.body.session_token });
    expect(other.status, other.text).toBe(200);
    expect(other.body.session.session_id).toBe(second.body.session.session_id);
  });

  it("by session_jwt: 200; then → 404 session_not_found", async () => {
    const signed = await signIn("revoke-jwt");
    const res = await revokeSession({ session_jwt: signed.jwt });
    expect(res.status, res.text).toBe(200);
    expectStytchError(await authenticateSession({ session_token: signed.token }), 404, "session_not_found");
  });
});

describe("POST /v1/otps/authenticate with an existing session", () => {
  it("extends the existing session instead of starting another", async () => {
    const signed = await signIn("extend-otp", { session_duration_minutes: 5 });
    const again = await sendCode(signed.sent.email);
    const res = await post("/v1/otps/authenticate", {
      method_id: again.emailId,
      code: again.code,
      session_token: signed.token,
      session_duration_minutes: 60,
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body.session.session_id).toBe(signed.sessionId);
    expect(res.body.session.user_id).toBe(signed.sent.userId);
    expect(Date.parse(res.body.session.expires_at)).toBeGreaterThan(Date.parse(signed.body.session.expires_at) + 50 * 60_000);
  });

  it("with session_jwt likewise extends the existing session", async () => {
    const signed = await signIn("extend-otp-jwt", { session_duration_minutes: 5 });
    const again = await sendCode(signed.sent.email);
    const res = await post("/v1/otps/authenticate", {
      method_id: again.emailId,
      code: again.code,
      session_jwt: signed.jwt,
      session_duration_minutes: 60,
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body.session.session_id).toBe(signed.sessionId);
    expect(res.body.session_jwt).toMatch(JWT);
    expect(((await verify(res.body.session_jwt)).payload[SESSION_CLAIM] as { id: string }).id).toBe(signed.sessionId);
  });
});

describe("a session's refresh in Postgres (PgSignInStore.updateSession)", () => {
  it("refreshes a live session, and not one revoked since it was read: the revoke wins a race with a refresh", async () => {
    const store = new PgSignInStore(env().app.db);
    const live = await signIn("refresh-live");
    const now = Date.now();
    const refreshed = await store.updateSession(live.sessionId, { now, expiresAt: now + 3_600_000, factors: undefined, customClaims: undefined });
    expect(refreshed?.id).toBe(live.sessionId);

    const revoked = await signIn("refresh-revoked");
    await store.revokeSession(revoked.sessionId);
    const { rows } = await env().app.db.query("SELECT expires_at FROM sessions WHERE id = $1", [revoked.sessionId]);
    expect(await store.updateSession(revoked.sessionId, { now, expiresAt: now + 3_600_000, factors: undefined, customClaims: undefined })).toBeUndefined();
    const after = await env().app.db.query("SELECT expires_at FROM sessions WHERE id = $1", [revoked.sessionId]);
    expect(after.rows[0].expires_at).toEqual(rows[0].expires_at);
  });
});
