// The legacy exchange must not tell a customer from a stranger by its
// timing, before or after the customer is locked: POST
// /api/sys/users/exchange with wrong codes for the business's known
// customer and for fresh unknown addresses, in pairs (back to back, in
// random order) over one keep-alive connection. The customer gets a fresh code before every
// fifth guess, so the first hundred guesses are at live codes (the full
// bookkeeping of a failure) and lock the address; the rest meet the lock.
// The guessing budget is lifted so every call does the full work. The test
// fails if the median of the pairs' differences is more than 1 ms either way.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, median, postJson } from "./support/service.js";
import { samplePairs } from "./support/paired-timing.js";
import { FAULTS_ENABLED, RUN, type FaultStack, startFaultStack } from "./support/suite.js";

const CUSTOMER = "jane.doe@example.com";
const BUSINESS = 7;
const SAMPLES = 300;
const WARM_UP = 20;
const MAX_MEDIAN_GAP_MS = 1;

describe.runIf(FAULTS_ENABLED)("legacy exchange latency: known customer vs unknown addresses", () => {
  let stack: FaultStack | undefined;
  let db: FaultStack["db"];
  let smtp: FaultStack["smtp"];
  let svc: FaultStack["svc"] | undefined;
  const known: number[] = [];
  const unknown: number[] = [];
  const bodies = new Set<string>();

  beforeAll(async () => {
    stack = await startFaultStack("exchange-timing", {
      RATE_LIMIT_EMAIL_BURST: "1000000",
      RATE_LIMIT_EMAIL_DAILY_BURST: "1000000",
      RATE_LIMIT_IP_BURST: "1000000",
      GUESS_LIMIT_CLIENT_BURST: "1000000",
    });
    ({ svc, smtp, db } = stack);
    let customerGuesses = 0;
    let code = "000000";
    const freshCode = async () => {
      const before = smtp.acceptedTo(CUSTOMER).length;
      const sent = await call(`${svc!.url}/api/sys/users/sendOtp?email=${encodeURIComponent(CUSTOMER)}&businessId=${BUSINESS}`);
      if (sent.status !== 200) throw new Error(`send: ${sent.status} ${sent.text}`);
      const deadline = Date.now() + 10_000;
      while (smtp.acceptedTo(CUSTOMER).length === before) {
        if (Date.now() > deadline) throw new Error("no mail to the customer");
        await new Promise((r) => setTimeout(r, 10));
      }
      code = /(\d{6})/.exec(smtp.acceptedTo(CUSTOMER).at(-1)!.subject)![1]!;
      // Let the delivery's own bookkeeping finish, so it does not run
      // alongside (and slow) the next measured call, which is the customer's.
      await new Promise((r) => setTimeout(r, 100));
    };
    let n = 0;
    const once = async (kind: "known" | "unknown") => {
      n += 1;
      if (kind === "known" && customerGuesses++ % 5 === 0) await freshCode();
      const email = kind === "known" ? CUSTOMER : `stranger-${n}-${RUN}@example.com`;
      const guess = String((Number(code) + 1 + (n % 7)) % 1_000_000).padStart(6, "0");
      const a = await postJson(svc!.url, "/api/sys/users/exchange", { email, businessId: BUSINESS, otp: guess });
      if (a.status !== 400) throw new Error(`${kind}: ${a.status} ${a.text}`);
      bodies.add(a.text);
      return a.ms;
    };
    await samplePairs(once, WARM_UP, SAMPLES, { known, unknown });
  });

  afterAll(async () => {
    await stack?.close();
  });

  it("answers the same body to both", () => {
    expect(bodies.size).toBe(1);
    expect(JSON.parse([...bodies][0]!)).toMatchObject({ WasSuccessful: false, Value: null, Status: 400, Errors: { otp: expect.any(Array) } });
  });

  it("locked the customer along the way (so both states were measured)", async () => {
    const { rows } = await db.pool.query<{ locked_until: Date | null }>("SELECT locked_until FROM emails WHERE address = $1", [CUSTOMER]);
    expect(rows[0]?.locked_until).not.toBeNull();
  });

  it(`keeps the medians within ${MAX_MEDIAN_GAP_MS} ms`, () => {
    const mk = median(known);
    const mu = median(unknown);
    // The customer's first 80 measured guesses were at live codes, the rest met the lock.
    const live = known.slice(0, 80);
    const locked = known.slice(80);
    const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor(p * (xs.length - 1))]!;
    console.log(
      `[exchange-timing] ${SAMPLES} + ${SAMPLES} interleaved legacy exchanges with wrong codes: median known customer ${mk.toFixed(3)} ms ` +
        `(live codes ${median(live).toFixed(3)}, locked ${median(locked).toFixed(3)}), median unknown ${mu.toFixed(3)} ms, ` +
        `gap ${(mk - mu).toFixed(3)} ms; p10/p90 known ${q(known, 0.1).toFixed(2)}/${q(known, 0.9).toFixed(2)}, ` +
        `unknown ${q(unknown, 0.1).toFixed(2)}/${q(unknown, 0.9).toFixed(2)} ms`,
    );
    // Compared pair by pair: the median of (customer − stranger) over the pairs.
    const paired = median(known.map((k, i) => k - unknown[i]!));
    console.log(`[timing] median of the ${SAMPLES} paired differences (customer − stranger): ${paired.toFixed(3)} ms`);
    expect(Math.abs(paired)).toBeLessThanOrEqual(MAX_MEDIAN_GAP_MS);
  });
});
