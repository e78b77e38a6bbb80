// Delivers the outbox. The mail this instance's sends queue is handed over
// as they commit, its rows already claimed (MailHandoff, docs/adr/0016);
// a polling timer and wakes claim everything else: rows queued for any
// worker (when this one had no room), by instances that stopped, retries
// coming due, and leases that ran out.
// Each claimed row is rendered, sent and recorded; temporary failures are
// retried with backoff and jitter while the code is still valid, permanent
// ones (SMTP 5xx) are marked failed at once. Every delivery has a deadline
// before its row's lease ends (deliveryDeadline): a delivery still under
// way then is given up and retried, never left running while another
// worker claims the row.
import { AsyncResource } from "node:async_hooks";
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { Logger } from "pino";
import { systemClock, type Clock } from "../domain/clock.js";
import { afterFailedDelivery } from "../domain/delivery-policy.js";
import { unsafeDisplayNameReason } from "../domain/display-name.js";
import type { DeliveryObserver, MailHandoff, OutboxRow, OutboxStore, ReservedDelivery } from "../domain/outbox.js";
import type { Secrets } from "../domain/secrets.js";
import { smtpResponseCode, type Mailer } from "./mailer.js";
import { renderCustomMail, renderOtpMail } from "./templates.js";

// Looked up at each use: a tracer taken once at load stays bound to the
// tracer provider registered then, so after a provider is replaced (an
// app closed and another built in the same process) its spans went nowhere.
const tracer = () => trace.getTracer("otp-service/mail");

export interface OutboxWorkerOptions {
  readonly concurrency: number;
  readonly pollMs: number;
  readonly maxAttempts: number;
  readonly defaultFrom: string;
  /** How long a claimed row is ours before another worker may take it. */
  readonly leaseMs?: number;
  readonly observer?: DeliveryObserver;
  /**
   * Tests substitute a fake clock and a fixed jitter. The deadlines handed
   * to the mailer are on this clock; the SMTP mailer reads Date.now().
   */
  readonly clock?: Clock;
  readonly random?: () => number;
  /**
   * Deliver only the mail this instance accepted (told through wake), never
   * other instances' rows: for a dev mailbox on a shared database, which
   * must not take real customers' codes queued elsewhere into its page.
   */
  readonly ownMailOnly?: boolean;
}

/**
 * A tenant's name stands in for a missing sender name only when it is a safe
 * display name; otherwise the mail shows the address alone.
 */
function senderNameFor(tenantName: string): string {
  return unsafeDisplayNameReason(tenantName) === undefined ? tenantName : "";
}

/** The lease on claimed rows unless the options set one. */
const DEFAULT_LEASE_MS = 60_000;

/**
 * How long before its row's lease ends a delivery is given up. The SMTP
 * thread stops it at the deadline (its timer is not late by more than its
 * event loop is). This is time for the failure to come back to the main
 * thread and for the retry to be written, all before another worker may
 * claim the row. For a short lease (tests), a quarter of it.
 */
const DEADLINE_MARGIN_MS = 5_000;

/**
 * When a delivery under a lease taken at `leasedAt` (this worker's clock,
 * read before the statement that took it, so the lease in the database ends
 * no sooner than `leasedAt + leaseMs`) must be over.
 */
function deliveryDeadline(leasedAt: number, leaseMs: number): number {
  return leasedAt + leaseMs - Math.min(DEADLINE_MARGIN_MS, leaseMs / 4);
}

export class OutboxWorker implements MailHandoff {
  private pollTimer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
  private kick: (() => void) | undefined;
  private again = false;
  private stopped = false;
  private readonly inFlight = new Set<string>();
  /** Rows delivered and not yet recorded as sent: the next claim, or recordSoon, records them. */
  private readonly delivered: string[] = [];
  /** Places reserved by sends still running, and handed-over mails being delivered. */
  private reserved = 0;
  private readonly handedOver = new Set<Promise<void>>();
  /** A markSent of handed-over deliveries under way (one at a time; the rest wait for the next). */
  private recording: Promise<void> | undefined;
  private recordAgain = false;
  /** The next check phase, shared by the deliveries handed over in this turn. */
  private turn: Promise<void> | undefined;
  private readonly clock: Clock;
  private readonly random: () => number;
  /** ownMailOnly: Message-IDs of the rows this instance queued and has not finished. */
  private readonly own: Set<string> | undefined;
  /**
   * The async context the worker was built in (the process's start, outside
   * any call). Every drain runs in it rather than in the context of the call
   * whose send woke it: that call's deadline signal (and trace) would follow
   * each of the drain's statements, and the signal aborts as soon as the
   * call has answered, which cancelled the drain's claims and left the mail
   * to the next poll.
   */
  private readonly home = new AsyncResource("OutboxWorker");

  constructor(
    private readonly store: OutboxStore,
    private readonly mailer: Mailer,
    private readonly secrets: Secrets,
    private readonly logger: Logger,
    private readonly options: OutboxWorkerOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.own = options.ownMailOnly ? new Set() : undefined;
  }

  start(): void {
    this.pollTimer = setInterval(() => this.wake(), this.options.pollMs);
    this.pollTimer.unref();
    this.wake();
  }

  /**
   * Drains due rows now; concurrent wakes fold into one more pass.
   * `queuedMessageId`: the Message-ID of mail this instance just queued.
   */
  wake(queuedMessageId?: string): void {
    if (queuedMessageId !== undefined) this.own?.add(queuedMessageId);
    if (this.stopped) return;
    if (this.draining) {
      this.again = true;
      // A drain waiting on slow deliveries looks for new rows at once.
      this.kick?.();
      return;
    }
    this.draining = this.home.runInAsyncScope(() => this.drain()).finally(() => {
      this.draining = undefined;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  /**
   * A place for one of this instance's sends, while fewer than `concurrency`
   * handed-over mails are reserved or being delivered; beyond that the send
   * queues its row for any worker, and a full handoff costs nothing but the
   * claim it would have saved.
   */
  reserve(): ReservedDelivery | undefined {
    if (this.stopped || this.reserved + this.handedOver.size >= this.options.concurrency) return undefined;
    this.reserved++;
    const leaseMs = this.leaseMs;
    const reservedAt = this.clock.now();
    let settled = false;
    const settle = () => {
      if (settled) return false;
      settled = true;
      this.reserved--;
      return true;
    };
    return {
      leaseMs,
      deliver: (row, code) => {
        // The place is reserved before the send inserts its row: the row's lease ends later than this one.
        if (settle()) this.handOver(row, code, reservedAt + leaseMs / 2, deliveryDeadline(reservedAt, leaseMs));
      },
      cancel: () => void settle(),
    };
  }

  /** A send queued its row for any worker: claim it now. */
  queued(messageId: string): void {
    this.wake(messageId);
  }

  /**
   * Delivers a row inserted claimed by this instance. Not past `startBy`
   * (half its lease after the place was reserved): a delivery begun later
   * could still be under way when the lease ends and another worker claims
   * the row, and so reach the recipient twice. Such a row, and one handed
   * over while stopping, is left to the claim.
   */
  private handOver(row: OutboxRow, code: string, startBy: number, deadline: number): void {
    if (this.stopped || this.clock.now() > startBy) {
      this.own?.add(row.messageId);
      // Stopping: give it back at once rather than at the lease's end.
      if (this.stopped) {
        const giveBack: Promise<void> = this.store
          .release([row.id])
          .catch((err) => this.logger.warn({ err, outboxId: row.id }, "could not give back a handed-over row; it is claimed when its lease ends"))
          .finally(() => this.handedOver.delete(giveBack));
        this.handedOver.add(giveBack);
      } else this.logger.warn({ outboxId: row.id }, "a handed-over row came too late to deliver under its lease; it is claimed when the lease ends");
      return;
    }
    // Begun in the loop's next check phase, after this turn's answers are
    // written: the send's answer does not wait for its mail's rendering, and
    // an answer takes as long whether or not it queued mail.
    const delivery: Promise<void> = this.nextTurn()
      .then(() => this.home.runInAsyncScope(() => this.deliver(row, deadline, code)))
      .finally(() => {
        this.handedOver.delete(delivery);
        this.recordSoon();
      });
    this.handedOver.add(delivery);
  }

  /** Resolves in the event loop's next check phase; one timer for all the mail handed over in a turn. */
  private nextTurn(): Promise<void> {
    this.turn ??= new Promise<void>((resolve) =>
      setImmediate(() => {
        this.turn = undefined;
        resolve();
      }),
    );
    return this.turn;
  }

  /**
   * Records handed-over deliveries as sent: one statement at a time, and
   * whatever was delivered while it ran goes in the next (group commit).
   * Rows still unrecorded when it fails wait for the next claim or record.
   */
  private recordSoon(): void {
    if (this.recording) {
      this.recordAgain = true;
      return;
    }
    if (this.delivered.length === 0) return;
    this.recording = this.home
      .runInAsyncScope(() => this.recordDelivered())
      .finally(() => {
        this.recording = undefined;
        if (this.recordAgain) {
          this.recordAgain = false;
          this.recordSoon();
        }
      });
  }

  private get leaseMs(): number {
    return this.options.leaseMs ?? DEFAULT_LEASE_MS;
  }

  /** The drain, handed-over deliveries and the record under way; empty when the worker is idle. */
  private outstanding(): Promise<void>[] {
    return [this.draining, ...this.handedOver, this.recording].filter((p): p is Promise<void> => p !== undefined);
  }

  /** Waits until nothing is due, in flight or unrecorded (for tests and shutdown). */
  async idle(): Promise<void> {
    for (let work = this.outstanding(); work.length > 0; work = this.outstanding()) await Promise.all(work);
  }

  /**
   * Stops claiming; waits up to graceMs for deliveries under way, then gives
   * back the rows still unsent so another instance delivers them at once.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopped = true;
    clearInterval(this.pollTimer);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.outstanding()).catch(() => {}),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
    ]);
    clearTimeout(timer);
    // A record that ends with more delivered starts the next one: wait for all.
    while (this.recording) await this.recording;
    await this.recordDelivered();
    await this.store.release([...this.inFlight]).catch(() => {});
  }

  /**
   * Keeps up to `concurrency` deliveries going, claiming more as slots free,
   * so one slow recipient never holds up the others. While there is a
   * backlog, rows are claimed a batch at a time rather than one per freed
   * slot, which saves a query per mail. The rows delivered since the last
   * claim are marked sent by the next one, in the same statement; the drain
   * ends only once none is left unrecorded.
   */
  private async drain(): Promise<void> {
    const { leaseMs } = this;
    const { concurrency } = this.options;
    const batch = Math.max(1, Math.ceil(concurrency / 4));
    const running = new Set<Promise<void>>();
    let backlog = false;
    try {
      while (!this.stopped) {
        const free = concurrency - running.size;
        if (free > 0 && (free >= batch || !backlog)) {
          this.again = false;
          const deadline = deliveryDeadline(this.clock.now(), leaseMs);
          const rows = await this.claim(free, leaseMs);
          for (const row of rows) {
            const delivery: Promise<void> = this.deliver(row, deadline).finally(() => running.delete(delivery));
            running.add(delivery);
          }
          // A full claim means more rows are probably due.
          backlog = rows.length === free;
        }
        if (running.size === 0 && !backlog && this.delivered.length === 0) return;
        // A send committed while claiming: look again at once.
        if (this.again && !backlog && running.size < concurrency) continue;
        // Wait for a delivery to end, or, with slots free and no backlog,
        // for a wake (a new send) to look again.
        if (running.size > 0) {
          const woken = new Promise<void>((resolve) => (this.kick = !backlog && running.size < concurrency ? resolve : undefined));
          await Promise.race([...running, woken]);
          this.kick = undefined;
        }
      }
    } catch (err) {
      this.logger.warn({ err }, "outbox drain failed; will retry on the next wake");
    } finally {
      await Promise.all(running);
      // Stopping: no claim comes to record what the last deliveries sent.
      if (this.stopped) await this.recordDelivered();
    }
  }

  /** Claims due rows, recording the rows delivered since the last claim in the same statement. */
  private async claim(limit: number, leaseMs: number): Promise<OutboxRow[]> {
    if (this.own?.size === 0 && this.delivered.length === 0) return [];
    return this.withDelivered((delivered) => this.store.claim(limit, leaseMs, { delivered, onlyMessageIds: this.own && [...this.own] }));
  }

  /**
   * Hands the rows delivered and not yet recorded to `write`; if it fails
   * they stay unrecorded, for the next claim (the poll's, at the latest).
   */
  private async withDelivered<T>(write: (delivered: string[]) => Promise<T>): Promise<T> {
    const delivered = this.delivered.splice(0);
    try {
      return await write(delivered);
    } catch (err) {
      this.delivered.unshift(...delivered);
      throw err;
    }
  }

  /**
   * Records the rows delivered and not yet recorded, without claiming. A row
   * left unrecorded would be sent again once its lease ran out.
   */
  private async recordDelivered(): Promise<void> {
    if (this.delivered.length === 0) return;
    const rows = this.delivered.length;
    try {
      await this.withDelivered((ids) => this.store.markSent(ids));
    } catch (err) {
      this.logger.error({ err, rows }, "could not record delivered mail as sent; a later claim tries again (unrecorded when its lease runs out, it is sent again)");
    }
  }

  /**
   * A row queued by a traced send is delivered in that send's trace, by
   * whichever instance claims it (the traceparent travels in the row).
   * Otherwise, and whenever tracing is off, this costs nothing.
   */
  private deliver(row: OutboxRow, deadline: number, code?: string): Promise<void> {
    if (!row.traceparent) return this.deliverRow(row, deadline, code);
    const parent = propagation.extract(ROOT_CONTEXT, { traceparent: row.traceparent });
    return tracer().startActiveSpan(
      "otp.deliver",
      { kind: SpanKind.CONSUMER, attributes: { "otp.outbox.attempt": row.attempts, "otp.mail.template": row.template } },
      parent,
      (span) => this.deliverRow(row, deadline, code).finally(() => span.end()),
    );
  }

  /** The SMTP transaction, as a CLIENT span when delivering in a trace. */
  private smtp<T>(send: () => Promise<T>): Promise<T> {
    if (!trace.getSpan(context.active())?.isRecording()) return send();
    return tracer().startActiveSpan("smtp send", { kind: SpanKind.CLIENT, attributes: { "network.protocol.name": "smtp" } }, async (span) => {
      try {
        return await send();
      } catch (err) {
        span.setStatus({ code: SpanStatusCode.ERROR });
        const code = smtpResponseCode(err);
        if (code !== undefined) span.setAttribute("smtp.response.code", code);
        throw err;
      } finally {
        span.end();
      }
    });
  }

  /**
   * `deadline`: when SMTP gives the mail up (deliveryDeadline), a failure
   * like any other. `known`: the code, when the row was handed over with it
   * (no decryption then).
   */
  private async deliverRow(row: OutboxRow, deadline: number, known?: string): Promise<void> {
    this.inFlight.add(row.id);
    // Done with, unless failed() schedules a retry (which puts it back).
    this.own?.delete(row.messageId);
    try {
      if (row.expiresAt.getTime() <= this.clock.now() || row.payload === null) {
        await this.store.markExpired(row.id, "the code expired before it could be delivered");
        this.options.observer?.attemptFailed("expired");
        return;
      }
      let code: string;
      try {
        code = known ?? this.secrets.decrypt(row.payload, row.keyId, row.messageId);
      } catch (err) {
        // A missing or rotated-out pepper will not come back by retrying.
        this.logger.error({ err, outboxId: row.id, keyId: row.keyId }, "outbox row cannot be decrypted");
        await this.store.markFailed(row.id, `cannot decrypt with pepper ${row.keyId}`);
        this.options.observer?.attemptFailed("failed");
        return;
      }
      const minutes = Math.max(1, Math.round((row.expiresAt.getTime() - row.createdAt.getTime()) / 60_000));
      const facts = { code, minutes, tenantName: row.tenantName, email: row.recipient, branding: row.branding };
      const content = row.custom ? renderCustomMail(row.custom, facts) : renderOtpMail(row.locale, row.template, facts);
      try {
        await this.smtp(() =>
          this.mailer.send({
            ...content,
            from: { name: row.mailFromName ?? senderNameFor(row.tenantName), address: row.mailFromAddress ?? this.options.defaultFrom },
            to: row.recipient,
            replyTo: row.replyTo ?? undefined,
            messageId: row.messageId,
            code,
            deadline,
          }),
        );
      } catch (err) {
        await this.failed(row, err);
        return;
      }
      this.delivered.push(row.id);
      this.options.observer?.delivered(row.createdAt);
    } catch (err) {
      this.logger.error({ err, outboxId: row.id }, "outbox delivery bookkeeping failed");
    } finally {
      this.inFlight.delete(row.id);
    }
  }

  private async failed(row: OutboxRow, err: unknown): Promise<void> {
    const status = smtpResponseCode(err);
    const reason = err instanceof Error ? err.message : String(err);
    const cause = deliveryCause(err);
    const attempt = { attempts: row.attempts, expiresAt: row.expiresAt.getTime(), smtpStatus: status };
    const next = afterFailedDelivery(attempt, this.clock.now(), this.options.maxAttempts, this.random());
    if (next.action === "fail" && next.why === "rejected") {
      this.logger.warn({ outboxId: row.id, status, cause }, "mail rejected permanently");
      await this.store.markFailed(row.id, reason);
      this.options.observer?.attemptFailed("failed");
    } else if (next.action === "fail") {
      this.logger.warn({ outboxId: row.id, attempt: row.attempts, status, cause }, "mail delivery failed; giving up (OUTBOX_MAX_ATTEMPTS)");
      await this.store.markFailed(row.id, `gave up after ${row.attempts} attempts: ${reason}`);
      this.options.observer?.attemptFailed("failed");
    } else if (next.action === "expire") {
      this.logger.warn({ outboxId: row.id, attempt: row.attempts, status, cause }, "mail delivery failed; the code expires before the next try");
      await this.store.markExpired(row.id, reason);
      this.options.observer?.attemptFailed("expired");
    } else {
      this.options.observer?.attemptFailed("retry");
      this.logger.info({ outboxId: row.id, attempt: row.attempts, status, cause, retry_in_ms: Math.round(next.delayMs) }, "mail delivery failed; will retry");
      this.own?.add(row.messageId);
      await this.store.scheduleRetry(row.id, next.delayMs, reason);
    }
  }
}

/**
 * Why a delivery failed, short and free of addresses: the system error code
 * (ECONNREFUSED, ETIMEDOUT…) or the SMTP reply code. The server's reply text
 * is not logged: it often quotes the recipient.
 */
export function deliveryCause(err: unknown): string {
  const status = smtpResponseCode(err);
  if (status !== undefined) return `SMTP ${status}`;
  const e = err as { code?: unknown; message?: unknown; cause?: unknown } | null;
  const fromMessage = typeof e?.message === "string" ? /\b(E(?:CONN[A-Z]+|TIMEDOUT|NOTFOUND|AI_AGAIN|HOSTUNREACH|NETUNREACH|PIPE|ADDRNOTAVAIL|PROTO))\b/.exec(e.message)?.[1] : undefined;
  // nodemailer wraps socket errors as ESOCKET/ECONNECTION; the message keeps the system code.
  if (fromMessage) return fromMessage;
  if (typeof e?.code === "string") return e.code;
  if (e?.cause) return deliveryCause(e.cause);
  return err instanceof Error ? err.name : "unknown";
}
