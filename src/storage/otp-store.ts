// The send statement: one call of the otp_send() function (see migrations/),
// prepared by name, so a whole send is one round trip.
import type { OtpStore, SendCommand, SendOutcome } from "../domain/otp-sender.js";
import { query, type Db } from "./db.js";

export const SEND_SQL =
  "SELECT outcome, retry_after_ms, limited_key, user_id, email_id, user_created FROM otp_send(" +
  "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)";

interface SendRow {
  outcome: "sent" | "rate_limited" | "email_not_found" | "user_not_found";
  retry_after_ms: string | null;
  limited_key: string | null;
  user_id: string | null;
  email_id: string | null;
  user_created: boolean;
}

export class PgOtpStore implements OtpStore {
  constructor(private readonly db: Db) {}

  async send(c: SendCommand): Promise<SendOutcome> {
    const { rows } = await query<SendRow>(this.db, {
      text: SEND_SQL,
      values: [
        c.tenantId,
        c.address,
        c.limits.map((l) => l.key),
        c.limits.map((l) => l.periodMs),
        c.limits.map((l) => l.burst),
        c.createStatus ?? null,
        c.newUserId,
        c.newEmailId,
        c.forUserId ?? null,
        c.codeHash,
        c.keyId,
        c.ttlSeconds,
        c.sealedCode,
        c.messageId,
        c.locale,
        c.ipAddress ?? null,
        c.userAgent ?? null,
        c.deliver,
        c.loginTemplateId ?? null,
        c.signupTemplateId ?? null,
      ],
    });
    const row = rows[0]!;
    switch (row.outcome) {
      case "sent":
        return { kind: "sent", userId: row.user_id!, emailId: row.email_id!, userCreated: row.user_created };
      case "rate_limited":
        return { kind: "rate_limited", retryAfterMs: Number(row.retry_after_ms), limitKey: row.limited_key! };
      default:
        return { kind: row.outcome };
    }
  }
}

/** Drops rate-limit rows whose bucket is full again: such a row equals no row. */
export async function pruneRateLimits(db: Db): Promise<number> {
  const { rowCount } = await query(db, { text: "DELETE FROM rate_limits WHERE tat < now() - interval '1 minute'" });
  return rowCount ?? 0;
}

/** Drops addresses added to a user that were not verified in time, with their codes and mail. */
export async function pruneUnverifiedAddresses(db: Db): Promise<number> {
  const { rows } = await query<{ n: string }>(db, {
    text: `WITH gone AS (SELECT id FROM emails WHERE pending_until < now() AND NOT verified),
                codes AS (DELETE FROM otp_codes WHERE email_id IN (SELECT id FROM gone)),
                mail AS (DELETE FROM outbox WHERE email_id IN (SELECT id FROM gone)),
                emails_gone AS (DELETE FROM emails WHERE id IN (SELECT id FROM gone) RETURNING 1)
           SELECT count(*) AS n FROM emails_gone`,
  });
  return Number(rows[0]?.n ?? 0);
}
