// What the sign-in use cases read and write, as plain records, and the
// storage ports they do it through.
import type { DomainError } from "./errors.js";
import type { EmailState, FailureEffects } from "./otp-verifier.js";
import type { LimitCharge } from "./rate-limit-policy.js";

/** Thrown from inside an attempt: the store commits what was written, then throws `failure`. */
export class CommitThenFail extends Error {
  constructor(readonly failure: DomainError) {
    super(failure.message);
  }
}

export interface UserRecord {
  readonly userId: string;
  readonly status: "active" | "pending";
  readonly createdAt: number;
  readonly emails: readonly { readonly emailId: string; readonly email: string; readonly verified: boolean }[];
}

export interface Factor {
  readonly type: "otp";
  readonly delivery_method: "email";
  readonly last_authenticated_at: string;
  readonly email_factor: { readonly email_id: string; readonly email_address: string };
}

export interface SessionRecord {
  readonly id: string;
  readonly tenantId: string;
  readonly userId: string;
  readonly startedAt: number;
  readonly lastAccessedAt: number;
  readonly expiresAt: number;
  readonly revokedAt: number | null;
  readonly ipAddress: string | null;
  readonly userAgent: string | null;
  readonly factors: readonly Factor[];
  readonly customClaims: Readonly<Record<string, unknown>>;
}

export interface NewSession {
  readonly id: string;
  readonly tenantId: string;
  readonly userId: string;
  readonly tokenHash: Buffer;
  readonly now: number;
  readonly expiresAt: number;
  readonly ipAddress: string | undefined;
  readonly userAgent: string | undefined;
  readonly factors: readonly Factor[];
  readonly customClaims: Readonly<Record<string, unknown>>;
}

export interface SessionUpdate {
  readonly now: number;
  /** New expiry; undefined keeps the current one. */
  readonly expiresAt: number | undefined;
  /** Replaces the factors; undefined keeps them. */
  readonly factors: readonly Factor[] | undefined;
  /** Merged into the custom claims. */
  readonly customClaims: Readonly<Record<string, unknown>> | undefined;
}

export interface AuditEvent {
  readonly tenantId: string;
  readonly action: "send" | "authenticate" | "exchange";
  readonly userId: string | undefined;
  readonly emailId: string | undefined;
  readonly ipAddress: string | undefined;
  readonly userAgent: string | undefined;
  readonly outcome: string;
  readonly reason: string | undefined;
}

export type EmailLookup = { readonly emailId: string } | { readonly address: string };

/** One transaction with one email's row locked. */
export interface AttemptTx {
  lockEmail(tenantId: string, lookup: EmailLookup): Promise<EmailState | undefined>;
  recordFailure(emailId: string, effects: FailureEffects): Promise<void>;
  /** Marks the code used, the email verified, the user active; resets the failure count. */
  recordSuccess(emailId: string, codeId: string): Promise<UserRecord>;
  createSession(session: NewSession): Promise<SessionRecord>;
  /** Refreshes a session still live (not revoked, not expired at `update.now`); undefined when it is not. */
  updateSession(sessionId: string, update: SessionUpdate): Promise<SessionRecord | undefined>;
  audit(event: AuditEvent): Promise<void>;
}

export interface SignInStore {
  /** Runs fn in a transaction; commits what it wrote even when fn returns a failure verdict. */
  attempt<T>(fn: (tx: AttemptTx) => Promise<T>): Promise<T>;
  /**
   * Charges one check to a guessing budget, atomically and at once (not
   * inside an attempt). Over budget: how long until a check is allowed, and
   * nothing is charged.
   */
  chargeGuess(charge: LimitCharge): Promise<{ readonly retryAfterMs: number } | undefined>;
  /** Gives a charge back: the check succeeded. */
  refundGuess(charge: LimitCharge): Promise<void>;

  sessionByTokenHash(tenantId: string, tokenHash: Buffer): Promise<SessionRecord | undefined>;
  sessionById(tenantId: string, sessionId: string): Promise<SessionRecord | undefined>;
  /** As AttemptTx.updateSession: a session revoked or expired since it was read is not refreshed. */
  updateSession(sessionId: string, update: SessionUpdate): Promise<SessionRecord | undefined>;
  revokeSession(sessionId: string): Promise<void>;
  user(userId: string): Promise<UserRecord>;
}
