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

/** Main thread → SMTP thread. */
export type ThreadRequest =
  | { readonly kind: "send"; readonly id: number; readonly envelope: Envelope; readonly raw: Uint8Array }
  | { readonly kind: "close" };

/** SMTP thread → main thread: one per send, with its failure if it failed. */
export interface ThreadReply {
  readonly id: number;
  readonly error?: { readonly message: string; readonly name: string; readonly code?: string; readonly responseCode?: number };
}

interface Pending {
  resolve(): void;
  reject(err: Error): void;
}

export class ThreadedSmtpPool {
  private thread: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(private readonly options: SmtpPoolOptions) {}

  /** Sends one message; `raw` is handed over to the SMTP thread and must not be used again. */
  send(envelope: Envelope, raw: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(Object.assign(new Error("the SMTP pool is closed"), { code: "ECONNECTION" }));
    const thread = this.thread ?? this.start();
    const id = this.nextId++;
    // A buffer that is a slice of a larger one (Node's pool) is copied: transferring would take the rest away.
    const own = raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength ? raw : new Uint8Array(raw);
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      thread.postMessage({ kind: "send", id, envelope: { from: envelope.from, to: [...envelope.to] }, raw: own } satisfies ThreadRequest, [
        own.buffer as ArrayBuffer,
      ]);
    });
  }

  /** Ends every session, a mail under way included (it fails), and refuses new mail. */
  close(): void {
    this.closed = true;
    this.thread?.postMessage({ kind: "close" } satisfies ThreadRequest);
  }

  private start(): Worker {
    const thread = spawnThread(this.options);
    // Never what keeps the process alive: the server and the outbox worker decide that.
    thread.unref();
    thread.on("message", (reply: ThreadReply) => {
      const pending = this.pending.get(reply.id);
      if (!pending) return;
      this.pending.delete(reply.id);
      if (reply.error === undefined) pending.resolve();
      else pending.reject(Object.assign(new Error(reply.error.message), reply.error));
    });
    const gone = (why: string) => {
      if (this.thread === thread) this.thread = undefined;
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
  // The thread keeps little alive (its sessions and their replies). Its
  // young generation is kept small so that it adds little to peak RSS; its
  // old generation is not capped. resourceLimits alone does not do it when
  // the process was started with --max-semi-space-size (npm start is): that
  // flag wins over the limit. V8 reads the flag when an isolate is created,
  // so it is lowered before the thread's is; the main isolate's young
  // generation, sized at start, stays as it was.
  v8.setFlagsFromString(`--max-semi-space-size=${THREAD_SEMI_SPACE_MB}`);
  const settings = { workerData: options, resourceLimits: { maxYoungGenerationSizeMb: 3 * THREAD_SEMI_SPACE_MB } };
  const here = import.meta.url;
  if (!here.endsWith(".ts")) return new Worker(new URL("./smtp-thread.mjs", here), settings);
  const entry = JSON.stringify(new URL("./smtp-thread.ts", here).href);
  return new Worker(`import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${entry}); });`, { ...settings, eval: true });
}

/** The SMTP thread's semi-space, in MB (its young generation is three of them). */
const THREAD_SEMI_SPACE_MB = 1;
