// Asymmetric keys that sign session and legacy bearer JWTs (ES256, via
// jose), one set per tenant: each project and each business signs with its
// own keys and publishes only those, so a relying party that checks a token
// against its tenant's key set never accepts another tenant's token. Private
// keys are stored only sealed under the pepper (AES-256-GCM, bound to the
// kid); each key has a kid so keys can rotate while tokens signed by the
// previous one still verify.
import { randomUUID } from "node:crypto";
import {
  createLocalJWKSet,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  type JWTPayload,
  jwtVerify,
  SignJWT,
} from "jose";
import { BusinessDirectory } from "./business-directory.js";
import type { Clock } from "./clock.js";
import { DomainError } from "./errors.js";
import { isProjectId } from "./ids.js";
import { ProjectDirectory } from "./project-directory.js";
import type { Secrets } from "./secrets.js";
import type { Tenant, TenantStore } from "./tenants.js";

export interface StoredKey {
  readonly kid: string;
  readonly publicJwk: JWK;
  readonly privateSealed: Buffer;
  readonly pepperId: number;
  readonly retired: boolean;
}

/** Storage port for signing keys, per tenant. */
export interface KeyStore {
  /**
   * The tenant's keys to publish (the active one first, then those retired
   * less than `retentionMinutes` ago), first adding `fresh()` when it has no
   * active key.
   */
  ensureActive(tenantId: string, retentionMinutes: number, fresh: () => Promise<StoredKey>): Promise<StoredKey[]>;
  /**
   * Retires the tenant's active key and adds `fresh` as the active one; with
   * `dropPrevious`, deletes every older key of the tenant at once.
   */
  rotate(tenantId: string, fresh: StoredKey, dropPrevious: boolean): Promise<void>;
}

export interface PublicJwk {
  readonly kty: string;
  readonly crv: string;
  readonly x: string;
  readonly y: string;
  readonly kid: string;
  readonly alg: string;
  readonly use: string;
}

export interface TokenTerms {
  readonly issuer: string;
  readonly audience: string[] | string;
  readonly subject: string;
  readonly nowMs: number;
  readonly ttlSeconds: number;
}

const ALG = "ES256";

/** One tenant's keys: the active private key and the published public ones. */
class KeyRing {
  constructor(
    readonly active: { kid: string; key: CryptoKey | Uint8Array },
    readonly published: readonly PublicJwk[],
    readonly loadedAt: number,
  ) {}
}

export interface TenantKeysOptions {
  /** How long a retired key stays published (it must outlive the tokens it signed). */
  readonly retentionMinutes: number;
  /** How long an instance keeps a tenant's keys before reading them again. */
  readonly cacheTtlMs: number;
}

/** Where the public key sets find the tenant named (remembered, and a miss charged to the asker). */
export interface PublicTenantLookups {
  readonly projects: ProjectDirectory;
  readonly businesses: BusinessDirectory;
}

export class TenantKeys {
  private readonly rings = new Map<string, Promise<KeyRing>>();
  /** When each tenant's keys were last re-read for an unknown kid. */
  private readonly rereadAt = new Map<string, number>();
  private readonly lookups: PublicTenantLookups;

  constructor(
    private readonly store: KeyStore,
    private readonly tenants: TenantStore,
    private readonly secrets: Secrets,
    private readonly clock: Clock,
    private readonly options: TenantKeysOptions,
    lookups?: PublicTenantLookups,
  ) {
    this.lookups = lookups ?? { projects: new ProjectDirectory(tenants, clock), businesses: new BusinessDirectory(tenants, clock) };
  }

  /**
   * A project's JSON Web Key Set, current key first; not_found for an
   * unknown project. Anyone may ask: `client` (the asker's IP) pays for an
   * id not remembered.
   */
  async projectJwks(projectId: string, client?: string): Promise<readonly PublicJwk[]> {
    const project = await this.lookups.projects.find(projectId, client);
    if (!project) throw new DomainError("not_found", "No project has that project_id.");
    return (await this.ring(project)).published;
  }

  /** A business's JSON Web Key Set, which verifies its legacy bearer tokens; paid for like projectJwks. */
  async businessJwks(businessId: string, client?: string): Promise<readonly PublicJwk[]> {
    const business = await this.lookups.businesses.find(businessId, client);
    if (!business) {
      throw new DomainError("not_found", "business_id names no known business", {
        violations: [{ field: "business_id", description: "names no known business" }],
      });
    }
    return (await this.ring(business)).published;
  }

  /**
   * Reads (or makes) the tenant's keys now, so a later sign() needs no
   * database: call it before a transaction that signs, which must not wait
   * for a second connection while it holds one.
   */
  async prepare(tenant: Tenant): Promise<void> {
    await this.ring(tenant);
  }

  async sign(tenant: Tenant, claims: JWTPayload, t: TokenTerms): Promise<string> {
    const ring = await this.ring(tenant);
    const iat = Math.floor(t.nowMs / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: ALG, kid: ring.active.kid, typ: "JWT" })
      .setIssuer(t.issuer)
      .setAudience(t.audience)
      .setSubject(t.subject)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + t.ttlSeconds)
      .sign(ring.active.key);
  }

  /** Verifies signature (by one of the tenant's keys), issuer, audience and lifetime; undefined if any fails. */
  async verify(tenant: Tenant, jwt: string, expect: { issuer: string; audience: string; nowMs: number }): Promise<JWTPayload | undefined> {
    let ring = await this.ring(tenant);
    // A key another instance made since this one read the tenant's keys:
    // read them again (at most once a second per tenant).
    const kid = kidOf(jwt);
    if (kid && !ring.published.some((k) => k.kid === kid) && this.clock.now() - (this.rereadAt.get(tenant.id) ?? 0) > 1_000) {
      this.rereadAt.set(tenant.id, this.clock.now());
      if (this.rereadAt.size > 10_000) this.rereadAt.delete(this.rereadAt.keys().next().value!);
      this.rings.delete(tenant.id);
      ring = await this.ring(tenant);
    }
    try {
      const { payload } = await jwtVerify(jwt, createLocalJWKSet({ keys: [...ring.published] as JWK[] }), {
        issuer: expect.issuer,
        audience: expect.audience,
        algorithms: [ALG],
        currentDate: new Date(expect.nowMs),
      });
      return payload;
    } catch {
      return undefined;
    }
  }

  /**
   * Gives the tenant a new active key. The previous ones stay published for
   * the retention period, so tokens they signed still verify, unless
   * `dropPrevious` (a key is compromised): then they go at once. Other
   * instances sign with the new key once their cached copy expires
   * (cacheTtlMs), and read it at once when they meet a token it signed.
   */
  async rotate(ref: { readonly projectId: string } | { readonly businessId: string }, dropPrevious: boolean): Promise<readonly PublicJwk[]> {
    const tenant =
      "projectId" in ref
        ? (isProjectId(ref.projectId) ? await this.tenants.projectCredentials(ref.projectId) : undefined)?.tenant
        : await this.tenants.business(ref.businessId);
    if (!tenant) {
      const field = "projectId" in ref ? "project_id" : "business_id";
      throw new DomainError("not_found", `${field} names no tenant`, { violations: [{ field, description: "names no tenant" }] });
    }
    await this.store.rotate(tenant.id, await this.freshKey(), dropPrevious);
    this.rings.delete(tenant.id);
    return (await this.ring(tenant)).published;
  }

  private ring(tenant: Tenant): Promise<KeyRing> {
    const cached = this.rings.get(tenant.id);
    if (cached) {
      return cached.then((ring) => {
        if (this.clock.now() - ring.loadedAt < this.options.cacheTtlMs) return ring;
        if (this.rings.get(tenant.id) === cached) this.rings.delete(tenant.id);
        return this.ring(tenant);
      });
    }
    const loading = this.load(tenant.id);
    this.rings.set(tenant.id, loading);
    loading.catch(() => this.rings.delete(tenant.id));
    return loading;
  }

  private async load(tenantId: string): Promise<KeyRing> {
    const keys = await this.store.ensureActive(tenantId, this.options.retentionMinutes, () => this.freshKey());
    const current = keys.find((k) => !k.retired);
    if (!current) throw new Error(`tenant ${tenantId} has no active signing key`);
    const privateJwk = JSON.parse(this.secrets.decrypt(current.privateSealed, current.pepperId, current.kid)) as JWK;
    const published = keys.map((k) => ({
      kty: String(k.publicJwk.kty),
      crv: String(k.publicJwk.crv),
      x: String(k.publicJwk.x),
      y: String(k.publicJwk.y),
      kid: k.kid,
      alg: ALG,
      use: "sig",
    }));
    return new KeyRing({ kid: current.kid, key: await importJWK(privateJwk, ALG) }, published, this.clock.now());
  }

  private async freshKey(): Promise<StoredKey> {
    const kid = `jwk-${randomUUID()}`;
    const { publicKey, privateKey } = await generateKeyPair(ALG, { extractable: true });
    return {
      kid,
      publicJwk: await exportJWK(publicKey),
      privateSealed: this.secrets.encrypt(JSON.stringify(await exportJWK(privateKey)), kid),
      pepperId: this.secrets.keyId,
      retired: false,
    };
  }
}

function kidOf(jwt: string): string | undefined {
  try {
    return decodeProtectedHeader(jwt).kid;
  } catch {
    return undefined;
  }
}
