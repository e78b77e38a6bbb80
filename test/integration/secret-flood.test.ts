// Refusing a wrong project secret must be cheap: a flood of wrong secrets
// from one client (here 127.0.0.2, a loopback address of its own) must not
// delay a legitimate caller's first authentication (127.0.0.1), which costs
// one scrypt. The flood runs for the whole measurement at 60 wrong secrets
// a second (the hashing pool used to saturate at about 55 a second; each
// refusal costs the service and this client together about 3 ms of CPU on a
// loaded machine), over 32 keep-alive connections, against the real project
// and other existing projects. It is paced, not as fast as possible, because the flooding
// client shares this process's event loop with the service.
// Real Postgres.
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../../src/domain/ids.js";
import { startTestEnv, type TestEnv, type TestProject } from "../support/app.js";

let env: TestEnv;
let url: URL;
beforeAll(async () => {
  env = await startTestEnv();
  url = new URL(env.url);
});
afterAll(async () => {
  await env?.close();
});

const agents = new Map<string, http.Agent>();

/** POST /v1/otps/authenticate with `{}` from a chosen local address: 400 once authenticated, 401 / 429 if not. */
function call(authorization: string, from: string): Promise<{ status: number; ms: number }> {
  let agent = agents.get(from);
  if (!agent) {
    agent = new http.Agent({ keepAlive: true, localAddress: from } as http.AgentOptions);
    agents.set(from, agent);
  }
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: "/v1/otps/authenticate", method: "POST", agent, headers: { authorization, "content-type": "application/json" } },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
      },
    );
    req.on("error", reject);
    req.end("{}");
  });
}

const basic = (projectId: string, secret: string) => `Basic ${Buffer.from(`${projectId}:${secret}`).toString("base64")}`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Fresh projects' first authentications, one after another: their latencies. */
async function firstAuthentications(projects: TestProject[]): Promise<number[]> {
  const out: number[] = [];
  for (const p of projects) {
    const a = await call(p.authorization, "127.0.0.1");
    expect(a.status, "a legitimate caller is authenticated (400: the empty body is then refused)").toBe(400);
    out.push(a.ms);
  }
  return out;
}

describe("a flood of wrong secrets does not delay a legitimate caller", () => {
  it("first authentications during the flood take under 200 ms at the median (or 3× the quiet figure on an overloaded machine)", async () => {
    const targets = [env.project, await env.createProject("Other 1"), await env.createProject("Other 2")];
    const SAMPLES = [1, 2, 3, 4, 5, 6, 7];
    const quiet = await firstAuthentications(await Promise.all(SAMPLES.map((n) => env.createProject(`Quiet ${n}`))));
    const legit = await Promise.all(SAMPLES.map((n) => env.createProject(`Legit ${n}`)));

    let flooding = true;
    const floodStatuses = new Map<number, number>();
    const LANES = 32;
    const RATE = 60;
    const flooder = async (lane: number) => {
      for (let i = 0; flooding; i++) {
        const started = performance.now();
        const target = targets[(lane + i) % targets.length]!;
        const a = await call(basic(target.projectId, `secret-test-${newId("request-id", false)}`), "127.0.0.2");
        floodStatuses.set(a.status, (floodStatuses.get(a.status) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, Math.max(0, (LANES * 1000) / RATE - (performance.now() - started))));
      }
    };
    const floodStarted = performance.now();
    const lanes = Array.from({ length: LANES }, (_, lane) => flooder(lane));
    try {
      // The flood's first few wrong secrets are hashed (its budget's burst);
      // from then on it is refused without hashing. Measure the steady state.
      await new Promise((r) => setTimeout(r, 2_500));
      const during = await firstAuthentications(legit);
      console.log(
        `[secret-flood] first authentication, median of ${SAMPLES.length}: quiet ${median(quiet).toFixed(1)} ms, during the flood ${median(during).toFixed(1)} ms ` +
          `(${during.map((ms) => ms.toFixed(0)).join(", ")}); flood answers ${JSON.stringify(Object.fromEntries(floodStatuses))}`,
      );
      // Under 200 ms. A first authentication is one scrypt, which on a
      // heavily loaded machine (load average above 10 on 2 cores) takes
      // 50-250 ms alone, and the flood's own HTTP work competes for the same
      // cores; then the bound is three times the quiet figure measured just
      // before. Before the fix, the flood made it 18 times the quiet figure.
      expect(median(during)).toBeLessThan(Math.max(200, 3 * median(quiet)));
    } finally {
      flooding = false;
      await Promise.all(lanes);
    }
    // Never a success for the flood; refused as 401, or 429 once throttled.
    expect([...floodStatuses.keys()].every((s) => s === 401 || s === 429)).toBe(true);
    // The flooding client got its budget's burst (10) of hashed refusals, and
    // one more per 6 s: every other wrong secret was refused without a hash.
    expect(floodStatuses.get(401) ?? 0).toBeLessThanOrEqual(10 + Math.ceil((performance.now() - floodStarted) / 6_000));
  }, 60_000);
});
