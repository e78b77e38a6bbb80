// In-memory GCRA buckets, for budgets that guard this instance's own
// resources (its CPU), so they need not be shared across instances. The
// number of keys is bounded: past maxKeys the least recently charged key is
// dropped (which only forgives that key).
import type { Clock } from "./clock.js";
import type { RateLimit } from "./rate-limit-policy.js";

export class LocalThrottle {
  private readonly tat = new Map<string, number>();

  constructor(
    private readonly limit: RateLimit,
    private readonly clock: Clock,
    private readonly maxKeys = 10_000,
  ) {}

  /** Charges one request to `key`: undefined if allowed, else ms until one would be (nothing charged). */
  take(key: string): number | undefined {
    const now = this.clock.now();
    const { burst, periodMs } = this.limit;
    const next = Math.max(this.tat.get(key) ?? now, now) + periodMs;
    const over = next - now - burst * periodMs;
    if (over > 0) return over;
    // Re-insert, so the Map's order is least recently charged first.
    this.tat.delete(key);
    this.tat.set(key, next);
    if (this.tat.size > this.maxKeys) this.tat.delete(this.tat.keys().next().value!);
    return undefined;
  }

  /** Whether `key` has been charged recently (its bucket is not full). */
  charged(key: string): boolean {
    return (this.tat.get(key) ?? 0) > this.clock.now();
  }

  /** Gives one charge back (the request turned out legitimate). */
  give(key: string): void {
    const t = this.tat.get(key);
    if (t !== undefined) this.tat.set(key, t - this.limit.periodMs);
  }
}
