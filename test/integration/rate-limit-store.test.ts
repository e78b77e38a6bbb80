// The send statement's rate limits on real Postgres: every limit of a send is
// charged or none is, exactly `burst` sends pass under concurrency, and a
// refused send leaves every row as it found it.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LimitCharge } from "../../src/domain/rate-limit-policy.js";
import type { SendCommand } from "../../src/domain/otp-sender.js";
import type { Db } from "../../src/storage/db.js";
import { PgOtpStore } from "../../src/storage/otp-store.js";
import { createTestProject } from "../support/app.js";
import { createMigratedDatabase, type TestDatabase } from "../support/database.js";

const HOUR = 3_600_000;
let database: TestDatabase;
let db: Db;
let store: PgOtpStore;
let tenantId: string;

beforeAll(async () => {
  const migrated = await createMigratedDatabase(20);
  database = migrated;
  db = migrated.db;
  ({ tenantId } = await createTestProject(db, "Limits"));
  store = new PgOtpStore(db);
});
afterAll(async () => {
  await database?.drop();
});

let n = 0;
function send(limits: LimitCharge[]): ReturnType<PgOtpStore["send"]> {
  n++;
  const command: SendCommand = {
    tenantId,
    address: `limits-${n}-${randomBytes(4).toString("hex")}@example.com`,
    limits,
    createStatus: "active",
    newUserId: `user-test-limits-${n}-${randomBytes(6).toString("hex")}`,
    newEmailId: `email-test-limits-${n}-${randomBytes(6).toString("hex")}`,
    forUserId: undefined,
    codeHash: randomBytes(32),
    keyId: 1,
    ttlSeconds: 600,
    sealedCode: randomBytes(34),
    messageId: `<limits-${n}@test>`,
    locale: "en",
    ipAddress: undefined,
    userAgent: undefined,
    deliver: false,
    loginTemplateId: undefined,
    signupTemplateId: undefined,
    leaseMs: undefined,
  };
  return store.send(command);
}

async function tats(keys: string[]): Promise<Record<string, string | null>> {
  const { rows } = await db.query<{ key: string; tat: string }>("SELECT key, tat::text AS tat FROM rate_limits WHERE key = ANY($1)", [keys]);
  return Object.fromEntries(keys.map((k) => [k, rows.find((r) => r.key === k)?.tat ?? null]));
}

const unique = (prefix: string) => `${prefix}:${randomBytes(6).toString("hex")}`;

describe("otp_send rate limits", () => {
  it("lets exactly `burst` of 60 concurrent sends through one limit", async () => {
    const shared = { key: unique("t:limits"), burst: 10, periodMs: HOUR };
    const outcomes = await Promise.all(Array.from({ length: 60 }, () => send([shared, { key: unique("e:limits"), burst: 3, periodMs: HOUR }])));
    expect(outcomes.filter((o) => o.kind === "sent")).toHaveLength(10);
    expect(outcomes.filter((o) => o.kind === "rate_limited")).toHaveLength(50);
  });

  it("reports the limit that refused, with the wait until it allows one more", async () => {
    const tenant = { key: unique("t:limits"), burst: 1, periodMs: HOUR };
    expect((await send([tenant, { key: unique("e:limits"), burst: 3, periodMs: 1_000 }])).kind).toBe("sent");
    const refused = await send([tenant, { key: unique("e:limits"), burst: 3, periodMs: 1_000 }]);
    expect(refused).toMatchObject({ kind: "rate_limited", limitKey: tenant.key });
    const wait = (refused as { retryAfterMs: number }).retryAfterMs;
    expect(wait).toBeGreaterThan(HOUR - 60_000);
    expect(wait).toBeLessThanOrEqual(HOUR);
  });

  it("charges no limit when one refuses: existing rows keep their tat, new rows allow a full burst", async () => {
    const full = { key: unique("t:limits"), burst: 1, periodMs: HOUR };
    const used = { key: unique("e:limits"), burst: 5, periodMs: HOUR };
    expect((await send([full, used])).kind).toBe("sent");
    const before = await tats([full.key, used.key]);

    const fresh = { key: unique("i:limits"), burst: 2, periodMs: HOUR };
    const refused = await send([full, used, fresh]);
    expect(refused).toMatchObject({ kind: "rate_limited", limitKey: full.key });
    const after = await tats([full.key, used.key]);
    expect(after).toEqual(before);

    // The fresh key was not charged: it still allows its whole burst of 2.
    const other = { key: unique("t:limits"), burst: 100, periodMs: 1 };
    expect((await send([other, fresh])).kind).toBe("sent");
    expect((await send([other, fresh])).kind).toBe("sent");
    expect((await send([other, fresh])).kind).toBe("rate_limited");
  });

  it("counts the wait it reports from the answer, not from before a wait for another send's lock", async () => {
    // Another send holds the key's row, and charges it to the full burst
    // (3 × 20 s) as of the moment it commits, 1.5 s after this send began.
    const limit = { key: unique("e:limits"), burst: 3, periodMs: 20_000 };
    await db.query("INSERT INTO rate_limits (key, tat) VALUES ($1, now())", [limit.key]);
    const other = await db.connect();
    try {
      await other.query("BEGIN");
      await other.query("SELECT 1 FROM rate_limits WHERE key = $1 FOR UPDATE", [limit.key]);
      const waiting = send([limit]);
      await new Promise((r) => setTimeout(r, 1_500));
      await other.query("UPDATE rate_limits SET tat = clock_timestamp() + interval '60 seconds' WHERE key = $1", [limit.key]);
      await other.query("COMMIT");
      const refused = await waiting;
      expect(refused.kind).toBe("rate_limited");
      // One period from when the other send was charged, which is when this
      // one is answered; counted from before its wait it would be 21.5 s.
      const wait = (refused as { retryAfterMs: number }).retryAfterMs;
      expect(wait).toBeGreaterThan(19_000);
      expect(wait).toBeLessThanOrEqual(20_000);
    } finally {
      other.release();
    }
  });

  it("refills at one send per period", async () => {
    const limit = { key: unique("t:limits"), burst: 2, periodMs: 300 };
    const kinds = async () => (await send([limit])).kind;
    expect([await kinds(), await kinds(), await kinds()]).toEqual(["sent", "sent", "rate_limited"]);
    await new Promise((r) => setTimeout(r, 350));
    expect([await kinds(), await kinds()]).toEqual(["sent", "rate_limited"]);
  });
});
