// A small in-process cache whose entries expire by the domain's clock and
// whose size is bounded (the oldest entry goes first). Used where the hot
// path must stay one database round trip: verified project secrets, legacy
// businesses, custom-template names.
import type { Clock } from "./clock.js";

/** Values are never undefined: wrap a remembered miss, e.g. `{ tenant: undefined }`. */
export class TtlCache<K, V extends object | string | number | boolean> {
  private readonly entries = new Map<K, { value: V; expiresAt: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly capacity: number,
  ) {}

  /** The value while it is fresh; an expired entry is dropped. */
  get(key: K): V | undefined {
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    if (hit.expiresAt > this.clock.now()) return hit.value;
    this.entries.delete(key);
    return undefined;
  }

  /** Remembers `value` until `expiresAt` (a clock time). */
  setUntil(key: K, value: V, expiresAt: number): void {
    this.entries.delete(key);
    // Maps iterate in insertion order: the first key is the oldest.
    if (this.entries.size >= this.capacity) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { value, expiresAt });
  }

  /** Remembers `value` for `ttlMs`. */
  set(key: K, value: V, ttlMs: number): void {
    this.setUntil(key, value, this.clock.now() + ttlMs);
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  /** Forgets every entry whose value matches. */
  deleteWhere(matches: (value: V) => boolean): void {
    for (const [key, entry] of this.entries) if (matches(entry.value)) this.entries.delete(key);
  }

  /** Entries held, fresh or not yet dropped. */
  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }
}
