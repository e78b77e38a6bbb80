// What the service writes to its log during a whole sign-in, at debug level:
// request ids, and never a code, secret, token or full email address.
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
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
  env = await startTestEnv({ ADMIN_TOKEN: "admin-token-for-the-log-test" }, { logger: pino({ level: "debug" }, sink) });
});

afterAll(async () => {
  await env?.close();
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
  expect(lines.some((l) => l.includes(requestId!.slice("request-id-test-".length)))).toBe(true);
  expect(lines.filter((l) => JSON.parse(l).msg === "request").length).toBeGreaterThanOrEqual(6);
  // The code as a number of its own (timestamps are long runs of digits).
  expect(lines.filter((l) => new RegExp(`(?<!\\d)${code}(?!\\d)`).test(l))).toEqual([]);
  for (const secretThing of [secret, ok.session_token, ok.session_jwt, email, "admin-token-for-the-log-test"]) {
    expect(lines.filter((l) => l.includes(secretThing))).toEqual([]);
  }
});
