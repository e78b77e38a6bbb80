// Sessions that AuthenticateOtp starts, end to end: the session JWT verified
// with a standard JOSE library against the public JWKS route,
// POST /v1/sessions/authenticate and /v1/sessions/revoke, custom claims, and
// SessionService over Connect. Real Postgres, real SMTP.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { SessionService } from "../../gen/otp/v1/otp_service_pb.js";
import { answer, emailFactory, expectStytchError, JWT, type Json, mailbox, REQUEST_ID, type Answer } from "../support/answers.js";
import { startTestEnv, type TestEnv, type TestProject } from "../support/app.js";
import { codeIn } from "../support/smtp.js";

let env: TestEnv;
beforeAll(async () => {
  // Several sign-ins per address in a few seconds; the per-email send limit
  // is not under test here.
  env = await startTestEnv({ RATE_LIMIT_EMAIL_BURST: "1000" });
});
afterAll(async () => {
  await env?.close();
});

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const freshEmail = emailFactory();
const { mailsTo, waitForMailTo } = mailbox(() => env.smtp);

const B64URL_32 = /^[A-Za-z0-9_-]{43}$/;
const SESSION_CLAIM = "https://stytch.com/session";




function post(path: string, body: unknown, authorization: string | null = env.project.authorization): Promise<Answer> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (authorization !== null) headers.authorization = authorization;
  return fetch(`${env.url}${path}`, { method: "POST", headers, body: JSON.stringify(body) }).then(answer);
}


interface Sent {
  readonly email: string;
  readonly emailId: string;
  readonly userId: string;
  readonly code: string;
}

async function sendCode(email: string, project: TestProject = env.project): Promise<Sent> {
  const before = mailsTo(email).length;
  const res = await post("/v1/otps/email/login_or_create", { email }, project.authorization);
  expect(res.status, res.text).toBe(200);
  const mail = await waitForMailTo(email, before + 1);
  return { email, emailId: res.body.email_id, userId: res.body.user_id, code: codeIn(mail) };
}

interface SignedIn {
  readonly sent: Sent;
  /** The AuthenticateOtp answer. */
  readonly body: Json;
  readonly token: string;
  readonly jwt: string;
  readonly sessionId: string;
}

/** A fresh address signed in with a session. */
async function signIn(
  tag: string,
  extra: Record<string, unknown> = {},
  project: TestProject = env.project,
): Promise<SignedIn> {
  const sent = await sendCode(freshEmail(tag), project);
  const res = await post(
    "/v1/otps/authenticate",
    { method_id: sent.emailId, code: sent.code, session_duration_minutes: 60, ...extra },
    project.authorization,
  );
  expect(res.status, res.text).toBe(200);
  return {
    sent,
    body: res.body,
    token: res.body.session_token,
    jwt: res.body.session_jwt,
    sessionId: res.body.session?.session_id,
  };
}

const authenticateSession = (body: Record<string, unknown>, authorization?: string | null) =>
  post("/v1/sessions/authenticate", body, authorization);
const revokeSession = (body: Record<string, unknown>, authorization?: string | null) =>
  post("/v1/sessions/revoke", body, authorization);

async function jwks(projectId: string): Promise<Answer> {
  return answer(await fetch(`${env.url}/v1/sessions/jwks/${projectId}`));
}

async function verify(jwt: string, projectId = env.project.projectId) {
  const set = (await jwks(projectId)).body;
  return jwtVerify(jwt, createLocalJWKSet(set), { algorithms: ["ES256"] });
}

function audiences(payload: JWTPayload): string[] {
  return Array.isArray(payload.aud) ? payload.aud : payload.aud === undefined ? [] : [payload.aud];
}

function closeInTime(a: unknown, b: unknown, toleranceMs = 1_000): void {
  expect(typeof a).toBe("string");
  expect(typeof b).toBe("string");
  const ta = Date.parse(a as string);
  const tb = Date.parse(b as string);
  expect(Number.isNaN(ta), String(a)).toBe(false);
  expect(Number.isNaN(tb), String(b)).toBe(false);
  expect(Math.abs(ta - tb), `${String(a)} vs ${String(b)}`).toBeLessThanOrEqual(toleranceMs);
}

// ---------------------------------------------------------------------------
// JWKS
// ---------------------------------------------------------------------------

describe("GET /v1/sessions/jwks/{project_id}", () => {
  it("is public and answers the P-256 signing keys in JWK form", async () => {
    const res = await jwks(env.project.projectId);
    expect(res.status, res.text).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(["keys", "request_id", "status_code"]);
    expect(res.body.status_code).toBe(200);
    expect(res.body.request_id).toMatch(/^request-id-(test|live)-[0-9a-f-]{36}$/);
    expect(res.body.keys.length).toBeGreaterThanOrEqual(1);
    for (const key of res.body.keys) {
      expect(Object.keys(key).sort()).toEqual(["alg", "crv", "kid", "kty", "use", "x", "y"]);
      expect(key).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });
      expect(key.x).toMatch(B64URL_32);
      expect(key.y).toMatch(B64URL_32);
      expect(typeof key.kid).toBe("string");
      expect(key.kid.length).toBeGreaterThan(0);
      // Public keys only.
      expect(key).not.toHaveProperty("d");
    }
  });

  it("GetJwks over Connect JSON, without authorization, answers the same keys", async () => {
    const client = createClient(
      SessionService,
      createConnectTransport({ baseUrl: env.url, httpVersion: "1.1", useBinaryFormat: false }),
    );
    const res = await client.getJwks({ projectId: env.project.projectId });
    expect(res.statusCode).toBe(200);
    expect(res.requestId.length).toBeGreaterThan(0);
    const rest = (await jwks(env.project.projectId)).body;
    expect(res.keys.map((k) => ({ kty: k.kty, crv: k.crv, x: k.x, y: k.y, kid: k.kid, alg: k.alg, use: k.use }))).toEqual(
      rest.keys,
    );
  });
});

// ---------------------------------------------------------------------------
// The session JWT
// ---------------------------------------------------------------------------

describe("the session JWT", () => {
  it("verifies against the JWKS and carries the Stytch claims and the custom claims", async () => {
    const customClaims = { role: "admin", org: { id: 42, name: "Acme", tags: ["a", "b"] } };
    const attributes = { ip_address: "198.51.100.4", user_agent: "UA-jwt" };
    const signed = await signIn("jwt", { session_custom_claims: customClaims, attributes });
    const session = signed.body.session;
    const projectId = env.project.projectId;

    expect(Object.keys(session).sort()).toEqual(
      [
        "attributes",
        "authentication_factors",
        "custom_claims",
        "expires_at",
        "last_accessed_at",
        "session_id",
        "started_at",
        "user_id",
      ].sort(),
    );
    expect(session.custom_claims).toEqual(customClaims);

    const header = decodeProtectedHeader(signed.jwt);
    expect(header.alg).toBe("ES256");
    expect(typeof header.kid).toBe("string");
    const keys = (await jwks(projectId)).body.keys as { kid: string }[];
    expect(keys.map((k) => k.kid)).toContain(header.kid);

    const { payload, protectedHeader } = await verify(signed.jwt);
    expect(protectedHeader.kid).toBe(header.kid);
    expect(payload.sub).toBe(signed.sent.userId);
    expect(audiences(payload)).toContain(projectId);
    expect(payload.iss).toBe(`stytch.com/${projectId}`);
    expect(typeof payload.iat).toBe("number");
    expect(payload.exp! - payload.iat!).toBe(300);
    expect(Math.abs(payload.iat! - Date.now() / 1000)).toBeLessThan(60);

    const claim = payload[SESSION_CLAIM] as Record<string, unknown>;
    expect(claim).toBeTypeOf("object");
    expect(Object.keys(claim).sort()).toEqual(
      ["attributes", "authentication_factors", "expires_at", "id", "last_accessed_at", "started_at"].sort(),
    );
    expect(claim.id).toBe(signed.sessionId);
    closeInTime(claim.started_at, session.started_at);
    closeInTime(claim.last_accessed_at, session.last_accessed_at);
    closeInTime(claim.expires_at, session.expires_at);
    expect(claim.attributes).toEqual(attributes);
    const factors = claim.authentication_factors as Record<string, unknown>[];
    expect(factors).toHaveLength(1);
    expect(factors[0]).toMatchObject({
      type: "otp",
      delivery_method: "email",
      email_factor: { email_id: signed.sent.emailId, email_address: signed.sent.email },
    });
    closeInTime(factors[0]!.last_authenticated_at, session.authentication_factors[0].last_authenticated_at);

    // Custom claims sit at the top level.
    expect(payload.role).toBe("admin");
    expect(payload.org).toEqual(customClaims.org);
  });

  it("a JWT altered after signing does not verify", async () => {
    const signed = await signIn("tamper");
    const [h, p, s] = signed.jwt.split(".");
    const claims = JSON.parse(Buffer.from(p!, "base64url").toString("utf8"));
    claims.sub = "user-test-00000000-0000-0000-0000-000000000000";
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${s}`;
    await expect(verify(forged)).rejects.toThrow();
    await expect(verify(signed.jwt)).resolves.toBeDefined();
  });

  it("custom claims over 4 KB → 400 bad_request", async () => {
    const sent = await sendCode(freshEmail("big-claims"));
    const res = await post("/v1/otps/authenticate", {
      method_id: sent.emailId,
      code: sent.code,
      session_duration_minutes: 60,
      session_custom_claims: { blob: "x".repeat(4_200) },
    });
    expectStytchError(res, 400, "bad_request");
  });

  it.each([
    ["sub", { sub: "someone-else" }],
    ["iss", { iss: "evil.example" }],
    ["aud", { aud: "another-project" }],
    ["exp", { exp: 4_102_444_800 }],
    [SESSION_CLAIM, { [SESSION_CLAIM]: { id: "forged" } }],
  ])("a custom claim overriding the reserved %s → 400 bad_request", async (_name, claims) => {
    const sent = await sendCode(freshEmail("reserved"));
    const res = await post("/v1/otps/authenticate", {
      method_id: sent.emailId,
      code: sent.code,
      session_duration_minutes: 60,
      session_custom_claims: claims,
    });
    expectStytchError(res, 400, "bad_request");
  });
});

// ---------------------------------------------------------------------------
// POST /v1/sessions/authenticate
// ---------------------------------------------------------------------------

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
    const other = await env.createProject("Other");
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

// ---------------------------------------------------------------------------
// POST /v1/sessions/revoke
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// AuthenticateOtp with an existing session
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// SessionService over Connect
// ---------------------------------------------------------------------------

describe.each([
  ["Connect JSON", () => createConnectTransport({ baseUrl: env.url, httpVersion: "1.1", useBinaryFormat: false })],
  ["gRPC", () => createGrpcTransport({ baseUrl: env.url })],
])("SessionService over %s", (_, transport) => {
  it("GetJwks lists the same keys as the REST route", async () => {
    const client = createClient(SessionService, transport());
    const res = await client.getJwks({ projectId: env.project.projectId });
    const rest = await jwks(env.project.projectId);
    expect(res.keys.map((k) => k.kid)).toEqual(rest.body.keys.map((k: { kid: string }) => k.kid));
    expect(res.statusCode).toBe(200);
  });

  it("AuthenticateSession and RevokeSession; afterwards NotFound with session_not_found", async () => {
    const client = createClient(SessionService, transport());
    const auth = { headers: { authorization: env.project.authorization } };
    const signed = await signIn(`session-${_}`.replace(/\W+/g, "-").toLowerCase());

    const res = await client.authenticateSession({ sessionToken: signed.token }, auth);
    expect(res.statusCode).toBe(200);
    expect(res.session?.sessionId).toBe(signed.sessionId);
    expect(res.user?.userId).toBe(signed.sent.userId);
    expect(res.sessionJwt).toMatch(JWT);

    const revoked = await client.revokeSession({ sessionToken: signed.token }, auth);
    expect(revoked.statusCode).toBe(200);

    let err: unknown;
    try {
      await client.authenticateSession({ sessionToken: signed.token }, auth);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.NotFound);
    expect((err as ConnectError).findDetails(ErrorInfoSchema).map((i) => i.reason)).toEqual(["session_not_found"]);
  });
});

// ---------------------------------------------------------------------------
// The whole flow
// ---------------------------------------------------------------------------

describe("full flow", () => {
  it("login_or_create → mail → authenticate (60 min) → authenticate session → revoke → session gone", async () => {
    const email = freshEmail("flow");
    const created = await post("/v1/otps/email/login_or_create", { email });
    expect(created.status, created.text).toBe(200);
    expect(created.body.user_created).toBe(true);

    const mail = await waitForMailTo(email, 1);
    const code = codeIn(mail);

    const signedIn = await post("/v1/otps/authenticate", {
      method_id: created.body.email_id,
      code,
      session_duration_minutes: 60,
    });
    expect(signedIn.status, signedIn.text).toBe(200);
    expect(signedIn.body.user_id).toBe(created.body.user_id);
    const token = signedIn.body.session_token as string;
    const jwt = signedIn.body.session_jwt as string;
    expect(token.length).toBeGreaterThan(0);
    expect((await verify(jwt)).payload.sub).toBe(created.body.user_id);

    const checked = await authenticateSession({ session_token: token });
    expect(checked.status, checked.text).toBe(200);
    expect(checked.body.session.session_id).toBe(signedIn.body.session.session_id);

    const revoked = await revokeSession({ session_token: token });
    expect(revoked.status, revoked.text).toBe(200);

    expectStytchError(await authenticateSession({ session_token: token }), 404, "session_not_found");
    expectStytchError(await authenticateSession({ session_jwt: jwt }), 404, "session_not_found");
  });
});
