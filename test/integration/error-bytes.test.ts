// Every error byte, pinned: a corpus of bad requests on every route family
// and protocol (legacy, Stytch, admin, unknown paths, Connect, gRPC-Web,
// gRPC), each answer recorded as status, headers (less date and the request
// id) and body, and compared with the committed snapshot. The error writer
// may be rearranged; what callers receive may not change.
// The service on port 0, real Postgres and SMTP.
import http from "node:http";
import http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestEnv, type TestEnv } from "../support/app.js";

const ADMIN_TOKEN = "error-bytes-admin-token-0123456789abcdef";
const BUSINESS = 7391;
/** Field 1 (email), length-delimited, announcing 127 bytes that never come. */
const UNDECODABLE = Buffer.from([0x0a, 0x7f, 0x61]);

let env: TestEnv;
/** The same database, with the admin API on (env has it off). */
let adminUrl: string;
beforeAll(async () => {
  env = await startTestEnv({}, { businessId: BUSINESS });
  adminUrl = (await env.startInstance({ ADMIN_TOKEN })).url;
});
afterAll(async () => {
  await env?.close();
});

const REQUEST_ID = /request-id-test-[0-9a-f-]{36}/g;
const VOLATILE = new Set(["date", "x-request-id", "connection", "keep-alive"]);

interface Recorded {
  readonly status: number | string;
  readonly headers: Record<string, string>;
  readonly trailers?: Record<string, string>;
  readonly body: string;
}

function headersOf(entries: Iterable<[string, unknown]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of [...entries].sort(([a], [b]) => a.localeCompare(b))) {
    if (!VOLATILE.has(k) && !k.startsWith(":")) out[k] = String(v).replace(REQUEST_ID, "<request-id>");
  }
  return out;
}

/** A body as text when it is text, else as hex (gRPC frames). */
function bodyOf(bytes: Buffer): string {
  const text = bytes.toString("utf8");
  const printable = ![...text].some((c) => c === "\ufffd" || (c < " " && !"\t\n\r".includes(c)));
  return (printable ? text : `hex:${bytes.toString("hex")}`).replace(REQUEST_ID, "<request-id>");
}

async function http1(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<Recorded> {
  const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : new Uint8Array(Buffer.from(body)) });
  return { status: res.status, headers: headersOf(res.headers.entries()), body: bodyOf(Buffer.from(await res.arrayBuffer())) };
}

/** A request that declares a body larger than the limit and never sends it. */
function declaredTooLarge(path: string, headers: Record<string, string>): Promise<Recorded> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${env.url}${path}`, { method: "POST", headers: { ...headers, "content-length": String(50 * 1024 * 1024) } });
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        resolve({ status: res.statusCode ?? 0, headers: headersOf(Object.entries(res.headers)), body: bodyOf(Buffer.concat(chunks)) });
        req.destroy();
      });
    });
    req.on("error", reject);
    req.flushHeaders();
  });
}

async function grpc(path: string, message: Buffer, headers: Record<string, string> = {}): Promise<Recorded> {
  const session = http2.connect(env.url);
  session.on("error", () => {});
  try {
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers });
    let status = 0;
    let head: Record<string, string> = {};
    let trailers: Record<string, string> = {};
    const chunks: Buffer[] = [];
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      head = headersOf(Object.entries(h));
    });
    stream.on("trailers", (t) => {
      trailers = headersOf(Object.entries(t));
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.end(frame(message));
    await new Promise((resolve) => stream.once("close", resolve));
    return { status, headers: head, trailers, body: bodyOf(Buffer.concat(chunks)) };
  } finally {
    session.destroy();
  }
}

function frame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

const json = { "content-type": "application/json" };
const stytch = () => ({ ...json, authorization: env.project.authorization });
const admin = { ...json, authorization: `Bearer ${ADMIN_TOKEN}` };
const connectJson = { "content-type": "application/json", "connect-protocol-version": "1" };
const grpcWeb = { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" };
const stranger = "nobody-error-bytes@example.com";

const cases: [string, () => Promise<Recorded>][] = [
  // Legacy portal.
  ["legacy send, no parameters", () => http1(env.url, "GET", "/api/sys/users/sendOtp")],
  ["legacy send, malformed email", () => http1(env.url, "GET", `/api/sys/users/sendOtp?email=not-an-email&businessId=${BUSINESS}`)],
  ["legacy send, businessId not a number", () => http1(env.url, "GET", "/api/sys/users/sendOtp?email=a%40b.co&businessId=abc")],
  ["legacy send, unknown business", () => http1(env.url, "GET", "/api/sys/users/sendOtp?email=a%40b.co&businessId=999999")],
  ["legacy send, wrong verb", () => http1(env.url, "POST", "/api/sys/users/sendOtp")],
  ["legacy unknown path", () => http1(env.url, "GET", "/api/sys/users/nope")],
  ["legacy body too large", () => declaredTooLarge("/api/sys/users/exchange", json)],
  ["legacy exchange, body not JSON", () => http1(env.url, "POST", "/api/sys/users/exchange", json, "{")],
  ["legacy exchange, text body", () => http1(env.url, "POST", "/api/sys/users/exchange", { "content-type": "text/plain" }, "hi")],
  ["legacy exchange, unknown business", () => http1(env.url, "POST", "/api/sys/users/exchange", json, JSON.stringify({ email: "a@b.co", businessId: 999999, otp: "123456" }))],
  ["legacy jwks, unknown business", () => http1(env.url, "GET", "/api/sys/businesses/999999/jwks")],
  // Stytch.
  ["stytch send, no credentials", () => http1(env.url, "POST", "/v1/otps/email/send", json, JSON.stringify({ email: "a@b.co" }))],
  ["stytch send, body not JSON", () => http1(env.url, "POST", "/v1/otps/email/send", stytch(), "{")],
  ["stytch send, body an array", () => http1(env.url, "POST", "/v1/otps/email/send", stytch(), "[]")],
  ["stytch send, text body", () => http1(env.url, "POST", "/v1/otps/email/send", { ...stytch(), "content-type": "text/plain" }, "hi")],
  ["stytch send, empty object", () => http1(env.url, "POST", "/v1/otps/email/send", stytch(), "{}")],
  ["stytch send, malformed email", () => http1(env.url, "POST", "/v1/otps/email/send", stytch(), JSON.stringify({ email: "x" }))],
  ["stytch send, expiration out of range", () => http1(env.url, "POST", "/v1/otps/email/send", stytch(), JSON.stringify({ email: "a@b.co", expiration_minutes: 99 }))],
  ["stytch send, expiration wrong type", () => http1(env.url, "POST", "/v1/otps/email/send", stytch(), JSON.stringify({ email: "a@b.co", expiration_minutes: "x" }))],
  ["stytch send, a field in two spellings", () => http1(env.url, "POST", "/v1/otps/email/send", stytch(), JSON.stringify({ email: "a@b.co", expiration_minutes: 3, expirationMinutes: 3 }))],
  ["stytch send, unknown address", () => http1(env.url, "POST", "/v1/otps/email/send", stytch(), JSON.stringify({ email: stranger }))],
  ["stytch send, unknown template", () => http1(env.url, "POST", "/v1/otps/email/login_or_create", stytch(), JSON.stringify({ email: stranger, login_template_id: "nope" }))],
  ["stytch send, wrong verb", () => http1(env.url, "GET", "/v1/otps/email/send", stytch())],
  ["stytch unknown path", () => http1(env.url, "POST", "/v1/otps/nope", stytch(), "{}")],
  ["stytch body too large", () => declaredTooLarge("/v1/otps/email/send", stytch())],
  ["stytch authenticate, unknown method_id", () => http1(env.url, "POST", "/v1/otps/authenticate", stytch(), JSON.stringify({ method_id: "email-test-00000000-0000-4000-8000-000000000000", code: "123456" }))],
  ["stytch session, unknown token", () => http1(env.url, "POST", "/v1/sessions/authenticate", stytch(), JSON.stringify({ session_token: "no-such-token-000000000000000000000000" }))],
  ["stytch session, claims not an object", () => http1(env.url, "POST", "/v1/sessions/authenticate", stytch(), JSON.stringify({ session_token: "x", session_custom_claims: { iss: "me" } }))],
  ["stytch jwks, unknown project", () => http1(env.url, "GET", "/v1/sessions/jwks/project-test-00000000-0000-4000-8000-000000000000")],
  // Admin API.
  ["admin off", () => http1(env.url, "GET", "/admin/v1/projects", admin)],
  ["admin, no token", () => http1(adminUrl, "GET", "/admin/v1/projects")],
  ["admin, wrong token", () => http1(adminUrl, "GET", "/admin/v1/projects", { authorization: "Bearer nope" })],
  ["admin rotate keys, no tenant", () => http1(adminUrl, "POST", "/admin/v1/signing_keys/rotate", admin, "{}")],
  ["admin rotate keys, both tenants", () => http1(adminUrl, "POST", "/admin/v1/signing_keys/rotate", admin, JSON.stringify({ project_id: "p", business_id: "1" }))],
  ["admin update, unknown project", () => http1(adminUrl, "PATCH", "/admin/v1/projects/project-test-00000000-0000-4000-8000-000000000000", admin, JSON.stringify({ name: "X" }))],
  ["admin unknown path", () => http1(adminUrl, "GET", "/admin/v1/nope", admin)],
  // Paths of no route family.
  ["unknown path", () => http1(env.url, "GET", "/nope")],
  ["unknown path, POST", () => http1(env.url, "POST", "/nope/deeper", json, "{}")],
  // Connect.
  ["connect, no credentials", () => http1(env.url, "POST", "/otp.v1.OtpService/SendEmailOtp", connectJson, JSON.stringify({ email: "a@b.co" }))],
  ["connect, malformed email", () => http1(env.url, "POST", "/otp.v1.OtpService/SendEmailOtp", { ...connectJson, authorization: env.project.authorization }, JSON.stringify({ email: "x" }))],
  ["connect, unknown address", () => http1(env.url, "POST", "/otp.v1.OtpService/SendEmailOtp", { ...connectJson, authorization: env.project.authorization }, JSON.stringify({ email: stranger }))],
  ["connect, unknown business", () => http1(env.url, "POST", "/otp.v1.OtpService/SendOtp", connectJson, JSON.stringify({ email: "a@b.co", businessId: "999999" }))],
  ["connect, unknown tenant jwks", () => http1(env.url, "POST", "/otp.v1.SessionService/GetJwks", connectJson, JSON.stringify({ projectId: "project-test-00000000-0000-4000-8000-000000000000" }))],
  ["connect, undecodable proto", () => http1(env.url, "POST", "/otp.v1.OtpService/SendOtp", { "content-type": "application/proto", "connect-protocol-version": "1" }, UNDECODABLE)],
  ["connect, JSON not JSON", () => http1(env.url, "POST", "/otp.v1.OtpService/SendOtp", connectJson, "{")],
  ["connect, unknown RPC", () => http1(env.url, "POST", "/otp.v1.OtpService/Nope", connectJson, "{}")],
  ["connect, unknown service", () => http1(env.url, "POST", "/otp.v1.Nope/Nope", connectJson, "{}")],
  ["connect, admin off", () => http1(env.url, "POST", "/otp.v1.AdminService/ListProjects", connectJson, "{}")],
  ["connect, health of an unknown service", () => http1(env.url, "POST", "/grpc.health.v1.Health/Check", connectJson, JSON.stringify({ service: "nope" }))],
  ["connect, wrong verb", () => http1(env.url, "PUT", "/otp.v1.OtpService/SendOtp", connectJson, "{}")],
  // gRPC-Web.
  ["grpc-web, undecodable", () => http1(env.url, "POST", "/otp.v1.OtpService/SendOtp", grpcWeb, frame(UNDECODABLE))],
  ["grpc-web, empty request", () => http1(env.url, "POST", "/otp.v1.OtpService/SendOtp", grpcWeb, frame(Buffer.alloc(0)))],
  ["grpc-web, unknown RPC", () => http1(env.url, "POST", "/otp.v1.OtpService/Nope", grpcWeb, frame(Buffer.alloc(0)))],
  // gRPC.
  ["grpc, undecodable", () => grpc("/otp.v1.OtpService/SendOtp", UNDECODABLE)],
  ["grpc, empty request", () => grpc("/otp.v1.OtpService/SendOtp", Buffer.alloc(0))],
  ["grpc, no credentials", () => grpc("/otp.v1.OtpService/SendEmailOtp", Buffer.alloc(0))],
  ["grpc, unknown RPC", () => grpc("/otp.v1.OtpService/Nope", Buffer.alloc(0))],
  ["grpc, admin off", () => grpc("/otp.v1.AdminService/ListProjects", Buffer.alloc(0))],
];

describe("every error answer is byte for byte as recorded", () => {
  it.each(cases)("%s", async (_name, call) => {
    expect(await call()).toMatchSnapshot();
  });
});
