// A stranger naming made-up tenants on the public routes (a project's or a
// business's JWKS, the legacy sendOtp and exchange) makes the service look
// each one up in the database. Each client network gets 60 such lookups at
// once, then ten a second (LOOKUP_LIMIT_CLIENT_*; here 20, refilled once a
// minute, so nothing refills while the test runs); names already
// remembered cost nothing, so real tenants are served throughout, and other
// clients keep their own budget. Real Postgres, real SMTP, behind one
// trusted proxy so each request can name its client.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../../src/domain/ids.js";
import { startTestEnv, type TestEnv } from "../support/app.js";

let env: TestEnv;
beforeAll(async () => {
  env = await startTestEnv({ TRUST_PROXY: "1", LOOKUP_LIMIT_CLIENT_BURST: "20", LOOKUP_LIMIT_CLIENT_PERIOD_MS: "60000" });
});
afterAll(async () => {
  await env?.close();
});

const get = (path: string, client: string) => fetch(`${env.url}${path}`, { headers: { "x-forwarded-for": client } });

describe("looking up tenants nobody asked for lately", () => {
  it("a client cycling made-up project ids is refused with 429 after its budget; known tenants and other clients are served", async () => {
    const attacker = "198.51.100.7";
    // Real tenants, asked for once: remembered from now on.
    expect((await get(`/v1/sessions/jwks/${env.project.projectId}`, attacker)).status).toBe(200);
    expect((await get(`/api/sys/businesses/${env.businessId}/jwks`, attacker)).status).toBe(200);

    const answers = await Promise.all(
      Array.from({ length: 50 }, () => get(`/v1/sessions/jwks/${newId("project", false)}`, attacker).then(async (r) => ({ status: r.status, retryAfter: r.headers.get("retry-after"), body: await r.text() }))),
    );
    const counts = { 404: 0, 429: 0 };
    for (const a of answers) counts[a.status as 404 | 429]++;
    // The two real tenants' first lookups took 2 of the 20.
    expect(counts).toEqual({ 404: 18, 429: 32 });
    const refused = answers.find((a) => a.status === 429)!;
    expect(refused.retryAfter).toMatch(/^[1-9]\d*$/);
    expect(JSON.parse(refused.body)).toMatchObject({ status_code: 429, error_type: "too_many_requests" });

    // The same budget covers made-up business numbers, on the legacy routes too.
    const legacy = await get(`/api/sys/users/sendOtp?email=someone%40example.com&businessId=${env.businessId + 7_777_777}`, attacker);
    expect(legacy.status).toBe(429);
    expect(await legacy.json()).toMatchObject({ WasSuccessful: false, Value: null, Status: 429, Errors: null });
    expect((await get(`/api/sys/businesses/${env.businessId + 7_777_778}/jwks`, attacker)).status).toBe(429);

    // Remembered tenants cost nothing: the attacker itself is still served them.
    expect((await get(`/v1/sessions/jwks/${env.project.projectId}`, attacker)).status).toBe(200);
    expect((await get(`/api/sys/businesses/${env.businessId}/jwks`, attacker)).status).toBe(200);
    expect((await get(`/api/sys/users/sendOtp?email=someone%40example.com&businessId=${env.businessId}`, attacker)).status).toBe(200);

    // Another client network has a budget of its own.
    expect((await get(`/v1/sessions/jwks/${newId("project", false)}`, "203.0.113.50")).status).toBe(404);
    expect((await get(`/api/sys/businesses/${env.businessId + 7_777_779}/jwks`, "203.0.113.50")).status).toBe(404);
  });
});
