// SMTP on a thread of its own. A delivery's SMTP session (nodemailer's
// reply parsing, its data stream, the socket's reads and writes) was about
// half of the main thread's CPU per send, on the thread that also parses
// every request and runs every send: the main thread, not the machine, set
// the service's ceiling. Here the main thread still claims, renders and
// records each mail; only the finished bytes cross to the SMTP thread
// (transferred, not copied), which runs the same SmtpPool and answers with
// the outcome. docs/adr/0015-smtp-on-its-own-thread.md has the figures.
import v8 from "node:v8";
import { Worker } from "node:worker_threads";
import type { Envelope, SmtpPoolOptions } from "./smtp-pool.js";

/** One mail for the SMTP thread. */
export interface MailRequest {
  readonly id: number;
  readonly envelope: Envelope;
  readonly raw: Uint8Array;
  /** When the SMTP thread gives the mail up (Date.now() time, which both threads share); undefined: never. */
  readonly deadline: number | undefined;
}

/** How one mail went: its failure, if it failed. */
export interface MailOutcome {
  readonly id: number;
  readonly error?: { readonly message: string; readonly name: string; readonly code?: string; readonly responseCode?: number };
}

/**
 * Main thread → SMTP thread. Mails handed over in one turn of the event
 * loop cross as one message, and their outcomes come back the same way: a
 * message per mail cost the main thread 5 % of its time in postMessage.
 */
export type ThreadRequest = { readonly kind: "send"; readonly mails: readonly MailRequest[] } | { readonly kind: "close" };

/** SMTP thread → main thread. */
export interface ThreadReply {
  readonly outcomes: readonly MailOutcome[];
}

interface Pending {
  resolve(): void;
  reject(err: Error): void;
}

export class ThreadedSmtpPool {
  private thread: Worker | undefined;
  /** Mails handed over and not yet answered, those still in `outgoing` included. */
  private readonly pending = new Map<number, Pending>();
  /** Mails handed over in this turn of the loop, posted at its end (flush). */
  private outgoing: { mails: MailRequest[]; buffers: ArrayBuffer[] } | undefined;
  private nextId = 1;
  private closed = false;

  constructor(private readonly options: SmtpPoolOptions) {}

  /**
   * Sends one message; `raw` is handed over to the SMTP thread and must not
   * be used again. `deadline`: as SmtpPool.send's, kept by the SMTP thread.
   */
  send(envelope: Envelope, raw: Uint8Array, deadline?: number): Promise<void> {
    if (this.closed) return Promise.reject(Object.assign(new Error("the SMTP pool is closed"), { code: "ECONNECTION" }));
    const id = this.nextId++;
    // A buffer that is a slice of a larger one (Node's pool) is copied: transferring would take the rest away.
    const own = raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength ? raw : new Uint8Array(raw);
    if (this.outgoing === undefined) {
      this.outgoing = { mails: [], buffers: [] };
      setImmediate(this.flush);
    }
    this.outgoing.mails.push({ id, envelope, raw: own, deadline });
    this.outgoing.buffers.push(own.buffer as ArrayBuffer);
    return new Promise<void>((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  /** Ends every session, a mail under way included (it fails), and refuses new mail. */
  close(): void {
    this.closed = true;
    // Mails already handed over reach the thread first; closing then fails those not yet sent.
    this.flush();
    this.thread?.postMessage({ kind: "close" } satisfies ThreadRequest);
  }

  private readonly flush = (): void => {
    const batch = this.outgoing;
    this.outgoing = undefined;
    if (batch === undefined) return;
    const thread = this.thread ?? this.start();
    thread.postMessage({ kind: "send", mails: batch.mails } satisfies ThreadRequest, batch.buffers);
  };

  private start(): Worker {
    const thread = spawnThread(this.options);
    // Never what keeps the process alive: the server and the outbox worker decide that.
    thread.unref();
    thread.on("message", (reply: ThreadReply) => {
      for (const outcome of reply.outcomes) {
        const pending = this.pending.get(outcome.id);
        if (!pending) continue;
        this.pending.delete(outcome.id);
        if (outcome.error === undefined) pending.resolve();
        else pending.reject(Object.assign(new Error(outcome.error.message), outcome.error));
      }
    });
    const gone = (why: string) => {
      // 'error' and 'exit' both come for one thread: the first one settles it.
      if (this.thread !== thread) return;
      this.thread = undefined;
      // Every mail not answered was this thread's (or waits in `outgoing`,
      // not yet posted: it fails with the rest rather than go out later
      // on a new thread after its caller heard it failed).
      this.outgoing = undefined;
      const failed = [...this.pending.values()];
      this.pending.clear();
      // As a dropped session: the outbox worker retries these mails.
      for (const p of failed) p.reject(Object.assign(new Error(`SMTP thread stopped: ${why}`), { code: "ECONNECTION" }));
    };
    thread.on("error", (err) => gone(err.message));
    thread.on("exit", (code) => gone(`exit code ${code}`));
    this.thread = thread;
    return thread;
  }
}

/**
 * The thread runs smtp-thread.mjs next to the bundle (npm run build puts it
 * there), or, from source (tests, tsx), smtp-thread.ts through tsx's loader.
 */
function spawnThread(options: SmtpPoolOptions): Worker {
  // The thread keeps little alive (its sessions and their replies), so its
  // young generation is smaller than the main thread's, to add little to
  // peak RSS (THREAD_SEMI_SPACE_MB); its old generation is not capped.
  // resourceLimits alone does not do it when the process was started with
  // --max-semi-space-size (npm start is): that flag wins over the limit.
  // V8 reads the flag when an isolate is created, so it is lowered before
  // the thread's is; the main isolate's young generation, sized at start,
  // stays as it was.
  v8.setFlagsFromString(`--max-semi-space-size=${THREAD_SEMI_SPACE_MB}`);
  const settings = { workerData: options, resourceLimits: { maxYoungGenerationSizeMb: 3 * THREAD_SEMI_SPACE_MB } };
  const here = import.meta.url;
  if (!here.endsWith(".ts")) return new Worker(new URL("./smtp-thread.mjs", here), settings);
  const entry = JSON.stringify(new URL("./smtp-thread.ts", here).href);
  return new Worker(`import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${entry}); });`, { ...settings, eval: true });
}

/**
 * The SMTP thread's semi-space, in MB (its young generation is three of
 * them). Large enough that a mail's objects die young: a mail lives from its
 * hand-over until its server's last reply, and with 1 MB the thread
 * scavenged so often that many of them outlived two scavenges and were
 * promoted, to be marked and swept later. `node --trace-gc-nvp --import tsx
 * bench/delivery-micro.ts`, 42,000 mails: 1128 scavenges promoting 33.5 MB
 * with 1 MB, 268 promoting 2.6 MB with 3 MB; 140 against 113 µs of CPU per
 * mail. 4 MB did no better and cost the bench's routes about 5 MB more RSS
 * than 3 (bench/RESULTS.md, history).
 */
const THREAD_SEMI_SPACE_MB = 3;
