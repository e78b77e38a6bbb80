// OTLP over http/protobuf (the default protocol): the caller's trace id
// reaches the collector in a protobuf export, with no email address in it.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { mailbox, sleep } from "../support/answers.js";
import { startTestEnv, type TestEnv } from "../support/app.js";
import { startOtlpReceiver, type OtlpReceiver } from "../support/otlp-receiver.js";

let env: TestEnv;
let receiver: OtlpReceiver;
beforeAll(async () => {
  receiver = await startOtlpReceiver();
  env = await startTestEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_TRACES_SAMPLER: "always_on", OTEL_BSP_SCHEDULE_DELAY: "50" });
});
afterAll(async () => {
  await env?.close();
  await receiver?.close();
});

it("exports the caller's trace as OTLP protobuf, without the address", async () => {
  const traceId = randomBytes(16);
  const address = `proto-${Date.now()}@example.com`;
  const res = await fetch(`${env.url}/v1/otps/email/login_or_create`, {
    method: "POST",
    headers: { authorization: env.project.authorization, "content-type": "application/json", traceparent: `00-${traceId.toString("hex")}-${randomBytes(8).toString("hex")}-01` },
    body: JSON.stringify({ email: address }),
  });
  expect(res.status).toBe(200);
  await mailbox(() => env.smtp).waitForMailTo(address, 1);
  const deadline = Date.now() + 15_000;
  const all = () => Buffer.concat(receiver.exports.map((e) => e.body));
  while (Date.now() < deadline && all().indexOf(Buffer.from("smtp send")) < 0) await sleep(50);
  expect(receiver.exports.every((e) => e.contentType === "application/x-protobuf")).toBe(true);
  expect(all().indexOf(traceId)).toBeGreaterThanOrEqual(0);
  expect(all().indexOf(Buffer.from("smtp send"))).toBeGreaterThanOrEqual(0);
  expect(all().indexOf(Buffer.from("@example.com"))).toBe(-1);
});
