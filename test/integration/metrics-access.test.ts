// /metrics is private by default with a real database: its delivery
// counters move only when a customer is mailed, so an open /metrics tells a
// stranger who is registered. Real Postgres, real SMTP.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestEnv, type TestEnv } from "../support/app.js";

const TOKEN = "metrics-token-0123456789abcdef";

describe("with DATABASE_URL and no METRICS_TOKEN", () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await startTestEnv();
  });
  afterAll(async () => {
    await env?.close();
  });

  it("/metrics is not there at all (404), with or without a bearer token", async () => {
    for (const headers of [{}, { authorization: `Bearer ${TOKEN}` }] as Record<string, string>[]) {
      const res = await fetch(`${env.url}/metrics`, { headers });
      const body = await res.text();
      expect(res.status).toBe(404);
      expect(body).not.toContain("otp_");
    }
  });

  it("a customer's send moves no counter a stranger can read", async () => {
    await fetch(`${env.url}/api/sys/users/sendOtp?email=${encodeURIComponent(env.customer)}&businessId=${env.businessId}`);
    await env.smtp.waitFor(1);
    expect(await (await fetch(`${env.url}/metrics`)).text()).not.toMatch(/delivered/);
  });
});

describe("with DATABASE_URL and METRICS_TOKEN", () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await startTestEnv({ METRICS_TOKEN: TOKEN });
  });
  afterAll(async () => {
    await env?.close();
  });

  it("answers 401 without the token, and with a wrong one", async () => {
    expect((await fetch(`${env.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${env.url}/metrics`, { headers: { authorization: "Bearer wrong-token" } })).status).toBe(401);
  });

  it("serves Prometheus text with the token", async () => {
    const res = await fetch(`${env.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(await res.text()).toMatch(/^# HELP /m);
  });
});
