// Group commit on real Postgres: sends that wait behind a running batch go
// into one otp_send() call together, and each keeps its own verdict — a
// refused send, an unknown address and two sends to one address (which
// cannot share a transaction: each would insert a live code) beside the
// sends that succeed.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SendCommand } from "../../src/domain/otp-sender.js";
import type { LimitCharge } from "../../src/domain/rate-limit-policy.js";
import type { Db } from "../../src/storage/db.js";
import { PgOtpStore } from "../../src/storage/otp-store.js";
import { createTestProject } from "../support/app.js";
import { createMigratedDatabase, type TestDatabase } from "../support/database.js";

const HOUR = 3_600_000;
let database: TestDatabase;
let db: Db;
let tenantId: string;

beforeAll(async () => {
  const migrated = await createMigratedDatabase(5);
  database = migrated;
  db = migrated.db;
  ({ tenantId } = await createTestProject(db, "Batches"));
});
afterAll(async () => {
  await database?.drop();
});

let n = 0;
function command(address: string, limits: LimitCharge[], create = true): SendCommand {
  n++;
  return {
    tenantId,
    address,
    limits: [{ key: `e:batch:${address}`, burst: 100, periodMs: 1 }, ...limits],
    createStatus: create ? "active" : undefined,
    newUserId: `user-test-batch-${n}-${randomBytes(6).toString("hex")}`,
    newEmailId: `email-test-batch-${n}-${randomBytes(6).toString("hex")}`,
    forUserId: undefined,
    codeHash: randomBytes(32),
    keyId: 1,
    ttlSeconds: 600,
    sealedCode: randomBytes(34),
    messageId: `<batch-${n}-${randomBytes(6).toString("hex")}@test>`,
    locale: "en",
    ipAddress: undefined,
    userAgent: undefined,
    deliver: true,
    loginTemplateId: undefined,
    signupTemplateId: undefined,
  };
}

const address = (name: string) => `${name}-${randomBytes(4).toString("hex")}@example.com`;

async function count(sql: string, values: unknown[]): Promise<number> {
  const { rows } = await db.query<{ n: number }>(sql, values);
  return rows[0]!.n;
}

describe("a batch of sends", () => {
  it("gives each send its own verdict, and commits the ones that pass", async () => {
    // One batch in flight at a time: the first send runs alone, the others wait and go together.
    const store = new PgOtpStore(db, { maxBatch: 16, maxInFlight: 1 });
    const shared = { key: `t:batch:${randomBytes(6).toString("hex")}`, burst: 2, periodMs: HOUR };
    const [a, b, c, stranger] = [address("a"), address("b"), address("c"), address("stranger")];
    const first = store.send(command(address("first"), []));
    const outcomes = await Promise.all([
      store.send(command(a, [shared])),
      store.send(command(b, [shared])),
      store.send(command(c, [shared])), // the shared limit allows two: refused
      store.send(command(stranger, [], false)), // unknown, not created
    ]);
    expect((await first).kind).toBe("sent");
    expect(outcomes.map((o) => o.kind)).toEqual(["sent", "sent", "rate_limited", "email_not_found"]);
    expect(outcomes[2]).toMatchObject({ limitKey: shared.key });
    expect(await count("SELECT count(*)::int AS n FROM outbox WHERE recipient = ANY($1)", [[a, b, c, stranger]])).toBe(2);
    const { rows } = await db.query<{ outcome: string }>(
      "SELECT outcome FROM audit_events WHERE tenant_id = $1 AND action = 'send' ORDER BY id DESC LIMIT 4",
      [tenantId],
    );
    expect(rows.map((r) => r.outcome).sort()).toEqual(["email_not_found", "ok", "ok", "rate_limited"]);
  });

  it("sends twice to one address in one batch: both succeed, one code stays live, two mails are queued", async () => {
    const store = new PgOtpStore(db, { maxBatch: 16, maxInFlight: 1 });
    const twice = address("twice");
    const first = store.send(command(address("first"), []));
    const outcomes = await Promise.all([store.send(command(twice, [])), store.send(command(twice, [])), store.send(command(address("other"), []))]);
    expect((await first).kind).toBe("sent");
    expect(outcomes.map((o) => o.kind)).toEqual(["sent", "sent", "sent"]);
    expect(await count("SELECT count(*)::int AS n FROM emails WHERE address = $1", [twice])).toBe(1);
    expect(
      await count(
        "SELECT count(*)::int AS n FROM otp_codes c JOIN emails e ON e.id = c.email_id WHERE e.address = $1 AND c.superseded_at IS NULL",
        [twice],
      ),
    ).toBe(1);
    expect(await count("SELECT count(*)::int AS n FROM outbox WHERE recipient = $1", [twice])).toBe(2);
  });
});
