// Authenticates a project by id and secret. The stored secret is a slow hash,
// so a verified pair is remembered for a short while under a keyed fast hash
// of the presented secret: the hot path never re-runs scrypt, and the cache
// never holds a secret.
import { createHmac, randomBytes } from "node:crypto";
import type { Clock } from "./clock.js";
import { DomainError } from "./errors.js";
import { isProjectId } from "./ids.js";
import { DECOY_HASH, verifySecret } from "./password-hash.js";
import type { Tenant, TenantStore } from "./tenants.js";

export interface ProjectAuthOptions {
  readonly cacheSize: number;
  readonly cacheTtlMs: number;
}

export class ProjectAuthenticator {
  private readonly cacheKey = randomBytes(32);
  private readonly verified = new Map<string, { tenant: Tenant; expiresAt: number }>();
  private readonly verifying = new Map<string, Promise<Tenant>>();

  constructor(
    private readonly store: TenantStore,
    private readonly clock: Clock,
    private readonly options: ProjectAuthOptions = { cacheSize: 10_000, cacheTtlMs: 60_000 },
  ) {}

  /**
   * Forgets every verified secret of a project (after a rotation), so this
   * instance asks the database again at once. Other instances forget theirs
   * when their entries expire (cacheTtlMs).
   */
  forget(projectId: string): void {
    for (const [key, entry] of this.verified) if (entry.tenant.externalId === projectId) this.verified.delete(key);
  }

  async authenticate(projectId: string, secret: string): Promise<Tenant> {
    const fingerprint = createHmac("sha256", this.cacheKey).update(projectId).update("\0").update(secret).digest("base64");
    const hit = this.verified.get(fingerprint);
    if (hit && hit.expiresAt > this.clock.now()) return hit.tenant;
    if (hit) this.verified.delete(fingerprint);

    // Concurrent first calls with the same pair share one slow verification.
    let pending = this.verifying.get(fingerprint);
    if (!pending) {
      pending = this.verify(projectId, secret, fingerprint).finally(() => this.verifying.delete(fingerprint));
      this.verifying.set(fingerprint, pending);
    }
    return pending;
  }

  private async verify(projectId: string, secret: string, fingerprint: string): Promise<Tenant> {
    const credentials = isProjectId(projectId) ? await this.store.projectCredentials(projectId) : undefined;
    let expiresAt = this.clock.now() + this.options.cacheTtlMs;
    let ok = await verifySecret(secret, credentials?.secretHash ?? DECOY_HASH);
    const previousUntil = credentials?.previousSecretExpiresAt ?? 0;
    if (!ok && credentials?.previousSecretHash && previousUntil > this.clock.now()) {
      // Within a rotation's grace period the previous secret still works,
      // but is never remembered past the end of it.
      ok = await verifySecret(secret, credentials.previousSecretHash);
      expiresAt = Math.min(expiresAt, previousUntil);
    }
    if (!credentials || !ok) {
      throw new DomainError("unauthenticated", "Unauthorized credentials: check the project_id and secret.");
    }
    if (this.verified.size >= this.options.cacheSize) {
      // Maps iterate in insertion order: drop the oldest entry.
      this.verified.delete(this.verified.keys().next().value!);
    }
    this.verified.set(fingerprint, { tenant: credentials.tenant, expiresAt });
    return credentials.tenant;
  }
}
