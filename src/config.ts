// The service's configuration: the environment, parsed once into a typed,
// defaulted, frozen object. Nothing else in the service reads process.env.
// The shape is in config/types.ts; sections with their own rules (network,
// tracing, peppers) parse in config/*.ts.
import path from "node:path";
import type { RateLimit } from "./domain/rate-limit-policy.js";
import { ConfigError, type Env } from "./config/config-error.js";
import { parseOrigins, parseTrustProxy } from "./config/network.js";
import { parsePreviousPeppers } from "./config/peppers.js";
import { parseTracing } from "./config/tracing.js";
import type { Config } from "./config/types.js";

export { ConfigError, type Env } from "./config/config-error.js";
export type { Config, TracingConfig, TrustProxy } from "./config/types.js";
export { type AdminCliConfig, loadAdminCliConfig, loadMigrateConfig } from "./config/tools.js";

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
  /** A token callers present as a bearer: long enough not to be guessed, and with no space (which no header could carry). */
  const bearerToken = (name: string) => {
    const v = optional(name);
    if (v !== undefined && (v.length < 16 || /\s/.test(v))) {
      throw new ConfigError(`${name} must be at least 16 characters with no spaces (e.g. \`openssl rand -hex 24\`)`);
    }
    return v;
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

  const adminToken = bearerToken("ADMIN_TOKEN");
  // /metrics can tell who is a customer (docs/security.md): its token is held to the same rule.
  const metricsToken = bearerToken("METRICS_TOKEN");

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
    metricsToken,
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
    // 60 lookups of tenants not remembered at once, then ten a second.
    lookupLimit: limit("LOOKUP_LIMIT_CLIENT", 60, 100),
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
      concurrency: int("OUTBOX_CONCURRENCY", 96, 1, 256),
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
      // Past this the instance's own queue of work is what a caller waits in.
      maxLoopDelayMs: int("SEND_MAX_LOOP_DELAY_MS", 40, 0, 60_000),
    },
    logLevel,
    tracing: parseTracing(optional, int),
    platform: {
      reflection: bool("GRPC_REFLECTION", true),
      healthPollMs: int("HEALTH_POLL_MS", 1_000, 50, 60_000),
    },
  });
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
