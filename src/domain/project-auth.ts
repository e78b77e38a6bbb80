// Authenticates a project by id and secret. The stored secret is a slow hash,
// so a verified pair is remembered for a short while under a keyed fast hash
// of the presented secret: the hot path never re-runs scrypt, and the cache
// never holds a secret.
//
// When that short while ends the store is asked again (a rotated or deleted
// secret must stop working everywhere within it), but the pair is not hashed
// again while the stored hash it was proven against is still there: the
// answer depends only on the secret and that hash. A scrypt takes 16 MiB for
// its duration and tens of milliseconds of CPU; re-running it every TTL for
// every pair in use bought nothing but those (docs/adr/0017).
//
// Refusing a wrong secret must be cheap, or a flood of wrong secrets takes
// the CPU from legitimate callers:
// - a refused pair is remembered too (under the same fast hash), so the same
//   wrong secret again costs no scrypt;
// - an unknown or malformed project id costs no scrypt (project ids are
//   public: they name the JWKS route and sit in every session JWT);
// - failed authentications are budgeted per client network and per project
//   (charged before the scrypt, given back on success); over either budget a
//   call is refused at once with rate_limited;
// - at most maxConcurrentHashes scrypts run at once, with maxQueuedHashes
//   waiting (callers with no recent failure ahead of the others); beyond
//   that a call is refused at once.
// These guard this instance's CPU, so they are kept in memory, per instance.
import { createHmac, randomBytes } from "node:crypto";
import { clientKey } from "./client-key.js";
import type { Clock } from "./clock.js";
import { DomainError } from "./errors.js";
import { isProjectId } from "./ids.js";
import { LocalThrottle } from "./local-throttle.js";
import { verifySecret as scryptVerify } from "./password-hash.js";
import type { RateLimit } from "./rate-limit-policy.js";
import type { ProjectCredentials, Tenant, TenantStore } from "./tenants.js";
import { TtlCache } from "./ttl-cache.js";
import { WorkSlots } from "./work-slots.js";

export interface ProjectAuthOptions {
  readonly cacheSize: number;
  readonly cacheTtlMs: number;
  readonly failuresPerClient: RateLimit;
  readonly failuresPerProject: RateLimit;
  readonly maxConcurrentHashes: number;
  readonly maxQueuedHashes: number;
}

export const DEFAULT_PROJECT_AUTH: ProjectAuthOptions = {
  cacheSize: 10_000,
  cacheTtlMs: 60_000,
  failuresPerClient: { burst: 10, periodMs: 6_000 },
  failuresPerProject: { burst: 30, periodMs: 2_000 },
  maxConcurrentHashes: 2,
  maxQueuedHashes: 16,
};

/** How long a proof (pair → the stored hash it matched) is kept unused. */
const PROOF_TTL_MS = 24 * 60 * 60_000;

const unauthorized = () => new DomainError("unauthenticated", "Unauthorized credentials: check the project_id and secret.");

export class ProjectAuthenticator {
  private readonly cacheKey = randomBytes(32);
  private readonly verified: TtlCache<string, Tenant>;
  /** Pairs proven by a hash, by fingerprint: the stored hash they matched, and its project. */
  private readonly proven: TtlCache<string, { readonly projectId: string; readonly hash: string }>;
  /** Pairs found wrong, by fingerprint: the project id they named. */
  private readonly refused: TtlCache<string, string>;
  private readonly verifying = new Map<string, Promise<Tenant>>();
  private readonly perClient: LocalThrottle;
  private readonly perProject: LocalThrottle;
  private readonly hashing: WorkSlots;

  constructor(
    private readonly store: TenantStore,
    private readonly clock: Clock,
    private readonly options: ProjectAuthOptions = DEFAULT_PROJECT_AUTH,
    private readonly verifySecret: (secret: string, storedHash: string) => Promise<boolean> = scryptVerify,
  ) {
    this.perClient = new LocalThrottle(options.failuresPerClient, clock);
    this.perProject = new LocalThrottle(options.failuresPerProject, clock);
    this.hashing = new WorkSlots(options.maxConcurrentHashes, options.maxQueuedHashes);
    this.verified = new TtlCache(clock, options.cacheSize);
    this.refused = new TtlCache(clock, options.cacheSize);
    this.proven = new TtlCache(clock, options.cacheSize);
  }

  /**
   * Forgets every verified and refused secret of a project (after a
   * rotation), so this instance asks the database again at once. Other
   * instances forget theirs when their entries expire (cacheTtlMs).
   */
  forget(projectId: string): void {
    this.verified.deleteWhere((tenant) => tenant.externalId === projectId);
    this.refused.deleteWhere((refusedProject) => refusedProject === projectId);
    this.proven.deleteWhere((proof) => proof.projectId === projectId);
  }

  /** `client`: the caller's address, whose failures are budgeted. */
  async authenticate(projectId: string, secret: string, client?: string): Promise<Tenant> {
    const fingerprint = createHmac("sha256", this.cacheKey).update(projectId).update("\0").update(secret).digest("base64");
    const hit = this.verified.get(fingerprint);
    if (hit) return hit;
    if (this.refused.get(fingerprint) !== undefined) throw unauthorized();

    // Concurrent first calls with the same pair share one slow verification.
    let pending = this.verifying.get(fingerprint);
    if (!pending) {
      pending = this.verify(projectId, secret, fingerprint, client === undefined ? "unknown" : clientKey(client)).finally(() =>
        this.verifying.delete(fingerprint),
      );
      this.verifying.set(fingerprint, pending);
    }
    return pending;
  }

  private async verify(projectId: string, secret: string, fingerprint: string, client: string): Promise<Tenant> {
    // A pair proven here against a hash still stored needs neither a hash
    // nor a budget: the budgets are for guesses, and strangers' guesses (a
    // project id is public) must not lock out a caller who holds the secret.
    const proof = this.proven.get(fingerprint)?.hash;
    let credentials: ProjectCredentials | undefined;
    if (proof !== undefined) {
      credentials = await this.store.projectCredentials(projectId);
      if (credentials && provenAgainst(proof, credentials, this.clock.now())) return this.accept(fingerprint, projectId, proof, credentials);
    }

    const clean = !this.perClient.charged(client);
    const clientWait = this.perClient.take(client);
    if (clientWait !== undefined) throw throttled(clientWait);
    let projectCharged = false;
    try {
      // Read above when a proof was found (it no longer stands: the secret was rotated).
      if (proof === undefined) credentials = isProjectId(projectId) ? await this.store.projectCredentials(projectId) : undefined;
      if (!credentials) throw unauthorized();
      const projectWait = this.perProject.take(projectId);
      if (projectWait !== undefined) {
        // The project's budget, not this client's guess, refused the call.
        this.perClient.give(client);
        throw throttled(projectWait);
      }
      projectCharged = true;

      const { current, previous } = liveHashes(credentials, this.clock.now());
      const checked = await this.hashing.run(async () => {
        if (await this.verifySecret(secret, current)) return current;
        if (previous !== undefined && (await this.verifySecret(secret, previous))) return previous;
        return undefined;
      }, clean);
      if (!checked) throw new DomainError("rate_limited", "Too many authentications at once: retry shortly.", { retryAfterMs: 1_000, limit: "auth_busy" });
      const matched = checked.value;
      if (matched === undefined) {
        // A proof of a hash no longer stored proves nothing any more.
        this.proven.delete(fingerprint);
        this.refused.set(fingerprint, projectId, this.options.cacheTtlMs);
        throw unauthorized();
      }
      // A success costs no budget.
      this.perClient.give(client);
      this.perProject.give(projectId);
      return this.accept(fingerprint, projectId, matched, credentials);
    } catch (err) {
      // Refused for being busy is no failure of the caller's.
      if (err instanceof DomainError && err.details.limit === "auth_busy") {
        this.perClient.give(client);
        if (projectCharged) this.perProject.give(projectId);
      }
      throw err;
    }
  }

  /** Remembers a pair that matched `hash`, and serves it from the cache for a while. */
  private accept(fingerprint: string, projectId: string, hash: string, credentials: ProjectCredentials): Tenant {
    this.proven.set(fingerprint, { projectId, hash }, PROOF_TTL_MS);
    // The previous secret is never remembered past the end of its grace period.
    const now = this.clock.now();
    const until = hash === credentials.secretHash ? Number.POSITIVE_INFINITY : (credentials.previousSecretExpiresAt ?? 0);
    this.verified.setUntil(fingerprint, credentials.tenant, Math.min(now + this.options.cacheTtlMs, until));
    return credentials.tenant;
  }
}

/** The stored hashes a secret may match now: the current one, and the previous one within a rotation's grace period. */
function liveHashes(credentials: ProjectCredentials, now: number): { readonly current: string; readonly previous: string | undefined } {
  const previousUntil = credentials.previousSecretExpiresAt ?? 0;
  return {
    current: credentials.secretHash,
    previous: credentials.previousSecretHash !== null && previousUntil > now ? credentials.previousSecretHash : undefined,
  };
}

/** Whether a proof (the stored hash a pair once matched) still stands. */
function provenAgainst(proof: string, credentials: ProjectCredentials, now: number): boolean {
  const { current, previous } = liveHashes(credentials, now);
  return proof === current || proof === previous;
}

function throttled(retryAfterMs: number): DomainError {
  return new DomainError("rate_limited", "Too many failed authentications: wait before trying again.", {
    retryAfterMs,
    limit: "auth_failures",
  });
}
