// HTTP/2 as an attacker speaks it, against the service as a real process:
// frames written by hand (test/faults/support/raw-h2.ts), ignoring the
// server's SETTINGS, opening streams and never finishing them. The promises:
// - a session advertises (and enforces) 100 concurrent streams;
// - 20,000 half-open streams from one client, over as many sessions as it
//   likes or all on one, grow the service's resident memory by a few tens of
//   MB at most (before the bounds: 241 → 621 MB), and it keeps answering;
// - every half-open stream, and a stream trickling its body, is reset once
//   the request bound (REQUEST_TIMEOUT_MS, 10 s here) has passed.
// The figures are printed ("[h2-flood] …") for the record.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rawH2Connect, type RawH2 } from "./support/raw-h2.js";
import { sleep } from "./support/service.js";
import { FAULTS_ENABLED, type FaultStack, startFaultStack } from "./support/suite.js";

const STREAMS = 20_000;
const DEADLINE_MS = 10_000;
/** How late a reset may come on this shared, loaded machine. */
const SLACK_MS = 10_000;
const MAX_GROWTH_MB = 40;
const PATH = "/otp.v1.OtpService/SendOtp";
const GRPC = "application/grpc";
const REFUSED_STREAM = 7;
const CANCEL = 8;

describe.runIf(FAULTS_ENABLED)("HTTP/2 half-open stream flood from one client", () => {
  let stack: FaultStack | undefined;
  let svc: FaultStack["svc"] | undefined;
  const held: RawH2[] = [];

  beforeAll(async () => {
    stack = await startFaultStack("h2-flood", {
      REQUEST_TIMEOUT_MS: String(DEADLINE_MS),
    });
    ({ svc } = stack);
    // Warm up: real requests over HTTP/1.1 and HTTP/2, so the baseline is a
    // service that has served, not one that just started.
    for (let i = 0; i < 100; i++) await fetch(`${svc.url}/healthz`);
    const warm = await rawH2Connect(svc.port);
    for (let i = 0; i < 50; i++) warm.open(1 + 2 * i, PATH, GRPC);
    await sleep(1_000);
    warm.destroy();
  });

  afterAll(async () => {
    for (const h of held) h.destroy();
    await stack?.close();
  });

  /** Median of a few RSS samples, in MB. */
  async function settledRssMb(): Promise<number> {
    const samples: number[] = [];
    for (let i = 0; i < 5; i++) {
      samples.push(svc!.rssKb() / 1024);
      await sleep(100);
    }
    return samples.sort((a, b) => a - b)[2]!;
  }

  /** Runs `attack` while sampling RSS every 50 ms; the peak growth over `base`, in MB. */
  async function peakGrowthDuring(base: number, attack: () => Promise<void>): Promise<number> {
    let peak = base;
    const sampler = setInterval(() => {
      peak = Math.max(peak, svc!.rssKb() / 1024);
    }, 50);
    try {
      await attack();
    } finally {
      clearInterval(sampler);
    }
    return peak - base;
  }

  /** Until every connection has had the server's SETTINGS or been closed. */
  async function settled(conns: readonly RawH2[], timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (conns.some((h) => !h.tally.closed && h.tally.settings.size === 0)) {
      if (Date.now() > deadline) throw new Error("the server did not answer the connections");
      await sleep(100);
    }
  }

  it("advertises 100 concurrent streams per session", async () => {
    const h = await rawH2Connect(svc!.port);
    await settled([h]);
    expect(h.tally.settings.get(3)).toBe(100);
    h.destroy();
  });

  it(`${STREAMS} half-open streams on one session grow RSS by under ${MAX_GROWTH_MB} MB`, async () => {
    const base = await settledRssMb();
    let h: RawH2 | undefined;
    const growth = await peakGrowthDuring(base, async () => {
      h = await rawH2Connect(svc!.port);
      for (let i = 0; i < STREAMS; i++) if (!h.open(1 + 2 * i, PATH, GRPC)) await h.drained();
      await h.drained();
      await settled([h]);
      await sleep(2_000);
    });
    console.log(
      `[h2-flood] ${STREAMS} half-open streams on one session: ${h!.tally.resets.get(REFUSED_STREAM) ?? 0} refused, ` +
        `session ${h!.tally.closed ? "closed by the server" : "open"}; RSS peak +${growth.toFixed(1)} MB`,
    );
    h!.destroy();
    expect(growth).toBeLessThan(MAX_GROWTH_MB);
    expect((await fetch(`${svc!.url}/healthz`)).status).toBe(200);
  });

  it(`${STREAMS} half-open streams over 200 sessions grow RSS by under ${MAX_GROWTH_MB} MB`, async () => {
    const base = await settledRssMb();
    const growth = await peakGrowthDuring(base, async () => {
      for (let c = 0; c < STREAMS / 100; c++) {
        const h = await rawH2Connect(svc!.port).catch(() => undefined);
        if (!h) continue;
        held.push(h);
        for (let i = 0; i < 100; i++) h.open(1 + 2 * i, PATH, GRPC);
        await h.drained();
      }
      await settled(held);
      await sleep(2_000);
    });
    const open = held.filter((h) => !h.tally.closed);
    const refused = held.reduce((n, h) => n + (h.tally.resets.get(REFUSED_STREAM) ?? 0), 0);
    const rss = svc!.rssKb() / 1024;
    console.log(
      `[h2-flood] ${STREAMS} half-open streams over ${held.length} connections: ${open.length} sessions kept, ${refused} streams refused; ` +
        `RSS ${base.toFixed(0)} MB → peak +${growth.toFixed(1)} MB (now ${rss.toFixed(0)} MB)`,
    );
    expect(growth).toBeLessThan(MAX_GROWTH_MB);
    // The service still answers, over a new connection from the same client.
    expect((await fetch(`${svc!.url}/healthz`)).status).toBe(200);
  });

  it(`resets every half-open stream it accepted once ${DEADLINE_MS / 1000} s have passed`, async () => {
    const kept = held.filter((h) => !h.tally.closed);
    expect(kept.length).toBeGreaterThan(0);
    // When each kept session's last stream ended: all 100 refused or reset,
    // or the session closed (which ends its streams too).
    const endedAt = (h: RawH2): number | undefined => {
      const resolved = (h.tally.resets.get(REFUSED_STREAM) ?? 0) + (h.tally.resets.get(CANCEL) ?? 0);
      if (resolved >= 100) return Math.max(...h.tally.resetAt.values());
      return h.tally.closedAtMs;
    };
    const until = performance.now() + DEADLINE_MS + SLACK_MS + 30_000;
    while (kept.some((h) => endedAt(h) === undefined) && performance.now() < until) await sleep(200);
    const ends = kept.map(endedAt);
    expect(ends.filter((t) => t === undefined)).toEqual([]);
    const latest = Math.max(...(ends as number[]));
    const cut = kept.reduce((n, h) => n + (h.tally.resets.get(CANCEL) ?? 0), 0);
    const closed = kept.filter((h) => h.tally.closed).length;
    console.log(
      `[h2-flood] the ${kept.length} kept sessions' half-open streams: ${cut} reset (CANCEL), the rest ended with their session (${closed} closed by the server); ` +
        `the last ended ${(latest / 1000).toFixed(1)} s after its session opened`,
    );
    expect(latest).toBeLessThan(DEADLINE_MS + SLACK_MS);
  });

  it(`cuts a stream that trickles its body, at about ${DEADLINE_MS / 1000} s`, async () => {
    const h = await rawH2Connect(svc!.port);
    held.push(h);
    h.open(1, PATH, GRPC);
    const trickle = setInterval(() => h.data(1, Buffer.from([0])), 500);
    try {
      while (!h.tally.resetAt.has(1) && !h.tally.closed) await sleep(100);
    } finally {
      clearInterval(trickle);
    }
    const at = h.tally.resetAt.get(1);
    console.log(`[h2-flood] a trickling stream was cut after ${at === undefined ? "(closed)" : `${(at / 1000).toFixed(1)} s`}`);
    expect(h.tally.resets.get(CANCEL)).toBe(1);
    expect(at).toBeGreaterThanOrEqual(DEADLINE_MS - 100);
    expect(at).toBeLessThan(DEADLINE_MS + SLACK_MS);
  });
});
