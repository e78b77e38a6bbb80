// Signing keys in Postgres, per tenant. Creating a tenant's first key and
// rotating its keys run under a per-tenant advisory lock, so instances
// starting together agree on one key and a rotation is never lost.
import type { JWK } from "jose";
import type pg from "pg";
import type { KeyStore, StoredKey } from "../domain/signing-keys.js";
import { type Db, withTransaction } from "./db.js";

/** A per-tenant advisory lock key. */
const LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('signing_keys:' || $1::text, 0))";

interface Row {
  kid: string;
  public_jwk: JWK;
  private_sealed: Buffer;
  pepper_id: number;
  retired_at: Date | null;
}


export class PgKeyStore implements KeyStore {
  constructor(private readonly db: Db) {}

  async ensureActive(tenantId: string, retentionMinutes: number, fresh: () => Promise<StoredKey>): Promise<StoredKey[]> {
    const rows = await withTransaction(this.db, async (client) => {
      await client.query(LOCK, [tenantId]);
      const select = () =>
        client.query<Row>(
          `SELECT kid, public_jwk, private_sealed, pepper_id, retired_at FROM signing_keys
           WHERE tenant_id = $1 AND (retired_at IS NULL OR retired_at > now() - make_interval(mins => $2))
           ORDER BY (retired_at IS NULL) DESC, created_at DESC`,
          [tenantId, retentionMinutes],
        );
      const { rows } = await select();
      if (rows.some((r) => r.retired_at === null)) return rows;
      await insert(client, tenantId, await fresh());
      return (await select()).rows;
    });
    return rows.map((r) => ({
      kid: r.kid,
      publicJwk: r.public_jwk,
      privateSealed: r.private_sealed,
      pepperId: r.pepper_id,
      retired: r.retired_at !== null,
    }));
  }

  async rotate(tenantId: string, fresh: StoredKey, dropPrevious: boolean): Promise<void> {
    await withTransaction(this.db, async (client) => {
      await client.query(LOCK, [tenantId]);
      if (dropPrevious) {
        await client.query("DELETE FROM signing_keys WHERE tenant_id = $1", [tenantId]);
      } else {
        await client.query("UPDATE signing_keys SET retired_at = now() WHERE tenant_id = $1 AND retired_at IS NULL", [tenantId]);
      }
      await insert(client, tenantId, fresh);
    });
  }
}

async function insert(client: pg.PoolClient, tenantId: string, key: StoredKey): Promise<void> {
  await client.query("INSERT INTO signing_keys (kid, tenant_id, public_jwk, private_sealed, pepper_id) VALUES ($1, $2, $3, $4, $5)", [
    key.kid,
    tenantId,
    key.publicJwk,
    key.privateSealed,
    key.pepperId,
  ]);
}
