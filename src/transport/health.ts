// grpc.health.v1.Health: the service's readiness as gRPC health checking
// reports it, for Kubernetes gRPC probes, grpc_health_probe and load
// balancers. Every served service, and the server as a whole (""), is
// SERVING while the database answers and the server is not shutting down,
// NOT_SERVING otherwise: one readiness, the same one /readyz reports.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  type Health,
  HealthCheckResponse_ServingStatus as Status,
  HealthCheckResponseSchema,
  HealthListResponseSchema,
  type HealthCheckRequest,
  type HealthCheckResponse,
} from "../../gen/health/v1/health_pb.js";
import { clientKey } from "../domain/client-key.js";
import { callInfoKey } from "./context.js";
import { PerKeyCounter } from "./per-key-counter.js";

/**
 * How many Watch calls may be open at once, per client (an IPv4 address or
 * an IPv6 /64) and in all. A Watch is held open for as long as the process
 * lives, without a byte of traffic, by anyone (it takes no credentials):
 * unbounded, a few networks' worth of them would hold every connection the
 * server allows. A health-checking client keeps one per channel.
 */
export const WATCHES_PER_CLIENT = 16;
export const WATCHES_IN_ALL = 1_024;

/**
 * The server's readiness, probed on demand (a Check, /readyz) and, while
 * anyone watches, every pollMs. Concurrent probes share one database round
 * trip, so a flood of Checks costs the database no more than one caller.
 */
export class Readiness {
  private serving: boolean | undefined;
  private closed = false;
  private inFlight: Promise<boolean> | undefined;
  private readonly waiters = new Set<() => void>();
  private watchers = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly probe: () => Promise<boolean>,
    private readonly pollMs: number,
  ) {}

  /** Probes now (sharing a probe already under way) and returns whether the server is ready. */
  async check(): Promise<boolean> {
    if (this.closed) return false;
    this.inFlight ??= this.probe()
      .catch(() => false)
      .finally(() => (this.inFlight = undefined));
    const ok = await this.inFlight;
    this.set(ok && !this.closed);
    return this.serving === true;
  }

  /** Shutting down: not ready from now on, and every watch is told so and ended. */
  close(): void {
    this.closed = true;
    this.set(false);
    clearInterval(this.timer);
    this.notify();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Resolves with the readiness once it differs from `last` (at once if it
   * already does), or when the signal aborts or the server closes.
   */
  async changeFrom(last: boolean | undefined, signal: AbortSignal): Promise<boolean | undefined> {
    this.watchers++;
    if (this.watchers === 1 && !this.closed) {
      this.timer = setInterval(() => void this.check(), this.pollMs);
      this.timer.unref();
    }
    try {
      while (this.serving === last && !this.closed && !signal.aborted) await this.nextNotice(signal);
      return this.serving;
    } finally {
      this.watchers--;
      if (this.watchers === 0) clearInterval(this.timer);
    }
  }

  /** Resolves when the signal aborts or the server closes. */
  async untilClosed(signal: AbortSignal): Promise<void> {
    while (!this.closed && !signal.aborted) await this.nextNotice(signal);
  }

  private nextNotice(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        this.waiters.delete(wake);
        signal.removeEventListener("abort", wake);
        resolve();
      };
      this.waiters.add(wake);
      signal.addEventListener("abort", wake);
    });
  }

  private set(serving: boolean): void {
    if (this.serving === serving) return;
    this.serving = serving;
    this.notify();
  }

  private notify(): void {
    for (const wake of [...this.waiters]) wake();
  }
}

/** The Health implementation for the given fully-qualified service names. */
export function healthServiceImpl(
  readiness: Readiness,
  serviceNames: readonly string[],
  limits: { readonly perClient: number; readonly inAll: number } = { perClient: WATCHES_PER_CLIENT, inAll: WATCHES_IN_ALL },
): ServiceImpl<typeof Health> {
  const known = new Set(["", ...serviceNames]);
  const watchesPerClient = new PerKeyCounter();
  let watching = 0;
  const response = (status: Status): HealthCheckResponse => create(HealthCheckResponseSchema, { status });
  const statusOf = (ready: boolean) => (ready ? Status.SERVING : Status.NOT_SERVING);
  return {
    async check(req: HealthCheckRequest) {
      if (!known.has(req.service)) throw new ConnectError(`unknown service ${JSON.stringify(req.service.slice(0, 200))}`, Code.NotFound);
      return response(statusOf(await readiness.check()));
    },
    async list() {
      const status = statusOf(await readiness.check());
      return create(HealthListResponseSchema, { statuses: Object.fromEntries([...known].map((name) => [name, response(status)])) });
    },
    async *watch(req: HealthCheckRequest, ctx: HandlerContext) {
      const ip = ctx.values.get(callInfoKey).clientIp;
      const key = ip === undefined ? undefined : clientKey(ip);
      if (watching >= limits.inAll) throw tooManyWatches("the server");
      if (key !== undefined && !watchesPerClient.take(key, limits.perClient)) throw tooManyWatches("this client");
      watching++;
      try {
        yield* watchOf(req, ctx);
      } finally {
        watching--;
        if (key !== undefined) watchesPerClient.give(key);
      }
    },
  };

  async function* watchOf(req: HealthCheckRequest, ctx: HandlerContext): AsyncGenerator<HealthCheckResponse> {
    if (!known.has(req.service)) {
      // The spec: say SERVICE_UNKNOWN and keep the call open.
      yield response(Status.SERVICE_UNKNOWN);
      await readiness.untilClosed(ctx.signal);
      return;
    }
    let last: boolean | undefined = await readiness.check();
    yield response(statusOf(last));
    while (!ctx.signal.aborted && !readiness.isClosed) {
      const now = await readiness.changeFrom(last, ctx.signal);
      if (now === undefined || now === last || ctx.signal.aborted) continue;
      last = now;
      yield response(statusOf(now));
    }
    // Shutting down: the last word is NOT_SERVING, then the stream ends
    // (clients retry with backoff, reaching another instance).
    if (last !== false && !ctx.signal.aborted) yield response(Status.NOT_SERVING);
  }
}

function tooManyWatches(whose: string): ConnectError {
  return new ConnectError(`too many health watches open for ${whose}: close one first`, Code.ResourceExhausted);
}
