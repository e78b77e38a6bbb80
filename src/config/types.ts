// The shape of the service's configuration: what loadConfig (src/config.ts)
// returns, typed and frozen.
import type { RateLimit } from "../domain/rate-limit-policy.js";
import type { Pepper } from "../domain/secrets.js";

/**
 * Which proxies in front of the service are trusted to append the client's
 * address to X-Forwarded-For: none, the nearest `hops` ones, or those whose
 * address is in one of `networks` (CIDRs).
 */
export type TrustProxy =
  | { readonly kind: "none" }
  | { readonly kind: "hops"; readonly hops: number }
  | { readonly kind: "networks"; readonly networks: readonly string[] };

export interface Config {
  readonly host: string;
  readonly port: number;
  /** Unset: run an embedded Postgres with its data under dataDir. */
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  /** Port of the embedded Postgres; 0 picks a free one. */
  readonly embeddedPostgresPort: number;
  readonly dbPoolSize: number;
  /** false: never change the schema at start (no DDL rights needed); refuse a schema older than this build needs. */
  readonly migrateOnStart: boolean;
  /** Unset only with the dev mailbox: embedded mode, or UNSAFE_DEV_MAILBOX. */
  readonly smtpUrl: string | undefined;
  /**
   * Mail goes to the dev mailbox (GET /dev/mailbox, codes in the log)
   * instead of SMTP: only in embedded mode, or when UNSAFE_DEV_MAILBOX says so.
   */
  readonly devMailbox: boolean;
  readonly mailFrom: string;
  /** Unset only in embedded mode, where one is generated and kept. */
  readonly pepper: Pepper | undefined;
  /** Id of the current pepper (also of a generated one). */
  readonly pepperId: number;
  /** Older peppers, still accepted for codes issued before a rotation. */
  readonly previousPeppers: readonly Pepper[];
  /** Bearer token of the admin API; undefined (outside embedded mode): the admin API is off. */
  readonly adminToken: string | undefined;
  /** Bearer token protecting /metrics; unset: /metrics is closed, except in embedded mode. */
  readonly metricsToken: string | undefined;
  /** How long shutdown waits for in-flight requests and deliveries. */
  readonly shutdownGraceMs: number;
  /** Exact origins browsers may call from (CORS); "*" allows any, without credentials. */
  readonly allowedOrigins: readonly string[];
  readonly trustProxy: TrustProxy;
  readonly seedDemo: boolean;
  readonly limits: {
    readonly email: RateLimit;
    readonly ip: RateLimit;
    readonly tenant: RateLimit;
    /** Rows the tenant limit is split over, so a tenant's sends do not queue on one row lock. */
    readonly tenantShards: number;
    /** The daily cap per address: sends to one address in a day (burst), refilled evenly (period). */
    readonly emailDaily: RateLimit;
  };
  /**
   * The guessing budget: failed passcode checks per client network (an IPv4
   * address or an IPv6 /64), whatever address they were for, on every route
   * that checks a code. Charged in Postgres, so it holds across instances.
   */
  readonly guessLimit: RateLimit;
  /**
   * Lookups of tenants not remembered (a made-up business number or project
   * id on a public route) per client network; per instance, in memory: it
   * guards this instance's database connections.
   */
  readonly lookupLimit: RateLimit;
  /** Refusing wrong project secrets cheaply (kept per instance: it guards this instance's CPU). */
  readonly projectAuth: {
    /** Failed authentications per client network. */
    readonly failuresPerClient: RateLimit;
    /** Failed authentications per project. */
    readonly failuresPerProject: RateLimit;
    /** Secret hashes (scrypt) verified at once; the rest wait, a few of them. */
    readonly maxConcurrentHashes: number;
    /** Verifications allowed to wait for a hashing slot; beyond that, refused at once. */
    readonly maxQueuedHashes: number;
  };
  /** Minutes a legacy portal passcode stays valid. */
  readonly legacyCodeTtlMinutes: number;
  /** The legacy send and exchange answer no sooner than this, which hides whether an address is a customer. */
  readonly legacyMinResponseMs: number;
  /** Minutes a legacy bearer token (ExchangeOtp) stays valid. */
  readonly legacyTokenTtlMinutes: number;
  readonly attempts: {
    /** Wrong tries a code survives; then it is dead. */
    readonly perCode: number;
    /** Consecutive failures on one email, across codes, before it is locked. */
    readonly lockThreshold: number;
    readonly lockMinutes: number;
  };
  readonly maxBodyBytes: number;
  /** How long a new connection may take to show whether it speaks HTTP/2. */
  readonly sniffTimeoutMs: number;
  /** A request (HTTP/1.1) or an HTTP/2 stream's request side not received in full by then is cut. */
  readonly requestTimeoutMs: number;
  /** Streams one HTTP/2 session may have open at once. */
  readonly http2MaxConcurrentStreams: number;
  /** Connections open at once, in all (an HTTP/2 session is one connection). */
  readonly maxConnections: number;
  /** Connections open at once per client address (IPv6: per /64), trusted proxies exempt; 0: no cap. */
  readonly maxConnectionsPerClient: number;
  /** HTTP/2 sessions open at once per client address, trusted proxies exempt; 0: no cap. */
  readonly maxSessionsPerClient: number;
  /** HTTP/2 streams open at once per client address over all its sessions, trusted proxies exempt; 0: no cap. */
  readonly maxStreamsPerClient: number;
  readonly outbox: {
    readonly concurrency: number;
    readonly pollMs: number;
    readonly maxAttempts: number;
  };
  /** When sends are refused rather than queued (see src/domain/send-admission.ts). */
  readonly admission: {
    readonly maxInFlight: number;
    readonly minInFlight: number;
    readonly targetLatencyMs: number;
    readonly maxMailWaitMs: number;
    readonly backlogFloor: number;
    readonly maxLoopDelayMs: number;
  };
  readonly logLevel: string;
  /** OpenTelemetry traces over OTLP/HTTP; undefined: tracing is off. */
  readonly tracing: TracingConfig | undefined;
  /** Platform tools: gRPC server reflection (on by default) and how often health watches re-probe readiness. */
  readonly platform: {
    readonly reflection: boolean;
    readonly healthPollMs: number;
  };
}

/** Where and how traces are exported, from the standard OTEL_* variables. */
export interface TracingConfig {
  /** The OTLP/HTTP traces URL (…/v1/traces). */
  readonly endpoint: string;
  readonly protocol: "http/protobuf" | "http/json";
  readonly headers: Readonly<Record<string, string>>;
  readonly serviceName: string;
  readonly resourceAttributes: Readonly<Record<string, string>>;
  readonly sampler: string;
  readonly samplerArg: number | undefined;
  /** How long spans wait in the batch before export (OTEL_BSP_SCHEDULE_DELAY). */
  readonly scheduleDelayMs: number;
  readonly exportTimeoutMs: number;
}
