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
import { PgOtpStore, SEND_ARGS, sendValues } from "../../src/storage/otp-store.js";
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
    leaseMs: undefined,
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

  it("a send with a lease inserts its row claimed by the caller and returns what its mail needs; one without queues it for any worker", async () => {
    const store = new PgOtpStore(db, { maxBatch: 16, maxInFlight: 1 });
    const mail = await db.query<{ id: string }>(
      "INSERT INTO templates (id, tenant_id, kind, name, subject, text_body, html_body) VALUES ($1, $2, 'signup', 'welcome', 'Hi', 'Code {{code}}', '<p>{{code}}</p>') RETURNING id",
      [`tpl-batch-${randomBytes(4).toString("hex")}`, tenantId],
    );
    await db.query(
      "UPDATE tenants SET mail_from_name = 'Batches Mail', mail_from_address = 'mail@batches.test', reply_to = 'help@batches.test', logo_url = 'https://batches.test/logo.png', accent_color = '#123456', support_url = 'https://batches.test/help' WHERE id = $1",
      [tenantId],
    );
    const [custom, plain, anyWorker, sandbox] = [address("custom"), address("plain"), address("any"), address("sandbox")];
    const first = store.send(command(address("first"), []));
    const commands = [
      { ...command(custom, []), leaseMs: 30_000, signupTemplateId: mail.rows[0]!.id },
      { ...command(plain, []), leaseMs: 30_000 },
      command(anyWorker, []),
      { ...command(sandbox, []), leaseMs: 30_000, deliver: false },
    ];
    const outcomes = await Promise.all(commands.map((c) => store.send(c)));
    await first;
    expect(outcomes.map((o) => o.kind)).toEqual(["sent", "sent", "sent", "sent"]);
    const claimed = outcomes.map((o) => (o.kind === "sent" ? o.claimed : undefined));
    expect(claimed[2]).toBeUndefined();
    expect(claimed[3]).toBeUndefined();
    const branding = { logoUrl: "https://batches.test/logo.png", accentColor: "#123456", supportUrl: "https://batches.test/help" };
    expect(claimed[0]).toMatchObject({
      recipient: custom,
      template: "signup",
      attempts: 1,
      messageId: commands[0]!.messageId,
      tenantName: "Batches",
      mailFromName: "Batches Mail",
      mailFromAddress: "mail@batches.test",
      replyTo: "help@batches.test",
      branding,
      custom: { subject: "Hi", text: "Code {{code}}", html: "<p>{{code}}</p>" },
    });
    expect(claimed[1]).toMatchObject({ recipient: plain, template: "signup", branding, custom: undefined });

    const { rows } = await db.query<{ id: string; recipient: string; status: string; attempts: number; lease_s: number; expires_at: Date }>(
      `SELECT id, recipient, status, attempts, extract(epoch FROM next_attempt_at - created_at)::float8 AS lease_s, expires_at
       FROM outbox WHERE recipient = ANY($1)`,
      [[custom, plain, anyWorker, sandbox]],
    );
    const row = (recipient: string) => rows.find((r) => r.recipient === recipient);
    expect(row(sandbox)).toBeUndefined();
    expect(row(custom)).toMatchObject({ id: claimed[0]!.id, status: "sending", attempts: 1 });
    expect(row(custom)!.lease_s).toBeCloseTo(30, 0);
    expect(row(plain)).toMatchObject({ id: claimed[1]!.id, status: "sending", attempts: 1 });
    expect(row(anyWorker)).toMatchObject({ status: "pending", attempts: 0 });
    // The handed-over row never outlives the stored one.
    expect(claimed[0]!.expiresAt.getTime()).toBeLessThanOrEqual(row(custom)!.expires_at.getTime());
  });

  it("the previous release's call, without p_lease_ms, still works while instances roll (the row is queued for any worker)", async () => {
    const to = address("previous");
    const previous = SEND_ARGS.filter((name) => name !== "p_lease_ms");
    const values = sendValues([{ command: command(to, []), traceparent: undefined }]).slice(0, previous.length);
    const { rows } = await db.query<{ outcome: string }>(
      `SELECT send_index, outcome, retry_after_ms, limited_key, user_id, email_id, user_created FROM otp_send(${previous.map((name, i) => `${name} => $${i + 1}`).join(", ")})`,
      values,
    );
    expect(rows.map((r) => r.outcome)).toEqual(["sent"]);
    const queued = await db.query<{ status: string; attempts: number }>("SELECT status, attempts FROM outbox WHERE recipient = $1", [to]);
    expect(queued.rows).toEqual([{ status: "pending", attempts: 0 }]);
  });
});
