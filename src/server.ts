// Composition root: build() wires configuration, storage, domain, mail and
// transport into one server on one port. Tests import build(); the process
// only listens when this file is run directly.
import path from "node:path";
import { pathToFileURL } from "node:url";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { pino, type DestinationStream, type Logger } from "pino";
import { ConfigError, loadConfig, type Config } from "./config.js";
import { systemClock } from "./domain/clock.js";
import { TransportError } from "./transport/transport-error.js";
import { Secrets } from "./domain/secrets.js";
import { SendAdmission } from "./domain/send-admission.js";
import { createSmtpMailer, DevMailbox, type Mailer } from "./mail/mailer.js";
import { databaseFailure, dataDirFailure, listenFailure, startFailureMessage, StartError } from "./start-failure.js";
import { lockDataDir, type DataDirLock } from "./storage/data-dir-lock.js";
import { OutboxWorker } from "./mail/outbox-worker.js";
import { createPool, type Db } from "./storage/db.js";
import { loadOrCreateAdminToken, loadOrCreatePepper, type DemoCredentials } from "./storage/dev-state.js";
import { startEmbeddedPostgres, type EmbeddedDatabase } from "./storage/embedded.js";
import { checkSchemaVersion, isMigrated, migrate } from "./storage/migrate.js";
import { pruneRateLimits, pruneUnverifiedAddresses } from "./storage/otp-store.js";
import { PgOutboxStore } from "./storage/outbox-store.js";
import { seedDemo } from "./storage/seed.js";
import { PgTenantStore } from "./storage/tenant-store.js";
import { runWithStatementSignal, traceStatements } from "./storage/statement-deadline.js";
import { clientAddressResolver, trustedProxyTest } from "./transport/client-address.js";
import { startTracing } from "./observability/tracing.js";
import { createCors } from "./transport/cors.js";
import { deadlineInterceptor } from "./transport/interceptors/deadline.js";
import { Health } from "../gen/health/v1/health_pb.js";
import { healthServiceImpl, Readiness } from "./transport/health.js";
import { DescriptorIndex, reflectionServices, reflectionV1AlphaImpl, reflectionV1Impl } from "./transport/reflection.js";
import { contextValuesFor, createHttpHandler } from "./transport/http-handler.js";
import { Metrics } from "./observability/metrics.js";
import { createOnePortServer } from "./transport/one-port.js";
import { RestRouter, type NodeRequest, type NodeResponse } from "./transport/rest.js";
import { createServices } from "./services.js";
import { loadApiDocs } from "./web/api-docs.js";
import { loadWebAssets } from "./web/assets.js";

export interface App {
  readonly config: Config;
  readonly db: Db;
  readonly logger: Logger;
  readonly worker: OutboxWorker;
  /** Set when no SMTP server is configured. */
  readonly devMailbox: DevMailbox | undefined;
  /** Set when the demo tenants were seeded. */
  readonly demo: DemoCredentials | undefined;
  /** "METHOD /path → Service.Rpc" for each REST route. */
  readonly restRoutes: readonly string[];
  /** Listens on config.host:config.port (0: any free port); resolves to the base URL. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

export interface BuildOptions {
  readonly logger?: Logger;
}

/** The service's JSON log: ISO timestamps, and what must never be written redacted. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  // Postgres error details can quote row values (an address in a unique
  // violation): they never reach the log.
  const options = {
    level,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: ["*.secret", "*.authorization", "*.password", "*.token", "err.detail", "err.cause.detail", "err.where"],
  };
  return destination ? pino(options, destination) : pino(options);
}

export async function build(config: Config, options: BuildOptions = {}): Promise<App> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const cleanups: (() => Promise<unknown>)[] = [];
  // Released after everything else has stopped, the embedded Postgres included.
  let lock: DataDirLock | undefined;
  try {
    let databaseUrl = config.databaseUrl;
    let embedded: EmbeddedDatabase | undefined;
    if (databaseUrl === undefined) {
      lock = await lockDataDir(config.dataDir).catch((err) => Promise.reject(dataDirFailure(err, config.dataDir)));
      const started = await startEmbeddedPostgres(config.dataDir, config.embeddedPostgresPort, logger).catch((err) =>
        Promise.reject(dataDirFailure(err, config.dataDir)),
      );
      embedded = started;
      cleanups.push(() => started.stop());
      databaseUrl = started.url;
    }
    const pepper = config.pepper ?? {
      id: config.pepperId,
      secret: await loadOrCreatePepper(config.dataDir).catch((err) => Promise.reject(dataDirFailure(err, config.dataDir))),
    };
    // Traces (when an OTLP endpoint is configured): started before the pool
    // so every statement can be a span; stopped last, after the deliveries.
    const tracing = startTracing(config.tracing);
    if (tracing) {
      traceStatements(true);
      cleanups.push(async () => {
        traceStatements(false);
        await tracing.shutdown();
      });
    }
    const db = createPool(databaseUrl, config.dbPoolSize);
    cleanups.unshift(() => db.end());
    // Embedded mode always migrates; with MIGRATE_ON_START=false a separate
    // step (`npm run migrate`) does, and this instance needs no DDL rights.
    let migrationCount: number;
    if (embedded || config.migrateOnStart) {
      const { applied, total } = await migrate(db).catch((err) => Promise.reject(databaseFailure(err, config)));
      if (applied.length > 0) logger.info({ applied }, "migrations applied");
      migrationCount = total;
    } else {
      const { required, differing } = await checkSchemaVersion(db).catch((err) => Promise.reject(databaseFailure(err, config)));
      if (differing.length > 0) logger.warn({ functions: differing }, "SQL functions differ from this build's; run the migrate step of the build that should serve");
      migrationCount = required;
    }

    const tenants = new PgTenantStore(db);
    const seeded = config.seedDemo
      ? (await seedDemo(db, config.dataDir).catch((err) => Promise.reject(dataDirFailure(err, config.dataDir)))).credentials
      : undefined;
    if (!seeded && !(await tenants.anyTenant())) {
      logger.warn(
        {
          create_project: "npm run admin -- project create --name NAME",
          create_business: "npm run admin -- business upsert --id NUMBER --name NAME",
          ...(config.adminToken === undefined ? { first: "set ADMIN_TOKEN on the service: the admin API is off without it" } : {}),
        },
        "no tenant exists yet: every send is refused until a project or business is created (OTP_URL and ADMIN_TOKEN tell the CLI where and how)",
      );
    }
    // Embedded mode always has an admin API, its token kept beside the demo credentials.
    const adminToken = config.adminToken ?? (embedded ? await loadOrCreateAdminToken(config.dataDir) : undefined);
    const demo = seeded && embedded ? { ...seeded, admin_token: adminToken } : seeded;

    const secrets = new Secrets(pepper, config.previousPeppers);
    // In embedded mode the dev mailbox is kept in DATA_DIR, so a restart keeps it.
    const devMailbox = config.devMailbox
      ? new DevMailbox(logger, embedded ? { file: path.join(config.dataDir, "dev-mailbox.json") } : {})
      : undefined;
    const mailer: Mailer = devMailbox ?? createSmtpMailer(config.smtpUrl!, config.outbox.concurrency);
    const outbox = new PgOutboxStore(db);
    const metrics = new Metrics({ outboxBacklog: () => outbox.backlog(), pool: db });
    const admission = new SendAdmission(config.admission, { count: async () => (await outbox.backlog()).depth }, systemClock);
    const worker = new OutboxWorker(outbox, mailer, secrets, logger, {
      // Every row that leaves the queue (delivered, failed, expired) drains the backlog admission weighs.
      observer: {
        delivered: (acceptedAt) => {
          metrics.delivered(acceptedAt);
          admission.delivered();
        },
        attemptFailed: (result) => {
          metrics.attemptFailed(result);
          if (result !== "retry") admission.delivered();
        },
      },
      concurrency: config.outbox.concurrency,
      pollMs: config.outbox.pollMs,
      maxAttempts: config.outbox.maxAttempts,
      defaultFrom: config.mailFrom,
      // A dev mailbox on a database others may share (UNSAFE_DEV_MAILBOX)
      // shows only what was sent through it; the embedded database is ours alone.
      ownMailOnly: devMailbox !== undefined && embedded === undefined,
    });

    const { services, interceptors } = await createServices(
      db,
      config,
      secrets,
      logger,
      adminToken,
      [metrics.interceptor(), deadlineInterceptor(runWithStatementSignal)],
      (messageId) => worker.wake(messageId),
      admission,
    );
    const clientAddressOf = clientAddressResolver(config.trustProxy);
    const contextValues = (req: NodeRequest) => contextValuesFor(req, clientAddressOf);
    const rest = new RestRouter(services.map((s) => s.spec), { interceptors, maxBodyBytes: config.maxBodyBytes, logger, contextValues });
    const notFound = (req: NodeRequest, res: NodeResponse) => {
      const url = new URL(`http://localhost${req.url ?? "/"}`);
      void rest.fail(rest.shapeForPath(url.pathname), req, res, new TransportError("route_not_found", `No route for ${req.method} ${url.pathname}.`));
    };
    let shuttingDown = false;
    // One readiness for /readyz and grpc.health.v1: the database answers
    // (and is migrated) within a second, and the server is not shutting down.
    const readiness = new Readiness(
      async () =>
        !shuttingDown &&
        (await Promise.race([
          isMigrated(db, migrationCount).catch(() => false),
          new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 1_000).unref()),
        ])),
      config.platform.healthPollMs,
    );
    // Health and reflection describe the server; they take no credentials
    // and run outside the RPC interceptors (auth, validation, errors).
    const platformServices = [Health, ...(config.platform.reflection ? reflectionServices : [])];
    const described = new DescriptorIndex([...services.map((s) => s.service), ...platformServices]);
    const connect = connectNodeAdapter({
      routes: (router) => {
        for (const s of services) s.addTo(router);
        router.service(Health, healthServiceImpl(readiness, described.serviceNames), { interceptors: [] });
        if (config.platform.reflection) {
          router.service(reflectionServices[0], reflectionV1Impl(described), { interceptors: [] });
          router.service(reflectionServices[1], reflectionV1AlphaImpl(described), { interceptors: [] });
        }
      },
      interceptors,
      readMaxBytes: config.maxBodyBytes,
      contextValues,
      fallback: notFound as never,
    });

    const handler = createHttpHandler({
      rest,
      connect: connect as never,
      metrics,
      metricsToken: config.metricsToken,
      // Delivery counters tell who is a customer: public only in embedded development.
      metricsOpenWithoutToken: embedded !== undefined,
      devMailbox,
      maxBodyBytes: config.maxBodyBytes,
      clientAddressOf,
      cors: createCors(config.allowedOrigins),
      web: { assets: await loadWebAssets(), businessId: demo?.business_id ?? null },
      apiDocs: await loadApiDocs(),
      logger,
      ready: () => readiness.check(),
      traceIdOf: tracing ? (req) => tracing.traceIdOf(req) : undefined,
    });

    const served = tracing
      ? tracing.traceRequests(handler, (method, pathname) => rest.lookup(pathname).find((f) => f.route.verb === method)?.route.template)
      : handler;
    const onePort = createOnePortServer(served, {
      sniffTimeoutMs: config.sniffTimeoutMs,
      requestTimeoutMs: config.requestTimeoutMs,
      maxConcurrentStreams: config.http2MaxConcurrentStreams,
      maxConnections: config.maxConnections,
      maxConnectionsPerClient: config.maxConnectionsPerClient,
      maxSessionsPerClient: config.maxSessionsPerClient,
      maxStreamsPerClient: config.maxStreamsPerClient,
      isTrustedProxy: trustedProxyTest(config.trustProxy),
    });
    await worker.start();
    // Keeps rate_limits from growing with every address ever seen, and
    // drops addresses added to a user but never verified.
    const prune = setInterval(() => {
      void pruneRateLimits(db).catch(() => {});
      void pruneUnverifiedAddresses(db).catch(() => {});
    }, 60_000);
    prune.unref();
    // Shutdown, in order: stop being ready and accepting, let in-flight
    // requests finish, stop claiming mail and give back what was claimed but
    // not sent, then close the transport, the pool and the database.
    cleanups.unshift(
      async () => clearInterval(prune),
      () => worker.stop(config.shutdownGraceMs),
      async () => mailer.close(),
    );

    let listening = false;
    return {
      config,
      db,
      logger,
      worker,
      devMailbox,
      demo,
      restRoutes: rest.describe(),
      listen: () =>
        new Promise<string>((resolve, reject) => {
          onePort.server.once("error", reject);
          onePort.server.listen(config.port, config.host, () => {
            listening = true;
            const { port } = onePort.server.address() as import("node:net").AddressInfo;
            const host = config.host.includes(":") ? `[${config.host}]` : config.host;
            resolve(`http://${host}:${port}`);
          });
        }),
      async close() {
        shuttingDown = true;
        readiness.close();
        if (listening) await onePort.close(config.shutdownGraceMs);
        for (const cleanup of cleanups) await cleanup().catch((err) => logger.warn({ err }, "cleanup failed"));
        await lock?.release().catch(() => {});
      },
    };
  } catch (err) {
    for (const cleanup of cleanups) await cleanup().catch(() => {});
    await lock?.release().catch(() => {});
    throw err;
  }
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`otp-service: configuration error: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  // From here on, whatever happens, the embedded Postgres is stopped before
  // the process ends: a signal or a crash during start-up waits for build()
  // and closes what it made.
  let app: App | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (reason: string, exitCode: number) => {
    if (stopping) return;
    app?.logger.info({ reason }, "shutting down");
    const force = setTimeout(() => process.exit(exitCode || 1), config.shutdownGraceMs + 5_000);
    force.unref();
    stopping = (async () => {
      await building.catch(() => {});
      if (app) {
        await app.close().catch((err) => {
          exitCode ||= 1;
          app!.logger.error({ err }, "shutdown failed");
        });
        app.logger.info({ exit_code: exitCode }, "stopped");
      }
      process.exit(exitCode);
    })();
  };
  process.on("SIGTERM", () => stop("SIGTERM", 0));
  process.on("SIGINT", () => stop("SIGINT", 0));
  const crash = (err: unknown) => {
    if (app) app.logger.fatal({ err }, "crashed; stopping");
    else process.stderr.write(`otp-service: crashed during start-up: ${startFailureMessage(err)}\n`);
    stop("crash", 1);
  };
  process.on("uncaughtException", crash);
  process.on("unhandledRejection", crash);

  const building = (async () => {
    app = await build(config);
    return app.listen().catch((err) => Promise.reject(listenFailure(err, config.host, config.port)));
  })();
  let url: string;
  try {
    url = await building;
  } catch (err) {
    // Nothing is left running: build() cleans up after its own failure, and
    // a failure to listen closes what build() started.
    await app?.close().catch(() => {});
    app = undefined;
    process.stderr.write(`otp-service: failed to start: ${startFailureMessage(err)}\n`);
    if (!(err instanceof StartError) && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  }
  if (stopping) return;
  const started = app!;
  started.logger.info({ url, routes: started.restRoutes }, "otp-service listening (gRPC, gRPC-Web, Connect and REST on one port)");
  if (started.demo) {
    started.logger.info(
      { project_id: started.demo.project_id, business_id: started.demo.business_id, credentials_file: "dev-credentials.json in DATA_DIR" },
      "demo tenants ready; the project secret (and, in embedded mode, the admin token) is in the credentials file",
    );
  }
  if (started.devMailbox && config.databaseUrl !== undefined) {
    started.logger.warn(
      { mailbox: `${url}/dev/mailbox` },
      "UNSAFE_DEV_MAILBOX: every passcode sent through this instance is shown on the dev mailbox and in the log; never run it for real users",
    );
  } else if (started.devMailbox) {
    started.logger.info({ mailbox: `${url}/dev/mailbox` }, "no SMTP_URL: mail goes to the dev mailbox; open it in a browser to read it");
  }
  if (config.databaseUrl !== undefined && config.metricsToken === undefined) {
    started.logger.info("METRICS_TOKEN is unset: /metrics is closed (404); set it to scrape with Authorization: Bearer <METRICS_TOKEN>");
  }
  started.logger.info({ page: `${url}/signin` }, "sign-in page");
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    process.stderr.write(`otp-service: failed to start: ${startFailureMessage(err)}\n`);
    process.exit(1);
  });
}
