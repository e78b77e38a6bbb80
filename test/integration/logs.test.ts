// What the service writes to its log during a whole sign-in: at the default
// level one access line per request carrying the request id exactly as the
// caller got it in x-request-id, ISO timestamps, delivery retries with their
// cause, and never a code, secret, token or full email address (at debug
// level neither).
import net from "node:net";
import { Writable } from "node:stream";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createLogger } from "../../src/server.js";
import { startTestEnv, type TestEnv } from "../support/app.js";
import { codeIn } from "../support/smtp.js";

const lines: string[] = [];
let env: TestEnv;

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split("\n").filter(Boolean));
      done();
    },
  });
  env = await startTestEnv({ ADMIN_TOKEN: "admin-token-for-the-log-test" }, { logger: createLogger("debug", sink) });
});

afterAll(async () => {
  await env?.close();
});

it("warns at start-up when a real database has no tenant yet, with the CLI command that creates one", () => {
  // startTestEnv creates its tenants after the service started on an empty database.
  const warning = lines.map((l) => JSON.parse(l)).find((l) => String(l.msg).startsWith("no tenant exists yet"));
  expect(warning).toMatchObject({ level: 40, create_project: "npm run admin -- project create --name NAME" });
});

it("logs each request with its id but no code, secret, token or full address", async () => {
  const { secret, authorization: auth } = await env.createProject("Logs");
  const { url, smtp, app } = env;
  const email = `log.person.${Date.now()}@example.com`;
  const post = (p: string, body: unknown) =>
    fetch(`${url}${p}`, { method: "POST", headers: { authorization: auth, "content-type": "application/json" }, body: JSON.stringify(body) });

  const sent = await post("/v1/otps/email/login_or_create", { email });
  const requestId = sent.headers.get("x-request-id");
  const { email_id } = (await sent.json()) as { email_id: string };
  const code = codeIn((await smtp.waitFor(1))[0]!);
  await post("/v1/otps/authenticate", { method_id: email_id, code: code === "000000" ? "111111" : "000000" });
  const ok = (await (await post("/v1/otps/authenticate", { method_id: email_id, code, session_duration_minutes: 60 })).json()) as {
    session_token: string;
    session_jwt: string;
  };
  await post("/v1/sessions/authenticate", { session_token: ok.session_token });
  await fetch(`${url}/api/sys/users/sendOtp?email=${encodeURIComponent(email)}&businessId=1`);
  await fetch(`${url}/admin/v1/projects`, { headers: { authorization: "Bearer admin-token-for-the-log-test" } });
  await app.worker.idle();

  expect(requestId).toMatch(/^request-id-test-/);
  expect(lines.filter((l) => JSON.parse(l).msg === "request").length).toBeGreaterThanOrEqual(6);
  // The code as a number of its own (timestamps are long runs of digits).
  expect(lines.filter((l) => new RegExp(`(?<!\\d)${code}(?!\\d)`).test(l))).toEqual([]);
  for (const secretThing of [secret, ok.session_token, ok.session_jwt, email, "admin-token-for-the-log-test"]) {
    expect(lines.filter((l) => l.includes(secretThing))).toEqual([]);
  }
});

it("writes one access line per request at info level, with the x-request-id value as it was sent", async () => {
  const start = lines.length;
  const res = await fetch(`${env.url}/otp.v1.OtpService/SendOtp`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: "nobody@example.com", businessId: String(env.businessId) }),
  });
  const legacy = await fetch(`${env.url}/api/sys/users/sendOtp?email=nobody%40example.com&businessId=${env.businessId}`);
  await env.app.worker.idle();
  const access = lines.slice(start).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === "request");
  expect(access).toEqual([
    expect.objectContaining({ level: 30, request_id: res.headers.get("x-request-id"), method: "POST", path: "/otp.v1.OtpService/SendOtp", rpc: "otp.v1.OtpService/SendOtp", protocol: "connect", status: 200, ms: expect.any(Number) }),
    expect.objectContaining({ level: 30, request_id: legacy.headers.get("x-request-id"), method: "GET", path: "/api/sys/users/sendOtp", route: "/api/sys/users/sendOtp", rpc: "otp.v1.OtpService/SendOtp", protocol: "rest", status: 200 }),
  ]);
  // An address a caller puts in a path is masked in the access line.
  const before = lines.length;
  expect((await fetch(`${env.url}/v1/users/pat.smith%40example.com`)).status).toBe(404);
  const masked = lines.slice(before).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "request");
  expect(masked?.path).toBe("/v1/users/***@example.com");
  expect(lines.slice(before).join("\n")).not.toContain("pat.smith");
  // ISO timestamps, not epoch milliseconds.
  expect(JSON.parse(lines.at(-1)!).time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

it("says why a delivery is retried: the connection refused, or the SMTP server's 4xx code", async () => {
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, "127.0.0.1", () => r()));
  const port = (closed.address() as net.AddressInfo).port;
  await new Promise((r) => closed.close(r));
  const refusedLines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      refusedLines.push(...String(chunk).split("\n").filter(Boolean));
      done();
    },
  });
  const refusing = await startTestEnv({ SMTP_URL: `smtp://127.0.0.1:${port}`, OUTBOX_POLL_MS: "100" }, { logger: createLogger("info", sink) });
  try {
    await fetch(`${refusing.url}/api/sys/users/sendOtp?email=${encodeURIComponent(refusing.customer)}&businessId=${refusing.businessId}`);
    await expect.poll(() => refusedLines.map((l) => JSON.parse(l)).find((l) => l.msg === "mail delivery failed; will retry"), { timeout: 10_000 }).toMatchObject({
      cause: "ECONNREFUSED",
      attempt: 1,
    });
  } finally {
    await refusing.close();
  }

  env.smtp.reject = () => 451;
  try {
    const start = lines.length;
    await fetch(`${env.url}/api/sys/users/sendOtp?email=${encodeURIComponent(env.customer)}&businessId=${env.businessId}`);
    await expect.poll(() => lines.slice(start).map((l) => JSON.parse(l)).find((l) => l.msg === "mail delivery failed; will retry"), { timeout: 10_000 }).toMatchObject({
      cause: "SMTP 451",
      status: 451,
    });
  } finally {
    env.smtp.reject = undefined;
  }
  for (const l of [...refusedLines, ...lines]) expect(l).not.toContain(env.customer);
});
