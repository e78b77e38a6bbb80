// The outbox's life after a send: claim due rows (SKIP LOCKED, with a lease,
// so any number of workers in any number of instances share the work and a
// crashed worker's rows come back), then record how each delivery went.
import type { ClaimOptions, OutboxBacklog, OutboxRow, OutboxStore } from "../domain/outbox.js";
import { query, type Db } from "./db.js";
import { mailParts, type MailColumns } from "./mail-columns.js";

/** Delivered rows are done: their codes wiped. `ids`: the parameter holding their ids. */
const markSentSql = (ids: string) => `UPDATE outbox SET status = 'sent', payload = NULL, sent_at = now() WHERE id = ANY(${ids}::bigint[])`;

interface Row extends MailColumns {
  id: string;
  recipient: string;
  locale: string;
  template: "login" | "signup";
  payload: Buffer | null;
  key_id: number;
  expires_at: Date;
  message_id: string;
  traceparent: string | null;
  attempts: number;
  created_at: Date;
}

export class PgOutboxStore implements OutboxStore {
  constructor(private readonly db: Db) {}

  /**
   * Marks `options.delivered` sent and claims up to `limit` due rows for
   * `leaseMs` in one statement. The claim leaves the rows marked alone (one
   * statement must not update a row twice), even one whose lease ran out.
   */
  async claim(limit: number, leaseMs: number, options: ClaimOptions = {}): Promise<OutboxRow[]> {
    const { rows } = await query<Row>(this.db, {
      text: `WITH delivered AS (${markSentSql("$4")}),
             claimed AS (
               UPDATE outbox o
               SET status = 'sending', attempts = o.attempts + 1,
                   next_attempt_at = now() + make_interval(secs => $2::double precision / 1000)
               FROM (SELECT id FROM outbox
                     WHERE status IN ('pending', 'sending') AND next_attempt_at <= now()
                       AND ($3::text[] IS NULL OR message_id = ANY($3::text[]))
                       AND id <> ALL($4::bigint[])
                     ORDER BY next_attempt_at
                     LIMIT $1
                     FOR UPDATE SKIP LOCKED) due
               WHERE o.id = due.id
               RETURNING o.*)
             SELECT c.id, c.recipient, c.locale, c.template, c.payload, c.key_id, c.expires_at, c.message_id, c.traceparent,
                    c.attempts, c.created_at, t.name AS tenant_name, t.mail_from_name, t.mail_from_address,
                    t.reply_to, t.logo_url, t.accent_color, t.support_url,
                    tp.subject AS custom_subject, tp.text_body AS custom_text, tp.html_body AS custom_html
             FROM claimed c
             JOIN tenants t ON t.id = c.tenant_id
             LEFT JOIN templates tp ON tp.id = c.custom_template_id AND tp.tenant_id = c.tenant_id`,
      values: [limit, leaseMs, options.onlyMessageIds ?? null, options.delivered ?? []],
    });
    return rows.map((r) => ({
      id: String(r.id),
      recipient: r.recipient,
      locale: r.locale,
      template: r.template,
      payload: r.payload,
      keyId: r.key_id,
      expiresAt: r.expires_at,
      messageId: r.message_id,
      traceparent: r.traceparent,
      attempts: r.attempts,
      createdAt: r.created_at,
      ...mailParts(r),
    }));
  }

  /** Delivered: the rows are done and their codes wiped. */
  async markSent(ids: readonly string[]): Promise<void> {
    await query(this.db, { text: markSentSql("$1"), values: [ids] });
  }

  /** A permanent failure: the row is done and its code wiped. */
  async markFailed(id: string, error: string): Promise<void> {
    await this.finish(id, "failed", error);
  }

  /** The code expired before it could be delivered. */
  async markExpired(id: string, error: string | null): Promise<void> {
    await this.finish(id, "expired", error);
  }

  async scheduleRetry(id: string, delayMs: number, error: string): Promise<void> {
    await query(this.db, {
      text: `UPDATE outbox SET status = 'pending', last_error = $3,
               next_attempt_at = now() + make_interval(secs => $2::double precision / 1000)
             WHERE id = $1 AND status = 'sending'`,
      values: [id, delayMs, error.slice(0, 500)],
    });
  }

  /** Gives claimed rows back at once, e.g. on shutdown. */
  async release(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await query(this.db, {
      text: `UPDATE outbox SET status = 'pending', attempts = greatest(attempts - 1, 0), next_attempt_at = now()
             WHERE id = ANY($1::bigint[]) AND status = 'sending'`,
      values: [ids],
    });
  }

  /** How far behind delivery is: undelivered rows, and the age of the oldest. */
  async backlog(): Promise<OutboxBacklog> {
    const { rows } = await query<{ depth: string; oldest: number | null }>(this.db, {
      text: `SELECT count(*) AS depth, extract(epoch FROM now() - min(created_at))::double precision AS oldest
             FROM outbox WHERE status IN ('pending', 'sending')`,
    });
    return { depth: Number(rows[0]!.depth), oldestSeconds: rows[0]!.oldest ?? 0 };
  }

  private async finish(id: string, status: "sent" | "failed" | "expired", error: string | null): Promise<void> {
    await query(this.db, {
      text: `UPDATE outbox SET status = $2, payload = NULL, last_error = coalesce($3, last_error),
               sent_at = CASE WHEN $2 = 'sent' THEN now() END
             WHERE id = $1`,
      values: [id, status, error === null ? null : error.slice(0, 500)],
    });
  }
}
