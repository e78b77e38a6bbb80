// In-memory fakes of the sign-in use case's ports: the SignInStore (emails
// with their codes, users, sessions, the audit log and guessing budgets)
// and a KeyStore for TenantKeys. They keep what a test needs to read back;
// they apply a failure's effects as the Postgres store does.
import type { EmailState, FailureEffects, StoredCode } from "../../src/domain/otp-verifier.js";
import type { LimitCharge } from "../../src/domain/rate-limit-policy.js";
import type { Secrets } from "../../src/domain/secrets.js";
import {
  type AttemptTx,
  type AuditEvent,
  CommitThenFail,
  type EmailLookup,
  type NewSession,
  type SessionRecord,
  type SessionUpdate,
  type SignInStore,
  type UserRecord,
} from "../../src/domain/sign-in-records.js";
import type { KeyStore, StoredKey } from "../../src/domain/signing-keys.js";

interface FakeEmail {
  tenantId: string;
  emailId: string;
  userId: string;
  address: string;
  verified: boolean;
  lockedUntil: number | null;
  consecutiveFailures: number;
  codes: StoredCode[];
}

export class FakeSignInStore implements SignInStore {
  readonly emails = new Map<string, FakeEmail>();
  readonly users = new Map<string, { status: "active" | "pending"; createdAt: number }>();
  readonly sessions = new Map<string, SessionRecord & { tokenHash: Buffer }>();
  readonly auditLog: AuditEvent[] = [];
  /** Checks charged per budget key, net of refunds. */
  readonly guesses = new Map<string, number>();
  private ids = 0;

  constructor(private readonly secrets: Secrets) {}

  /** A new code for an address of a tenant (its user made pending on first use); earlier codes superseded. */
  issueCode(
    tenantId: string,
    address: string,
    code: string,
    at: { now: number; ttlMs: number; ipAddress?: string; userAgent?: string },
  ): { emailId: string; userId: string; codeId: string } {
    let email = [...this.emails.values()].find((e) => e.tenantId === tenantId && e.address === address);
    if (!email) {
      const userId = `user-${++this.ids}`;
      this.users.set(userId, { status: "pending", createdAt: at.now });
      email = { tenantId, emailId: `email-${++this.ids}`, userId, address, verified: false, lockedUntil: null, consecutiveFailures: 0, codes: [] };
      this.emails.set(email.emailId, email);
    }
    email.codes = email.codes.map((c) => (c.usedAt === null && c.supersededAt === null ? { ...c, supersededAt: at.now } : c));
    const codeId = `code-${++this.ids}`;
    email.codes.unshift({
      id: codeId,
      codeHash: this.secrets.hashCode(tenantId, address, code),
      keyId: this.secrets.keyId,
      expiresAt: at.now + at.ttlMs,
      usedAt: null,
      supersededAt: null,
      exhaustedAt: null,
      failedAttempts: 0,
      ipAddress: at.ipAddress ?? null,
      userAgent: at.userAgent ?? null,
    });
    return { emailId: email.emailId, userId: email.userId, codeId };
  }

  email(emailId: string): FakeEmail {
    const email = this.emails.get(emailId);
    if (!email) throw new Error(`no email ${emailId}`);
    return email;
  }

  async attempt<T>(fn: (tx: AttemptTx) => Promise<T>): Promise<T> {
    try {
      return await fn(this.tx());
    } catch (err) {
      // What the attempt wrote stays (the fake never rolls back); the failure is the answer.
      throw err instanceof CommitThenFail ? err.failure : err;
    }
  }

  async chargeGuess(charge: LimitCharge): Promise<{ readonly retryAfterMs: number } | undefined> {
    const used = this.guesses.get(charge.key) ?? 0;
    if (used >= charge.burst) return { retryAfterMs: charge.periodMs };
    this.guesses.set(charge.key, used + 1);
    return undefined;
  }

  async refundGuess(charge: LimitCharge): Promise<void> {
    this.guesses.set(charge.key, Math.max(0, (this.guesses.get(charge.key) ?? 0) - 1));
  }

  async sessionByTokenHash(tenantId: string, tokenHash: Buffer): Promise<SessionRecord | undefined> {
    return [...this.sessions.values()].find((s) => s.tenantId === tenantId && s.tokenHash.equals(tokenHash));
  }

  async sessionById(tenantId: string, sessionId: string): Promise<SessionRecord | undefined> {
    const s = this.sessions.get(sessionId);
    return s?.tenantId === tenantId ? s : undefined;
  }

  async updateSession(sessionId: string, update: SessionUpdate): Promise<SessionRecord | undefined> {
    const s = this.sessions.get(sessionId);
    if (!s) throw new Error(`no session ${sessionId}`);
    // As the SQL: only a session still live is refreshed.
    if (s.revokedAt !== null || s.expiresAt <= update.now) return undefined;
    const next = {
      ...s,
      lastAccessedAt: update.now,
      expiresAt: update.expiresAt ?? s.expiresAt,
      factors: update.factors ?? s.factors,
      customClaims: { ...s.customClaims, ...update.customClaims },
    };
    this.sessions.set(sessionId, next);
    return next;
  }

  async revokeSession(sessionId: string): Promise<void> {
    const s = this.sessions.get(sessionId);
    if (s) this.sessions.set(sessionId, { ...s, revokedAt: s.lastAccessedAt });
  }

  async user(userId: string): Promise<UserRecord> {
    const u = this.users.get(userId);
    if (!u) throw new Error(`no user ${userId}`);
    const emails = [...this.emails.values()].filter((e) => e.userId === userId);
    return { userId, status: u.status, createdAt: u.createdAt, emails: emails.map((e) => ({ emailId: e.emailId, email: e.address, verified: e.verified })) };
  }

  private tx(): AttemptTx {
    return {
      lockEmail: async (tenantId: string, lookup: EmailLookup): Promise<EmailState | undefined> => {
        const email = [...this.emails.values()].find(
          (e) => e.tenantId === tenantId && ("emailId" in lookup ? e.emailId === lookup.emailId : e.address === lookup.address),
        );
        return email && { ...email, codes: [...email.codes] };
      },
      recordFailure: async (emailId: string, effects: FailureEffects) => {
        const email = this.email(emailId);
        email.codes = email.codes.map((c) =>
          c.id === effects.codeId ? { ...c, failedAttempts: c.failedAttempts + 1, exhaustedAt: effects.exhaustCode ? 0 : c.exhaustedAt } : c,
        );
        if (effects.countsTowardLock) email.consecutiveFailures += 1;
        if (effects.lockUntil !== null) {
          email.lockedUntil = effects.lockUntil;
          email.consecutiveFailures = 0;
        }
      },
      recordSuccess: async (emailId: string, codeId: string) => {
        const email = this.email(emailId);
        email.codes = email.codes.map((c) => (c.id === codeId ? { ...c, usedAt: 0 } : c));
        email.verified = true;
        email.consecutiveFailures = 0;
        email.lockedUntil = null;
        this.users.set(email.userId, { ...this.users.get(email.userId)!, status: "active" });
        return this.user(email.userId);
      },
      createSession: async (s: NewSession) => {
        const record = {
          id: s.id,
          tenantId: s.tenantId,
          userId: s.userId,
          tokenHash: s.tokenHash,
          startedAt: s.now,
          lastAccessedAt: s.now,
          expiresAt: s.expiresAt,
          revokedAt: null,
          ipAddress: s.ipAddress ?? null,
          userAgent: s.userAgent ?? null,
          factors: s.factors,
          customClaims: s.customClaims,
        };
        this.sessions.set(s.id, record);
        return record;
      },
      updateSession: (sessionId: string, update: SessionUpdate) => this.updateSession(sessionId, update),
      audit: async (event: AuditEvent) => {
        this.auditLog.push(event);
      },
    };
  }
}

/** Signing keys per tenant, in memory. */
export class FakeKeyStore implements KeyStore {
  readonly keys = new Map<string, StoredKey[]>();

  async ensureActive(tenantId: string, _retentionMinutes: number, fresh: () => Promise<StoredKey>): Promise<StoredKey[]> {
    const keys = this.keys.get(tenantId) ?? [];
    if (!keys.some((k) => !k.retired)) keys.unshift(await fresh());
    this.keys.set(tenantId, keys);
    return keys;
  }

  async rotate(tenantId: string, fresh: StoredKey, dropPrevious: boolean): Promise<void> {
    const keys = dropPrevious ? [] : (this.keys.get(tenantId) ?? []).map((k) => ({ ...k, retired: true }));
    this.keys.set(tenantId, [fresh, ...keys]);
  }
}
