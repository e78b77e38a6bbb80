// A call's deadline ends its work in Postgres whatever the timing:
// - while it waits for a pooled connection: with every connection taken,
//   a call whose deadline passes leaves with deadline_exceeded at the
//   deadline, not with "unavailable" when the pool's own connection timeout
//   (3 s) runs out; the connection it would have had goes back to the pool,
//   and calls without a deadline wait as before;
// - when the cancel request overtakes its statement: Postgres ignores a
//   cancel that reaches it before the backend has begun the statement, so
//   one request is not enough; the statement is cancelled all the same;
// - when it passes after a transaction's last statement: the connection goes
//   back to the pool with the transaction ended (committed when the work
//   must be kept, as a failed sign-in's bookkeeping, else rolled back), never
//   open, holding locks, for the pool's next user to commit or lose.
// And a connection that ends under a transaction (Postgres restarting) fails
// that call alone: it is closed, not pooled, and the process goes on.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DomainError } from "../../src/domain/errors.js";
import { createPool, isUnavailable, query, withTransaction, type Db } from "../../src/storage/db.js";
import { runWithStatementSignal } from "../../src/storage/statement-deadline.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { startTcpProxy } from "../support/tcp-proxy.js";

let database: TestDatabase;
let db: Db;
beforeAll(async () => {
  database = await createTestDatabase();
  db = createPool(database.url, 1);
});
afterAll(async () => {
  await db?.end();
  await database?.drop();
});

/** Takes the pool's only connection until released. */
async function takeTheOnlyConnection(): Promise<() => void> {
  const held = await db.connect();
  return () => held.release();
}

async function failureOf(work: Promise<unknown>): Promise<{ err: unknown; ms: number }> {
  const started = Date.now();
  try {
    await work;
  } catch (err) {
    return { err, ms: Date.now() - started };
  }
  throw new Error("the call succeeded");
}

describe("a deadline that passes while the call waits for a pooled connection", () => {
  for (const [name, run] of [
    ["a statement", () => query(db, { text: "SELECT 1" })],
    ["a transaction", () => withTransaction(db, (client) => client.query("SELECT 1"))],
  ] as const) {
    it(`${name}: answered deadline_exceeded at the deadline; the connection, once free, serves the next call`, async () => {
      const release = await takeTheOnlyConnection();
      const { err, ms } = await failureOf(runWithStatementSignal(AbortSignal.timeout(150), run));
      release();
      expect(err).toBeInstanceOf(DomainError);
      expect((err as DomainError).reason).toBe("deadline_exceeded");
      expect(ms).toBeLessThan(2_000);
      // The abandoned wait left nothing behind: the one connection is free and works.
      const { rows } = await runWithStatementSignal(AbortSignal.timeout(5_000), () => query<{ n: number }>(db, { text: "SELECT 2 AS n" }));
      expect(rows[0]!.n).toBe(2);
      expect(db.totalCount).toBe(1);
      expect(db.waitingCount).toBe(0);
    });
  }

  it("a call without a deadline still waits for the connection and gets it", async () => {
    const release = await takeTheOnlyConnection();
    const call = query<{ n: number }>(db, { text: "SELECT 3 AS n" });
    await new Promise((r) => setTimeout(r, 300));
    release();
    expect((await call).rows[0]!.n).toBe(3);
  });

  it("a deadline already passed: refused before any connection is taken", async () => {
    const signal = AbortSignal.abort();
    const { err } = await failureOf(runWithStatementSignal(signal, () => withTransaction(db, (client) => client.query("SELECT 1"))));
    expect((err as DomainError).reason).toBe("deadline_exceeded");
    expect(db.idleCount + db.waitingCount).toBe(db.totalCount);
  });
});

describe("a cancel request that overtakes its statement", () => {
  it("is sent again until the statement ends: cancelled soon after the deadline, not run to its end", async () => {
    const proxy = await startTcpProxy(database.url);
    const slow = createPool(proxy.url, 1);
    try {
      await query(slow, { text: "SELECT 1" });
      // The statement reaches Postgres 400 ms after it was sent; its
      // deadline passes after 100, and the first cancel arrives at once.
      proxy.slowOpenConnections(400);
      const { err, ms } = await failureOf(runWithStatementSignal(AbortSignal.timeout(100), () => query(slow, { text: "SELECT pg_sleep(5)" })));
      expect((err as DomainError).reason).toBe("deadline_exceeded");
      expect(ms).toBeLessThan(2_500);
    } finally {
      await slow.end();
      await proxy.close();
    }
  });
});

describe("a transaction whose deadline passes after its last statement", () => {
  /** The pool's one connection's transaction state, read on that connection: 'I' idle, 'T' in a transaction. */
  async function stateOfTheConnection(): Promise<{ inTransaction: boolean; backend: number }> {
    const client = await db.connect();
    try {
      const { rows } = await client.query<{ xid: string | null; pid: number }>("SELECT txid_current_if_assigned()::text AS xid, pg_backend_pid() AS pid");
      return { inTransaction: rows[0]!.xid !== null, backend: rows[0]!.pid };
    } finally {
      client.release();
    }
  }

  it("work that must be kept (a failed sign-in's bookkeeping) is committed, and the connection goes back clean", async () => {
    await query(db, { text: "CREATE TABLE IF NOT EXISTS deadline_kept (n int)" });
    const deadline = new AbortController();
    const failure = new Error("the attempt failed");
    const { err } = await failureOf(
      runWithStatementSignal(deadline.signal, () =>
        withTransaction(
          db,
          async (client) => {
            await client.query("INSERT INTO deadline_kept VALUES (1)");
            // The caller's deadline passes (or it hangs up) after the last statement, before COMMIT.
            deadline.abort();
            throw failure;
          },
          (e) => e === failure,
        ),
      ),
    );
    expect(err).toBe(failure);
    // Not left open on the pooled connection, holding its locks, for whoever takes it next to commit or lose.
    expect((await stateOfTheConnection()).inTransaction).toBe(false);
    const other = createPool(database.url, 1);
    try {
      const { rows } = await query<{ n: number }>(other, { text: "SELECT count(*)::int AS n FROM deadline_kept" });
      expect(rows[0]!.n).toBe(1);
    } finally {
      await other.end();
    }
  });

  it("work to be undone is rolled back, and the connection goes back clean", async () => {
    await query(db, { text: "CREATE TABLE IF NOT EXISTS deadline_undone (n int)" });
    const deadline = new AbortController();
    const { err } = await failureOf(
      runWithStatementSignal(deadline.signal, () =>
        withTransaction(db, async (client) => {
          await client.query("INSERT INTO deadline_undone VALUES (1)");
          deadline.abort();
        }),
      ),
    );
    expect((err as DomainError).reason).toBe("deadline_exceeded");
    expect((await stateOfTheConnection()).inTransaction).toBe(false);
    const { rows } = await query<{ n: number }>(db, { text: "SELECT count(*)::int AS n FROM deadline_undone" });
    expect(rows[0]!.n).toBe(0);
  });

  it("a connection whose transaction could not be ended is closed, not pooled", async () => {
    const before = (await stateOfTheConnection()).backend;
    const { err } = await failureOf(
      withTransaction(db, async (client) => {
        // The server ends this backend: neither COMMIT nor ROLLBACK can reach it.
        await client.query("SELECT pg_terminate_backend(pg_backend_pid())").catch(() => {});
        throw new Error("the work failed");
      }),
    );
    expect((err as Error).message).toBe("the work failed");
    const after = await stateOfTheConnection();
    expect(after.inTransaction).toBe(false);
    expect(after.backend).not.toBe(before);
  });
});

describe("a connection that ends between a transaction's statements (Postgres restarting, a terminated backend)", () => {
  it("fails that call as unavailable and nothing else: no uncaught error ends the process, and the next call gets a new connection", async () => {
    const other = createPool(database.url, 1);
    let terminated = 0;
    try {
      const { err } = await failureOf(
        withTransaction(db, async (client) => {
          terminated = (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
          await query(other, { text: "SELECT pg_terminate_backend($1)", values: [terminated] });
          // The work between two statements (a sign-in's hashing and signing) while the connection ends.
          await new Promise((r) => setTimeout(r, 200));
          await client.query("SELECT 1");
        }),
      );
      expect(isUnavailable(err)).toBe(true);
    } finally {
      await other.end();
    }
    const next = await withTransaction(db, (client) => client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid"));
    expect(next.rows[0]!.pid).not.toBe(terminated);
  });
});
