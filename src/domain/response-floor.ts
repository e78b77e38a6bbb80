// A floor on how soon an answer leaves, so the timing of a public route
// tells nothing about the work behind it (a code stored, a mail queued, a
// failure counted for a customer; less for a stranger). Failures wait for
// the floor too.
//
// A fixed floor only hides work that finishes within it; on a loaded
// machine a customer's extra statements can take longer, and then show.
// So the floor follows the work: it is the larger of the configured minimum
// and the 95th percentile of the last 128 calls' own durations (whoever
// they were for), capped at MAX_FLOOR_MS so slow calls cannot stretch every
// answer without bound.
import { setTimeout as delay } from "node:timers/promises";

const WINDOW = 128;
const QUANTILE = 0.95;
const MAX_FLOOR_MS = 1_000;

export class ResponseFloor {
  private readonly recent: number[] = [];
  private next = 0;
  private current: number;

  constructor(private readonly minMs: number) {
    this.current = minMs;
  }

  /** The floor the next call will wait for, in ms. */
  get floorMs(): number {
    return this.current;
  }

  async hold<T>(work: () => Promise<T>): Promise<T> {
    if (this.minMs <= 0) return work();
    const floor = delay(this.current);
    const started = performance.now();
    try {
      return await work();
    } finally {
      this.observe(performance.now() - started);
      await floor;
    }
  }

  private observe(ms: number): void {
    this.recent[this.next] = ms;
    this.next = (this.next + 1) % WINDOW;
    const sorted = [...this.recent].sort((a, b) => a - b);
    const high = sorted[Math.min(sorted.length - 1, Math.floor(QUANTILE * sorted.length))]!;
    this.current = Math.min(MAX_FLOOR_MS, Math.max(this.minMs, Math.ceil(high)));
  }
}
