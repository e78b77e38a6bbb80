// Signing in with a passcode, end to end: Stytch POST /v1/otps/authenticate
// (and AuthenticateOtp over gRPC and Connect), the legacy portal's
// POST /api/sys/users/exchange (and ExchangeOtp over Connect), the sandbox,
// and the append-only audit trail. Real Postgres, real SMTP.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { OtpService } from "../../gen/otp/v1/otp_service_pb.js";
import { newId } from "../../src/domain/ids.js";
import { answer, emailFactory, expectStytchError, JWT, mailbox, REQUEST_ID, sleep, type Answer } from "../support/answers.js";
import { addTestUser, startTestEnv, type TestEnv, type TestProject } from "../support/app.js";
import { codeIn } from "../support/smtp.js";

let env: TestEnv;
/** A second instance on the same database, for races across instances. */
let secondUrl: string;
beforeAll(async () => {
  // Many sends to one address in a few seconds (the lock-out scenario needs
  // 21), and many failed checks from this one client: lift the per-email
  // send limits and the guessing budget, which are not under test here
  // (see legacy-no-oracle.test.ts and guessing-budget.test.ts).
  env = await startTestEnv({ RATE_LIMIT_EMAIL_BURST: "1000", RATE_LIMIT_EMAIL_DAILY_BURST: "1000", GUESS_LIMIT_CLIENT_BURST: "100000" });
  secondUrl = (await env.startInstance()).url;
});
afterAll(async () => {
  await env?.close();
});

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const freshEmail = emailFactory();
const { mailsTo, waitForMailTo } = mailbox(() => env.smtp);

const LEGACY_KEYS = ["WasSuccessful", "Value", "Status", "Message", "Errors"];
const USER_ID = /^user-test-[0-9a-f-]{36}$/;
const EMAIL_ID = /^email-test-[0-9a-f-]{36}$/;




function post(
  path: string,
  body: unknown,
  opts: { authorization?: string | null; base?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  const authorization = opts.authorization === undefined ? env.project.authorization : opts.authorization;
  if (authorization !== null) headers.authorization = authorization;
  return fetch(`${opts.base ?? env.url}${path}`, { method: "POST", headers, body: JSON.stringify(body) }).then(answer);
}

const authenticate = (body: Record<string, unknown>, opts: { authorization?: string | null; base?: string } = {}) =>
  post("/v1/otps/authenticate", body, opts);

interface Sent {
  readonly email: string;
  readonly emailId: string;
  readonly userId: string;
  readonly code: string;
}

/** login_or_create for `email`, then the code from the mail it caused. */
async function sendCode(
  email: string,
  extra: Record<string, unknown> = {},
  project: TestProject = env.project,
): Promise<Sent> {
  const before = mailsTo(email).length;
  const res = await post("/v1/otps/email/login_or_create", { email, ...extra }, { authorization: project.authorization });
  expect(res.status, res.text).toBe(200);
  const mail = await waitForMailTo(email, before + 1);
  return { email, emailId: res.body.email_id, userId: res.body.user_id, code: codeIn(mail) };
}

/** A 6-digit code that is not `code`. */
function wrongCode(code: string, offset = 1): string {
  return String((Number(code) + offset) % 1_000_000).padStart(6, "0");
}


/** A Stytch error body without its per-call request_id. */
function withoutRequestId(a: Answer): Record<string, unknown> {
  const { request_id: _ignored, ...rest } = a.body as Record<string, unknown>;
  return rest;
}

function expectRecent(iso: unknown, windowMs = 60_000): number {
  expect(typeof iso).toBe("string");
  const t = Date.parse(iso as string);
  expect(Number.isNaN(t)).toBe(false);
  expect(Math.abs(Date.now() - t)).toBeLessThan(windowMs);
  return t;
}

async function userStatus(userId: string): Promise<string | undefined> {
  const { rows } = await env.app.db.query<{ status: string }>("SELECT status FROM users WHERE id = $1", [userId]);
  return rows[0]?.status;
}

async function emailVerified(emailId: string): Promise<boolean | undefined> {
  const { rows } = await env.app.db.query<{ verified: boolean }>("SELECT verified FROM emails WHERE id = $1", [emailId]);
  return rows[0]?.verified;
}

// ---------------------------------------------------------------------------
// POST /v1/otps/authenticate: success
// ---------------------------------------------------------------------------

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
    const wrongSecret = `Basic ${Buffer.from(`${env.project.projectId}:not-the-secret`).toString("base64")}`;
    expectStytchError(
      await authenticate({ method_id: sent.emailId, code: sent.code }, { authorization: wrongSecret }),
      401,
      "unauthorized_credentials",
    );
    // The code was not spent by the refused calls.
    expect((await authenticate({ method_id: sent.emailId, code: sent.code })).status).toBe(200);
  });
});

// ---------------------------------------------------------------------------
// POST /v1/otps/authenticate: failures
// ---------------------------------------------------------------------------

describe("POST /v1/otps/authenticate: failures", () => {
  it("a wrong code → 404 otp_code_not_found; an unknown method_id answers identically", async () => {
    const sent = await sendCode(freshEmail("wrong"));
    const wrong = await authenticate({ method_id: sent.emailId, code: wrongCode(sent.code) });
    expectStytchError(wrong, 404, "otp_code_not_found");

    const unknown = await authenticate({ method_id: newId("email", false), code: sent.code });
    expectStytchError(unknown, 404, "otp_code_not_found");
    expect(withoutRequestId(unknown)).toEqual(withoutRequestId(wrong));

    // One wrong try does not spend the code.
    expect((await authenticate({ method_id: sent.emailId, code: sent.code })).status).toBe(200);
  });

  it("another project's method_id → 404 otp_code_not_found, identical to a wrong code", async () => {
    const other = await env.createProject("Other");
    const theirs = await sendCode(freshEmail("other-project"), {}, other);
    const mine = await sendCode(freshEmail("my-project"));

    const wrong = await authenticate({ method_id: mine.emailId, code: wrongCode(mine.code) });
    expectStytchError(wrong, 404, "otp_code_not_found");
    // Their method_id with their right code, but our credentials.
    const cross = await authenticate({ method_id: theirs.emailId, code: theirs.code });
    expectStytchError(cross, 404, "otp_code_not_found");
    expect(withoutRequestId(cross)).toEqual(withoutRequestId(wrong));

    // Attempts from another project, however many, do not count against the
    // owner's code (5 wrong tries would kill it) …
    for (let i = 0; i < 5; i++) {
      expectStytchError(await authenticate({ method_id: theirs.emailId, code: theirs.code }), 404, "otp_code_not_found");
    }
    // … so under its own project the same code works.
    const own = await authenticate({ method_id: theirs.emailId, code: theirs.code }, { authorization: other.authorization });
    expect(own.status, own.text).toBe(200);
    expect(own.body.user_id).toBe(theirs.userId);
  });

  it("an expired code → 401 unable_to_auth_otp_code", async () => {
    const sent = await sendCode(freshEmail("expired"));
    const { rowCount } = await env.app.db.query(
      "UPDATE otp_codes SET expires_at = now() - interval '1 second' WHERE email_id = $1 AND used_at IS NULL AND superseded_at IS NULL",
      [sent.emailId],
    );
    expect(rowCount).toBe(1);
    expectStytchError(await authenticate({ method_id: sent.emailId, code: sent.code }), 401, "unable_to_auth_otp_code");
    expect(await emailVerified(sent.emailId)).toBe(false);
  });

  it("a used code → 401 unable_to_auth_otp_code", async () => {
    const sent = await sendCode(freshEmail("used"));
    const first = await authenticate({ method_id: sent.emailId, code: sent.code });
    expect(first.status, first.text).toBe(200);
    expectStytchError(await authenticate({ method_id: sent.emailId, code: sent.code }), 401, "unable_to_auth_otp_code");
  });

  it("a superseded code → 401 unable_to_auth_otp_code; the newer code works", async () => {
    const email = freshEmail("superseded");
    const first = await sendCode(email);
    const second = await sendCode(email);
    expect(second.emailId).toBe(first.emailId);
    // Two independent 6-digit codes are equal once in a million; then this
    // scenario proves nothing, so say so rather than pass.
    expect(second.code, "the two sends drew the same code").not.toBe(first.code);
    expectStytchError(await authenticate({ method_id: first.emailId, code: first.code }), 401, "unable_to_auth_otp_code");
    const ok = await authenticate({ method_id: second.emailId, code: second.code });
    expect(ok.status, ok.text).toBe(200);
  });

  it("4 wrong tries leave the code usable", async () => {
    const sent = await sendCode(freshEmail("four-wrong"));
    for (let i = 1; i <= 4; i++) {
      expectStytchError(await authenticate({ method_id: sent.emailId, code: wrongCode(sent.code, i) }), 404, "otp_code_not_found");
    }
    const ok = await authenticate({ method_id: sent.emailId, code: sent.code });
    expect(ok.status, ok.text).toBe(200);
  });

  it("5 wrong tries kill the code: the right code then → 401 unable_to_auth_otp_code", async () => {
    const sent = await sendCode(freshEmail("five-wrong"));
    for (let i = 1; i <= 5; i++) {
      expectStytchError(await authenticate({ method_id: sent.emailId, code: wrongCode(sent.code, i) }), 404, "otp_code_not_found");
    }
    expectStytchError(await authenticate({ method_id: sent.emailId, code: sent.code }), 401, "unable_to_auth_otp_code");
    expect(await emailVerified(sent.emailId)).toBe(false);
  });

  it("100 consecutive failures on one email lock it: then even the right code → 429 user_lock_limit_reached", async () => {
    const email = freshEmail("lock");
    let sent: Sent | undefined;
    for (let i = 0; i < 100; i++) {
      // A fresh code every 5 tries, so each failure is a wrong guess at a
      // live code, across 20 codes.
      if (i % 5 === 0) sent = await sendCode(email);
      const res = await authenticate({ method_id: sent!.emailId, code: wrongCode(sent!.code, (i % 5) + 1) });
      expectStytchError(res, 404, "otp_code_not_found");
    }

    const fresh = await sendCode(email);
    const locked = await authenticate({ method_id: fresh.emailId, code: fresh.code });
    expectStytchError(locked, 429, "user_lock_limit_reached");
    expect(await emailVerified(fresh.emailId)).toBe(false);

    // The lock is the address's alone: another address of the project signs in.
    const bystander = await sendCode(freshEmail("bystander"));
    const ok = await authenticate({ method_id: bystander.emailId, code: bystander.code });
    expect(ok.status, ok.text).toBe(200);
  });

  it.each([
    ["session_duration_minutes 4", { session_duration_minutes: 4 }],
    ["session_duration_minutes 527041", { session_duration_minutes: 527041 }],
    ['code "12a456"', { code: "12a456" }],
    ['code ""', { code: "" }],
  ])("%s → 400 bad_request", async (_label, override) => {
    const sent = await sendCode(freshEmail("bad-input"));
    const res = await authenticate({ method_id: sent.emailId, code: sent.code, ...override });
    expectStytchError(res, 400, "bad_request");
  });

  it("a request rejected as malformed does not spend the code", async () => {
    const sent = await sendCode(freshEmail("bad-then-good"));
    expectStytchError(
      await authenticate({ method_id: sent.emailId, code: sent.code, session_duration_minutes: 4 }),
      400,
      "bad_request",
    );
    const ok = await authenticate({ method_id: sent.emailId, code: sent.code, session_duration_minutes: 5 });
    expect(ok.status, ok.text).toBe(200);
  });

  it("two simultaneous submits of the right code (two instances) → exactly one 200 and one 401", async () => {
    for (let round = 0; round < 5; round++) {
      const sent = await sendCode(freshEmail(`race-${round}`));
      const body = { method_id: sent.emailId, code: sent.code, session_duration_minutes: 5 };
      const answers = await Promise.all([authenticate(body), authenticate(body, { base: secondUrl })]);
      const statuses = answers.map((a) => a.status).sort();
      expect(statuses, `round ${round}: ${answers.map((a) => a.text).join(" | ")}`).toEqual([200, 401]);
      expectStytchError(answers.find((a) => a.status === 401)!, 401, "unable_to_auth_otp_code");
    }
  });
});

// ---------------------------------------------------------------------------
// Client match options
// ---------------------------------------------------------------------------

describe("POST /v1/otps/authenticate: ip and user agent match", () => {
  const atSend = { ip_address: "203.0.113.7", user_agent: "UA-1" };

  it("ip_match_required: another IP → 401; the send's IP → 200", async () => {
    const sent = await sendCode(freshEmail("ip-match"), { attributes: atSend });
    const options = { ip_match_required: true };
    expectStytchError(
      await authenticate({ method_id: sent.emailId, code: sent.code, options, attributes: { ...atSend, ip_address: "203.0.113.8" } }),
      401,
      "unable_to_auth_otp_code",
    );
    const ok = await authenticate({ method_id: sent.emailId, code: sent.code, options, attributes: atSend });
    expect(ok.status, ok.text).toBe(200);
  });

  it("user_agent_match_required: another agent → 401; the send's agent → 200", async () => {
    const sent = await sendCode(freshEmail("ua-match"), { attributes: atSend });
    const options = { user_agent_match_required: true };
    expectStytchError(
      await authenticate({ method_id: sent.emailId, code: sent.code, options, attributes: { ...atSend, user_agent: "UA-2" } }),
      401,
      "unable_to_auth_otp_code",
    );
    const ok = await authenticate({ method_id: sent.emailId, code: sent.code, options, attributes: atSend });
    expect(ok.status, ok.text).toBe(200);
  });

  it("without the options, another IP and agent are accepted", async () => {
    const sent = await sendCode(freshEmail("no-match"), { attributes: atSend });
    const ok = await authenticate({
      method_id: sent.emailId,
      code: sent.code,
      attributes: { ip_address: "203.0.113.99", user_agent: "UA-other" },
    });
    expect(ok.status, ok.text).toBe(200);
  });
});

// ---------------------------------------------------------------------------
// Sandbox
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// AuthenticateOtp and ExchangeOtp over gRPC and Connect
// ---------------------------------------------------------------------------

/** The ConnectError a call fails with; fails the test if the call succeeds. */
async function rejection(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return err as ConnectError;
  }
  throw new Error("expected the call to fail, but it succeeded");
}

describe("AuthenticateOtp and ExchangeOtp over gRPC and Connect", () => {
  it("AuthenticateOtp over gRPC with the authorization header starts a session", async () => {
    const client = createClient(OtpService, createGrpcTransport({ baseUrl: env.url }));
    const auth = { headers: { authorization: env.project.authorization } };
    const sent = await sendCode(freshEmail("grpc"));

    const missing = await rejection(client.authenticateOtp({ methodId: sent.emailId, code: sent.code }));
    expect(missing.code).toBe(Code.Unauthenticated);

    const res = await client.authenticateOtp({ methodId: sent.emailId, code: sent.code, sessionDurationMinutes: 30 }, auth);
    expect(res.statusCode).toBe(200);
    expect(res.requestId).toMatch(REQUEST_ID);
    expect(res.userId).toBe(sent.userId);
    expect(res.methodId).toBe(sent.emailId);
    expect(res.user?.userId).toBe(sent.userId);
    expect(res.user?.status).toBe("active");
    expect(res.user?.emails.map((e) => [e.emailId, e.email, e.verified])).toEqual([[sent.emailId, sent.email, true]]);
    expect(res.sessionToken.length).toBeGreaterThan(0);
    expect(res.sessionJwt).toMatch(JWT);
    expect(res.session?.userId).toBe(sent.userId);
    expect(res.session?.authenticationFactors.map((f) => [f.type, f.deliveryMethod, f.emailFactor?.emailId])).toEqual([
      ["otp", "email", sent.emailId],
    ]);
    const length = Number(res.session!.expiresAt!.seconds - res.session!.startedAt!.seconds);
    expect(Math.abs(length - 30 * 60)).toBeLessThanOrEqual(2);

    // Spent: the same code again is refused.
    const again = await rejection(client.authenticateOtp({ methodId: sent.emailId, code: sent.code }, auth));
    expect(again.findDetails(ErrorInfoSchema).map((i) => i.reason)).toEqual(["unable_to_auth_otp_code"]);
  });

  it("AuthenticateOtp over Connect JSON: NotFound with otp_code_not_found for a wrong code, then success", async () => {
    const client = createClient(
      OtpService,
      createConnectTransport({ baseUrl: env.url, httpVersion: "1.1", useBinaryFormat: false }),
    );
    const auth = { headers: { authorization: env.project.authorization } };
    const sent = await sendCode(freshEmail("connect"));

    const err = await rejection(client.authenticateOtp({ methodId: sent.emailId, code: wrongCode(sent.code) }, auth));
    expect(err.code).toBe(Code.NotFound);
    expect(err.findDetails(ErrorInfoSchema).map((i) => i.reason)).toEqual(["otp_code_not_found"]);

    const bad = await rejection(client.authenticateOtp({ methodId: sent.emailId, code: "12a456" }, auth));
    expect(bad.code).toBe(Code.InvalidArgument);

    const res = await client.authenticateOtp({ methodId: sent.emailId, code: sent.code }, auth);
    expect(res.statusCode).toBe(200);
    expect(res.userId).toBe(sent.userId);
    expect(res.methodId).toBe(sent.emailId);
    expect(res.session).toBeUndefined();
    expect(res.sessionToken).toBe("");
    expect(res.sessionJwt).toBe("");
  });

  it.each([
    ["Connect JSON", () => createConnectTransport({ baseUrl: env.url, httpVersion: "1.1", useBinaryFormat: false })],
    ["gRPC", () => createGrpcTransport({ baseUrl: env.url })],
  ])("ExchangeOtp over %s (public) exchanges a customer's code for a JWT", async (name, transport) => {
    const customer = await addCustomer(`exchange-${name.replace(/\W+/g, "-").toLowerCase()}`);
    const code = await legacySend(customer);
    const client = createClient(OtpService, transport());
    const res = await client.exchangeOtp({ email: customer, businessId: BigInt(env.businessId), otp: code });
    expect(res.wasSuccessful).toBe(true);
    expect(res.status).toBe(200);
    expect(res.value).toMatch(JWT);
    expect(res.message).toBeUndefined();

    const jwks = createLocalJWKSet(await businessJwksOf(env.businessId));
    const { payload } = await jwtVerify(res.value!, jwks);
    expect(payload.email).toBe(customer);

    // Spent: over Connect a refusal is an error, not an envelope.
    const again = await rejection(client.exchangeOtp({ email: customer, businessId: BigInt(env.businessId), otp: code }));
    expect(again.code).toBe(Code.InvalidArgument);
    const [badRequest] = again.findDetails(BadRequestSchema);
    expect(badRequest?.fieldViolations.map((v) => v.field)).toEqual(["otp"]);
  });
});

// ---------------------------------------------------------------------------
// Legacy POST /api/sys/users/exchange
// ---------------------------------------------------------------------------

/** The business's key set, which verifies its legacy tokens (each tenant has its own keys). */
async function businessJwksOf(businessId: number): Promise<{ keys: never[] }> {
  const res = await fetch(`${env.url}/api/sys/businesses/${businessId}/jwks`);
  expect(res.status).toBe(200);
  return (await res.json()) as { keys: never[] };
}

/** Adds a customer to env's business; returns the address. */
async function addCustomer(tag: string): Promise<string> {
  const business = await env.tenants.business(String(env.businessId));
  expect(business).toBeDefined();
  const address = freshEmail(tag);
  await addTestUser(env.app.db, business!.id, address);
  return address;
}

/** The legacy send for a customer; returns the code from the mail. */
async function legacySend(email: string): Promise<string> {
  const before = mailsTo(email).length;
  const res = await fetch(`${env.url}/api/sys/users/sendOtp?email=${encodeURIComponent(email)}&businessId=${env.businessId}`);
  expect(res.status).toBe(200);
  return codeIn(await waitForMailTo(email, before + 1));
}

const exchange = (body: Record<string, unknown>) => post("/api/sys/users/exchange", body, { authorization: null });

function expectLegacyOtpError(a: Answer): void {
  expect(a.status, a.text).toBe(400);
  expect(Object.keys(a.body)).toEqual(LEGACY_KEYS);
  expect(a.body.WasSuccessful).toBe(false);
  expect(a.body.Value).toBeNull();
  expect(a.body.Status).toBe(400);
  expect(typeof a.body.Message).toBe("string");
  expect(Object.keys(a.body.Errors ?? {})).toEqual(["otp"]);
  expect(Array.isArray(a.body.Errors.otp)).toBe(true);
  expect(a.body.Errors.otp.length).toBeGreaterThan(0);
}

describe("legacy POST /api/sys/users/exchange", () => {
  it("sendOtp, then exchange: the success envelope with a JWT for the customer and business", async () => {
    const code = await legacySend(env.customer);
    const res = await exchange({ email: env.customer, businessId: env.businessId, otp: code });
    expect(res.status, res.text).toBe(200);
    expect(Object.keys(res.body)).toEqual(LEGACY_KEYS);
    expect(res.body).toEqual({ WasSuccessful: true, Value: res.body.Value, Status: 200, Message: null, Errors: null });
    expect(res.body.Value).toMatch(JWT);

    const jwks = createLocalJWKSet(await businessJwksOf(env.businessId));
    const { payload, protectedHeader } = await jwtVerify(res.body.Value, jwks, {
      issuer: `otp-service/business/${env.businessId}`,
      audience: `business:${env.businessId}`,
    });
    expect(protectedHeader.alg).toBe("ES256");
    expect(typeof payload.sub).toBe("string");
    expect(payload.sub!.length).toBeGreaterThan(0);
    expect(payload.email).toBe(env.customer);
    expect(String(payload.business_id)).toBe(String(env.businessId));

    // The same code again: spent.
    expectLegacyOtpError(await exchange({ email: env.customer, businessId: env.businessId, otp: code }));
  });

  it("wrong code, reused code and unknown email all answer the same 400 envelope naming otp", async () => {
    const customer = await addCustomer("legacy-wrong");
    const code = await legacySend(customer);
    const wrong = await exchange({ email: customer, businessId: env.businessId, otp: wrongCode(code) });
    expectLegacyOtpError(wrong);

    const unknown = await exchange({ email: freshEmail("stranger"), businessId: env.businessId, otp: code });
    expectLegacyOtpError(unknown);
    expect(unknown.text).toBe(wrong.text);

    const ok = await exchange({ email: customer, businessId: env.businessId, otp: code });
    expect(ok.status, ok.text).toBe(200);
    const reused = await exchange({ email: customer, businessId: env.businessId, otp: code });
    expectLegacyOtpError(reused);
    expect(reused.text).toBe(wrong.text);
  });

  it("missing businessId → 400 envelope naming businessId", async () => {
    const res = await exchange({ email: env.customer, otp: "123456" });
    expect(res.status, res.text).toBe(400);
    expect(Object.keys(res.body)).toEqual(LEGACY_KEYS);
    expect(res.body.WasSuccessful).toBe(false);
    expect(res.body.Status).toBe(400);
    expect(Object.keys(res.body.Errors ?? {})).toEqual(["businessId"]);
  });
});

// ---------------------------------------------------------------------------
// Audit trail
// ---------------------------------------------------------------------------

interface AuditRow {
  tenant_id: string;
  action: string;
  user_id: string | null;
  email_id: string | null;
  ip_address: string | null;
  user_agent: string | null;
  outcome: string;
}

async function auditRows(where: string, params: unknown[], atLeast: number): Promise<AuditRow[]> {
  const deadline = Date.now() + 3_000;
  for (;;) {
    const { rows } = await env.app.db.query<AuditRow>(
      `SELECT tenant_id::text AS tenant_id, action, user_id, email_id, ip_address, user_agent, outcome
       FROM audit_events WHERE ${where} ORDER BY occurred_at`,
      params,
    );
    if (rows.length >= atLeast || Date.now() > deadline) return rows;
    await sleep(50);
  }
}

/** Every audit row as text, its timestamp cut out (its microseconds could look like a code). */
async function auditText(): Promise<string[]> {
  const { rows } = await env.app.db.query<{ row: string; at: string }>(
    "SELECT t::text AS row, t.occurred_at::text AS at FROM audit_events t",
  );
  return rows.map((r) => r.row.replace(r.at, ""));
}

function expectNoCode(rows: readonly string[], codes: readonly string[]): void {
  for (const code of codes) {
    const pattern = new RegExp(`(?<![0-9a-f])${code}(?![0-9a-f])`);
    for (const row of rows) expect(row, `code ${code} in an audit row`).not.toMatch(pattern);
  }
}

describe("audit_events", () => {
  it("records every send and authenticate with its outcome, and never the code", async () => {
    const tenant = (await env.tenants.projectCredentials(env.project.projectId))!.tenant;
    const attributes = { ip_address: "192.0.2.10", user_agent: "UA-audit" };
    const sent = await sendCode(freshEmail("audit"), { attributes });
    const wrong = wrongCode(sent.code);
    expect((await authenticate({ method_id: sent.emailId, code: wrong, attributes })).status).toBe(404);
    expect((await authenticate({ method_id: sent.emailId, code: sent.code, attributes })).status).toBe(200);

    const rows = await auditRows("email_id = $1", [sent.emailId], 3);
    expect(rows.map((r) => r.action)).toEqual(["send", "authenticate", "authenticate"]);
    expect(rows[0]!.outcome).toBe("ok");
    expect(rows[1]!.outcome).not.toBe("ok");
    expect(rows[1]!.outcome.length).toBeGreaterThan(0);
    expect(rows[2]!.outcome).toBe("ok");
    for (const row of rows) {
      expect(row.tenant_id).toBe(tenant.id);
      expect(row.user_id).toBe(sent.userId);
      expect(row.ip_address).toBe(attributes.ip_address);
      expect(row.user_agent).toBe(attributes.user_agent);
    }

    expectNoCode(await auditText(), [sent.code, wrong]);
  });

  it("records legacy sends and exchanges, failed ones (unknown email too) included, never the code", async () => {
    const business = (await env.tenants.business(String(env.businessId)))!;
    const customer = await addCustomer("audit-legacy");
    const code = await legacySend(customer);
    const wrong = wrongCode(code);
    expectLegacyOtpError(await exchange({ email: customer, businessId: env.businessId, otp: wrong }));
    expect((await exchange({ email: customer, businessId: env.businessId, otp: code })).status).toBe(200);

    const { rows: ids } = await env.app.db.query<{ id: string }>(
      "SELECT id FROM emails WHERE tenant_id = $1 AND address = $2",
      [business.id, customer],
    );
    expect(ids).toHaveLength(1);
    const rows = await auditRows("email_id = $1", [ids[0]!.id], 3);
    expect(rows.map((r) => [r.action, r.outcome === "ok"])).toEqual([
      ["send", true],
      ["exchange", false],
      ["exchange", true],
    ]);
    for (const row of rows) expect(row.tenant_id).toBe(business.id);

    // An exchange for an address no customer has is recorded as a failure.
    const countExchanges = async () =>
      Number(
        (
          await env.app.db.query<{ n: string }>(
            "SELECT count(*) AS n FROM audit_events WHERE tenant_id = $1 AND action = 'exchange' AND outcome <> 'ok'",
            [business.id],
          )
        ).rows[0]!.n,
      );
    const before = await countExchanges();
    expectLegacyOtpError(await exchange({ email: freshEmail("audit-stranger"), businessId: env.businessId, otp: code }));
    const deadline = Date.now() + 3_000;
    while ((await countExchanges()) === before && Date.now() < deadline) await sleep(50);
    expect(await countExchanges()).toBe(before + 1);

    expectNoCode(await auditText(), [code, wrong]);
  });

  it("is append-only: updating or deleting a row fails", async () => {
    const sent = await sendCode(freshEmail("append-only"));
    const rows = await auditRows("email_id = $1", [sent.emailId], 1);
    expect(rows).toHaveLength(1);
    await expect(
      env.app.db.query("UPDATE audit_events SET outcome = 'tampered' WHERE email_id = $1", [sent.emailId]),
    ).rejects.toThrow();
    await expect(env.app.db.query("DELETE FROM audit_events WHERE email_id = $1", [sent.emailId])).rejects.toThrow();
    expect(await auditRows("email_id = $1", [sent.emailId], 1)).toEqual(rows);
  });
});

describe("legacy JWT header", () => {
  it("names its key (kid), which the JWKS lists, and ES256", async () => {
    const customer = await addCustomer("kid");
    const code = await legacySend(customer);
    const res = await exchange({ email: customer, businessId: env.businessId, otp: code });
    expect(res.status, res.text).toBe(200);
    const header = decodeProtectedHeader(res.body.Value);
    expect(header.alg).toBe("ES256");
    expect(typeof header.kid).toBe("string");
    const keys = (await businessJwksOf(env.businessId)).keys as { kid: string }[];
    expect(keys.map((k) => k.kid)).toContain(header.kid);
  });
});
