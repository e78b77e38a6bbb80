// Asymmetric keys that sign session and legacy bearer JWTs (ES256, via
// jose). Private keys are stored only sealed under the pepper; each key has
// a kid so keys can rotate while tokens signed by the previous one verify.
import { randomUUID } from "node:crypto";
import { createLocalJWKSet, exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type JWK, type JWTPayload } from "jose";
import type { Secrets } from "./secrets.js";

export interface StoredKey {
  readonly kid: string;
  readonly publicJwk: JWK;
  readonly privateSealed: Buffer;
  readonly pepperId: number;
  readonly retired: boolean;
}

/** Storage port for signing keys. */
export interface KeyStore {
  /** Returns the keys to publish, first creating `fresh()` when none is active. */
  ensureActive(fresh: () => Promise<StoredKey>): Promise<StoredKey[]>;
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

const ALG = "ES256";

export class KeyRing {
  private constructor(
    private readonly active: { kid: string; key: CryptoKey | Uint8Array },
    private readonly published: readonly PublicJwk[],
  ) {}

  static async open(store: KeyStore, secrets: Secrets): Promise<KeyRing> {
    const keys = await store.ensureActive(async () => {
      const kid = `jwk-${randomUUID()}`;
      const { publicKey, privateKey } = await generateKeyPair(ALG, { extractable: true });
      const privateJwk = await exportJWK(privateKey);
      return {
        kid,
        publicJwk: await exportJWK(publicKey),
        privateSealed: secrets.encrypt(JSON.stringify(privateJwk), kid),
        pepperId: secrets.keyId,
        retired: false,
      };
    });
    const current = keys.find((k) => !k.retired);
    if (!current) throw new Error("no active signing key");
    const privateJwk = JSON.parse(secrets.decrypt(current.privateSealed, current.pepperId, current.kid)) as JWK;
    const published = keys.map((k) => ({
      kty: String(k.publicJwk.kty),
      crv: String(k.publicJwk.crv),
      x: String(k.publicJwk.x),
      y: String(k.publicJwk.y),
      kid: k.kid,
      alg: ALG,
      use: "sig",
    }));
    return new KeyRing({ kid: current.kid, key: await importJWK(privateJwk, ALG) }, published);
  }

  /** The JSON Web Key Set, current key first. */
  jwks(): readonly PublicJwk[] {
    return this.published;
  }

  async sign(
    claims: JWTPayload,
    t: { issuer: string; audience: string[] | string; subject: string; nowMs: number; ttlSeconds: number },
  ): Promise<string> {
    const iat = Math.floor(t.nowMs / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: ALG, kid: this.active.kid, typ: "JWT" })
      .setIssuer(t.issuer)
      .setAudience(t.audience)
      .setSubject(t.subject)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + t.ttlSeconds)
      .sign(this.active.key);
  }

  /** Verifies signature, issuer, audience and lifetime; undefined if any fails. */
  async verify(jwt: string, expect: { issuer: string; audience: string; nowMs: number }): Promise<JWTPayload | undefined> {
    try {
      const { payload } = await jwtVerify(jwt, createLocalJWKSet({ keys: [...this.published] as JWK[] }), {
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
}
