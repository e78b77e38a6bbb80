// Stytch POST /v1/otps/authenticate with the right code: the exact body,
// sessions, pending users activated, the project's credentials, and the
// sandbox of a test project. Real Postgres, real SMTP.
import { describe, expect, it } from "vitest";
import { expectStytchError, JWT, REQUEST_ID, sleep } from "../support/answers.js";
import {
  authenticate,
  EMAIL_ID,
  emailVerified,
  env,
  expectRecent,
  freshEmail,
  mailsTo,
  post,
  sendCode,
  USER_ID,
  userStatus,
  useSignInEnv,
} from "../support/sign-in.js";

useSignInEnv();

describe("POST /v1/otps/authenticate: the right code", () => {
  it("without session_duration_minutes: exact body, email verified, no session", async () => {
    const sent = await sendCode(freshEmail("plain"));
    expect(await emailVerified(sent.emailId)).toBe(false);

    const res = await authenticate({ method_id: sent.emailId, code: sent.code });
    expect(res.status, res.text).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(
      ["method_id", "request_id", "session", "session_jwt", "session_token", "status_code", "user", "user_id"].sort(),
    );
    expect(res.body.status_code).toBe(200);
    expect(res.body.request_id).toMatch(REQUEST_ID);
    expect(res.body.user_id).toBe(sent.userId);
    expect(res.body.method_id).toBe(sent.emailId);
    expect(res.body.session).toBeNull();
    expect(res.body.session_token).toBe("");
    expect(res.body.session_jwt).toBe("");

    const user = res.body.user;
    expect(Object.keys(user).sort()).toEqual(["created_at", "emails", "status", "user_id"]);
    expect(user.user_id).toBe(sent.userId);
    expect(user.status).toBe("active");
    expect(user.emails).toEqual([{ email_id: sent.emailId, email: sent.email, verified: true }]);
    expectRecent(user.created_at);

    expect(await emailVerified(sent.emailId)).toBe(true);
  });

  it("activates a user created with create_user_as_pending", async () => {
    const sent = await sendCode(freshEmail("pending"), { create_user_as_pending: true });
    expect(await userStatus(sent.userId)).toBe("pending");

    const res = await authenticate({ method_id: sent.emailId, code: sent.code });
    expect(res.status, res.text).toBe(200);
    expect(res.body.user.status).toBe("active");
    expect(res.body.user.emails[0].verified).toBe(true);
    expect(await userStatus(sent.userId)).toBe("active");
  });

  it("with session_duration_minutes: a session, a token and a JWT", async () => {
    const sent = await sendCode(freshEmail("session"));
    const attributes = { ip_address: "198.51.100.23", user_agent: "UA-session" };
    const started = Date.now();
    const res = await authenticate({ method_id: sent.emailId, code: sent.code, session_duration_minutes: 60, attributes });
    expect(res.status, res.text).toBe(200);
    expect(typeof res.body.session_token).toBe("string");
    expect(res.body.session_token.length).toBeGreaterThan(0);
    expect(res.body.session_jwt).toMatch(JWT);

    const s = res.body.session;
    expect(s).not.toBeNull();
    expect(typeof s.session_id).toBe("string");
    expect(s.session_id.length).toBeGreaterThan(0);
    expect(s.user_id).toBe(sent.userId);
    const startedAt = expectRecent(s.started_at);
    expect(startedAt).toBeGreaterThanOrEqual(started - 2_000);
    expectRecent(s.last_accessed_at);
    const expiresAt = Date.parse(s.expires_at);
    expect(Math.abs(expiresAt - startedAt - 60 * 60_000)).toBeLessThan(2_000);
    expect(s.attributes).toEqual(attributes);
    expect(s.authentication_factors).toHaveLength(1);
    const factor = s.authentication_factors[0];
    expect(factor).toMatchObject({
      type: "otp",
      delivery_method: "email",
      email_factor: { email_id: sent.emailId, email_address: sent.email },
    });
    expectRecent(factor.last_authenticated_at);
  });

  it("accepts session_duration_minutes at both bounds, 5 and 527040", async () => {
    for (const minutes of [5, 527040]) {
      const sent = await sendCode(freshEmail(`bound-${minutes}`));
      const res = await authenticate({ method_id: sent.emailId, code: sent.code, session_duration_minutes: minutes });
      expect(res.status, `${minutes}: ${res.text}`).toBe(200);
      const s = res.body.session;
      const length = Date.parse(s.expires_at) - Date.parse(s.started_at);
      expect(Math.abs(length - minutes * 60_000), String(minutes)).toBeLessThan(2_000);
    }
  });

  it("needs the project's Basic credentials", async () => {
    const sent = await sendCode(freshEmail("noauth"));
    expectStytchError(await authenticate({ method_id: sent.emailId, code: sent.code }, { authorization: null }), 401, "unauthorized_credentials");
    const wrongSecret = `Basic ${Buffer.from(`${env().project.projectId}:not-the-secret`).toString("base64")}`;
    expectStytchError(
      await authenticate({ method_id: sent.emailId, code: sent.code }, { authorization: wrongSecret }),
      401,
      "unauthorized_credentials",
    );
    // The code was not spent by the refused calls.
    expect((await authenticate({ method_id: sent.emailId, code: sent.code })).status).toBe(200);
  });
});

describe("sandbox on a test project", () => {
  it("sandbox@stytch.com: 200, no mail, and code 000000 authenticates", async () => {
    const sandbox = "sandbox@stytch.com";
    const res = await post("/v1/otps/email/login_or_create", { email: sandbox });
    expect(res.status, res.text).toBe(200);
    expect(res.body.email_id).toMatch(EMAIL_ID);
    expect(res.body.user_id).toMatch(USER_ID);

    // A real send afterwards: once its mail has arrived (and a little more),
    // a mail for the sandbox would have arrived too.
    await sendCode(freshEmail("after-sandbox"));
    await sleep(700);
    expect(mailsTo(sandbox)).toHaveLength(0);

    const ok = await authenticate({ method_id: res.body.email_id, code: "000000" });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.user_id).toBe(res.body.user_id);
    expect(ok.body.method_id).toBe(res.body.email_id);
  });
});
