// Why a start failed, in words a person can act on: what failed, and the
// variable or command that fixes it. The entry point prints the message of a
// StartError as it is; any other error is explained here first, so nobody
// is told "undefined" or handed a stack trace for a busy port.
import type { Config } from "./config.js";
import { DataDirInUse } from "./storage/data-dir-lock.js";
import { EmbeddedPostgresError } from "./storage/embedded.js";
import { SchemaTooOldError } from "./storage/migrate.js";

/** A start-up failure whose message already says what failed and how to fix it. */
export class StartError extends Error {
  override name = "StartError";
}

/** "postgres://user:pw@db.example:6432/otp" → "db.example:6432/otp": enough to recognise, never the password. */
export function describeDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    const database = decodeURIComponent(u.pathname.replace(/^\//, ""));
    return `${u.hostname || "localhost"}:${u.port || "5432"}${database ? `/${database}` : ""}`;
  } catch {
    return "(unparseable URL)";
  }
}

function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** The message of an error, or of its first cause that has one; never "undefined". */
export function messageOf(err: unknown): string {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    if (e instanceof AggregateError && e.errors.length > 0 && !e.message) e = e.errors[0];
    if (e instanceof Error && e.message) return e.message;
    if (typeof e === "string" && e) return e;
    if (!(e instanceof Error)) break;
    e = (e as { cause?: unknown }).cause;
  }
  if (err === undefined || err === null) return "unknown error (nothing was reported)";
  if (err instanceof Error) return errnoOf(err) ?? err.name;
  return String(err);
}

/** Explains a failure to listen on HOST:PORT. */
export function listenFailure(err: unknown, host: string, port: number): StartError {
  const code = errnoOf(err);
  const where = `${host}:${port}`;
  if (code === "EADDRINUSE") {
    return new StartError(`port ${port} on ${host} is already in use (${where}, EADDRINUSE): stop what listens there, or set PORT to a free port (PORT=0 picks one)`, { cause: err });
  }
  if (code === "EACCES") {
    return new StartError(`not allowed to listen on ${where} (EACCES): set PORT to 1024 or above`, { cause: err });
  }
  if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND") {
    return new StartError(`cannot listen on ${where} (${code}): set HOST to an address of this machine (e.g. 127.0.0.1 or 0.0.0.0)`, { cause: err });
  }
  return new StartError(`cannot listen on ${where}: ${messageOf(err)}; check HOST and PORT`, { cause: err });
}

// Postgres SQLSTATEs a person can do something about, and what to do.
const DATABASE_STATES: Record<string, string> = {
  "28P01": "the password in DATABASE_URL is wrong",
  "28000": "the database refuses this user (pg_hba.conf or role): fix the user in DATABASE_URL or the server's access rules",
  "3D000": "the database named in DATABASE_URL does not exist: create it (createdb) or fix the name",
  "42501": "the user in DATABASE_URL lacks privileges to create the service's tables",
  "53300": "the database has no free connections (too many clients)",
  "57P03": "the database is starting up or shutting down",
};

/** Explains a failure to reach or migrate the database. */
export function databaseFailure(err: unknown, config: Pick<Config, "databaseUrl" | "dataDir">): StartError {
  if (err instanceof StartError) return err;
  // It already says what to run.
  if (err instanceof SchemaTooOldError) return new StartError(err.message, { cause: err });
  const code = errnoOf(err);
  const cause = messageOf(err);
  if (config.databaseUrl === undefined) {
    return new StartError(
      `the embedded Postgres in DATA_DIR ${config.dataDir} failed while applying migrations: ${cause}${code ? ` (${code})` : ""}; if that directory holds nothing you need, remove it (or set DATA_DIR to a new one) and start again`,
      { cause: err },
    );
  }
  const where = `DATABASE_URL (${describeDatabaseUrl(config.databaseUrl)})`;
  const fix = "check that Postgres runs there and that DATABASE_URL is right, or unset DATABASE_URL to run an embedded Postgres";
  if (code && ["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ECONNRESET"].includes(code)) {
    return new StartError(`cannot reach the database at ${where}: ${code}; ${fix}`, { cause: err });
  }
  if (/timeout exceeded when trying to connect|Connection terminated/i.test(cause)) {
    return new StartError(`cannot reach the database at ${where}: no answer within the connection timeout; ${fix}`, { cause: err });
  }
  if (code && DATABASE_STATES[code]) {
    return new StartError(`the database at ${where} refused the service: ${DATABASE_STATES[code]} (${code}: ${cause})`, { cause: err });
  }
  return new StartError(`the database at ${where} failed while applying migrations: ${cause}${code ? ` (${code})` : ""}`, { cause: err });
}

/**
 * Explains a failure of what lives in DATA_DIR (the lock, the embedded
 * Postgres, the generated pepper, the demo credentials). Anything else is
 * passed through unchanged.
 */
export function dataDirFailure(err: unknown, dataDir: string): unknown {
  if (err instanceof StartError) return err;
  if (err instanceof DataDirInUse || err instanceof EmbeddedPostgresError) return new StartError(err.message, { cause: err });
  const code = errnoOf(err);
  const file = (err as { path?: unknown } | null)?.path;
  if (code && ["EACCES", "EPERM", "EROFS", "ENOSPC", "ENOTDIR", "EEXIST", "EISDIR"].includes(code)) {
    return new StartError(
      `DATA_DIR ${dataDir} cannot be used (${code}${typeof file === "string" ? ` on ${file}` : ""}): set DATA_DIR to a directory this user can write, or fix its permissions`,
      { cause: err },
    );
  }
  return err;
}

/** The one line printed for any start failure. */
export function startFailureMessage(err: unknown): string {
  if (err instanceof StartError) return err.message;
  return messageOf(err);
}
