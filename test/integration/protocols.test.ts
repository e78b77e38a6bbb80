// Every RPC of otp.v1.OtpService over gRPC, gRPC-Web and the Connect protocol
// (JSON and binary), all on the one port the service listens on; the error
// codes and google.rpc details each protocol carries; and the per-email rate
// limit as each route family shapes it. Real Postgres, real SMTP.
import { Code, ConnectError, createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { OtpService } from "../../gen/otp/v1/otp_service_pb.js";
import { startTestEnv, type TestEnv } from "../support/app.js";
import { codeIn, type ReceivedMail } from "../support/smtp.js";

let env: TestEnv;
beforeAll(async () => {
  env = await startTestEnv();
});
afterAll(async () => {
  await env?.close();
});

/** A fresh address per scenario, so no two scenarios share a rate limit. */
let counter = 0;
const RUN = Date.now().toString(36);
function freshEmail(tag: string): string {
  counter += 1;
  return `${tag}-${counter}-${RUN}@example.com`;
}

const USER_ID = /^user-test-[0-9a-f-]{36}$/;
const EMAIL_ID = /^email-test-[0-9a-f-]{36}$/;
const REQUEST_ID = /^request-id-test-[0-9a-f-]{36}$/;
const DEFAULT_EMAIL_PERIOD_S = 20;

interface Protocol {
  readonly name: string;
  /** The Content-Type the server answers a successful unary call with. */
  readonly contentType: RegExp;
  transport(baseUrl: string, interceptors: Interceptor[]): Transport;
}

const PROTOCOLS: readonly Protocol[] = [
  {
    name: "gRPC over HTTP/2",
    contentType: /^application\/grpc(\+proto)?$/,
    // gRPC always runs over HTTP/2 (h2c here); connect-node 2.x's gRPC
    // transport has no httpVersion option to set.
    transport: (baseUrl, interceptors) => createGrpcTransport({ baseUrl, interceptors }),
  },
  {
    name: "gRPC-Web over HTTP/1.1",
    contentType: /^application\/grpc-web(\+proto)?$/,
    transport: (baseUrl, interceptors) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors }),
  },
  {
    name: "Connect JSON over HTTP/1.1",
    contentType: /^application\/json/,
    transport: (baseUrl, interceptors) =>
      createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false, interceptors }),
  },
  {
    name: "Connect binary over HTTP/2",
    contentType: /^application\/proto$/,
    transport: (baseUrl, interceptors) =>
      createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true, interceptors }),
  },
];

/** Records the Content-Type of every answer the client receives. */
function recordContentTypes(seen: string[]): Interceptor {
  return (next) => async (req) => {
    const res = await next(req);
    seen.push(res.header.get("content-type") ?? "");
    return res;
  };
}

/** The ConnectError a call fails with; fails the test if the call succeeds. */
async function rejection(call: Promise<unknown> | (() => Promise<unknown>)): Promise<ConnectError> {
  try {
    await (typeof call === "function" ? call() : call);
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return err as ConnectError;
  }
  throw new Error("expected the call to fail, but it succeeded");
}

/** The first mail to `address`, once it has arrived. */
async function mailTo(address: string, timeoutMs = 10_000): Promise<ReceivedMail> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const mail = env.smtp.mails.find((m) => m.to === address);
    if (mail) return mail;
    if (Date.now() > deadline) throw new Error(`no mail to ${address} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function expectRateLimitDetails(err: ConnectError): void {
  expect(err.code).toBe(Code.ResourceExhausted);
  const [retry, ...moreRetries] = err.findDetails(RetryInfoSchema);
  expect(moreRetries).toHaveLength(0);
  expect(retry?.retryDelay).toBeDefined();
  const seconds = retry!.retryDelay!.seconds;
  expect(seconds).toBeGreaterThan(0n);
  expect(seconds).toBeLessThanOrEqual(BigInt(DEFAULT_EMAIL_PERIOD_S));
  const infos = err.findDetails(ErrorInfoSchema);
  expect(infos.map((i) => i.reason)).toEqual(["too_many_requests"]);
}

describe.each(PROTOCOLS)("$name on the service's one port", (protocol) => {
  const contentTypes: string[] = [];
  let client: Client<typeof OtpService>;
  let auth: { headers: { authorization: string } };

  beforeAll(() => {
    client = createClient(OtpService, protocol.transport(env.url, [recordContentTypes(contentTypes)]));
    auth = { headers: { authorization: env.project.authorization } };
  });

  it("LoginOrCreateEmailOtp creates a user, then SendEmailOtp reaches the same user and email", async () => {
    const email = freshEmail("create");
    const created = await client.loginOrCreateEmailOtp({ email }, auth);
    expect(created.statusCode).toBe(200);
    expect(created.userCreated).toBe(true);
    expect(created.userId).toMatch(USER_ID);
    expect(created.emailId).toMatch(EMAIL_ID);
    expect(created.requestId).toMatch(REQUEST_ID);

    const again = await client.loginOrCreateEmailOtp({ email }, auth);
    expect(again.statusCode).toBe(200);
    expect(again.userCreated).toBe(false);
    expect(again.userId).toBe(created.userId);
    expect(again.emailId).toBe(created.emailId);
    expect(again.requestId).toMatch(REQUEST_ID);
    expect(again.requestId).not.toBe(created.requestId);

    const sent = await client.sendEmailOtp({ email, expirationMinutes: 5 }, auth);
    expect(sent.statusCode).toBe(200);
    expect(sent.userId).toBe(created.userId);
    expect(sent.emailId).toBe(created.emailId);
    expect(sent.requestId).toMatch(REQUEST_ID);

    // The answers came back in this protocol's own encoding.
    expect(contentTypes.length).toBeGreaterThanOrEqual(3);
    for (const type of contentTypes) expect(type).toMatch(protocol.contentType);
  });

  it("SendOtp (public, no authorization) answers the legacy success", async () => {
    const res = await client.sendOtp({ email: freshEmail("legacy"), businessId: BigInt(env.businessId) });
    expect(res.wasSuccessful).toBe(true);
    expect(res.status).toBe(200);
    expect(res.message).toBeUndefined();
    expect(res.value).toBeUndefined();
    expect(contentTypes.at(-1)).toMatch(protocol.contentType);
  });

  it("answers Unauthenticated to a missing, malformed or wrong authorization on Stytch RPCs", async () => {
    const email = freshEmail("auth");
    const wrongSecret = `Basic ${Buffer.from(`${env.project.projectId}:not-the-secret`).toString("base64")}`;
    const cases: [string, () => Promise<unknown>][] = [
      ["no header on SendEmailOtp", () => client.sendEmailOtp({ email })],
      ["no header on LoginOrCreateEmailOtp", () => client.loginOrCreateEmailOtp({ email })],
      ["bearer token", () => client.loginOrCreateEmailOtp({ email }, { headers: { authorization: "Bearer abc" } })],
      ["wrong secret", () => client.loginOrCreateEmailOtp({ email }, { headers: { authorization: wrongSecret } })],
    ];
    for (const [label, call] of cases) {
      const err = await rejection(call);
      expect(err.code, label).toBe(Code.Unauthenticated);
      expect(err.findDetails(ErrorInfoSchema).map((i) => i.reason), label).toEqual(["unauthorized_credentials"]);
    }
  });

  it("answers InvalidArgument with a BadRequest naming email to a malformed email", async () => {
    const calls: [string, () => Promise<unknown>][] = [
      ["SendEmailOtp", () => client.sendEmailOtp({ email: "not-an-email" }, auth)],
      ["LoginOrCreateEmailOtp", () => client.loginOrCreateEmailOtp({ email: "a@b@example.com" }, auth)],
      ["SendOtp", () => client.sendOtp({ email: "nobody@", businessId: BigInt(env.businessId) })],
    ];
    for (const [label, call] of calls) {
      const err = await rejection(call);
      expect(err.code, label).toBe(Code.InvalidArgument);
      const [badRequest, ...more] = err.findDetails(BadRequestSchema);
      expect(more, label).toHaveLength(0);
      expect(badRequest?.fieldViolations.map((v) => v.field), label).toEqual(["email"]);
      expect(badRequest?.fieldViolations[0]?.description, label).toMatch(/^email /);
    }
  });

  it("answers NotFound to SendEmailOtp for an email no user of the project has", async () => {
    const err = await rejection(client.sendEmailOtp({ email: freshEmail("unknown") }, auth));
    expect(err.code).toBe(Code.NotFound);
    expect(err.findDetails(ErrorInfoSchema).map((i) => i.reason)).toEqual(["email_not_found"]);
  });

  it("answers InvalidArgument to expiration_minutes 11", async () => {
    const email = freshEmail("expiry");
    for (const call of [
      () => client.loginOrCreateEmailOtp({ email, expirationMinutes: 11 }, auth),
      () => client.sendEmailOtp({ email, expirationMinutes: 11 }, auth),
    ]) {
      const err = await rejection(call);
      expect(err.code).toBe(Code.InvalidArgument);
      const [badRequest] = err.findDetails(BadRequestSchema);
      expect(badRequest?.fieldViolations.map((v) => v.field)).toEqual(["expiration_minutes"]);
    }
    // Nothing was created by the rejected calls.
    const err = await rejection(client.sendEmailOtp({ email }, auth));
    expect(err.code).toBe(Code.NotFound);
  });

  it("answers ResourceExhausted with RetryInfo and ErrorInfo to the fourth immediate send to one email", async () => {
    const email = freshEmail("limit");
    for (let i = 0; i < 3; i++) {
      const ok = await client.loginOrCreateEmailOtp({ email }, auth);
      expect(ok.statusCode).toBe(200);
    }
    const err = await rejection(client.loginOrCreateEmailOtp({ email }, auth));
    expectRateLimitDetails(err);
    const retryAfter = err.metadata.get("retry-after");
    expect(retryAfter).toMatch(/^\d+$/);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);

    // SendEmailOtp is charged against the same per-email limit.
    expectRateLimitDetails(await rejection(client.sendEmailOtp({ email }, auth)));
  });
});

describe("the per-email rate limit in each route's shape", () => {
  it("legacy GET /api/sys/users/sendOtp: 429, Retry-After and the five-key envelope", async () => {
    const email = freshEmail("legacy-limit");
    const url = `${env.url}/api/sys/users/sendOtp?email=${encodeURIComponent(email)}&businessId=${env.businessId}`;
    for (let i = 0; i < 3; i++) {
      const ok = await fetch(url);
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ WasSuccessful: true, Value: null, Status: 200, Message: null, Errors: null });
    }
    const res = await fetch(url);
    expect(res.status).toBe(429);
    expectRetryAfter(res);
    const body = await res.json();
    expect(Object.keys(body)).toEqual(["WasSuccessful", "Value", "Status", "Message", "Errors"]);
    expect(body.WasSuccessful).toBe(false);
    expect(body.Value).toBeNull();
    expect(body.Status).toBe(429);
    expect(typeof body.Message).toBe("string");
    expect(body.Message.length).toBeGreaterThan(0);
    expect(body.Errors).toBeNull();
  });

  it("Stytch POST /v1/otps/email/send: 429, Retry-After and the Stytch error object", async () => {
    const email = freshEmail("stytch-limit");
    const post = (path: string) =>
      fetch(`${env.url}${path}`, {
        method: "POST",
        headers: { authorization: env.project.authorization, "content-type": "application/json" },
        body: JSON.stringify({ email }),
      });
    expect((await post("/v1/otps/email/login_or_create")).status).toBe(200);
    expect((await post("/v1/otps/email/send")).status).toBe(200);
    expect((await post("/v1/otps/email/send")).status).toBe(200);
    const res = await post("/v1/otps/email/send");
    expect(res.status).toBe(429);
    expectRetryAfter(res);
    const body = await res.json();
    expect(Object.keys(body).sort()).toEqual(["error_message", "error_type", "error_url", "request_id", "status_code"]);
    expect(body.status_code).toBe(429);
    expect(body.error_type).toBe("too_many_requests");
    expect(body.request_id).toMatch(REQUEST_ID);
    expect(typeof body.error_message).toBe("string");
    expect(body.error_message.length).toBeGreaterThan(0);
    expect(body.error_url).toMatch(/^https:\/\/stytch\.com\/docs\/api\/errors\/429/);
  });

  it("Connect: the limit is one per email whichever protocol or route the sends come through", async () => {
    const email = freshEmail("cross");
    const auth = { headers: { authorization: env.project.authorization } };
    const [grpc, grpcWeb, connectJson, connectBinary] = PROTOCOLS.map((p) => createClient(OtpService, p.transport(env.url, [])));
    expect((await grpc!.loginOrCreateEmailOtp({ email }, auth)).statusCode).toBe(200);
    expect((await grpcWeb!.sendEmailOtp({ email }, auth)).statusCode).toBe(200);
    const rest = await fetch(`${env.url}/v1/otps/email/send`, {
      method: "POST",
      headers: { authorization: env.project.authorization, "content-type": "application/json" },
      body: JSON.stringify({ email }),
    });
    expect(rest.status).toBe(200);
    expectRateLimitDetails(await rejection(connectJson!.sendEmailOtp({ email }, auth)));
    expectRateLimitDetails(await rejection(connectBinary!.loginOrCreateEmailOtp({ email }, auth)));
  });
});

describe("mail for sends over gRPC", () => {
  let grpc: Client<typeof OtpService>;
  beforeAll(() => {
    grpc = createClient(OtpService, PROTOCOLS[0]!.transport(env.url, []));
  });

  it("SendOtp for the business's customer delivers a 6-digit code in text and HTML", async () => {
    const res = await grpc.sendOtp({ email: env.customer, businessId: BigInt(env.businessId) });
    expect(res.wasSuccessful).toBe(true);
    const mail = await mailTo(env.customer);
    expect(mail.subject).toContain("Harbour Yoga");
    const code = codeIn(mail);
    expect(code).toMatch(/^\d{6}$/);
    expect(mail.text).toContain(code);
    expect(mail.html).toMatch(/\b\d{6}\b/);
    expect(mail.html).toContain(code);
  });

  it("LoginOrCreateEmailOtp delivers a 6-digit code to the new address", async () => {
    const email = freshEmail("mail");
    const res = await grpc.loginOrCreateEmailOtp({ email }, { headers: { authorization: env.project.authorization } });
    expect(res.userCreated).toBe(true);
    const mail = await mailTo(email);
    const code = codeIn(mail);
    expect(code).toMatch(/^\d{6}$/);
    expect(mail.html).toContain(code);
    expect(mail.text).toMatch(/expires in 2 minutes/);
  });
});

/** A Retry-After of whole seconds, at least 1 and at most one email period. */
function expectRetryAfter(res: Response): void {
  const retryAfter = res.headers.get("retry-after");
  expect(retryAfter).toMatch(/^\d+$/);
  expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
  expect(Number(retryAfter)).toBeLessThanOrEqual(DEFAULT_EMAIL_PERIOD_S);
}
