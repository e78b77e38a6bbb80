// Composition root: build() wires configuration, storage, domain, mail and
// transport into one server on one port (the parts are wired in src/wiring/).
// Tests import build(); the process only listens when this file is run directly.
import { pathToFileURL } from "node:url";
import type { Logger } from "pino";
import { ConfigError, loadConfig, type Config } from "./config.js";
import { Secrets } from "./domain/secrets.js";
import type { DevMailbox } from "./mail/mailer.js";
import type { OutboxWorker } from "./mail/outbox-worker.js";
import { listenFailure, startFailureMessage, StartError } from "./start-failure.js";
import type { Db } from "./storage/db.js";
import type { DemoCredentials } from "./storage/dev-state.js";
import { pruneRateLimits, pruneUnverifiedAddresses } from "./storage/otp-store.js";
import { wireDelivery } from "./wiring/delivery.js";
import { wireHttp } from "./wiring/http.js";
import { createLogger } from "./wiring/logger.js";
import { Resources } from "./wiring/resources.js";
import { openStorage } from "./wiring/storage.js";
import { prepareTenants } from "./wiring/tenants.js";

export { createLogger } from "./wiring/logger.js";

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

export async function build(config: Config, options: BuildOptions = {}): Promise<App> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const resources = new Resources();
  const { cleanups } = resources;
  try {
    const { db, embedded, pepper, tracing, migrationCount } = await openStorage(config, logger, resources);
    const { adminToken, demo } = await prepareTenants(config, db, embedded !== undefined, logger);
    const secrets = new Secrets(pepper, config.previousPeppers);
    const delivery = wireDelivery(config, db, secrets, logger, embedded !== undefined);
    const { devMailbox, mailer, worker } = delivery;
    cleanups.unshift(async () => delivery.loopDelay.stop());
    let shuttingDown = false;
    const { rest, readiness, onePort } = await wireHttp({
      config,
      db,
      secrets,
      logger,
      adminToken,
      delivery,
      demo,
      embedded: embedded !== undefined,
      tracing,
      migrationCount,
      shuttingDown: () => shuttingDown,
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
        await resources.lock?.release().catch(() => {});
      },
    };
  } catch (err) {
    for (const cleanup of cleanups) await cleanup().catch(() => {});
    await resources.lock?.release().catch(() => {});
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
