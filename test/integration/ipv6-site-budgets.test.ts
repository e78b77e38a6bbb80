// An IPv6 /48 — one site's usual assignment, 65,536 /64s — is not 65,536
// clients: on top of each /64's own budget, the site's /64s share 16
// clients' worth of the send limit per IP and of the guessing budget.
// Behind one trusted proxy, so each request names its client; real
// Postgres, real SMTP.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestEnv, type TestEnv } from "../support/app.js";

/** Per client: 2 at once, then one a minute (sends) or one in 10 minutes (failed checks). Per /48: 32 at once. */
const TIGHT = {
  TRUST_PROXY: "1",
  RATE_LIMIT_IP_BURST: "2",
  RATE_LIMIT_IP_PERIOD_MS: "60000",
  GUESS_LIMIT_CLIENT_BURST: "2",
  GUESS_LIMIT_CLIENT_PERIOD_MS: "600000",
  LEGACY_MIN_RESPONSE_MS: "0",
};
const SITE_BURST = 32;

let env: TestEnv;
beforeAll(async () => {
  env = await startTestEnv(TIGHT);
});
afterAll(async () => {
  await env?.close();
});

let counter = 0;
const stranger = () => `site-${Date.now()}-${counter++}@example.com`;

const legacySend = (client: string) =>
  fetch(`${env.url}/api/sys/users/sendOtp?email=${encodeURIComponent(stranger())}&businessId=${env.businessId}`, { headers: { "x-forwarded-for": client } });

const legacyExchange = (client: string) =>
  fetch(`${env.url}/api/sys/users/exchange`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-forwarded-for": client },
    body: JSON.stringify({ email: stranger(), businessId: env.businessId, otp: "123456" }),
  });

/** Two requests from each of 20 /64s of one /48: what they were answered, and how many refills the time taken allows. */
async function fromTwentySubnets(site: string, request: (client: string) => Promise<Response>, sitePeriodMs: number) {
  const started = Date.now();
  const statuses: number[] = [];
  for (let subnet = 1; subnet <= 20; subnet++) {
    for (const host of ["1", "2"]) statuses.push((await request(`${site}:${subnet.toString(16)}::${host}`)).status);
  }
  return { statuses, refills: Math.floor((Date.now() - started) / sitePeriodMs) };
}

/** The first 32 (and any refilled meanwhile) were answered `answered`; every other was 429. */
function expectSiteBudgetSpent(run: { statuses: number[]; refills: number }, answered: number) {
  const served = run.statuses.filter((s) => s === answered).length;
  expect(served).toBeGreaterThanOrEqual(SITE_BURST);
  expect(served).toBeLessThanOrEqual(SITE_BURST + run.refills);
  expect(run.statuses.slice(0, SITE_BURST)).toEqual(Array(SITE_BURST).fill(answered));
  expect(run.statuses.slice(SITE_BURST + run.refills)).toEqual(Array(40 - SITE_BURST - run.refills).fill(429));
}

describe("one IPv6 /48", () => {
  it("sends: each /64 keeps its own 2, but the site's /64s together get 32, then 429; another /48 is unaffected", async () => {
    expectSiteBudgetSpent(await fromTwentySubnets("2001:db8:aa", legacySend, 60_000 / 16), 200);
    expect((await legacySend("2001:db8:bb:1::1")).status).toBe(200);
  }, 60_000);

  it("failed checks: the site's /64s together fail 32, then every check is 429; another /48 is unaffected", async () => {
    expectSiteBudgetSpent(await fromTwentySubnets("2001:db8:cc", legacyExchange, 600_000 / 16), 400);
    expect((await legacyExchange("2001:db8:dd:1::1")).status).toBe(400);
  }, 60_000);
});
