// Prometheus metrics (prom-client), in a registry of the service's own so
// several instances in one process (tests) do not collide. RPC outcomes are
// counted by an interceptor, delivery by the outbox worker's observer, and
// the outbox and pool gauges are read when scraped, from sources the
// composition root hands in (so this module knows no storage).
import type { Interceptor } from "@connectrpc/connect";
import { ConnectError } from "@connectrpc/connect";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { DomainError } from "../domain/errors.js";
import type { DeliveryObserver, OutboxBacklog } from "../domain/outbox.js";
import { callInfoKey } from "../transport/context.js";
import { connectCodeName } from "../transport/error-mapping.js";

/** What the gauges read when scraped. */
export interface MetricsSources {
  /** Undelivered outbox rows and the age of the oldest. */
  outboxBacklog(): Promise<OutboxBacklog>;
  /** The database pool's connection counts. */
  readonly pool: { readonly totalCount: number; readonly idleCount: number; readonly waitingCount: number };
}

const SEND_RPCS = new Set(["SendEmailOtp", "LoginOrCreateEmailOtp", "SendOtp"]);

export class Metrics implements DeliveryObserver {
  readonly registry = new Registry();
  private readonly requests = new Counter({
    name: "otp_requests_total",
    help: "RPCs answered, by RPC, protocol and Connect code.",
    labelNames: ["rpc", "protocol", "code"] as const,
    registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: "otp_request_duration_seconds",
    help: "RPC handling time, by RPC and protocol.",
    labelNames: ["rpc", "protocol"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  private readonly sends = new Counter({
    name: "otp_sends_total",
    help: "Passcode sends, by outcome (accepted, rate_limited, rejected) and the limit that refused them.",
    labelNames: ["outcome", "limit"] as const,
    registers: [this.registry],
  });
  private readonly attempts = new Counter({
    name: "otp_delivery_attempts_total",
    help: "Mail delivery attempts, by result (sent, retry, failed, expired).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: "otp_delivery_latency_seconds",
    help: "Time from an accepted send to the mail being handed to SMTP.",
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });

  constructor(sources: MetricsSources) {
    collectDefaultMetrics({ register: this.registry, prefix: "otp_process_" });
    const registers = [this.registry];
    // Both outbox gauges come from one query; a scrape collects them at once.
    let inFlight: Promise<OutboxBacklog> | undefined;
    const backlog = () =>
      (inFlight ??= sources
        .outboxBacklog()
        .catch(() => ({ depth: Number.NaN, oldestSeconds: Number.NaN }))
        .finally(() => (inFlight = undefined)));
    new Gauge({
      name: "otp_outbox_pending",
      help: "Outbox rows waiting for delivery (pending or being sent).",
      registers,
      async collect() {
        this.set((await backlog()).depth);
      },
    });
    new Gauge({
      name: "otp_outbox_oldest_pending_seconds",
      help: "Age of the oldest undelivered outbox row.",
      registers,
      async collect() {
        this.set((await backlog()).oldestSeconds);
      },
    });
    new Gauge({
      name: "otp_db_pool_connections",
      help: "Postgres pool connections, by state (total, idle, waiting requests).",
      labelNames: ["state"] as const,
      registers,
      collect() {
        this.set({ state: "total" }, sources.pool.totalCount);
        this.set({ state: "idle" }, sources.pool.idleCount);
        this.set({ state: "waiting" }, sources.pool.waitingCount);
      },
    });
  }

  /** Counts every RPC's outcome; outermost, so it sees the mapped Connect code. */
  interceptor(): Interceptor {
    return (next) => async (req) => {
      const rpc = req.method.name;
      const protocol = req.contextValues.get(callInfoKey).protocol;
      const end = this.duration.startTimer({ rpc, protocol });
      try {
        const res = await next(req);
        this.requests.inc({ rpc, protocol, code: "ok" });
        if (SEND_RPCS.has(rpc)) this.sends.inc({ outcome: "accepted", limit: "" });
        return res;
      } catch (err) {
        const e = ConnectError.from(err);
        this.requests.inc({ rpc, protocol, code: connectCodeName(e.code) });
        if (SEND_RPCS.has(rpc)) {
          const cause = e.cause instanceof DomainError ? e.cause : undefined;
          const limited = cause?.reason === "rate_limited";
          this.sends.inc({ outcome: limited ? "rate_limited" : "rejected", limit: limited ? (cause.details.limit ?? "") : "" });
        }
        throw err;
      } finally {
        end();
      }
    };
  }

  /** A send refused for capacity at the door (send-gate.ts), before any interceptor ran: counted as the interceptor counts one refused later. */
  refusedAtTheDoor(rpc: string, protocol: string): void {
    this.requests.inc({ rpc, protocol, code: "resource_exhausted" });
    this.sends.inc({ outcome: "rate_limited", limit: "capacity" });
  }

  delivered(acceptedAt: Date): void {
    this.attempts.inc({ result: "sent" });
    this.latency.observe(Math.max(0, (Date.now() - acceptedAt.getTime()) / 1000));
  }

  attemptFailed(result: "retry" | "failed" | "expired"): void {
    this.attempts.inc({ result });
  }
}
