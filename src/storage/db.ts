// The connection pool, and the one place that tells a database outage from a
// bug: connectivity failures become DomainError("unavailable").
import type pg from "pg";
import { DomainError } from "../domain/errors.js";
import { DeadlinePool } from "./statement-deadline.js";

export type Db = pg.Pool;

export function createPool(connectionString: string, max: number): Db {
  // Statements of a call with a deadline are cancelled when it passes (statement-deadline.ts).
  const pool: Db = new DeadlinePool({
    connectionString,
    max,
    connectionTimeoutMillis: 3_000,
    idleTimeoutMillis: 30_000,
    // Bound every statement so a wedged database answers "unavailable"
    // instead of hanging a caller. Client-side only: a server-side
    // statement_timeout would travel as a startup parameter, which PgBouncer
    // refuses ("unsupported startup parameter"); set it on the runtime role
    // instead (docs/operations.md, "Deploy").
    query_timeout: 12_000,
    application_name: "otp-service",
  }) as unknown as Db;
  // An idle client losing its connection must not crash the process; the
  // pool replaces it on the next checkout.
  pool.on("error", () => {});
  return pool;
}

// SQLSTATE classes that mean "the database is not there right now".
const UNAVAILABLE_STATES = /^(08|57P0[1-3]|53300)/;
const UNAVAILABLE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EAI_AGAIN"]);

export function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && (UNAVAILABLE_STATES.test(code) || UNAVAILABLE_CODES.has(code))) return true;
  return /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connect ECONNREFUSED|Client has encountered a connection error/i.test(
    err.message,
  );
}

/** What a caller is told when the database cannot be reached; the cause is kept for the log. */
export function unavailableError(cause: unknown): DomainError {
  return new DomainError("unavailable", "The service is temporarily unavailable.", {}, { cause });
}

/**
 * Runs `fn` in a transaction on one pooled connection: COMMIT when it
 * returns, ROLLBACK when it throws, unless `keep(err)` says the work done so
 * far must be committed before the error goes on (a failed sign-in attempt
 * still counts). The connection goes back to the pool either way.
 */
export async function withTransaction<T>(
  db: Db,
  fn: (client: pg.PoolClient) => Promise<T>,
  keep: (err: unknown) => boolean = () => false,
): Promise<T> {
  const client = await db.connect();
  try {
    await client.query("BEGIN");
    const result = await fn(client);
    await client.query("COMMIT");
    return result;
  } catch (err) {
    if (keep(err)) await client.query("COMMIT");
    else await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/** Runs a query; a connectivity failure surfaces as "unavailable". */
export async function query<R extends pg.QueryResultRow>(
  db: Db,
  config: pg.QueryConfig,
): Promise<pg.QueryResult<R>> {
  try {
    return await db.query<R>(config);
  } catch (err) {
    throw isUnavailable(err) ? unavailableError(err) : err;
  }
}
