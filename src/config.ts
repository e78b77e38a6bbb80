// The service's configuration: the environment, parsed once into a typed,
// defaulted, frozen object. Nothing else in the service reads process.env.
import path from "node:path";
import ipaddr from "ipaddr.js";
import type { RateLimit } from "./domain/rate-limit-policy.js";
import type { Pepper } from "./domain/secrets.js";

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

export class ConfigError extends Error {
  override name = "ConfigError";
}

type Env = Readonly<Record<string, string | undefined>>;

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** Parses the environment; throws a ConfigError naming the variable at fault. */
export function loadConfig(env: Env = process.env): Config {
  const str = (name: string, fallback: string) => {
    const v = env[name];
    return v === undefined || v === "" ? fallback : v;
  };
  const optional = (name: string) => {
    const v = env[name];
    return v === undefined || v === "" ? undefined : v;
  };
  const int = (name: string, fallback: number, min: number, max: number) => {
    const raw = optional(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw)) throw new ConfigError(`${name} must be a whole number, got "${raw}"`);
    const n = Number(raw);
    if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${n}`);
    return n;
  };
  const bool = (name: string, fallback: boolean) => {
    const raw = optional(name);
    if (raw === undefined) return fallback;
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    throw new ConfigError(`${name} must be true or false, got "${raw}"`);
  };
  const limit = (prefix: string, burst: number, periodMs: number): RateLimit => ({
    burst: int(`${prefix}_BURST`, burst, 1, 1_000_000),
    periodMs: int(`${prefix}_PERIOD_MS`, periodMs, 1, 86_400_000),
  });

  const databaseUrl = optional("DATABASE_URL");
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError("DATABASE_URL must be a postgres:// or postgresql:// URL");
  }
  const smtpUrl = optional("SMTP_URL");
  if (smtpUrl !== undefined && !/^smtps?:\/\//.test(smtpUrl)) {
    throw new ConfigError("SMTP_URL must be an smtp:// or smtps:// URL");
  }
  const mailFrom = str("MAIL_FROM", "no-reply@otp.localhost");
  if (!/^[^\s@<>"]+@[^\s@<>"]+$/.test(mailFrom)) {
    throw new ConfigError(`MAIL_FROM must be a bare email address, got "${mailFrom}"`);
  }

  const pepperSecret = optional("OTP_PEPPER");
  if (pepperSecret !== undefined && pepperSecret.length < 32) {
    throw new ConfigError("OTP_PEPPER must be at least 32 characters (e.g. `openssl rand -hex 32`)");
  }
  if (databaseUrl !== undefined && pepperSecret === undefined) {
    throw new ConfigError(
      "OTP_PEPPER is required when DATABASE_URL is set: set it to a random secret of at least 32 characters (e.g. `openssl rand -hex 32`) and keep it stable across restarts",
    );
  }
  // The dev mailbox shows every passcode to anyone who can reach the port
  // (and writes it to the log): with a real database it must be asked for
  // by a name that says what it is, never fallen into by a missing SMTP_URL.
  const unsafeDevMailbox = bool("UNSAFE_DEV_MAILBOX", false);
  if (smtpUrl !== undefined && unsafeDevMailbox) {
    throw new ConfigError("UNSAFE_DEV_MAILBOX and SMTP_URL are both set: unset UNSAFE_DEV_MAILBOX to send mail through SMTP_URL");
  }
  if (databaseUrl !== undefined && smtpUrl === undefined && !unsafeDevMailbox) {
    throw new ConfigError(
      "SMTP_URL is required when DATABASE_URL is set: set it to your mail server (e.g. smtp://user:pass@mail.example.com:587); without it passcodes would be shown on /dev/mailbox and in the log",
    );
  }
  const pepperId = int("OTP_PEPPER_ID", 1, 1, 32_767);
  const previousPeppers = parsePreviousPeppers(optional("OTP_PREVIOUS_PEPPERS"), pepperId);

  const adminToken = optional("ADMIN_TOKEN");
  if (adminToken !== undefined && (adminToken.length < 16 || /\s/.test(adminToken))) {
    throw new ConfigError("ADMIN_TOKEN must be at least 16 characters with no spaces (e.g. `openssl rand -hex 24`)");
  }

  const logLevel = str("LOG_LEVEL", "info");
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}`);
  }

  const dbPoolSize = int("DB_POOL_SIZE", 20, 1, 1000);
  return deepFreeze({
    host: str("HOST", "127.0.0.1"),
    port: int("PORT", 8080, 0, 65_535),
    databaseUrl,
    dataDir: path.resolve(str("DATA_DIR", ".data")),
    embeddedPostgresPort: int("EMBEDDED_PG_PORT", 0, 0, 65_535),
    dbPoolSize,
    migrateOnStart: bool("MIGRATE_ON_START", true),
    smtpUrl,
    devMailbox: smtpUrl === undefined,
    mailFrom,
    pepper: pepperSecret === undefined ? undefined : { id: pepperId, secret: pepperSecret },
    pepperId,
    previousPeppers,
    adminToken,
    metricsToken: optional("METRICS_TOKEN"),
    shutdownGraceMs: int("SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
    allowedOrigins: parseOrigins(optional("ALLOWED_ORIGINS")),
    trustProxy: parseTrustProxy(optional("TRUST_PROXY")),
    seedDemo: bool("SEED_DEMO", databaseUrl === undefined),
    limits: {
      email: limit("RATE_LIMIT_EMAIL", 3, 20_000),
      ip: limit("RATE_LIMIT_IP", 30, 2_000),
      tenant: limit("RATE_LIMIT_TENANT", 1000, 10),
      tenantShards: int("RATE_LIMIT_TENANT_SHARDS", 16, 1, 256),
      // 20 a day: 20 at once, then one more every 72 minutes.
      emailDaily: limit("RATE_LIMIT_EMAIL_DAILY", 20, 4_320_000),
    },
    // 100 failed checks at once, then one more every 36 s: 100 an hour.
    guessLimit: limit("GUESS_LIMIT_CLIENT", 100, 36_000),
    projectAuth: {
      failuresPerClient: limit("AUTH_FAILURE_LIMIT_CLIENT", 10, 6_000),
      failuresPerProject: limit("AUTH_FAILURE_LIMIT_PROJECT", 30, 2_000),
      maxConcurrentHashes: int("AUTH_MAX_CONCURRENT_HASHES", 2, 1, 64),
      maxQueuedHashes: int("AUTH_MAX_QUEUED_HASHES", 16, 0, 10_000),
    },
    legacyCodeTtlMinutes: int("LEGACY_CODE_TTL_MINUTES", 10, 1, 60),
    legacyTokenTtlMinutes: int("LEGACY_TOKEN_TTL_MINUTES", 60, 1, 43_200),
    legacyMinResponseMs: int("LEGACY_MIN_RESPONSE_MS", 20, 0, 5_000),
    attempts: {
      perCode: int("OTP_MAX_ATTEMPTS_PER_CODE", 5, 1, 100),
      lockThreshold: int("OTP_LOCK_THRESHOLD", 100, 1, 100_000),
      lockMinutes: int("OTP_LOCK_MINUTES", 60, 1, 43_200),
    },
    maxBodyBytes: int("MAX_BODY_BYTES", 64 * 1024, 1024, 16 * 1024 * 1024),
    sniffTimeoutMs: int("SNIFF_TIMEOUT_MS", 10_000, 100, 600_000),
    requestTimeoutMs: int("REQUEST_TIMEOUT_MS", 30_000, 1_000, 600_000),
    http2MaxConcurrentStreams: int("HTTP2_MAX_CONCURRENT_STREAMS", 100, 1, 1_000),
    maxConnections: int("MAX_CONNECTIONS", 10_000, 1, 1_000_000),
    maxConnectionsPerClient: int("MAX_CONNECTIONS_PER_CLIENT", 256, 0, 1_000_000),
    maxSessionsPerClient: int("MAX_SESSIONS_PER_CLIENT", 8, 0, 1_000_000),
    maxStreamsPerClient: int("MAX_STREAMS_PER_CLIENT", 256, 0, 1_000_000),
    outbox: {
      concurrency: int("OUTBOX_CONCURRENCY", 32, 1, 256),
      pollMs: int("OUTBOX_POLL_MS", 1_000, 10, 600_000),
      maxAttempts: int("OUTBOX_MAX_ATTEMPTS", 100, 1, 10_000),
    },
    admission: {
      // As many as the pool runs at once are always let in (none of them waits
      // for a connection); up to twice that while throughput says they are
      // answered within the target latency.
      maxInFlight: int("SEND_MAX_IN_FLIGHT", 2 * dbPoolSize, 1, 100_000),
      minInFlight: int("SEND_MIN_IN_FLIGHT", dbPoolSize, 1, 100_000),
      targetLatencyMs: int("SEND_TARGET_LATENCY_MS", 50, 1, 3_600_000),
      maxMailWaitMs: int("SEND_MAX_MAIL_WAIT_MS", 10_000, 100, 3_600_000),
      backlogFloor: int("SEND_BACKLOG_FLOOR", 200, 0, 10_000_000),
    },
    logLevel,
    tracing: parseTracing(optional, int),
    platform: {
      reflection: bool("GRPC_REFLECTION", true),
      healthPollMs: int("HEALTH_POLL_MS", 1_000, 50, 60_000),
    },
  });
}

/**
 * TRUST_PROXY: false (the default), true (one proxy), a number of proxy hops,
 * or a comma-separated list of the proxies' addresses or networks (CIDRs).
 */
function parseTrustProxy(raw: string | undefined): TrustProxy {
  if (raw === undefined || /^(0|false|no|off)$/i.test(raw)) return { kind: "none" };
  // One proxy in front, which appends the address it saw: the usual load balancer.
  if (/^(true|yes|on)$/i.test(raw)) return { kind: "hops", hops: 1 };
  if (/^\d+$/.test(raw)) {
    const hops = Number(raw);
    if (hops > 10) throw new ConfigError(`TRUST_PROXY: ${hops} proxy hops is more than any real chain (at most 10)`);
    return { kind: "hops", hops };
  }
  const networks = raw.split(",").map((entry) => {
    const text = entry.trim();
    try {
      if (text.includes("/")) {
        const [address, bits] = ipaddr.parseCIDR(text);
        return `${address.toString()}/${bits}`;
      }
      const address = ipaddr.parse(text);
      return `${address.toString()}/${address.kind() === "ipv4" ? 32 : 128}`;
    } catch {
      throw new ConfigError(
        `TRUST_PROXY: "${text}" is not an address or network; use false, true (one proxy), a number of proxy hops, or addresses/CIDRs like 10.0.0.0/8,fd00::/8`,
      );
    }
  });
  return { kind: "networks", networks };
}

const SAMPLERS = ["always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"];

/**
 * The OpenTelemetry SDK's standard variables for traces over OTLP/HTTP. On
 * when an OTLP endpoint is set (and neither OTEL_SDK_DISABLED nor
 * OTEL_TRACES_EXPORTER=none says otherwise); off, no SDK is started.
 */
function parseTracing(
  optional: (name: string) => string | undefined,
  int: (name: string, fallback: number, min: number, max: number) => number,
): TracingConfig | undefined {
  if (/^true$/i.test(optional("OTEL_SDK_DISABLED") ?? "")) return undefined;
  const exporter = optional("OTEL_TRACES_EXPORTER") ?? "otlp";
  if (exporter === "none") return undefined;
  if (exporter !== "otlp") throw new ConfigError(`OTEL_TRACES_EXPORTER must be otlp or none, got "${exporter}"`);
  const tracesEndpoint = optional("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const baseEndpoint = optional("OTEL_EXPORTER_OTLP_ENDPOINT");
  if (tracesEndpoint === undefined && baseEndpoint === undefined) return undefined;
  const endpoint = tracesEndpoint ?? `${baseEndpoint!.replace(/\/+$/, "")}/v1/traces`;
  if (!/^https?:\/\/\S+$/.test(endpoint)) {
    throw new ConfigError(`${tracesEndpoint ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT"} must be an http:// or https:// URL`);
  }
  const protocolVar = optional("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") !== undefined ? "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" : "OTEL_EXPORTER_OTLP_PROTOCOL";
  const protocol = optional(protocolVar) ?? "http/protobuf";
  if (protocol !== "http/protobuf" && protocol !== "http/json") {
    throw new ConfigError(`${protocolVar} must be http/protobuf or http/json, got "${protocol}"`);
  }
  const sampler = (optional("OTEL_TRACES_SAMPLER") ?? "parentbased_always_on").toLowerCase();
  if (!SAMPLERS.includes(sampler)) throw new ConfigError(`OTEL_TRACES_SAMPLER must be one of ${SAMPLERS.join(", ")}`);
  const rawArg = optional("OTEL_TRACES_SAMPLER_ARG");
  let samplerArg: number | undefined;
  if (rawArg !== undefined && sampler.endsWith("traceidratio")) {
    samplerArg = Number(rawArg);
    if (!Number.isFinite(samplerArg) || samplerArg < 0 || samplerArg > 1) {
      throw new ConfigError(`OTEL_TRACES_SAMPLER_ARG must be a ratio between 0 and 1, got "${rawArg}"`);
    }
  }
  return {
    endpoint,
    protocol,
    headers: parsePairs("OTEL_EXPORTER_OTLP_HEADERS", optional("OTEL_EXPORTER_OTLP_TRACES_HEADERS") ?? optional("OTEL_EXPORTER_OTLP_HEADERS")),
    serviceName: optional("OTEL_SERVICE_NAME") ?? "otp-service",
    resourceAttributes: parsePairs("OTEL_RESOURCE_ATTRIBUTES", optional("OTEL_RESOURCE_ATTRIBUTES")),
    sampler,
    samplerArg,
    scheduleDelayMs: int("OTEL_BSP_SCHEDULE_DELAY", 5_000, 1, 600_000),
    exportTimeoutMs: int("OTEL_EXPORTER_OTLP_TIMEOUT", 10_000, 1, 600_000),
  };
}

/** "key1=value1,key2=value2", values percent-decoded (the OTel format for headers and resource attributes). */
function parsePairs(name: string, raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (raw === undefined) return out;
  for (const pair of raw.split(",")) {
    if (pair.trim() === "") continue;
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new ConfigError(`${name} must be a comma-separated list of key=value`);
    try {
      out[decodeURIComponent(pair.slice(0, eq).trim())] = decodeURIComponent(pair.slice(eq + 1).trim());
    } catch {
      throw new ConfigError(`${name}: "${pair}" is not valid percent-encoding`);
    }
  }
  return out;
}

function parseOrigins(raw: string | undefined): string[] {
  if (raw === undefined) return [];
  return raw.split(",").map((entry) => {
    const origin = entry.trim();
    if (origin === "*") return origin;
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      throw new ConfigError(`ALLOWED_ORIGINS: "${origin}" is not an origin like https://app.example.com`);
    }
    if (url.origin !== origin || !/^https?:$/.test(url.protocol)) {
      throw new ConfigError(`ALLOWED_ORIGINS: "${origin}" is not an origin like https://app.example.com (no path, no trailing slash)`);
    }
    return origin;
  });
}

function parsePreviousPeppers(raw: string | undefined, currentId: number): Pepper[] {
  if (raw === undefined) return [];
  const seen = new Set<number>();
  return raw.split(",").map((entry) => {
    const m = /^(\d+):(.{32,})$/.exec(entry.trim());
    if (!m) throw new ConfigError("OTP_PREVIOUS_PEPPERS must be a comma-separated list of <id>:<secret of 32+ characters>");
    const id = Number(m[1]);
    if (id < 1 || id > 32_767) throw new ConfigError(`OTP_PREVIOUS_PEPPERS: id ${id} is not between 1 and 32767`);
    if (id === currentId) throw new ConfigError(`OTP_PREVIOUS_PEPPERS reuses the current OTP_PEPPER_ID ${id}`);
    if (seen.has(id)) throw new ConfigError(`OTP_PREVIOUS_PEPPERS: id ${id} is used twice`);
    seen.add(id);
    return { id, secret: m[2]! };
  });
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** What the admin CLI needs: where the server is, and the admin token if set. */
export interface AdminCliConfig {
  readonly url: string;
  readonly token: string | undefined;
  readonly dataDir: string;
}

export function loadAdminCliConfig(env: Env = process.env): AdminCliConfig {
  const url = env.OTP_URL || "http://127.0.0.1:8080";
  if (!/^https?:\/\/[^\s]+$/.test(url)) throw new ConfigError(`OTP_URL must be an http:// or https:// URL, got "${url}"`);
  return Object.freeze({
    url: url.replace(/\/+$/, ""),
    token: env.ADMIN_TOKEN || undefined,
    dataDir: path.resolve(env.DATA_DIR || ".data"),
  });
}

/** What the migrate step (`npm run migrate`) needs: the database to migrate. */
export function loadMigrateConfig(env: Env = process.env): { readonly databaseUrl: string } {
  const databaseUrl = env.DATABASE_URL;
  if (!databaseUrl) throw new ConfigError("DATABASE_URL is required: the migrate step applies migrations to that database");
  if (!/^postgres(ql)?:\/\//.test(databaseUrl)) throw new ConfigError("DATABASE_URL must be a postgres:// or postgresql:// URL");
  return Object.freeze({ databaseUrl });
}
