// Sign-in state in Postgres: attempts run in one transaction holding the
// email's row lock (FOR UPDATE), so two submissions of one code serialize
// and only the first can use it.
import type pg from "pg";
import type { EmailState, FailureEffects, StoredCode } from "../domain/otp-verifier.js";
import type { LimitCharge } from "../domain/rate-limit-policy.js";
import {
  CommitThenFail,
  type AttemptTx,
  type AuditEvent,
  type EmailLookup,
  type Factor,
  type NewSession,
  type SessionRecord,
  type SessionUpdate,
  type SignInStore,
  type UserRecord,
} from "../domain/sign-in-records.js";
import { isUnavailable, query, unavailableError, withTransaction, type Db } from "./db.js";

type Queryable = Pick<pg.PoolClient, "query">;

interface SessionRow {
  id: string;
  tenant_id: string;
  user_id: string;
  started_at: Date;
  last_accessed_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
  ip_address: string | null;
  user_agent: string | null;
  factors: Factor[];
  custom_claims: Record<string, unknown>;
}

const SESSION_COLUMNS =
  "id, tenant_id, user_id, started_at, last_accessed_at, expires_at, revoked_at, ip_address, user_agent, factors, custom_claims";

function toSession(r: SessionRow): SessionRecord {
  return {
    id: r.id,
    tenantId: String(r.tenant_id),
    userId: r.user_id,
    startedAt: r.started_at.getTime(),
    lastAccessedAt: r.last_accessed_at.getTime(),
    expiresAt: r.expires_at.getTime(),
    revokedAt: r.revoked_at?.getTime() ?? null,
    ipAddress: r.ip_address,
    userAgent: r.user_agent,
    factors: r.factors,
    customClaims: r.custom_claims,
  };
}

async function loadUser(db: Queryable, userId: string): Promise<UserRecord> {
  const { rows } = await db.query<{
    id: string;
    status: "active" | "pending";
    created_at: Date;
    email_id: string | null;
    address: string | null;
    verified: boolean | null;
  }>(
    `SELECT u.id, u.status, u.created_at, e.id AS email_id, e.address, e.verified
     FROM users u LEFT JOIN emails e ON e.user_id = u.id
     WHERE u.id = $1 ORDER BY e.created_at`,
    [userId],
  );
  const first = rows[0];
  if (!first) throw new Error(`user ${userId} vanished`);
  return {
    userId: first.id,
    status: first.status,
    createdAt: first.created_at.getTime(),
    emails: rows.filter((r) => r.email_id !== null).map((r) => ({ emailId: r.email_id!, email: r.address!, verified: r.verified! })),
  };
}

/** Only a session still live is refreshed: a revoke that lands after the session was read wins. */
async function updateSession(db: Queryable, sessionId: string, u: SessionUpdate): Promise<SessionRecord | undefined> {
  const { rows } = await db.query<SessionRow>(
    `UPDATE sessions SET last_accessed_at = to_timestamp($2::double precision / 1000),
       expires_at = coalesce(to_timestamp($3::double precision / 1000), expires_at),
       factors = coalesce($4::jsonb, factors),
       custom_claims = custom_claims || coalesce($5::jsonb, '{}')
     WHERE id = $1 AND revoked_at IS NULL AND expires_at > to_timestamp($2::double precision / 1000)
     RETURNING ${SESSION_COLUMNS}`,
    [sessionId, u.now, u.expiresAt ?? null, u.factors ? JSON.stringify(u.factors) : null, u.customClaims ? JSON.stringify(u.customClaims) : null],
  );
  return rows[0] ? toSession(rows[0]) : undefined;
}

class PgAttemptTx implements AttemptTx {
  constructor(private readonly client: pg.PoolClient) {}

  async lockEmail(tenantId: string, lookup: EmailLookup): Promise<EmailState | undefined> {
    const byId = "emailId" in lookup;
    const { rows } = await this.client.query<{
      id: string;
      user_id: string;
      address: string;
      locked_until: Date | null;
      consecutive_failures: number;
    }>(
      `SELECT id, user_id, address, locked_until, consecutive_failures FROM emails
       WHERE tenant_id = $1 AND ${byId ? "id" : "address"} = $2
         AND (pending_until IS NULL OR pending_until > now())
       FOR UPDATE`,
      [tenantId, byId ? lookup.emailId : lookup.address],
    );
    const email = rows[0];
    if (!email) return undefined;
    const codes = await this.client.query<{
      id: string;
      code_hash: Buffer;
      key_id: number;
      expires_at: Date;
      used_at: Date | null;
      superseded_at: Date | null;
      exhausted_at: Date | null;
      failed_attempts: number;
      ip_address: string | null;
      user_agent: string | null;
    }>(
      `SELECT id, code_hash, key_id, expires_at, used_at, superseded_at, exhausted_at, failed_attempts, ip_address, user_agent
       FROM otp_codes WHERE email_id = $1 ORDER BY id DESC LIMIT 10`,
      [email.id],
    );
    return {
      tenantId,
      emailId: email.id,
      userId: email.user_id,
      address: email.address,
      lockedUntil: email.locked_until?.getTime() ?? null,
      consecutiveFailures: email.consecutive_failures,
      codes: codes.rows.map(
        (c): StoredCode => ({
          id: String(c.id),
          codeHash: c.code_hash,
          keyId: c.key_id,
          expiresAt: c.expires_at.getTime(),
          usedAt: c.used_at?.getTime() ?? null,
          supersededAt: c.superseded_at?.getTime() ?? null,
          exhaustedAt: c.exhausted_at?.getTime() ?? null,
          failedAttempts: c.failed_attempts,
          ipAddress: c.ip_address,
          userAgent: c.user_agent,
        }),
      ),
    };
  }

  async recordFailure(emailId: string, effects: FailureEffects): Promise<void> {
    if (effects.codeId !== undefined) {
      await this.client.query(
        `UPDATE otp_codes SET failed_attempts = failed_attempts + 1,
           exhausted_at = CASE WHEN $2 THEN clock_timestamp() ELSE exhausted_at END
         WHERE id = $1`,
        [effects.codeId, effects.exhaustCode],
      );
    }
    if (!effects.countsTowardLock) return;
    // Locking starts a fresh count for when the lock ends.
    await this.client.query(
      `UPDATE emails SET
         consecutive_failures = CASE WHEN $2::double precision IS NULL THEN consecutive_failures + 1 ELSE 0 END,
         locked_until = coalesce(to_timestamp($2::double precision / 1000), locked_until)
       WHERE id = $1`,
      [emailId, effects.lockUntil],
    );
  }

  async recordSuccess(emailId: string, codeId: string): Promise<UserRecord> {
    await this.client.query("UPDATE otp_codes SET used_at = clock_timestamp() WHERE id = $1", [codeId]);
    const { rows } = await this.client.query<{ user_id: string }>(
      `UPDATE emails SET verified = true, consecutive_failures = 0, locked_until = NULL, pending_until = NULL
       WHERE id = $1 RETURNING user_id`,
      [emailId],
    );
    await this.client.query("UPDATE users SET status = 'active' WHERE id = $1 AND status = 'pending'", [rows[0]!.user_id]);
    return loadUser(this.client, rows[0]!.user_id);
  }

  async createSession(s: NewSession): Promise<SessionRecord> {
    const { rows } = await this.client.query<SessionRow>(
      `INSERT INTO sessions (id, tenant_id, user_id, token_hash, started_at, last_accessed_at, expires_at,
                             ip_address, user_agent, factors, custom_claims)
       VALUES ($1, $2, $3, $4, to_timestamp($5::double precision / 1000), to_timestamp($5::double precision / 1000),
               to_timestamp($6::double precision / 1000), $7, $8, $9, $10)
       RETURNING ${SESSION_COLUMNS}`,
      [s.id, s.tenantId, s.userId, s.tokenHash, s.now, s.expiresAt, s.ipAddress ?? null, s.userAgent ?? null,
       JSON.stringify(s.factors), JSON.stringify(s.customClaims)],
    );
    return toSession(rows[0]!);
  }

  updateSession(sessionId: string, update: SessionUpdate): Promise<SessionRecord | undefined> {
    return updateSession(this.client, sessionId, update);
  }

  async audit(e: AuditEvent): Promise<void> {
    await this.client.query(
      `INSERT INTO audit_events (tenant_id, action, user_id, email_id, ip_address, user_agent, outcome, reason)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [e.tenantId, e.action, e.userId ?? null, e.emailId ?? null, e.ipAddress ?? null, e.userAgent ?? null, e.outcome, e.reason ?? null],
    );
  }
}

export class PgSignInStore implements SignInStore {
  /** The pool as the helpers shared with attempt transactions take it; failures map like query()'s. */
  private readonly pooled: Queryable;

  constructor(private readonly db: Db) {
    this.pooled = { query: (text: string, values: unknown[]) => query(this.db, { text, values }) } as Queryable;
  }

  // GCRA, as otp_send charges send limits: tat' = max(tat, now) + period,
  // allowed while tat' - now <= burst * period; over, the charge is taken
  // back in the same statement. One statement, committed at once: concurrent
  // checks by one client are each charged exactly, on any instance, and no
  // row lock outlives the statement.
  async chargeGuess(c: LimitCharge): Promise<{ retryAfterMs: number } | undefined> {
    const { rows } = await this.pooled.query<{ over_ms: number }>(
      `INSERT INTO rate_limits AS rl (key, tat)
       VALUES ($1, clock_timestamp() + make_interval(secs => $2::double precision / 1000))
       ON CONFLICT (key) DO UPDATE
         SET tat = greatest(rl.tat, clock_timestamp()) + make_interval(secs => $2::double precision / 1000)
       RETURNING extract(epoch FROM rl.tat - clock_timestamp()) * 1000 - $3::double precision * $2 AS over_ms`,
      [c.key, c.periodMs, c.burst],
    );
    const over = Number(rows[0]!.over_ms);
    if (over <= 0) return undefined;
    await this.refundGuess(c);
    return { retryAfterMs: Math.ceil(over) };
  }

  async refundGuess(c: LimitCharge): Promise<void> {
    await this.pooled.query(
      "UPDATE rate_limits SET tat = tat - make_interval(secs => $2::double precision / 1000) WHERE key = $1",
      [c.key, c.periodMs],
    );
  }

  /** One attempt's transaction; a CommitThenFail keeps what the attempt wrote, then fails with its error. */
  async attempt<T>(fn: (tx: AttemptTx) => Promise<T>): Promise<T> {
    try {
      return await withTransaction(this.db, (client) => fn(new PgAttemptTx(client)), (err) => err instanceof CommitThenFail);
    } catch (err) {
      if (err instanceof CommitThenFail) throw err.failure;
      throw isUnavailable(err) ? unavailableError(err) : err;
    }
  }

  async sessionByTokenHash(tenantId: string, tokenHash: Buffer): Promise<SessionRecord | undefined> {
    const { rows } = await query<SessionRow>(this.db, {
      text: `SELECT ${SESSION_COLUMNS} FROM sessions WHERE tenant_id = $1 AND token_hash = $2`,
      values: [tenantId, tokenHash],
    });
    return rows[0] ? toSession(rows[0]) : undefined;
  }

  async sessionById(tenantId: string, sessionId: string): Promise<SessionRecord | undefined> {
    const { rows } = await query<SessionRow>(this.db, {
      text: `SELECT ${SESSION_COLUMNS} FROM sessions WHERE tenant_id = $1 AND id = $2`,
      values: [tenantId, sessionId],
    });
    return rows[0] ? toSession(rows[0]) : undefined;
  }

  updateSession(sessionId: string, update: SessionUpdate): Promise<SessionRecord | undefined> {
    return updateSession(this.pooled, sessionId, update);
  }

  async revokeSession(sessionId: string): Promise<void> {
    await query(this.db, { text: "UPDATE sessions SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1", values: [sessionId] });
  }

  user(userId: string): Promise<UserRecord> {
    return loadUser(this.pooled, userId);
  }
}
