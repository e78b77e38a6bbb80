// A call's deadline ends its work in Postgres whatever the timing:
// - while it waits for a pooled connection: with every connection taken,
//   a call whose deadline passes leaves with deadline_exceeded at the
//   deadline, not with "unavailable" when the pool's own connection timeout
//   (3 s) runs out; the connection it would have had goes back to the pool,
//   and calls without a deadline wait as before;
// - when the cancel request overtakes its statement: Postgres ignores a
//   cancel that reaches it before the backend has begun the statement, so
//   one request is not enough; the statement is cancelled all the same.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DomainError } from "../../src/domain/errors.js";
import { createPool, query, withTransaction, type Db } from "../../src/storage/db.js";
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
