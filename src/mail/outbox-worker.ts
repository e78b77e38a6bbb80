// Delivers the outbox. Woken by LISTEN/NOTIFY when a send commits, and by a
// polling timer in case a notification is missed (or the listener is down).
// Each claimed row is rendered, sent and recorded; temporary failures are
// retried with backoff and jitter while the code is still valid, permanent
// ones (SMTP 5xx) are marked failed at once.
import pg from "pg";
import type { Logger } from "pino";
import type { Secrets } from "../domain/secrets.js";
import type { OutboxRow, PgOutboxStore } from "../storage/outbox-store.js";
import { smtpResponseCode, type Mailer } from "./mailer.js";
import { renderCustomMail, renderOtpMail } from "./templates.js";

/** Told about each delivery attempt (metrics). */
export interface DeliveryObserver {
  delivered(acceptedAt: Date): void;
  attemptFailed(result: "retry" | "failed" | "expired"): void;
}

export interface OutboxWorkerOptions {
  readonly databaseUrl: string;
  readonly concurrency: number;
  readonly pollMs: number;
  readonly maxAttempts: number;
  readonly defaultFrom: string;
  /** How long a claimed row is ours before another worker may take it. */
  readonly leaseMs?: number;
  readonly observer?: DeliveryObserver;
}

const CHANNEL = "otp_outbox";

export class OutboxWorker {
  private listener: pg.Client | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
  private kick: (() => void) | undefined;
  private again = false;
  private stopped = false;
  private readonly inFlight = new Set<string>();

  constructor(
    private readonly store: PgOutboxStore,
    private readonly mailer: Mailer,
    private readonly secrets: Secrets,
    private readonly logger: Logger,
    private readonly options: OutboxWorkerOptions,
  ) {}

  async start(): Promise<void> {
    await this.listen().catch((err) => {
      this.logger.warn({ err }, "outbox listener not connected yet; polling meanwhile");
      this.scheduleListen(2_000);
    });
    this.pollTimer = setInterval(() => this.wake(), this.options.pollMs);
    this.pollTimer.unref();
    this.wake();
  }

  /** Drains due rows now; concurrent wakes fold into one more pass. */
  wake(): void {
    if (this.stopped) return;
    if (this.draining) {
      this.again = true;
      // A drain waiting on slow deliveries looks for new rows at once.
      this.kick?.();
      return;
    }
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  /** Waits until nothing is due or in flight (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /**
   * Stops claiming; waits up to graceMs for deliveries under way, then gives
   * back the rows still unsent so another instance delivers them at once.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopped = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.reconnectTimer);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.draining?.catch(() => {}),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
    ]);
    clearTimeout(timer);
    await this.store.release([...this.inFlight]).catch(() => {});
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => {});
  }

  /**
   * Keeps up to `concurrency` deliveries going, claiming more as each slot
   * frees, so one slow recipient never holds up the others.
   */
  private async drain(): Promise<void> {
    const leaseMs = this.options.leaseMs ?? 60_000;
    const running = new Set<Promise<void>>();
    try {
      while (!this.stopped) {
        const free = this.options.concurrency - running.size;
        const rows = free > 0 ? await this.store.claim(free, leaseMs) : [];
        for (const row of rows) {
          const delivery: Promise<void> = this.deliver(row).finally(() => running.delete(delivery));
          running.add(delivery);
        }
        if (running.size === 0) return;
        // Nothing more due, or no free slot: wait for a delivery to end, or,
        // with a slot free, for a wake (a new send) to look again.
        if (rows.length === 0 || running.size >= this.options.concurrency) {
          const woken = new Promise<void>((resolve) => (this.kick = running.size < this.options.concurrency ? resolve : undefined));
          await Promise.race([...running, woken]);
          this.kick = undefined;
        }
      }
    } catch (err) {
      this.logger.warn({ err }, "outbox drain failed; will retry on the next wake");
    } finally {
      await Promise.all(running);
    }
  }

  private async deliver(row: OutboxRow): Promise<void> {
    this.inFlight.add(row.id);
    try {
      if (row.expiresAt.getTime() <= Date.now() || row.payload === null) {
        await this.store.markExpired(row.id, "the code expired before it could be delivered");
        this.options.observer?.attemptFailed("expired");
        return;
      }
      let code: string;
      try {
        code = this.secrets.decrypt(row.payload, row.keyId, row.messageId);
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
        await this.mailer.send({
          ...content,
          from: { name: row.mailFromName ?? row.tenantName, address: row.mailFromAddress ?? this.options.defaultFrom },
          to: row.recipient,
          replyTo: row.replyTo ?? undefined,
          messageId: row.messageId,
          code,
        });
      } catch (err) {
        await this.failed(row, err);
        return;
      }
      await this.store.markSent(row.id);
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
    if (status !== undefined && status >= 500) {
      this.logger.warn({ outboxId: row.id, status }, "mail rejected permanently");
      await this.store.markFailed(row.id, reason);
      this.options.observer?.attemptFailed("failed");
      return;
    }
    // Exponential backoff with equal jitter (half fixed, half random), so
    // waits always grow: ~1 s, 2 s, 4 s … capped at 30 s. Retries go on
    // while the code is valid; OUTBOX_MAX_ATTEMPTS is only a backstop.
    const base = Math.min(30_000, 1_000 * 2 ** (row.attempts - 1));
    const delay = base / 2 + Math.random() * (base / 2);
    if (row.attempts >= this.options.maxAttempts) {
      await this.store.markFailed(row.id, `gave up after ${row.attempts} attempts: ${reason}`);
      this.options.observer?.attemptFailed("failed");
    } else if (Date.now() + delay >= row.expiresAt.getTime()) {
      await this.store.markExpired(row.id, reason);
      this.options.observer?.attemptFailed("expired");
    } else {
      this.options.observer?.attemptFailed("retry");
      this.logger.info({ outboxId: row.id, attempt: row.attempts, status }, "mail delivery failed; will retry");
      await this.store.scheduleRetry(row.id, delay, reason);
    }
  }

  private scheduleListen(delayMs: number): void {
    if (this.stopped) return;
    this.reconnectTimer = setTimeout(() => {
      this.listen().then(
        () => this.wake(),
        () => this.scheduleListen(2_000),
      );
    }, delayMs);
    this.reconnectTimer.unref();
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.options.databaseUrl, application_name: "otp-service-outbox" });
    const lost = () => {
      if (this.listener !== client) return;
      this.listener = undefined;
      client.end().catch(() => {});
      this.scheduleListen(1_000);
    };
    client.on("error", lost);
    client.on("end", lost);
    client.on("notification", () => this.wake());
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      this.listener = client;
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
  }
}
