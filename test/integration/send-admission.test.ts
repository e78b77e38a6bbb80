// Overload is refused, not queued: against the real service, Postgres and
// SMTP. When mail cannot be delivered (the SMTP server answers 451) the
// backlog grows past what may wait and further sends are refused with 429 and
// Retry-After (Connect: resource_exhausted); once mail flows again they are
// accepted again. Sends beyond the in-flight limit are refused at once.
// The refusal comes before the request is read (send-gate.ts): a body that
// is not even JSON, or no credentials, meet the same 429 while it holds.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { OtpService } from "../../gen/otp/v1/otp_service_pb.js";
import { BACKLOG_SAMPLE_MS } from "../../src/domain/send-admission.js";
import { settledOutbox, startTestEnv, type TestEnv } from "../support/app.js";

const METRICS_TOKEN = "metrics-token-0123456789abcdef";
let env: TestEnv;
beforeAll(async () => {
  env = await startTestEnv({ SEND_BACKLOG_FLOOR: "3", METRICS_TOKEN });
});
afterAll(async () => {
  await env?.close();
});

let n = 0;
const fresh = () => `admission.${Date.now()}.${n++}@example.com`;

function rest(base: string, email: string): Promise<Response> {
  return fetch(`${base}/v1/otps/email/login_or_create`, {
    method: "POST",
    headers: { authorization: env.project.authorization, "content-type": "application/json" },
    body: JSON.stringify({ email }),
  });
}

function connect(base: string, email: string): Promise<Response> {
  return fetch(`${base}/otp.v1.OtpService/LoginOrCreateEmailOtp`, {
    method: "POST",
    headers: { authorization: env.project.authorization, "content-type": "application/json", "connect-protocol-version": "1" },
    body: JSON.stringify({ email }),
  });
}

describe("send admission", () => {
  it("refuses sends whose mail cannot be delivered in time, and accepts again once mail flows", async () => {
    // Nothing queued by what ran before: the backlog is this test's own.
    await settledOutbox(env.app.db, undefined);
    // ... and the admission's count of it (re-read every BACKLOG_SAMPLE_MS) has seen that.
    await new Promise((r) => setTimeout(r, 2 * BACKLOG_SAMPLE_MS));
    const before = env.smtp.mails.length;
    env.smtp.reject = () => 451;
    // Up to the floor (3 queued) every send is accepted, mail or no mail;
    // past it, refused. A send that commits while the backlog is being
    // recounted may be counted twice until the next count (the estimate errs
    // towards refusing), so the refusal may come one send early: after the
    // 3rd or the 4th accepted send, never later.
    let accepted = 0;
    let refused = await rest(env.url, fresh());
    while (refused.status === 200 && accepted < 10) {
      accepted++;
      refused = await rest(env.url, fresh());
    }
    expect(accepted).toBeGreaterThanOrEqual(3);
    expect(accepted).toBeLessThanOrEqual(4);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(((await refused.json()) as { error_type: string }).error_type).toBe("too_many_requests");

    const viaConnect = await connect(env.url, fresh());
    expect(viaConnect.status).toBe(429);
    expect(viaConnect.headers.get("retry-after")).not.toBeNull();
    expect(((await viaConnect.json()) as { code: string }).code).toBe("resource_exhausted");

    // gRPC and gRPC-Web: status 8 with Retry-After and RetryInfo.
    for (const transport of [createGrpcTransport({ baseUrl: env.url }), createGrpcWebTransport({ baseUrl: env.url, httpVersion: "1.1" })]) {
      const client = createClient(OtpService, transport);
      const err = await client
        .loginOrCreateEmailOtp({ email: fresh() }, { headers: { authorization: env.project.authorization } })
        .then(() => undefined, (e: unknown) => ConnectError.from(e));
      expect(err?.code).toBe(Code.ResourceExhausted);
      expect(err?.metadata.get("retry-after")).not.toBeNull();
      expect(err?.findDetails(RetryInfoSchema)).toHaveLength(1);
    }

    // Refused before the body is read or the caller authenticated.
    const unread = await fetch(`${env.url}/v1/otps/email/login_or_create`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "not json",
    });
    expect(unread.status).toBe(429);
    expect(unread.headers.get("retry-after")).not.toBeNull();
    // Other routes go on as usual.
    expect((await fetch(`${env.url}/healthz`)).status).toBe(200);
    // Refusals at the door are counted as refusals further in would be.
    const metrics = await (await fetch(`${env.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    const refusedAtDoor = Number(/^otp_sends_total\{outcome="rate_limited",limit="capacity"\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
    expect(refusedAtDoor).toBeGreaterThanOrEqual(5);
    expect(metrics).toMatch(/^otp_requests_total\{rpc="LoginOrCreateEmailOtp",protocol="grpc",code="resource_exhausted"\} \d+$/m);

    // Nothing accepted is lost: once the server takes mail, every accepted send's mail arrives and sends are accepted again.
    env.smtp.reject = undefined;
    await env.smtp.waitFor(before + accepted, 20_000);
    const deadline = Date.now() + 10_000;
    let status = (await rest(env.url, fresh())).status;
    while (status !== 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      status = (await rest(env.url, fresh())).status;
    }
    expect(status).toBe(200);
  });

  it("refuses at once the sends beyond an instance's in-flight limit, each with Retry-After", async () => {
    const small = await env.startInstance({ SEND_MAX_IN_FLIGHT: "1" });
    const answers = await Promise.all(Array.from({ length: 30 }, () => rest(small.url, fresh())));
    const statuses = answers.map((a) => a.status);
    expect(statuses).toContain(200);
    expect(statuses).toContain(429);
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    for (const a of answers.filter((x) => x.status === 429)) expect(a.headers.get("retry-after")).not.toBeNull();
  });

  it("while the instance's event loop runs late, lets in only what runs at once and refuses the rest at the door with Retry-After; accepts them again once it keeps up", async () => {
    // The service runs in this process: holding this loop is what a flood of
    // work does to the instance.
    // Only the lateness rule may refuse here: Little's law allows the maximum.
    const late = await env.startInstance({ SEND_MAX_LOOP_DELAY_MS: "25", SEND_MIN_IN_FLIGHT: "1", SEND_MAX_IN_FLIGHT: "100", SEND_TARGET_LATENCY_MS: "3600000" });
    const hold = (ms: number) => {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        // Nothing else runs meanwhile, timers included.
      }
    };
    const statuses: number[] = [];
    for (let i = 0; i < 10 && !statuses.includes(429); i++) {
      hold(300);
      const answers = await Promise.all(Array.from({ length: 4 }, () => rest(late.url, fresh())));
      for (const answer of answers) {
        statuses.push(answer.status);
        if (answer.status === 429) {
          expect(answer.headers.get("retry-after")).not.toBeNull();
          expect((await answer.json()).error_type).toBe("too_many_requests");
        }
      }
    }
    expect(statuses).toContain(429);
    expect(statuses).toContain(200);
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);

    const deadline = Date.now() + 10_000;
    let ok = false;
    while (!ok && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 300));
      const answers = await Promise.all(Array.from({ length: 4 }, () => rest(late.url, fresh())));
      ok = answers.every((a) => a.status === 200);
    }
    expect(ok).toBe(true);
  });
});
