// How late this process runs its work: the event loop delay, as the 90th
// percentile of a 10 ms timer's lateness over the last quarter second. Send
// admission reads it (src/domain/send-admission.ts): when the loop runs this
// late, every request, refusals included, waits in it. The 90th, not the
// maximum: one garbage collection pause is not overload, lateness that
// lasts is.
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { LoopDelay } from "../domain/send-admission.js";

export interface LoopDelayMonitor extends LoopDelay {
  stop(): void;
}

export function monitorLoopDelay(windowMs = 250): LoopDelayMonitor {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  let last = 0;
  const timer = setInterval(() => {
    // Empty when no sample landed in the window: the loop was stuck all along.
    last = histogram.count > 0 ? histogram.percentile(90) / 1e6 : windowMs;
    histogram.reset();
  }, windowMs);
  timer.unref();
  return {
    delayMs: () => last,
    stop() {
      clearInterval(timer);
      histogram.disable();
    },
  };
}
