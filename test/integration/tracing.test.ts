// OpenTelemetry end to end, seen by an in-process OTLP receiver (http/json):
// a caller's W3C traceparent is continued on every protocol (REST, Connect,
// gRPC, gRPC-Web); its trace id is on the RPC's server span, on each
// Postgres statement, on the delivery of its mail and the SMTP transaction
// (also when another instance delivers it: the traceparent travels in the
// outbox row), and in the access log line. No email address or code
// appears anywhere in what is exported.
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OtpService } from "../../gen/otp/v1/otp_service_pb.js";
import { emailFactory, mailbox, sleep } from "../support/answers.js";
import { startTestEnv, type TestEnv } from "../support/app.js";
import { startOtlpReceiver, type ExportedSpan, type OtlpReceiver } from "../support/otlp-receiver.js";
import { codeIn } from "../support/smtp.js";

let env: TestEnv;
let receiver: OtlpReceiver;
const logLines: Record<string, unknown>[] = [];

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  const logger = pino(
    { level: "info" },
    new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split("\n")) if (line) logLines.push(JSON.parse(line));
        done();
      },
    }),
  );
  env = await startTestEnv(
    {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_SERVICE_NAME: "otp-test",
      OTEL_BSP_SCHEDULE_DELAY: "50",
    },
    { logger },
  );
});
afterAll(async () => {
  await env?.close();
  await receiver?.close();
});

const email = emailFactory();
const { waitForMailTo } = mailbox(() => env.smtp);
const SERVER = 2;
const CLIENT = 3;
const CONSUMER = 5;

function newTraceparent() {
  const traceId = randomBytes(16).toString("hex");
  const spanId = randomBytes(8).toString("hex");
  return { traceId, spanId, header: `00-${traceId}-${spanId}-01` };
}

async function spansOf(traceId: string, until: (spans: ExportedSpan[]) => boolean): Promise<ExportedSpan[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const spans = receiver.spans().filter((s) => s.traceId === traceId);
    if (until(spans) || Date.now() > deadline) return spans;
    await sleep(50);
  }
}

const hasDelivery = (spans: ExportedSpan[]) => spans.some((s) => s.name === "smtp send") && spans.some((s) => s.name === "otp.deliver");

const CALLERS: { name: string; call(address: string, traceparent: string): Promise<unknown> }[] = [
  {
    name: "REST",
    call: (address, traceparent) =>
      fetch(`${env.url}/v1/otps/email/login_or_create`, {
        method: "POST",
        headers: { authorization: env.project.authorization, "content-type": "application/json", traceparent, tracestate: "vendor=opaque" },
        body: JSON.stringify({ email: address }),
      }).then((r) => expect(r.status).toBe(200)),
  },
  ...(
    [
      ["Connect", (baseUrl: string) => createConnectTransport({ baseUrl, httpVersion: "1.1" })],
      ["gRPC", (baseUrl: string) => createGrpcTransport({ baseUrl })],
      ["gRPC-Web", (baseUrl: string) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" })],
    ] as [string, (u: string) => Transport][]
  ).map(([name, make]) => ({
    name,
    call: (address: string, traceparent: string) =>
      createClient(OtpService, make(env.url)).loginOrCreateEmailOtp(
        { email: address },
        { headers: { authorization: env.project.authorization, traceparent, tracestate: "vendor=opaque" } },
      ),
  })),
];

describe("a caller's trace", () => {
  for (const caller of CALLERS) {
    it(`over ${caller.name}: the RPC, its Postgres statements, the delivery and the SMTP transaction are in it`, async () => {
      const tp = newTraceparent();
      const address = email(`trace-${caller.name.toLowerCase()}`);
      await caller.call(address, tp.header);
      await waitForMailTo(address, 1);
      const spans = await spansOf(tp.traceId, hasDelivery);
      const server = spans.find((s) => s.kind === SERVER);
      expect(server, JSON.stringify(spans.map((s) => s.name))).toBeDefined();
      // A child of the caller's span.
      expect(server!.parentSpanId).toBe(tp.spanId);
      expect(server!.name).toMatch(/LoginOrCreateEmailOtp|\/v1\/otps\/email\/login_or_create/);
      const statements = spans.filter((s) => s.attributes["db.system.name"] === "postgresql");
      expect(statements.length).toBeGreaterThan(0);
      expect(statements.some((s) => s.name === "SELECT otp_send" && s.kind === CLIENT)).toBe(true);
      const delivery = spans.find((s) => s.name === "otp.deliver")!;
      expect(delivery.kind).toBe(CONSUMER);
      const smtp = spans.find((s) => s.name === "smtp send")!;
      expect(smtp.parentSpanId).toBe(delivery.spanId);
      // The access log line carries the same trace id.
      expect(logLines.some((l) => l.msg === "request" && l.trace_id === tp.traceId)).toBe(true);
    });
  }

  it("joins the send's trace when another instance delivers the mail", async () => {
    // A sending instance that delivers nothing: the first instance delivers
    // (stopping the first one's worker instead would leave later tests without one).
    const sender = await env.startInstance();
    await sender.app.worker.stop(1_000);
    const tp = newTraceparent();
    const address = email("trace-other");
    const res = await fetch(`${sender.url}/v1/otps/email/login_or_create`, {
      method: "POST",
      headers: { authorization: env.project.authorization, "content-type": "application/json", traceparent: tp.header },
      body: JSON.stringify({ email: address }),
    });
    expect(res.status).toBe(200);
    await waitForMailTo(address, 1);
    const spans = await spansOf(tp.traceId, hasDelivery);
    expect(hasDelivery(spans), JSON.stringify(spans.map((s) => s.name))).toBe(true);
    await sender.app.close();
  });

  it("an unsampled caller (flags 00) leaves no spans and no traceparent on its mail", async () => {
    const tp = newTraceparent();
    const address = email("trace-unsampled");
    const other = await env.startInstance();
    await CALLERS[0]!.call(address, `00-${tp.traceId}-${tp.spanId}-00`);
    await waitForMailTo(address, 1);
    await sleep(500);
    expect(receiver.spans().filter((s) => s.traceId === tp.traceId)).toEqual([]);
    await other.app.close();
  });

  it("exports no email address and no code, anywhere", async () => {
    // A traced send of this test's own, delivered, so there is something exported to read.
    const tp = newTraceparent();
    await CALLERS[0]!.call(email("trace-export"), tp.header);
    await spansOf(tp.traceId, hasDelivery);
    if (process.env.DUMP_SPANS) console.log(JSON.stringify(receiver.spans().slice(0, 12), null, 1));
    const exported = receiver.exports.map((e) => e.body.toString("utf8")).join("\n");
    expect(exported.length).toBeGreaterThan(1000);
    expect(exported).not.toMatch(/@example\.com/);
    // Nor any other address (the sender's included).
    expect(exported).not.toMatch(/[\w.+-]+@[\w-]+\.[\w.-]+/);
    expect(exported).not.toContain(env.customer);
    for (const mail of env.smtp.mails) expect(exported).not.toContain(`"${codeIn(mail)}"`);
  });
});
