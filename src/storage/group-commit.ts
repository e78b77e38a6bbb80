// Group commit: concurrent calls coalesced into one statement and one
// transaction. With no batch under way a call runs at once, alone. With one
// under way and a slot free, the calls of the current turn of the event
// loop go together at its end (setImmediate). With every slot taken they
// wait, and when a batch returns the next one takes up to `maxBatch` of
// them. Under light load every call is a batch of one, without added wait;
// under load Postgres commits many sends per transaction (docs/adr/0009 has
// the figures).
import { context, type Context } from "@opentelemetry/api";
import { currentStatementSignal, deadlineExceeded, runWithStatementSignalOrNone } from "./statement-deadline.js";

export interface GroupCommitOptions {
  /** Most calls in one batch. */
  readonly maxBatch: number;
  /** Most batches under way at once (each holds one pooled connection). */
  readonly maxInFlight: number;
}

interface Waiting<I, O> {
  readonly input: I;
  /** The calling RPC's deadline signal, if it has one. */
  readonly signal: AbortSignal | undefined;
  /** The caller's context: a batch's statement joins its first call's trace. */
  readonly context: Context;
  readonly resolve: (output: O) => void;
  readonly reject: (err: unknown) => void;
  onAbort?: () => void;
}

export class GroupCommit<I, O> {
  private readonly waiting: Waiting<I, O>[] = [];
  private inFlight = 0;
  /** A flush waits for the end of this turn (flushAtEndOfTurn). */
  private flushScheduled = false;

  constructor(
    /** Runs one batch; returns one output per input, in order. */
    private readonly run: (inputs: readonly I[]) => Promise<readonly O[]>,
    private readonly options: GroupCommitOptions,
    /** Whether a batch's failure may be one call's fault: then each of its calls is retried alone. */
    private readonly retryAlone: (err: unknown) => boolean,
  ) {}

  submit(input: I): Promise<O> {
    const signal = currentStatementSignal();
    if (signal?.aborted) return Promise.reject(deadlineExceeded(signal.reason));
    return new Promise<O>((resolve, reject) => {
      const w: Waiting<I, O> = { input, signal, context: context.active(), resolve, reject };
      this.waiting.push(w);
      if (this.inFlight === 0) {
        this.flush();
        return;
      }
      if (signal) {
        // A call whose deadline passes while it waits leaves at once.
        w.onAbort = () => {
          const at = this.waiting.indexOf(w);
          if (at >= 0) this.waiting.splice(at, 1);
          reject(deadlineExceeded(signal.reason));
        };
        signal.addEventListener("abort", w.onAbort, { once: true });
      }
      if (this.inFlight < this.options.maxInFlight) this.flushAtEndOfTurn();
    });
  }

  /**
   * A slot free beside a running batch is filled at the end of the turn
   * rather than by the first call to arrive: the requests read in one turn
   * of the loop (one per socket that had data) then share a transaction
   * instead of the first taking the slot alone and the rest waiting for a
   * batch to return. The wait is the rest of the turn, not a timer.
   */
  private flushAtEndOfTurn(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.inFlight < this.options.maxInFlight && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.options.maxBatch);
      for (const w of batch) if (w.onAbort) w.signal!.removeEventListener("abort", w.onAbort);
      this.inFlight++;
      void this.runBatch(batch).finally(() => {
        this.inFlight--;
        this.flush();
      });
    }
  }

  private async runBatch(batch: readonly Waiting<I, O>[]): Promise<void> {
    try {
      const outputs = await context.with(batch[0]!.context, () =>
        runWithStatementSignalOrNone(batchSignal(batch), () => this.run(batch.map((w) => w.input))),
      );
      for (const [i, w] of batch.entries()) w.resolve(outputs[i]!);
    } catch (err) {
      if (batch.length > 1 && this.retryAlone(err)) {
        await Promise.all(batch.map((w) => this.runBatch([w])));
      } else {
        for (const w of batch) w.reject(err);
      }
    }
  }
}

/**
 * The signal a batch's statement runs under: it is cancelled only once every
 * call in it has passed its deadline (one call's deadline must not undo the
 * others' sends); none when some call has no deadline.
 */
function batchSignal(batch: readonly { readonly signal: AbortSignal | undefined }[]): AbortSignal | undefined {
  if (batch.length === 1) return batch[0]!.signal;
  if (batch.some((w) => w.signal === undefined)) return undefined;
  const all = new AbortController();
  let left = batch.length;
  const one = () => {
    if (--left === 0) all.abort(deadlineExceeded());
  };
  for (const w of batch) {
    if (w.signal!.aborted) one();
    else w.signal!.addEventListener("abort", one, { once: true });
  }
  return all.signal;
}
