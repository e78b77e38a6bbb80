// The send statement: one call of the otp_send() function (see migrations/),
// prepared by name, so a whole send is one round trip.
import type { OtpStore, SendCommand, SendOutcome } from "../domain/otp-sender.js";
import { context, trace, TraceFlags } from "@opentelemetry/api";
import { query, type Db } from "./db.js";

export const SEND_SQL =
  "SELECT outcome, retry_after_ms, limited_key, user_id, email_id, user_created FROM otp_send(" +
  "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)";

/**
 * The send statement of a traced call: the same, and the call's traceparent
 * set for this statement's transaction alone (set_config(…, true)), from
 * which the outbox row's traceparent column takes its default. set_config
 * runs while the arguments are evaluated, before otp_send's body inserts the
 * row; its result (an empty string) is appended to the message id.
 */
export const SEND_SQL_TRACED = SEND_SQL.replace(
  "$14,",
  `$14 || left(set_config('otp.traceparent', $${(SEND_SQL.match(/\$\d+/g) ?? []).length + 1}, true), 0),`,
);

/** The traceparent of the active, sampled span; undefined when tracing is off or the call is not sampled. */
function sampledTraceparent(): string | undefined {
  const span = trace.getSpanContext(context.active());
  if (!span || !(span.traceFlags & TraceFlags.SAMPLED)) return undefined;
  return `00-${span.traceId}-${span.spanId}-01`;
}

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
    const traceparent = sampledTraceparent();
    const values = [
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
    ];
    if (traceparent) values.push(traceparent);
    const { rows } = await query<SendRow>(this.db, { text: traceparent ? SEND_SQL_TRACED : SEND_SQL, values });
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
