// Every statement through the pool passes here, for two things:
// - Deadlines reach Postgres: while a call with a deadline runs, its abort
//   signal is carried (AsyncLocalStorage) to every statement it issues; once
//   the signal aborts, the statement under way is cancelled in the server
//   (Postgres's cancel request, which ends just that statement; a
//   transaction it was in rolls back) and the caller gets
//   "deadline_exceeded". A statement that finished first keeps its result:
//   the call reports what was committed. The wait for a pooled connection
//   ends at the deadline too (DeadlinePool.connect).
// - With tracing on (traceStatements), a CLIENT span per statement of a
//   traced call or delivery, named by its first keyword, with the SQL text
//   and its placeholders (never the values).
// Without a deadline and with tracing off, nothing changes and nothing is
// paid but one lookup per statement.
import { AsyncLocalStorage } from "node:async_hooks";
import net from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { context, SpanKind, SpanStatusCode, trace, type Span } from "@opentelemetry/api";
import pg from "pg";
import { DomainError } from "../domain/errors.js";

const callSignal = new AsyncLocalStorage<AbortSignal>();
let statementSpans = false;
let tracingUsers = 0;
// Looked up at each use: a tracer taken once at load stays bound to the
// tracer provider registered then, so after a provider is replaced (an
// app closed and another built in the same process) its spans went nowhere.
const tracer = () => trace.getTracer("otp-service/storage");

/** Runs fn with the call's signal carried to every statement it issues. */
export function runWithStatementSignal<T>(signal: AbortSignal, fn: () => T): T {
  return callSignal.run(signal, fn);
}

/** The signal of the call now running, if it has a deadline. */
export function currentStatementSignal(): AbortSignal | undefined {
  return callSignal.getStore();
}

/** Runs fn with `signal` (or, when undefined, no signal at all) carried to its statements, whichever call started it. */
export function runWithStatementSignalOrNone<T>(signal: AbortSignal | undefined, fn: () => T): T {
  return signal ? callSignal.run(signal, fn) : callSignal.exit(fn);
}

/** Turns the per-statement spans on (or off again): on while any server in the process traces. */
export function traceStatements(on: boolean): void {
  tracingUsers = Math.max(0, tracingUsers + (on ? 1 : -1));
  statementSpans = tracingUsers > 0;
}

export function deadlineExceeded(cause?: unknown): DomainError {
  return new DomainError("deadline_exceeded", "The deadline passed before the call finished.", {}, { cause });
}

// A cancelled statement still running is cancelled again this often, this
// many times at most (the query timeout ends it in the end anyway).
const CANCEL_RETRY_MS = 100;
const CANCEL_ATTEMPTS = 150;
// Statements that end a transaction already failing must run whatever the deadline.
const CLEANUP = /^\s*ROLLBACK\b/i;

type QueryArgs = [unknown, ...unknown[]];

function textOf(config: unknown): string {
  return typeof config === "string" ? config : String((config as { text?: unknown } | null)?.text ?? "");
}

const isCallbackForm = (args: QueryArgs) => typeof args[args.length - 1] === "function";

function startStatementSpan(text: string): Span {
  const keyword = /^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? "SQL";
  const fn = /\bFROM\s+(\w+)\s*\(/i.exec(text)?.[1];
  return tracer().startSpan(fn && keyword === "SELECT" ? `SELECT ${fn}` : keyword, {
    kind: SpanKind.CLIENT,
    attributes: { "db.system.name": "postgresql", "db.operation.name": keyword, "db.query.text": text.slice(0, 2_000) },
  });
}

/** A pg client whose statements are cancelled when the calling RPC's deadline passes. */
export class DeadlineClient extends pg.Client {
  constructor(config?: string | pg.ClientConfig) {
    super(config);
    // A connection that ends while checked out (Postgres restarting, a
    // backend terminated) emits 'error'. pg-pool listens only while the
    // client is idle, and an 'error' with no listener ends the process. The
    // statement under way fails on its own (as unavailable), and the pool
    // drops a client that is no longer queryable when it is released.
    this.on("error", () => {});
  }

  // @ts-expect-error pg's overloads are not expressible on an override; every form is passed through.
  override query(...args: QueryArgs): unknown {
    let signal = callSignal.getStore();
    if ((signal === undefined && !statementSpans) || isCallbackForm(args) || typeof (args[0] as { submit?: unknown })?.submit === "function") {
      return (super.query as (...a: unknown[]) => unknown)(...args);
    }
    const text = textOf(args[0]);
    if (signal !== undefined && CLEANUP.test(text)) signal = undefined;
    if (signal === undefined && !statementSpans) return (super.query as (...a: unknown[]) => unknown)(...args);
    return this.traced(signal, text, args);
  }

  private async traced(signal: AbortSignal | undefined, text: string, args: QueryArgs): Promise<unknown> {
    // Only inside a traced call or delivery: background polls start no traces of their own.
    const span = statementSpans && trace.getSpan(context.active())?.isRecording() ? startStatementSpan(text) : undefined;
    try {
      return signal ? await this.queryUntil(signal, args) : await (super.query as (...a: unknown[]) => Promise<unknown>)(...args);
    } catch (err) {
      span?.setStatus({ code: SpanStatusCode.ERROR });
      const code = (err as { code?: unknown }).code ?? (err as { reason?: unknown }).reason;
      if (typeof code === "string") span?.setAttribute("db.response.status_code", code);
      throw err;
    } finally {
      span?.end();
    }
  }

  private async queryUntil(signal: AbortSignal, args: QueryArgs): Promise<unknown> {
    if (signal.aborted) throw deadlineExceeded(signal.reason);
    let cancelling: Promise<void> | undefined;
    const settled = new AbortController();
    const onAbort = () => (cancelling = this.cancelUntilSettled(settled.signal));
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      return await (super.query as (...a: unknown[]) => Promise<unknown>)(...args);
    } catch (err) {
      // Once the deadline has passed, the caller is told so whatever else
      // the statement met on its way out (the cause is kept for the log).
      if (cancelling) throw deadlineExceeded(err);
      throw err;
    } finally {
      settled.abort();
      signal.removeEventListener("abort", onAbort);
      // The connection goes back to the pool only once the server has taken
      // the last cancel request, so none can cancel someone else's statement.
      if (cancelling) await cancelling;
    }
  }

  /**
   * Sends cancel requests until the statement has ended. One is not always
   * enough: Postgres cancels only a statement its backend has begun, so a
   * request that overtakes the statement (still on its way, or not yet
   * read by a backend slow to get the CPU) is ignored, and the statement
   * would then run, or wait on a lock, until the query timeout.
   */
  private async cancelUntilSettled(settled: AbortSignal): Promise<void> {
    for (let attempt = 0; attempt < CANCEL_ATTEMPTS && !settled.aborted; attempt++) {
      // The wait between requests ends (its timer cleared) the moment the statement does.
      if (attempt > 0) await delay(CANCEL_RETRY_MS, undefined, { signal: settled }).catch(() => {});
      if (!settled.aborted) await this.sendCancelRequest();
    }
  }

  /** Postgres's CancelRequest, on a connection of its own; resolves once the server has closed it. */
  private sendCancelRequest(): Promise<void> {
    const self = this as unknown as { processID: number; secretKey: number; host: string; port: number };
    return new Promise<void>((resolve) => {
      const socket = self.host.startsWith("/") ? net.connect(`${self.host}/.s.PGSQL.${self.port}`) : net.connect(self.port, self.host);
      const packet = Buffer.alloc(16);
      packet.writeInt32BE(16, 0);
      packet.writeInt32BE(80877102, 4);
      packet.writeInt32BE(self.processID, 8);
      packet.writeInt32BE(self.secretKey, 12);
      const timer = setTimeout(() => socket.destroy(), 2_000);
      socket.once("connect", () => socket.end(packet));
      socket.on("error", () => socket.destroy());
      socket.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.resume();
    });
  }
}

/**
 * A pool whose query() keeps the caller's async context (deadline signal,
 * trace) across the wait for a connection: pg-pool hands connections out
 * in callbacks, which would run in another call's context. The wait for a
 * connection honours the deadline too: a call whose deadline passes while
 * every connection is taken (or a new one is still being opened) leaves
 * with deadline_exceeded then, not with "unavailable" once the pool's
 * connection timeout runs out seconds later.
 */
export class DeadlinePool extends pg.Pool {
  constructor(config: pg.PoolConfig) {
    super({ ...config, Client: DeadlineClient as unknown as typeof pg.Client });
  }

  // @ts-expect-error pg's overloads (callback and promise forms) are not expressible on an override; both are passed through.
  override connect(...args: unknown[]): unknown {
    const signal = callSignal.getStore();
    if (signal === undefined || args.length > 0) return (super.connect as (...a: unknown[]) => unknown)(...args);
    return this.connectUntil(signal);
  }

  private connectUntil(signal: AbortSignal): Promise<pg.PoolClient> {
    if (signal.aborted) return Promise.reject(deadlineExceeded(signal.reason));
    return new Promise<pg.PoolClient>((resolve, reject) => {
      const onAbort = () => reject(deadlineExceeded(signal.reason));
      signal.addEventListener("abort", onAbort, { once: true });
      (super.connect() as Promise<pg.PoolClient>).then(
        (client) => {
          signal.removeEventListener("abort", onAbort);
          // Handed out after the caller left: straight back to the pool.
          if (signal.aborted) client.release();
          else resolve(client);
        },
        (err: unknown) => {
          signal.removeEventListener("abort", onAbort);
          reject(err);
        },
      );
    });
  }

  // @ts-expect-error as connect(): pg's overloads, passed through.
  override query(...args: QueryArgs): unknown {
    const signal = callSignal.getStore();
    if (isCallbackForm(args) || (signal === undefined && !statementSpans)) return (super.query as (...a: unknown[]) => unknown)(...args);
    return this.queryInContext(signal, args);
  }

  private async queryInContext(signal: AbortSignal | undefined, args: QueryArgs): Promise<unknown> {
    const client = (await this.connect()) as pg.PoolClient;
    let failure: Error | undefined;
    try {
      const run = () => (client.query as (...a: unknown[]) => Promise<unknown>)(...args);
      return await (signal ? callSignal.run(signal, run) : run());
    } catch (err) {
      failure = err as Error;
      throw err;
    } finally {
      // As pg-pool's own query(): a connection whose statement failed is not reused.
      client.release(failure);
    }
  }
}
