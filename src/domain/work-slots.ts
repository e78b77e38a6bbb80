// A bound on how many expensive jobs (secret hashes) run at once, with a
// short queue behind them; when the queue is full a job is refused at once
// rather than waiting behind work it cannot see the end of. Urgent jobs
// (from callers with no recent failures) wait ahead of the others.
export class WorkSlots {
  private active = 0;
  private readonly urgent: (() => void)[] = [];
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly max: number,
    private readonly maxQueued: number,
  ) {}

  /** Runs `job` in a slot; undefined (job not run) when every slot and queue place is taken. */
  async run<T>(job: () => Promise<T>, urgent = false): Promise<{ value: T } | undefined> {
    if (this.active >= this.max) {
      if (this.urgent.length + this.waiting.length >= this.maxQueued) return undefined;
      await new Promise<void>((resolve) => (urgent ? this.urgent : this.waiting).push(resolve));
    } else {
      this.active += 1;
    }
    try {
      return { value: await job() };
    } finally {
      // Hand the slot straight to the next waiter, or free it.
      const next = this.urgent.shift() ?? this.waiting.shift();
      if (next) next();
      else this.active -= 1;
    }
  }
}
