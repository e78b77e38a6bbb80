// The send statement: one call of the otp_send() function
// (migrations/functions/otp_send.sql) for a batch of sends, so concurrent
// sends share one round trip, one transaction and one commit (group commit,
// group-commit.ts). Every argument is an array with one element per send.
import { context, trace, TraceFlags } from "@opentelemetry/api";
import type { OtpStore, SendCommand, SendOutcome } from "../domain/otp-sender.js";
import type { OutboxRow } from "../domain/outbox.js";
import { DomainError } from "../domain/errors.js";
import { query, type Db } from "./db.js";
import { mailParts, type MailColumns } from "./mail-columns.js";
import { GroupCommit, type GroupCommitOptions } from "./group-commit.js";

/** otp_send's arguments, in the order SEND_SQL binds them. */
export const SEND_ARGS = [
  "p_tenant_id", "p_address", "p_limit_counts", "p_limit_keys", "p_limit_periods", "p_limit_bursts",
  "p_create_status", "p_new_user_id", "p_new_email_id", "p_for_user_id", "p_code_hash", "p_key_id",
  "p_ttl_seconds", "p_payload", "p_message_id", "p_locale", "p_ip_address", "p_user_agent", "p_deliver",
  "p_login_template", "p_signup_template", "p_traceparent", "p_lease_ms",
] as const;

export const SEND_SQL =
  "SELECT send_index, outcome, retry_after_ms, limited_key, user_id, email_id, user_created, mail_outbox_id, mail_template, " +
  "mail_queued_at, mail_tenant_name AS tenant_name, mail_sender_name AS mail_from_name, mail_sender_address AS mail_from_address, " +
  "mail_reply_to AS reply_to, mail_logo_url AS logo_url, mail_accent_color AS accent_color, mail_support_url AS support_url, " +
  "mail_subject AS custom_subject, mail_text AS custom_text, mail_html AS custom_html FROM otp_send(" +
  SEND_ARGS.map((name, i) => `${name} => $${i + 1}`).join(", ") +
  ")";

/** Up to 16 sends per transaction, two transactions at once: docs/adr/0009. */
export const DEFAULT_GROUP_COMMIT: GroupCommitOptions = { maxBatch: 16, maxInFlight: 2 };

/** The traceparent of the active, sampled span; undefined when tracing is off or the call is not sampled. */
function sampledTraceparent(): string | undefined {
  const span = trace.getSpanContext(context.active());
  if (!span || !(span.traceFlags & TraceFlags.SAMPLED)) return undefined;
  return `00-${span.traceId}-${span.spanId}-01`;
}

/** The mail columns (MailColumns) are set only for a send with a lease that queued mail. */
interface SendRow extends MailColumns {
  send_index: number;
  outcome: "sent" | "rate_limited" | "email_not_found" | "user_not_found";
  retry_after_ms: string | null;
  limited_key: string | null;
  user_id: string | null;
  email_id: string | null;
  user_created: boolean;
  mail_outbox_id: string | null;
  mail_template: "login" | "signup" | null;
  mail_queued_at: Date | null;
}

export interface Queued {
  readonly command: SendCommand;
  readonly traceparent: string | undefined;
}

/** The batch's arguments: one array per argument of otp_send (SEND_ARGS), limits flattened. */
export function sendValues(batch: readonly Queued[]): unknown[] {
  const column = <T>(f: (c: SendCommand) => T) => batch.map((q) => f(q.command));
  const limits = batch.flatMap((q) => q.command.limits);
  return [
    column((c) => c.tenantId),
    column((c) => c.address),
    column((c) => c.limits.length),
    limits.map((l) => l.key),
    limits.map((l) => l.periodMs),
    limits.map((l) => l.burst),
    column((c) => c.createStatus ?? null),
    column((c) => c.newUserId),
    column((c) => c.newEmailId),
    column((c) => c.forUserId ?? null),
    column((c) => c.codeHash),
    column((c) => c.keyId),
    column((c) => c.ttlSeconds),
    column((c) => c.sealedCode),
    column((c) => c.messageId),
    column((c) => c.locale),
    column((c) => c.ipAddress ?? null),
    column((c) => c.userAgent ?? null),
    column((c) => c.deliver),
    column((c) => c.loginTemplateId ?? null),
    column((c) => c.signupTemplateId ?? null),
    batch.map((q) => q.traceparent ?? null),
    column((c) => c.leaseMs ?? null),
  ];
}

/** The outbox row a send with a lease inserted, claimed by this instance: the command's part and the statement's. */
function claimedRow(row: SendRow, { command, traceparent }: Queued): OutboxRow | undefined {
  if (row.mail_outbox_id === null) return undefined;
  const queuedAt = row.mail_queued_at!;
  return {
    id: String(row.mail_outbox_id),
    recipient: command.address,
    locale: command.locale,
    template: row.mail_template!,
    payload: command.sealedCode,
    keyId: command.keyId,
    expiresAt: new Date(queuedAt.getTime() + command.ttlSeconds * 1000),
    messageId: command.messageId,
    traceparent: traceparent ?? null,
    attempts: 1,
    createdAt: queuedAt,
    ...mailParts(row),
  };
}

function outcomeOf(row: SendRow, queued: Queued): SendOutcome {
  switch (row.outcome) {
    case "sent":
      return { kind: "sent", userId: row.user_id!, emailId: row.email_id!, userCreated: row.user_created, claimed: claimedRow(row, queued) };
    case "rate_limited":
      return { kind: "rate_limited", retryAfterMs: Number(row.retry_after_ms), limitKey: row.limited_key! };
    default:
      return { kind: row.outcome };
  }
}

export class PgOtpStore implements OtpStore {
  private readonly sends: GroupCommit<Queued, SendOutcome>;

  constructor(
    private readonly db: Db,
    options: GroupCommitOptions = DEFAULT_GROUP_COMMIT,
  ) {
    // A failed batch is retried send by send unless the database is out of
    // reach or the deadline passed (DomainError): one bad send must not fail the rest.
    this.sends = new GroupCommit((batch) => this.sendBatch(batch), options, (err) => !(err instanceof DomainError));
  }

  send(command: SendCommand): Promise<SendOutcome> {
    return this.sends.submit({ command, traceparent: sampledTraceparent() });
  }

  private async sendBatch(batch: readonly Queued[]): Promise<SendOutcome[]> {
    const { rows } = await query<SendRow>(this.db, { text: SEND_SQL, values: sendValues(batch) });
    const outcomes = new Array<SendOutcome>(batch.length);
    for (const row of rows) outcomes[row.send_index - 1] = outcomeOf(row, batch[row.send_index - 1]!);
    if (rows.length !== batch.length) throw new Error(`otp_send returned ${rows.length} rows for ${batch.length} sends`);
    return outcomes;
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
