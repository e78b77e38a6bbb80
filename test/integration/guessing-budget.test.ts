// The guessing budget: one client may fail at most 100 passcode checks an
// hour (the default), whatever addresses it tries and whether they exist,
// on every route and protocol that checks a code, counted in Postgres so it
// holds across instances. Attacked as an attacker would: wrong codes spread
// over many addresses, alternating between two instances on one database.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OtpService } from "../../gen/otp/v1/otp_service_pb.js";
import { answer, emailFactory, expectStytchError, mailbox, type Answer } from "../support/answers.js";
import { addTestUser, startTestEnv, type TestEnv } from "../support/app.js";
import { codeIn } from "../support/smtp.js";

let env: TestEnv;
let urls: [string, string];
beforeAll(async () => {
  // The guessing budget keeps its defaults; the send limits, not under test
  // here, are lifted so the test can send what it needs from one address.
  // The legacy answers' time floor is off (timing is the fault suite's): a
  // few hundred checks in a row would each wait for a loaded machine's p95.
  env = await startTestEnv({ RATE_LIMIT_EMAIL_BURST: "1000", RATE_LIMIT_IP_BURST: "1000", LEGACY_MIN_RESPONSE_MS: "0" });
  urls = [env.url, (await env.startInstance()).url];
});
afterAll(async () => {
  await env?.close();
});

const BUDGET = 100;
const freshEmail = emailFactory();
const { mailsTo, waitForMailTo } = mailbox(() => env.smtp);

const post = (base: string, path: string, body: unknown, authorization?: string): Promise<Answer & { retryAfter: string | null }> =>
  fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
    body: JSON.stringify(body),
  }).then(async (res) => ({ ...(await answer(res)), retryAfter: res.headers.get("retry-after") }));

const exchange = (base: string, email: string, otp: string) =>
  post(base, "/api/sys/users/exchange", { email, businessId: env.businessId, otp });

const authenticate = (base: string, methodId: string, code: string, ip: string) =>
  post(base, "/v1/otps/authenticate", { method_id: methodId, code, attributes: { ip_address: ip } }, env.project.authorization);

async function addCustomer(tag: string): Promise<string> {
  const business = await env.tenants.business(String(env.businessId));
  const address = freshEmail(tag);
  await addTestUser(env.app.db, business!.id, address);
  return address;
}

async function legacyCode(email: string): Promise<string> {
  const before = mailsTo(email).length;
  const res = await fetch(`${env.url}/api/sys/users/sendOtp?email=${encodeURIComponent(email)}&businessId=${env.businessId}`);
  expect(res.status).toBe(200);
  return codeIn(await waitForMailTo(email, before + 1));
}

async function stytchCode(email: string): Promise<{ email: string; emailId: string; code: string }> {
  const before = mailsTo(email).length;
  const res = await post(env.url, "/v1/otps/email/login_or_create", { email }, env.project.authorization);
  expect(res.status, res.text).toBe(200);
  return { email, emailId: res.body.email_id, code: codeIn(await waitForMailTo(email, before + 1)) };
}

const wrong = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, "0");

/** Runs `n` calls, `width` at a time. */
async function batched<T>(n: number, width: number, call: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i += width) out.push(...(await Promise.all(Array.from({ length: Math.min(width, n - i) }, (_, j) => call(i + j)))));
  return out;
}

function expectRetryAfterWithinPeriod(retryAfter: string | null) {
  expect(retryAfter).toMatch(/^\d+$/);
  expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
  expect(Number(retryAfter)).toBeLessThanOrEqual(36);
}

describe("legacy exchange: 100 failed checks per client, across addresses and instances", () => {
  it("100 wrong codes over 50 customers and 50 strangers pass; then every check is 429, the same for anyone, right code included", async () => {
    const customers = await Promise.all(Array.from({ length: 50 }, (_, i) => addCustomer(`budget-${i}`)));
    const targets = customers.flatMap((c, i) => [c, freshEmail(`budget-stranger-${i}`)]);
    const answers = await batched(BUDGET, 10, (i) => exchange(urls[i % 2]!, targets[i]!, "123456"));
    expect(answers.map((a) => a.status)).toEqual(Array(BUDGET).fill(400));

    // The 101st check: a stranger, and a customer with the right code, on either instance.
    const victim = await addCustomer("budget-victim");
    const code = await legacyCode(victim);
    const forStranger = await exchange(urls[0], freshEmail("budget-late"), "123456");
    const forCustomer = await exchange(urls[1], victim, code);
    for (const a of [forStranger, forCustomer]) {
      expect(a.status, a.text).toBe(429);
      expect(a.body).toMatchObject({ WasSuccessful: false, Value: null, Status: 429, Errors: null });
      expectRetryAfterWithinPeriod(a.retryAfter);
    }
    expect(forCustomer.text).toBe(forStranger.text);
  }, 60_000);
});

describe("Stytch authenticate: the budget is per client network, on REST, Connect and gRPC alike", () => {
  it("REST: 99 failures, a success (free), the 100th failure; then 429 for that /64, while another client is unaffected", async () => {
    const target = await stytchCode(freshEmail("stytch-target"));
    // The end user's address as the calling backend reports it; every
    // address of one IPv6 /64 is one client.
    const ip = (i: number) => `2001:db8:5:6::${(i + 1).toString(16)}`;
    const failures = await batched(BUDGET - 1, 10, (i) => authenticate(urls[i % 2]!, target.emailId, wrong(target.code), ip(i)));
    for (const a of failures) expectStytchError(a, 404, "otp_code_not_found");

    // The per-code rule killed the code long ago; a fresh one succeeds, and a success costs nothing.
    const fresh = await stytchCode(target.email);
    const ok = await authenticate(urls[0], fresh.emailId, fresh.code, ip(500));
    expect(ok.status, ok.text).toBe(200);
    expectStytchError(await authenticate(urls[1], fresh.emailId, "000000", ip(501)), 404, "otp_code_not_found");

    const over = await authenticate(urls[0], fresh.emailId, "000000", ip(502));
    expectStytchError(over, 429, "too_many_requests");
    expectRetryAfterWithinPeriod(over.retryAfter);

    // Another /64, and another IPv4 client, still check codes.
    expectStytchError(await authenticate(urls[1], fresh.emailId, "000000", "2001:db8:5:7::1"), 404, "otp_code_not_found");
    expectStytchError(await authenticate(urls[1], fresh.emailId, "000000", "198.51.100.20"), 404, "otp_code_not_found");
  }, 60_000);

  it("Connect and gRPC share the budget with REST: 50 failures over each, then the REST check is refused", async () => {
    const target = await stytchCode(freshEmail("protocols"));
    const auth = { headers: { authorization: env.project.authorization } };
    const clients = [
      createClient(OtpService, createConnectTransport({ baseUrl: urls[0], httpVersion: "1.1" })),
      createClient(OtpService, createGrpcTransport({ baseUrl: urls[1] })),
    ];
    const attributes = { ipAddress: "198.51.100.77", userAgent: "" };
    const codes = await batched(BUDGET, 10, (i) =>
      clients[i % 2]!.authenticateOtp({ methodId: target.emailId, code: wrong(target.code), attributes }, auth).then(
        () => "ok",
        (err: unknown) => Code[ConnectError.from(err).code],
      ),
    );
    expect(codes).toEqual(Array(BUDGET).fill(Code[Code.NotFound]));

    expectStytchError(await authenticate(urls[0], target.emailId, target.code, "198.51.100.77"), 429, "too_many_requests");
    const refused = await clients[1]!.authenticateOtp({ methodId: target.emailId, code: target.code, attributes }, auth).then(
      () => undefined,
      (err: unknown) => ConnectError.from(err),
    );
    expect(refused?.code).toBe(Code.ResourceExhausted);
  }, 60_000);
});
