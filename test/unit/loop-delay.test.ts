// The event loop monitor send admission reads: a loop held up shows as late.
import { afterEach, describe, expect, it } from "vitest";
import { monitorLoopDelay, type LoopDelayMonitor } from "../../src/observability/loop-delay.js";

let monitor: LoopDelayMonitor | undefined;
afterEach(() => monitor?.stop());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("monitorLoopDelay", () => {
  it("reports a loop held up for 150 ms as at least 100 ms late for a window after, then forgets it", async () => {
    monitor = monitorLoopDelay(100);
    await sleep(250);
    const until = Date.now() + 150;
    while (Date.now() < until) {
      // The loop is held: no timer can run.
    }
    const seen: number[] = [];
    for (let i = 0; i < 60; i++) {
      seen.push(monitor.delayMs());
      await sleep(5);
    }
    expect(Math.max(...seen)).toBeGreaterThanOrEqual(100);
    expect(seen.at(-1)).toBeLessThan(100);
  });
});
