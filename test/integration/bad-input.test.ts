// Bad input on every public route, end to end: each is a clear 4xx in the
// route's own contract shape (legacy envelope, Stytch error object, Connect
// error), never a 5xx, never HTML.
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestEnv, type TestEnv } from "../support/app.js";

let env: TestEnv;
beforeAll(async () => {
  env = await startTestEnv();
});
afterAll(async () => {
  await env?.close();
});

const LEGACY_KEYS = ["WasSuccessful", "Value", "Status", "Message", "Errors"];
const STYTCH_KEYS = ["error_message", "error_type", "error_url", "request_id", "status_code"];
const MAX_BODY = 64 * 1024;

/** A raw HTTP/1.1 request, so bodies, lengths and headers are exactly as written. */
function raw(
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string | Buffer; chunked?: boolean } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  const url = new URL(env.url);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...opts.headers };
    if (opts.body !== undefined && !opts.chunked) headers["content-length"] = Buffer.byteLength(opts.body);
    const req = http.request(
      { host: url.hostname, port: url.port, method, path, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", reject);
      },
    );
    // The server may answer (413) and stop reading before the body is sent.
    req.on("error", (err) => reject(err));
    if (opts.body !== undefined) {
      if (opts.chunked) {
        const buf = Buffer.from(opts.body);
        for (let i = 0; i < buf.length; i += 8192) req.write(buf.subarray(i, i + 8192));
      } else req.write(opts.body);
    }
    req.end();
  });
}

function expectJson(res: { status: number; headers: http.IncomingHttpHeaders; text: string }): Record<string, unknown> {
  expect(res.status, res.text).toBeLessThan(500);
  expect(res.headers["content-type"]).toMatch(/^application\/json\b/);
  expect(res.text).not.toMatch(/<html|<!doctype/i);
  const body = JSON.parse(res.text) as unknown;
  expect(body).toBeTypeOf("object");
  expect(body).not.toBeNull();
  expect(Array.isArray(body)).toBe(false);
  return body as Record<string, unknown>;
}

function expectLegacyError(res: { status: number; headers: http.IncomingHttpHeaders; text: string }, status: number) {
  const body = expectJson(res);
  expect(res.status, res.text).toBe(status);
  // The envelope: exactly the five keys, in order.
  expect(Object.keys(body)).toEqual(LEGACY_KEYS);
  expect(body.WasSuccessful).toBe(false);
  expect(body.Value).toBeNull();
  expect(body.Status).toBe(status);
  expect(body.Message).toBeTypeOf("string");
  expect((body.Message as string).length).toBeGreaterThan(0);
  return body;
}

function expectStytchError(
  res: { status: number; headers: http.IncomingHttpHeaders; text: string },
  status: number,
  errorType: string,
) {
  const body = expectJson(res);
  expect(res.status, res.text).toBe(status);
  expect(Object.keys(body).sort()).toEqual(STYTCH_KEYS);
  expect(body.status_code).toBe(status);
  expect(body.request_id).toMatch(/^request-id-test-[0-9a-f-]{36}$/);
  expect(body.error_type).toBe(errorType);
  expect(body.error_message).toBeTypeOf("string");
  expect((body.error_message as string).length).toBeGreaterThan(0);
  expect(body.error_url).toBe(`https://stytch.com/docs/api/errors/${status}#${errorType}`);
  return body;
}

// ---------------------------------------------------------------------------
// Legacy GET /api/sys/users/sendOtp
// ---------------------------------------------------------------------------

const enc = encodeURIComponent;
type Query = (businessId: number) => string;
const good = "jane.doe@example.com";

const legacyCases: [string, Query, string[]][] = [
  ["missing email", (b) => `businessId=${b}`, ["email"]],
  ["missing businessId", () => `email=${enc(good)}`, ["businessId"]],
  ["both missing", () => ``, ["email", "businessId"]],
  ["both missing, unrelated parameters only", () => `foo=bar`, ["email", "businessId"]],
  ["empty email", (b) => `email=&businessId=${b}`, ["email"]],
  ["empty businessId", () => `email=${enc(good)}&businessId=`, ["businessId"]],
  ["both empty", () => `email=&businessId=`, ["email", "businessId"]],
  ['businessId "abc"', () => `email=${enc(good)}&businessId=abc`, ["businessId"]],
  ['businessId "-1"', () => `email=${enc(good)}&businessId=-1`, ["businessId"]],
  ['businessId "0"', () => `email=${enc(good)}&businessId=0`, ["businessId"]],
  ['businessId "1.5"', () => `email=${enc(good)}&businessId=1.5`, ["businessId"]],
  ['businessId in hex "0x1d64"', () => `email=${enc(good)}&businessId=0x1d64`, ["businessId"]],
  ['businessId with a leading space', () => `email=${enc(good)}&businessId=%207`, ["businessId"]],
  ['businessId "99999999999999999999" (beyond int64)', () => `email=${enc(good)}&businessId=99999999999999999999`, ["businessId"]],
  ['businessId "9007199254740993" (beyond the safe-integer maximum)', () => `email=${enc(good)}&businessId=9007199254740993`, ["businessId"]],
  ["unknown businessId 999999", () => `email=${enc(good)}&businessId=999999`, ["businessId"]],
  ['email "bad"', (b) => `email=bad&businessId=${b}`, ["email"]],
  ['email "a@"', (b) => `email=${enc("a@")}&businessId=${b}`, ["email"]],
  ['email "@b.com"', (b) => `email=${enc("@b.com")}&businessId=${b}`, ["email"]],
  ['email "a b@c.com"', (b) => `email=${enc("a b@c.com")}&businessId=${b}`, ["email"]],
  ['email "a b@c.com" with + for the space', (b) => `email=a+b%40c.com&businessId=${b}`, ["email"]],
  ["email with CR/LF header injection", (b) => `email=${enc("a@b.com\r\nBcc: x@y.com")}&businessId=${b}`, ["email"]],
  ["email with a bare LF", (b) => `email=${enc("a@b.com\nBcc: x@y.com")}&businessId=${b}`, ["email"]],
  ["email with a NUL byte", (b) => `email=${enc("a\u0000@b.com")}&businessId=${b}`, ["email"]],
  ["300-character email", (b) => `email=${enc(`${"a".repeat(288)}@example.com`)}&businessId=${b}`, ["email"]],
  ["SQL injection as email", (b) => `email=${enc("' OR 1=1 --")}&businessId=${b}`, ["email"]],
  ["script tag as email", (b) => `email=${enc("<script>")}&businessId=${b}`, ["email"]],
  ["script tag around an address", (b) => `email=${enc("<script>alert(1)</script>@b.com")}&businessId=${b}`, ["email"]],
  ["SQL injection as businessId", () => `email=${enc(good)}&businessId=${enc("1; DROP TABLE tenants; --")}`, ["businessId"]],
  ["malformed email and bad businessId together", () => `email=bad&businessId=abc`, ["email", "businessId"]],
  // Parameter pollution: a proxy or WAF that reads the first value must not see a different request from ours.
  ["email given twice", (b) => `email=${enc(good)}&email=${enc("other@example.com")}&businessId=${b}`, ["email"]],
  ["businessId given twice", (b) => `email=${enc(good)}&businessId=${b}&businessId=${b + 1}`, ["businessId"]],
  ["businessId given twice, the same value", (b) => `email=${enc(good)}&businessId=${b}&businessId=${b}`, ["businessId"]],
];

describe("legacy GET /api/sys/users/sendOtp: bad input", () => {
  it.each(legacyCases)("%s → 400 envelope naming the field(s)", async (_name, query, fields) => {
    const res = await raw("GET", `/api/sys/users/sendOtp?${query(env.businessId)}`);
    const body = expectLegacyError(res, 400);
    const errors = body.Errors as Record<string, unknown>;
    expect(errors).toBeTypeOf("object");
    expect(errors).not.toBeNull();
    expect(Array.isArray(errors)).toBe(false);
    expect(Object.keys(errors).sort()).toEqual([...fields].sort());
    for (const field of fields) {
      const messages = errors[field];
      expect(Array.isArray(messages)).toBe(true);
      expect((messages as unknown[]).length).toBeGreaterThan(0);
      for (const m of messages as unknown[]) {
        expect(m).toBeTypeOf("string");
        expect((m as string).length).toBeGreaterThan(0);
      }
    }
  });

  it.each(["POST", "PUT", "DELETE"])("%s on the route → 405 envelope with Allow: GET", async (method) => {
    const res = await raw(method, `/api/sys/users/sendOtp?email=${enc(good)}&businessId=${env.businessId}`, {
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    const body = expectLegacyError(res, 405);
    expect(body.Errors).toBeNull();
    expect(res.headers.allow).toBe("GET");
  });

  it("HEAD on the route → 405 with Allow: GET (a HEAD must not run a send)", async () => {
    const res = await raw("HEAD", `/api/sys/users/sendOtp?email=${enc(good)}&businessId=${env.businessId}`);
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe("GET");
    expect(res.headers["content-type"]).toMatch(/^application\/json\b/);
    expect(res.text).toBe("");
  });
});

// ---------------------------------------------------------------------------
// Stytch POST /v1/otps/email/send and /v1/otps/email/login_or_create
// ---------------------------------------------------------------------------

const STYTCH_ROUTES = ["/v1/otps/email/send", "/v1/otps/email/login_or_create"];

interface StytchCase {
  readonly body?: string;
  readonly contentType?: string;
  /** undefined: the project's own credentials; null: no header. */
  readonly authorization?: (env: TestEnv) => string | null;
  readonly chunked?: boolean;
  readonly status: number;
  readonly errorType: string;
  /** What the error_message must mention. */
  readonly message?: RegExp;
}

const json = (v: unknown) => JSON.stringify(v);
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
const badEmail = "stytch-bad-input@example.com";
/** A JSON object of exactly n bytes with no email in it. */
const padded = (n: number, extra: Record<string, unknown> = {}) => {
  const head = json({ ...extra, pad: "" });
  return json({ ...extra, pad: "a".repeat(n - Buffer.byteLength(head)) });
};

const stytchCases: [string, StytchCase][] = [
  ["missing email", { body: json({}), status: 400, errorType: "bad_request", message: /\bemail\b/ }],
  ["empty body", { body: "", status: 400, errorType: "bad_request", message: /\bemail\b/ }],
  ["empty email", { body: json({ email: "" }), status: 400, errorType: "bad_request", message: /\bemail\b/ }],
  ['malformed email "bad"', { body: json({ email: "bad" }), status: 400, errorType: "invalid_email", message: /\bemail\b/ }],
  ['malformed email "a@"', { body: json({ email: "a@" }), status: 400, errorType: "invalid_email" }],
  ['malformed email "@b.com"', { body: json({ email: "@b.com" }), status: 400, errorType: "invalid_email" }],
  ["email with CR/LF", { body: json({ email: "a@b.com\r\nBcc: x@y.com" }), status: 400, errorType: "invalid_email" }],
  ["email of the wrong type", { body: json({ email: 5 }), status: 400, errorType: "bad_request", message: /\bemail\b/ }],
  ["300-character email", { body: json({ email: `${"a".repeat(288)}@example.com` }), status: 400, errorType: "bad_request", message: /\bemail\b/ }],
  ["expiration_minutes 0", { body: json({ email: badEmail, expiration_minutes: 0 }), status: 400, errorType: "bad_request", message: /expiration_minutes/ }],
  ["expiration_minutes 11", { body: json({ email: badEmail, expiration_minutes: 11 }), status: 400, errorType: "bad_request", message: /expiration_minutes/ }],
  ["expiration_minutes -1", { body: json({ email: badEmail, expiration_minutes: -1 }), status: 400, errorType: "bad_request", message: /expiration_minutes/ }],
  ['expiration_minutes "abc"', { body: json({ email: badEmail, expiration_minutes: "abc" }), status: 400, errorType: "bad_request", message: /expiration_minutes/ }],
  ["expiration_minutes 1.5", { body: json({ email: badEmail, expiration_minutes: 1.5 }), status: 400, errorType: "bad_request", message: /expiration_minutes/ }],
  ["expiration_minutes beyond int32", { body: json({ email: badEmail, expiration_minutes: 2 ** 32 + 5 }), status: 400, errorType: "bad_request", message: /expiration_minutes/ }],
  [
    'locale "de"',
    { body: json({ email: badEmail, locale: "de" }), status: 400, errorType: "bad_request", message: /locale\b.*\ben\b.*\bes\b.*\bpt-br\b.*\bfr\b/ },
  ],
  [
    'attributes.ip_address "not-an-ip"',
    { body: json({ email: badEmail, attributes: { ip_address: "not-an-ip" } }), status: 400, errorType: "bad_request", message: /ip_address/ },
  ],
  ["attributes not an object", { body: json({ email: badEmail, attributes: "x" }), status: 400, errorType: "bad_request", message: /attributes/ }],
  ['body not JSON ("{")', { body: "{", status: 400, errorType: "bad_request" }],
  ["body a JSON array", { body: json([{ email: badEmail }]), status: 400, errorType: "bad_request" }],
  ["body JSON null", { body: "null", status: 400, errorType: "bad_request" }],
  ["body a JSON string", { body: json(badEmail), status: 400, errorType: "bad_request" }],
  ["wrong content type (text/plain)", { body: json({ email: badEmail }), contentType: "text/plain", status: 415, errorType: "bad_request" }],
  ["wrong content type (form)", { body: `email=${enc(badEmail)}`, contentType: "application/x-www-form-urlencoded", status: 415, errorType: "bad_request" }],
  ["body over 64 KiB (Content-Length)", { body: padded(MAX_BODY + 1, { email: badEmail }), status: 413, errorType: "request_too_large" }],
  ["body over 64 KiB (chunked)", { body: padded(MAX_BODY + 1, { email: badEmail }), chunked: true, status: 413, errorType: "request_too_large" }],
  ["body of exactly 64 KiB is read (then fails on the missing email, not the size)", { body: padded(MAX_BODY), status: 400, errorType: "bad_request", message: /\bemail\b/ }],
  ["missing Authorization", { body: json({ email: badEmail }), authorization: () => null, status: 401, errorType: "unauthorized_credentials" }],
  ['Authorization "Basic garbage"', { body: json({ email: badEmail }), authorization: () => "Basic garbage", status: 401, errorType: "unauthorized_credentials" }],
  ['Authorization "Basic " with nothing', { body: json({ email: badEmail }), authorization: () => "Basic ", status: 401, errorType: "unauthorized_credentials" }],
  ["wrong secret", { body: json({ email: badEmail }), authorization: (e) => basic(e.project.projectId, `${e.project.secret}x`), status: 401, errorType: "unauthorized_credentials" }],
  ["empty secret", { body: json({ email: badEmail }), authorization: (e) => basic(e.project.projectId, ""), status: 401, errorType: "unauthorized_credentials" }],
  [
    "unknown project id",
    { body: json({ email: badEmail }), authorization: (e) => basic("project-test-00000000-0000-4000-8000-000000000000", e.project.secret), status: 401, errorType: "unauthorized_credentials" },
  ],
  ["project id not an id", { body: json({ email: badEmail }), authorization: (e) => basic("' OR 1=1 --", e.project.secret), status: 401, errorType: "unauthorized_credentials" }],
  ['Authorization "Bearer x"', { body: json({ email: badEmail }), authorization: () => "Bearer x", status: 401, errorType: "unauthorized_credentials" }],
  ['login_template_id "nope"', { body: json({ email: badEmail, login_template_id: "nope" }), status: 400, errorType: "bad_request", message: /login_template_id/ }],
  ['signup_template_id "nope"', { body: json({ email: badEmail, signup_template_id: "nope" }), status: 400, errorType: "bad_request", message: /signup_template_id/ }],
];

describe.each(STYTCH_ROUTES)("Stytch POST %s: bad input", (route) => {
  it.each(stytchCases)("%s", async (_name, c) => {
    const authorization = c.authorization ? c.authorization(env) : env.project.authorization;
    const headers: Record<string, string> = { "content-type": c.contentType ?? "application/json" };
    if (authorization !== null) headers.authorization = authorization;
    const res = await raw("POST", route, { headers, body: c.body, chunked: c.chunked });
    const body = expectStytchError(res, c.status, c.errorType);
    if (c.message) expect(body.error_message).toMatch(c.message);
  });

  it.each(["GET", "PUT", "DELETE"])("%s on the route → 405 with Allow: POST", async (method) => {
    const res = await raw(method, route, { headers: { authorization: env.project.authorization } });
    expectStytchError(res, 405, "method_not_allowed");
    expect(res.headers.allow).toBe("POST");
  });
});

// ---------------------------------------------------------------------------
// Unknown paths
// ---------------------------------------------------------------------------

describe("unknown paths → 404 JSON, never HTML", () => {
  it.each([
    ["GET", "/nope", ["code", "message"]],
    ["POST", "/nope", ["code", "message"]],
    // GET / is the sign-in page; other verbs on it are unknown.
    ["PUT", "/", ["code", "message"]],
    ["POST", "/v1/nope", STYTCH_KEYS],
    ["GET", "/v1/otps/email/nope", STYTCH_KEYS],
    ["GET", "/api/sys/users/nope", LEGACY_KEYS],
    ["POST", "/otp.v1.OtpService/Nope", ["code", "message"]],
  ])("%s %s", async (method, path, keys) => {
    const res = await raw(method, path, { headers: { "content-type": "application/json" }, body: "{}" });
    const body = expectJson(res);
    expect(res.status).toBe(404);
    expect(Object.keys(body).sort()).toEqual([...keys].sort());
    if (keys === STYTCH_KEYS) expectStytchError(res, 404, "route_not_found");
    if (keys === LEGACY_KEYS) expectLegacyError(res, 404);
    if (keys.includes("code")) expect(body.code).toBe("not_found");
  });
});

// ---------------------------------------------------------------------------
// Connect JSON endpoints
// ---------------------------------------------------------------------------

describe("Connect JSON: bad input → 4xx Connect error", () => {
  it.each([
    ["SendEmailOtp", "invalid JSON", "{"],
    ["SendEmailOtp", "a JSON array", "[]"],
    ["SendEmailOtp", "JSON null", "null"],
    ["SendEmailOtp", "email of the wrong type", json({ email: 5 })],
    ["SendEmailOtp", "expirationMinutes a string", json({ email: badEmail, expirationMinutes: "abc" })],
    ["SendEmailOtp", "expirationMinutes a fraction", json({ email: badEmail, expirationMinutes: 1.5 })],
    ["SendEmailOtp", "attributes a string", json({ email: badEmail, attributes: "x" })],
    ["SendEmailOtp", "malformed email", json({ email: "bad" })],
    ["SendEmailOtp", "missing email", json({})],
    ["LoginOrCreateEmailOtp", "invalid JSON", "{"],
    ["LoginOrCreateEmailOtp", "createUserAsPending a string", json({ email: badEmail, createUserAsPending: "yes" })],
    ["LoginOrCreateEmailOtp", "locale not allowed", json({ email: badEmail, locale: "de" })],
    ["SendOtp", "invalid JSON", "{"],
    ["SendOtp", "businessId not a number", json({ email: good, businessId: "abc" })],
    ["SendOtp", "businessId a fraction", json({ email: good, businessId: 1.5 })],
    ["SendOtp", "businessId beyond int64", json({ email: good, businessId: "99999999999999999999" })],
    ["SendOtp", "businessId -1", json({ email: good, businessId: -1 })],
  ])("%s: %s", async (rpc, _name, body) => {
    const res = await raw("POST", `/otp.v1.OtpService/${rpc}`, {
      headers: { "content-type": "application/json", authorization: env.project.authorization },
      body,
    });
    const parsed = expectJson(res);
    expect(res.status, res.text).toBeGreaterThanOrEqual(400);
    expect(res.status, res.text).toBeLessThan(500);
    expect(parsed.code).toBe("invalid_argument");
    expect(parsed.message).toBeTypeOf("string");
  });

  it.each([
    ["over 64 KiB (Content-Length)", false],
    ["over 64 KiB (chunked)", true],
  ])("SendEmailOtp: body %s → 4xx Connect error", async (_name, chunked) => {
    const res = await raw("POST", "/otp.v1.OtpService/SendEmailOtp", {
      headers: { "content-type": "application/json", authorization: env.project.authorization },
      body: padded(MAX_BODY + 1, { email: badEmail }),
      chunked,
    });
    const parsed = expectJson(res);
    expect(res.status, res.text).toBeGreaterThanOrEqual(400);
    expect(parsed.code).toBeTypeOf("string");
    expect(parsed.message).toMatch(/65536/);
  });
});

// Runs last: the worker polls every 200 ms and is woken on every send.
describe("no bad request reaches the mail server", () => {
  it("nothing was mailed by any request in this file", async () => {
    await new Promise((r) => setTimeout(r, 1_000));
    expect(env.smtp.mails).toEqual([]);
  });
});
