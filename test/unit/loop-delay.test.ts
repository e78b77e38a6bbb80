// The event loop monitor send admission reads: a loop that stays held up
// shows as late, and stops showing once it runs freely again.
import { afterEach, describe, expect, it } from "vitest";
import { monitorLoopDelay, type LoopDelayMonitor } from "../../src/observability/loop-delay.js";

let monitor: LoopDelayMonitor | undefined;
afterEach(() => monitor?.stop());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function holdLoop(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // The loop is held: no timer can run.
  }
}

describe("monitorLoopDelay", () => {
  it("reports a loop held up in 120 ms stretches as at least 100 ms late, then forgets it once the loop runs freely", async () => {
    monitor = monitorLoopDelay(100);
    await sleep(250);
    // Lateness that lasts, not one pause: every timer tick in every window
    // waits for a stretch longer than the window, so no window can read low
    // however the window's edges fall against the stretches.
    const whileHeld: number[] = [];
    for (let i = 0; i < 6; i++) {
      holdLoop(120);
      await sleep(0);
      whileHeld.push(monitor.delayMs());
    }
    const afterwards: number[] = [];
    for (let i = 0; i < 80; i++) {
      afterwards.push(monitor.delayMs());
      await sleep(5);
    }
    expect(Math.max(...whileHeld.slice(2))).toBeGreaterThanOrEqual(100);
    expect(afterwards.at(-1)).toBeLessThan(100);
  });
});
