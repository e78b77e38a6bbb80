// A client cannot choose its rate-limit key, behind a proxy or not: the
// service on port 0 with real Postgres and SMTP, called as an attacker who
// writes whatever X-Forwarded-For it likes (the test's socket is 127.0.0.1,
// standing in for the proxy).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestEnv, type TestEnv } from "../support/app.js";

/** Per client: 2 sends at once, then one a minute (so the third is refused). */
const TIGHT_IP_LIMIT = { RATE_LIMIT_IP_BURST: "2", RATE_LIMIT_IP_PERIOD_MS: "60000" };

let counter = 0;
const stranger = () => `stranger-${Date.now()}-${counter++}@example.com`;

function legacySend(env: TestEnv, forwardedFor: string | undefined, email = stranger()): Promise<Response> {
  return fetch(`${env.url}/api/sys/users/sendOtp?email=${encodeURIComponent(email)}&businessId=${env.businessId}`, {
    headers: forwardedFor === undefined ? {} : { "x-forwarded-for": forwardedFor },
  });
}

/** The database's clock now: where a test's own audit rows start. */
async function dbNow(env: TestEnv): Promise<Date> {
  const { rows } = await env.app.db.query<{ now: Date }>("SELECT clock_timestamp() AS now");
  return rows[0]!.now;
}

/** The client addresses of the sends audited since `since` (the calling test's own). */
async function recordedIps(env: TestEnv, since: Date): Promise<string[]> {
  await new Promise((r) => setTimeout(r, 200));
  const { rows } = await env.app.db.query<{ ip_address: string }>(
    "SELECT ip_address FROM audit_events WHERE action LIKE '%send%' AND occurred_at >= $1 ORDER BY occurred_at",
    [since],
  );
  return rows.map((r) => r.ip_address);
}

describe("TRUST_PROXY=1: one proxy in front", () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await startTestEnv({ TRUST_PROXY: "1", ...TIGHT_IP_LIMIT });
  });
  afterAll(async () => {
    await env?.close();
  });

  it("a new left-hand X-Forwarded-For entry per request does not buy a new budget", async () => {
    const since = await dbNow(env);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      // The attacker wrote "10.66.0.<i>"; the proxy appended the address it saw.
      statuses.push((await legacySend(env, `10.66.0.${i}, 198.51.100.7`)).status);
    }
    expect(statuses).toEqual([200, 200, 429, 429, 429]);
    // Every send that reached the database was recorded as the proxy's address
    // (refusals the instance already knew of, the last two, are not sent there).
    expect(await recordedIps(env, since)).toEqual(Array(3).fill("198.51.100.7"));
  });

  it("another address the proxy appended is another client", async () => {
    expect((await legacySend(env, "10.66.0.1, 198.51.100.8")).status).toBe(200);
  });

  it("addresses of one IPv6 /64 share one budget", async () => {
    const statuses: number[] = [];
    for (const address of ["2001:db8:77:1::1", "2001:db8:77:1::2", "2001:db8:77:1:ffff:ffff:ffff:fffe", "2001:db8:77:1:abcd::9"]) {
      statuses.push((await legacySend(env, address)).status);
    }
    expect(statuses).toEqual([200, 200, 429, 429]);
    // The next /64 is someone else.
    expect((await legacySend(env, "2001:db8:77:2::1")).status).toBe(200);
  });
});

describe("TRUST_PROXY=<networks>", () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await startTestEnv({ TRUST_PROXY: "127.0.0.0/8,10.0.0.0/8", ...TIGHT_IP_LIMIT });
  });
  afterAll(async () => {
    await env?.close();
  });

  it("skips the trusted proxies from the right; the attacker's entries stay on the left", async () => {
    const since = await dbNow(env);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await legacySend(env, `203.0.113.${i}, 198.51.100.20, 10.0.0.5`)).status);
    expect(statuses).toEqual([200, 200, 429, 429]);
    expect(new Set(await recordedIps(env, since))).toEqual(new Set(["198.51.100.20"]));
  });
});

describe("TRUST_PROXY unset (the default)", () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await startTestEnv(TIGHT_IP_LIMIT);
  });
  afterAll(async () => {
    await env?.close();
  });

  it("X-Forwarded-For is ignored: the socket's address is the client", async () => {
    const since = await dbNow(env);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await legacySend(env, `198.51.100.${i}`)).status);
    expect(statuses).toEqual([200, 200, 429]);
    expect(new Set(await recordedIps(env, since))).toEqual(new Set(["127.0.0.1"]));
  });
});
