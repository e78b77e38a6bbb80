// The sign-in use cases: authenticate a passcode (starting or extending a
// session), exchange a legacy customer's passcode for a bearer token, check
// and revoke sessions. Every attempt is judged by otp-verifier and recorded
// in the audit log in the same transaction.
import { createHash, randomBytes } from "node:crypto";
import type { Clock } from "./clock.js";
import { DomainError } from "./errors.js";
import { newId } from "./ids.js";
import type { Client } from "./otp-sender.js";
import { normalizeAddress } from "./otp-sender.js";
import { failureEffects, judgeAttempt, type AttemptLimits, type ClientMatch, type EmailState, type Verdict } from "./otp-verifier.js";
import { guessCharges, type LimitCharge, type RateLimit } from "./rate-limit-policy.js";
import { ResponseFloor } from "./response-floor.js";
import type { Secrets } from "./secrets.js";
import { CommitThenFail, type AttemptTx, type EmailLookup, type Factor, type SessionRecord, type SignInStore, type UserRecord } from "./sign-in-records.js";
import type { TenantKeys } from "./signing-keys.js";
import type { Tenant } from "./tenants.js";

const SESSION_JWT_TTL_SECONDS = 300;
export const SESSION_CLAIM = "https://stytch.com/session";
const RESERVED_CLAIMS = new Set(["iss", "sub", "aud", "exp", "nbf", "iat", "jti", SESSION_CLAIM]);
const MAX_CUSTOM_CLAIMS_BYTES = 4096;

export interface SessionHandle {
  readonly token?: string;
  readonly jwt?: string;
}

export interface IssuedSession {
  readonly session: SessionRecord;
  /** Known only when the caller presented it or the session is new. */
  readonly token: string;
  readonly jwt: string;
}

export interface AuthenticateRequest {
  readonly tenant: Tenant;
  readonly methodId: string;
  readonly code: string;
  readonly client: Client;
  /** The address the call itself came from (the caller's backend, for a Stytch call). */
  readonly peer: string | undefined;
  readonly match: ClientMatch;
  readonly sessionDurationMinutes: number | undefined;
  readonly existing: SessionHandle;
  readonly customClaims: Record<string, unknown> | undefined;
}

/** Where a check's guessing budget is kept, and for which client address. */
interface Guesser {
  readonly scope: string;
  readonly ip: string | undefined;
}

export interface SignInPolicy {
  readonly attempts: AttemptLimits;
  /** Failed checks per client network, on every route (see guessCharge). */
  readonly guessLimit: RateLimit;
  readonly legacyTokenTtlMinutes: number;
  /** The legacy exchange answers no sooner than this (or than its recent calls took; see ResponseFloor), whatever the outcome. */
  readonly legacyMinResponseMs: number;
}

export class SignIn {
  private readonly exchangeFloor: ResponseFloor;

  constructor(
    private readonly store: SignInStore,
    private readonly secrets: Secrets,
    private readonly keys: TenantKeys,
    private readonly clock: Clock,
    private readonly policy: SignInPolicy,
  ) {
    this.exchangeFloor = new ResponseFloor(policy.legacyMinResponseMs);
  }

  async authenticateOtp(req: AuthenticateRequest): Promise<{ user: UserRecord; issued: IssuedSession | undefined }> {
    checkCustomClaims(req.customClaims);
    const existing = req.existing.token || req.existing.jwt ? await this.findLiveSession(req.tenant, req.existing) : undefined;
    // The session JWT is signed inside the attempt's transaction: have the
    // tenant's keys in memory first.
    if (existing || req.sessionDurationMinutes !== undefined) await this.keys.prepare(req.tenant);
    const now = this.clock.now();
    // The end user's address when the caller reports it, else the caller's own.
    const guesser = { scope: `p${req.tenant.id}`, ip: req.client.ipAddress ?? req.peer };
    return this.budgeted(guesser, () => this.store.attempt(async (tx) => {
      const { state, user } = await this.judge(tx, req.tenant, { emailId: req.methodId }, req.code, req.client, req.match, "authenticate", now);
      if (existing && existing.session.userId !== user.userId) {
        throw new DomainError("session_not_found", "The session belongs to another user.");
      }
      const factor: Factor = {
        type: "otp",
        delivery_method: "email",
        last_authenticated_at: new Date(now).toISOString(),
        email_factor: { email_id: state.emailId, email_address: state.address },
      };
      let session: SessionRecord | undefined;
      let token = existing?.token ?? "";
      if (existing) {
        session = await tx.updateSession(existing.session.id, {
          now,
          expiresAt: req.sessionDurationMinutes === undefined ? undefined : now + req.sessionDurationMinutes * 60_000,
          factors: [...existing.session.factors.filter((f) => f.email_factor.email_id !== state.emailId), factor],
          customClaims: req.customClaims,
        });
        // Revoked (or expired) since it was read: the code is not spent on it.
        if (!session) throw sessionNotFound();
      } else if (req.sessionDurationMinutes !== undefined) {
        token = randomBytes(32).toString("base64url");
        session = await tx.createSession({
          id: newId("session", req.tenant.live),
          tenantId: req.tenant.id,
          userId: user.userId,
          tokenHash: hashToken(token),
          now,
          expiresAt: now + req.sessionDurationMinutes * 60_000,
          ipAddress: req.client.ipAddress,
          userAgent: req.client.userAgent,
          factors: [factor],
          customClaims: req.customClaims ?? {},
        });
      }
      return { user, issued: session ? { session, token, jwt: await this.sessionJwt(req.tenant, session) } : undefined };
    }));
  }

  /**
   * Legacy portal: the customer's code for a bearer JWT. The legacy routes
   * are public, so nothing in the answer may tell a customer from a
   * stranger: an unknown address, a wrong, stale or exhausted code and a
   * locked customer all get one answer, no sooner than the response floor.
   * The guessing budget is the browser's, across every business, and is
   * charged alike whoever the address is.
   */
  exchangeOtp(business: Tenant, email: string, code: string, client: Client): Promise<string> {
    return this.exchangeFloor.hold(async () => {
      const now = this.clock.now();
      const address = normalizeAddress(email);
      const guesser = { scope: "legacy", ip: client.ipAddress };
      const user = await this.budgeted(guesser, () =>
        this.store.attempt(async (tx) => {
          const { user } = await this.judge(tx, business, { address }, code, client, {}, "exchange", now);
          return user;
        }),
      );
      return this.keys.sign(
        business,
        { email: address, business_id: Number(business.externalId) },
        {
          issuer: legacyIssuerOf(business),
          audience: `business:${business.externalId}`,
          subject: user.userId,
          nowMs: now,
          ttlSeconds: this.policy.legacyTokenTtlMinutes * 60,
        },
      );
    });
  }

  async authenticateSession(
    tenant: Tenant,
    handle: SessionHandle,
    durationMinutes: number | undefined,
    customClaims: Record<string, unknown> | undefined,
  ): Promise<IssuedSession & { user: UserRecord }> {
    checkCustomClaims(customClaims);
    const found = await this.findLiveSession(tenant, handle);
    const now = this.clock.now();
    const session = await this.store.updateSession(found.session.id, {
      now,
      expiresAt: durationMinutes === undefined ? undefined : now + durationMinutes * 60_000,
      factors: undefined,
      customClaims,
    });
    // A revoke that landed since the check wins: no JWT for it, nothing extended.
    if (!session) throw sessionNotFound();
    return { session, token: found.token, jwt: await this.sessionJwt(tenant, session), user: await this.store.user(session.userId) };
  }

  async revokeSession(tenant: Tenant, handle: SessionHandle & { sessionId?: string }): Promise<void> {
    const session = handle.sessionId
      ? await this.store.sessionById(tenant.id, handle.sessionId)
      : (await this.findLiveSession(tenant, handle)).session;
    if (!session || session.revokedAt !== null) throw sessionNotFound();
    await this.store.revokeSession(session.id);
  }

  /** The user of a live session, for adding an address to them. */
  async sessionUserId(tenant: Tenant, handle: SessionHandle): Promise<string> {
    return (await this.findLiveSession(tenant, handle)).session.userId;
  }

  /**
   * Runs one check of a code under the client's guessing budget: charged
   * before the check (so concurrent checks can never exceed it), given back
   * when the check succeeds or the service failed it. Over budget, nothing
   * is checked.
   */
  private async budgeted<T>(guesser: Guesser, check: () => Promise<T>): Promise<T> {
    const charges = guessCharges(this.policy.guessLimit, this.secrets, guesser.scope, guesser.ip);
    const over = await this.chargeAll(charges);
    if (over) {
      throw new DomainError("rate_limited", "Too many failed passcode checks from this client: wait before trying again.", {
        retryAfterMs: over.retryAfterMs,
        limit: "guess",
      });
    }
    let result: T;
    try {
      result = await check();
    } catch (err) {
      if (err instanceof DomainError && err.reason === "unavailable") await this.refundAll(charges).catch(() => {});
      throw err;
    }
    await this.refundAll(charges);
    return result;
  }

  /**
   * Charges every row (the client's, then its IPv6 site's), or none: when
   * one is over, those already charged are given back, and the answer is
   * that row's wait. One round trip for an IPv4 client, which has one row.
   */
  private async chargeAll(charges: readonly LimitCharge[]): Promise<{ readonly retryAfterMs: number } | undefined> {
    for (const [i, charge] of charges.entries()) {
      const over = await this.store.chargeGuess(charge);
      if (over) {
        await this.refundAll(charges.slice(0, i));
        return over;
      }
    }
    return undefined;
  }

  private async refundAll(charges: readonly LimitCharge[]): Promise<void> {
    for (const charge of charges) await this.store.refundGuess(charge);
  }

  private async judge(
    tx: AttemptTx,
    tenant: Tenant,
    lookup: EmailLookup,
    code: string,
    client: Client,
    match: ClientMatch,
    action: "authenticate" | "exchange",
    now: number,
  ): Promise<{ state: EmailState; user: UserRecord }> {
    const state = await tx.lockEmail(tenant.id, lookup);
    const verdict = judgeAttempt(state, code, now, this.secrets, match);
    const base = {
      tenantId: tenant.id,
      action,
      userId: state?.userId,
      emailId: state?.emailId,
      ipAddress: client.ipAddress,
      userAgent: client.userAgent,
    };
    if (verdict.kind === "ok") {
      const user = await tx.recordSuccess(state!.emailId, verdict.codeId);
      await tx.audit({ ...base, outcome: "ok", reason: undefined });
      return { state: state!, user };
    }
    if (state && verdict.kind !== "locked") await tx.recordFailure(state.emailId, failureEffects(state, verdict, now, this.policy.attempts));
    await tx.audit({ ...base, outcome: verdict.kind, reason: reasonOf(verdict) });
    // The failure's bookkeeping must commit even though the call fails.
    throw new CommitThenFail(action === "exchange" ? legacyOtpInvalid() : verdictError(verdict, now));
  }

  private async findLiveSession(tenant: Tenant, handle: SessionHandle): Promise<{ session: SessionRecord; token: string }> {
    const now = this.clock.now();
    let session: SessionRecord | undefined;
    if (handle.token) {
      session = await this.store.sessionByTokenHash(tenant.id, hashToken(handle.token));
    } else if (handle.jwt) {
      const claims = await this.keys.verify(tenant, handle.jwt, { issuer: issuerOf(tenant), audience: tenant.externalId, nowMs: now });
      const id = (claims?.[SESSION_CLAIM] as { id?: unknown } | undefined)?.id;
      if (typeof id === "string") session = await this.store.sessionById(tenant.id, id);
    }
    if (!session || session.revokedAt !== null || session.expiresAt <= now) throw sessionNotFound();
    return { session, token: handle.token ?? "" };
  }

  private sessionJwt(tenant: Tenant, s: SessionRecord): Promise<string> {
    return this.keys.sign(
      tenant,
      {
        ...s.customClaims,
        [SESSION_CLAIM]: {
          id: s.id,
          started_at: new Date(s.startedAt).toISOString(),
          last_accessed_at: new Date(s.lastAccessedAt).toISOString(),
          expires_at: new Date(s.expiresAt).toISOString(),
          attributes: { ip_address: s.ipAddress ?? "", user_agent: s.userAgent ?? "" },
          authentication_factors: s.factors,
        },
      },
      {
        issuer: issuerOf(tenant),
        audience: [tenant.externalId],
        subject: s.userId,
        nowMs: s.lastAccessedAt,
        ttlSeconds: SESSION_JWT_TTL_SECONDS,
      },
    );
  }
}

function issuerOf(tenant: Tenant): string {
  return `stytch.com/${tenant.externalId}`;
}

/** The issuer of a business's legacy bearer tokens (their audience is `business:<id>`). */
export function legacyIssuerOf(business: Tenant): string {
  return `otp-service/business/${business.externalId}`;
}

export function hashToken(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}

function sessionNotFound(): DomainError {
  return new DomainError("session_not_found", "No active session matches the session_token, session_jwt or session_id.");
}

function reasonOf(v: Verdict): string | undefined {
  switch (v.kind) {
    case "stale":
      return v.why;
    case "client_mismatch":
      return v.field;
    default:
      return undefined;
  }
}

/** The legacy exchange's one answer to every failed check. */
function legacyOtpInvalid(): DomainError {
  return new DomainError("invalid_argument", "otp is invalid or expired", {
    violations: [{ field: "otp", description: "is invalid or expired" }],
  });
}

function verdictError(v: Verdict, now: number): DomainError {
  switch (v.kind) {
    case "locked":
      return new DomainError("user_lock_limit_reached", "Too many failed attempts for this email: wait before trying again.", {
        retryAfterMs: Math.max(0, v.until - now),
      });
    case "stale":
      return new DomainError("unable_to_auth_otp_code", `The passcode is no longer valid (${v.why}): request a new one.`);
    case "client_mismatch":
      return new DomainError("unable_to_auth_otp_code", `The ${v.field} does not match the one the passcode was requested from.`);
    default:
      return new DomainError("otp_code_not_found", "The passcode is incorrect.");
  }
}

function checkCustomClaims(claims: Record<string, unknown> | undefined): void {
  if (!claims) return;
  const violation = (description: string) =>
    new DomainError("invalid_argument", `session_custom_claims ${description}`, {
      violations: [{ field: "session_custom_claims", description }],
    });
  const reserved = Object.keys(claims).find((k) => RESERVED_CLAIMS.has(k));
  if (reserved) throw violation(`may not set the reserved claim ${JSON.stringify(reserved)}`);
  if (Buffer.byteLength(JSON.stringify(claims)) > MAX_CUSTOM_CLAIMS_BYTES) throw violation("must be at most 4 KB of JSON");
}
