// In-memory fakes of the outbox worker's ports: the outbox store (claims by
// a fake clock, leases, attempts) and a mailer whose answers a test scripts.
import type { Clock } from "../../src/domain/clock.js";
import type { ClaimOptions, OutboxRow, OutboxStore } from "../../src/domain/outbox.js";
import type { Mailer, OutgoingMail } from "../../src/mail/mailer.js";

type Status = "pending" | "sending" | "sent" | "failed" | "expired";

export interface FakeOutboxRow {
  row: OutboxRow;
  status: Status;
  dueAt: number;
  lastError: string | null;
  /** Delays asked for by scheduleRetry, in order. */
  readonly retryDelays: number[];
}

export class FakeOutbox implements OutboxStore {
  readonly rows = new Map<string, FakeOutboxRow>();

  constructor(private readonly clock: Clock) {}

  add(row: OutboxRow): void {
    this.rows.set(row.id, { row, status: "pending", dueAt: this.clock.now(), lastError: null, retryDelays: [] });
  }

  /** A row as a send with a lease inserts it: claimed, first attempt, due again when the lease ends. */
  addClaimed(row: OutboxRow, leaseMs: number): void {
    this.rows.set(row.id, { row: { ...row, attempts: 1 }, status: "sending", dueAt: this.clock.now() + leaseMs, lastError: null, retryDelays: [] });
  }

  get(id: string): FakeOutboxRow {
    return this.rows.get(id)!;
  }

  /** Every claim, with the rows it was told were delivered. */
  readonly claims: { limit: number; delivered: readonly string[] }[] = [];
  /** Rows recorded as sent on their own, outside a claim, one array per call. */
  readonly markedAlone: (readonly string[])[] = [];
  /** Which claims fail (1 is the first call), as when the database is out of reach. */
  readonly failingClaims = new Set<number>();
  private claimCalls = 0;

  async claim(limit: number, leaseMs: number, options: ClaimOptions = {}): Promise<OutboxRow[]> {
    if (this.failingClaims.has(++this.claimCalls)) throw new Error("database unreachable");
    const delivered = options.delivered ?? [];
    this.claims.push({ limit, delivered });
    for (const id of delivered) this.finish(id, "sent", null);
    const only = options.onlyMessageIds;
    const due = [...this.rows.values()]
      .filter((r) => (r.status === "pending" || r.status === "sending") && r.dueAt <= this.clock.now())
      .filter((r) => !delivered.includes(r.row.id) && (only === undefined || only.includes(r.row.messageId)))
      .sort((a, b) => a.dueAt - b.dueAt)
      .slice(0, limit);
    for (const r of due) {
      r.status = "sending";
      r.dueAt = this.clock.now() + leaseMs;
      r.row = { ...r.row, attempts: r.row.attempts + 1 };
    }
    return due.map((r) => r.row);
  }

  /** Awaited by each markSent before it records (a slow database). */
  markSentDelay: (() => Promise<void>) | undefined;

  async markSent(ids: readonly string[]): Promise<void> {
    await this.markSentDelay?.();
    this.markedAlone.push([...ids]);
    for (const id of ids) this.finish(id, "sent", null);
  }

  async markFailed(id: string, error: string): Promise<void> {
    this.finish(id, "failed", error);
  }

  async markExpired(id: string, error: string | null): Promise<void> {
    this.finish(id, "expired", error);
  }

  async scheduleRetry(id: string, delayMs: number, error: string): Promise<void> {
    const r = this.get(id);
    if (r.status !== "sending") return;
    r.status = "pending";
    r.lastError = error;
    r.dueAt = this.clock.now() + delayMs;
    r.retryDelays.push(delayMs);
  }

  async release(ids: readonly string[]): Promise<void> {
    for (const id of ids) {
      const r = this.get(id);
      if (r.status !== "sending") continue;
      r.status = "pending";
      r.dueAt = this.clock.now();
      r.row = { ...r.row, attempts: Math.max(0, r.row.attempts - 1) };
    }
  }

  private finish(id: string, status: Status, error: string | null): void {
    const r = this.get(id);
    r.status = status;
    r.row = { ...r.row, payload: null };
    r.lastError = error ?? r.lastError;
  }
}

/** An SMTP-like refusal, as nodemailer reports one. */
export function smtpError(responseCode: number): Error {
  return Object.assign(new Error(`${responseCode} refused`), { responseCode });
}

type Outcome = Error | "ok" | "never" | Promise<void>;

/** A mailer that answers each send with the next scripted outcome (then success); "never" never answers; a promise answers once it settles. */
export class ScriptedMailer implements Mailer {
  readonly sent: OutgoingMail[] = [];
  private readonly script: Outcome[] = [];

  answer(...outcomes: Outcome[]): this {
    this.script.push(...outcomes);
    return this;
  }

  async send(mail: OutgoingMail): Promise<void> {
    const next = this.script.shift() ?? "ok";
    if (next === "never") return new Promise(() => {});
    if (next instanceof Promise) await next;
    else if (next !== "ok") throw next;
    this.sent.push(mail);
  }

  close(): void {}
}
