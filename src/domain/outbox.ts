// The outbox as the delivery worker sees it: a port that storage implements.
// A send commits a row; the worker claims due rows under a lease, delivers
// them, and records each outcome. Owning the port here lets the worker's
// retry policy run against an in-memory outbox in unit tests.
import type { TemplateParts } from "./template-language.js";

/** A tenant's look in its mail; colours and URLs were checked when saved. */
export interface Branding {
  readonly logoUrl: string | null;
  /** #rgb or #rrggbb, checked when saved. */
  readonly accentColor: string | null;
  readonly supportUrl: string | null;
}

/** A claimed outbox row with everything needed to render and send it. */
export interface OutboxRow {
  readonly id: string;
  readonly recipient: string;
  readonly locale: string;
  readonly template: "login" | "signup";
  /** The encrypted code; null once wiped. */
  readonly payload: Buffer | null;
  readonly keyId: number;
  readonly expiresAt: Date;
  readonly messageId: string;
  /** The W3C traceparent of the send that queued it (when that send was traced), so its delivery joins the trace. */
  readonly traceparent?: string | null;
  /** Attempts so far, this one included. */
  readonly attempts: number;
  readonly createdAt: Date;
  readonly tenantName: string;
  readonly mailFromName: string | null;
  readonly mailFromAddress: string | null;
  readonly replyTo: string | null;
  readonly branding: Branding;
  /** The tenant's own template, when the send chose one that still exists. */
  readonly custom: TemplateParts | undefined;
}

/** What else a claim does and which rows it may take. */
export interface ClaimOptions {
  /** Only rows with these Message-IDs (a dev mailbox on a shared database delivers only what it accepted itself). */
  readonly onlyMessageIds?: readonly string[];
  /** Rows delivered since the last claim, marked sent with it. */
  readonly delivered?: readonly string[];
}

/** Storage port of the outbox, for the delivery worker. */
export interface OutboxStore {
  /**
   * Claims up to `limit` due rows for `leaseMs`; their attempt count goes up
   * by one. `options.delivered` are rows this worker delivered since its last
   * claim: they are marked sent (done, code wiped) in the same statement, so
   * a worker refilling the slots its deliveries freed pays one transaction,
   * not two.
   */
  claim(limit: number, leaseMs: number, options?: ClaimOptions): Promise<OutboxRow[]>;
  /** Delivered: the rows are done and their codes wiped. */
  markSent(ids: readonly string[]): Promise<void>;
  /** A permanent failure: the row is done and its code wiped. */
  markFailed(id: string, error: string): Promise<void>;
  /** The code expired before it could be delivered. */
  markExpired(id: string, error: string | null): Promise<void>;
  /** A temporary failure: the row comes due again after `delayMs`. */
  scheduleRetry(id: string, delayMs: number, error: string): Promise<void>;
  /** Gives claimed rows back at once, e.g. on shutdown. */
  release(ids: readonly string[]): Promise<void>;
}

/**
 * Port: the accepting instance's own delivery of the mail it queues. A send
 * asks for a place before it runs; with one, its outbox row is inserted
 * already claimed by this instance (leased, first attempt) and handed over
 * with the code in hand, so delivering it takes no claim, no fetch and no
 * decryption (docs/adr/0016). Without one (delivery is busy or stopping),
 * the row is queued for any worker, which claims it as before. Either way
 * the row is in the database first: a crash loses nothing, a claimed row
 * simply waits for its lease to end.
 */
export interface MailHandoff {
  /** A place for one mail in this instance's delivery, or undefined: queue it for any worker. */
  reserve(): ReservedDelivery | undefined;
  /** A send queued its mail for any worker (no place was reserved): look for it now. */
  queued(messageId: string): void;
}

/** One reserved place; exactly one of deliver or cancel is called. */
export interface ReservedDelivery {
  /** How long the row is inserted as claimed by this instance. */
  readonly leaseMs: number;
  /** The send committed its row claimed for this instance: deliver it, with the code. */
  deliver(row: OutboxRow, code: string): void;
  /** The send queued no mail (refused, unknown address, sandbox, failed): free the place. */
  cancel(): void;
}

/** No delivery of its own: every row is queued for whichever worker claims it. */
export const noHandoff: MailHandoff = { reserve: () => undefined, queued: () => {} };

/** How far behind delivery is: undelivered rows, and the age of the oldest. */
export interface OutboxBacklog {
  readonly depth: number;
  readonly oldestSeconds: number;
}

/** Told about each delivery attempt (metrics). */
export interface DeliveryObserver {
  delivered(acceptedAt: Date): void;
  attemptFailed(result: "retry" | "failed" | "expired"): void;
}
