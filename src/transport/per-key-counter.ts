// Things held per key (connections, streams, watches), each key capped.

export class PerKeyCounter {
  private readonly counts = new Map<string, number>();

  /** Takes one for `key` unless it already holds `max`. */
  take(key: string, max: number): boolean {
    const held = this.counts.get(key) ?? 0;
    if (held >= max) return false;
    this.counts.set(key, held + 1);
    return true;
  }

  give(key: string): void {
    const left = (this.counts.get(key) ?? 1) - 1;
    if (left > 0) this.counts.set(key, left);
    else this.counts.delete(key);
  }
}
