// The connection pool, and the one place that tells a database outage from a
// bug: connectivity failures become DomainError("unavailable").
import type pg from "pg";
import { DomainError } from "../domain/errors.js";
import { DeadlinePool, runWithStatementSignalOrNone } from "./statement-deadline.js";

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
 * still counts). The connection goes back to the pool either way, never
 * inside a transaction: one left open would hold its row locks and take in
 * whatever the pool's next user runs on it, to be committed or lost with it.
 */
export async function withTransaction<T>(
  db: Db,
  fn: (client: pg.PoolClient) => Promise<T>,
  keep: (err: unknown) => boolean = () => false,
): Promise<T> {
  const client = await db.connect();
  let unusable: Error | undefined;
  try {
    await client.query("BEGIN");
    const result = await fn(client);
    await client.query("COMMIT");
    return result;
  } catch (err) {
    if (!keep(err)) {
      unusable = await rollBack(client);
      throw err;
    }
    try {
      // Kept even when the caller's deadline passed (or it hung up) since
      // the last statement: the deadline would refuse this COMMIT, and the
      // attempt must count all the same.
      await runWithStatementSignalOrNone(undefined, () => client.query("COMMIT"));
    } catch (commitErr) {
      unusable = await rollBack(client);
      throw commitErr;
    }
    throw err;
  } finally {
    client.release(unusable);
  }
}

/** Ends a failed transaction; the error when even that failed, so the connection is closed rather than pooled. */
async function rollBack(client: pg.PoolClient): Promise<Error | undefined> {
  try {
    await client.query("ROLLBACK");
    return undefined;
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
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
