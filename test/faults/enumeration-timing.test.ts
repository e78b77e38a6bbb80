// The legacy route must not tell a customer from a stranger by its timing:
// GET /api/sys/users/sendOtp for the business's known customer and for
// fresh unknown addresses, in pairs (back to back, in random order) over
// one keep-alive connection, with the rate limits raised so every call does
// the full work. The test fails if the median of the pairs' differences is
// more than 1 ms either way.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, median } from "./support/service.js";
import { samplePairs } from "./support/paired-timing.js";
import { FAULTS_ENABLED, RUN, type FaultStack, startFaultStack } from "./support/suite.js";

const CUSTOMER = "jane.doe@example.com";
const BUSINESS = 7;
const SAMPLES = 300;
const WARM_UP = 50;
const MAX_MEDIAN_GAP_MS = 1;

describe.runIf(FAULTS_ENABLED)("legacy send latency: known customer vs unknown addresses", () => {
  let stack: FaultStack | undefined;
  let smtp: FaultStack["smtp"];
  let svc: FaultStack["svc"] | undefined;
  const known: number[] = [];
  const unknown: number[] = [];
  const bodies = new Set<string>();

  beforeAll(async () => {
    stack = await startFaultStack("enumeration-timing", {
      RATE_LIMIT_EMAIL_BURST: "1000000",
      RATE_LIMIT_EMAIL_DAILY_BURST: "1000000",
      RATE_LIMIT_IP_BURST: "1000000",
      RATE_LIMIT_TENANT_BURST: "1000000",
    });
    ({ svc, smtp } = stack);
    let n = 0;
    const once = async (kind: "known" | "unknown") => {
      n += 1;
      const email = kind === "known" ? CUSTOMER : `stranger-${n}-${RUN}@example.com`;
      const a = await call(`${svc!.url}/api/sys/users/sendOtp?email=${encodeURIComponent(email)}&businessId=${BUSINESS}`);
      if (a.status !== 200) throw new Error(`${kind}: ${a.status} ${a.text}`);
      bodies.add(a.text);
      return a.ms;
    };
    await samplePairs(once, WARM_UP, SAMPLES, { known, unknown });
  });

  afterAll(async () => {
    await stack?.close();
  });

  it("answers the same body to both", () => {
    expect([...bodies]).toEqual(['{"WasSuccessful":true,"Value":null,"Status":200,"Message":null,"Errors":null}']);
  });

  it(`keeps the medians within ${MAX_MEDIAN_GAP_MS} ms`, () => {
    const mk = median(known);
    const mu = median(unknown);
    const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor(p * (xs.length - 1))]!;
    console.log(
      `[enumeration-timing] ${SAMPLES} + ${SAMPLES} interleaved legacy sends: median known customer ${mk.toFixed(3)} ms, ` +
        `median unknown ${mu.toFixed(3)} ms, gap ${(mk - mu).toFixed(3)} ms; p10/p90 known ${q(known, 0.1).toFixed(2)}/${q(known, 0.9).toFixed(2)}, ` +
        `unknown ${q(unknown, 0.1).toFixed(2)}/${q(unknown, 0.9).toFixed(2)} ms; mails to the customer ${smtp.acceptedTo(CUSTOMER).length}`,
    );
    // Compared pair by pair: the median of (customer − stranger) over the pairs.
    const paired = median(known.map((k, i) => k - unknown[i]!));
    console.log(`[timing] median of the ${SAMPLES} paired differences (customer − stranger): ${paired.toFixed(3)} ms`);
    expect(Math.abs(paired)).toBeLessThanOrEqual(MAX_MEDIAN_GAP_MS);
  });
});
