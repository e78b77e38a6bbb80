// Signing keys in Postgres. Creating the first key runs under an advisory
// lock so instances starting together agree on one.
import type { JWK } from "jose";
import type { KeyStore, StoredKey } from "../domain/signing-keys.js";
import { type Db, withTransaction } from "./db.js";

const LOCK_ID = 7_400_113_002;

interface Row {
  kid: string;
  public_jwk: JWK;
  private_sealed: Buffer;
  pepper_id: number;
  retired_at: Date | null;
}

export class PgKeyStore implements KeyStore {
  constructor(private readonly db: Db) {}

  async ensureActive(fresh: () => Promise<StoredKey>): Promise<StoredKey[]> {
    const rows = await withTransaction(this.db, async (client) => {
      await client.query("SELECT pg_advisory_xact_lock($1)", [LOCK_ID]);
      const select = () =>
        client.query<Row>(
          `SELECT kid, public_jwk, private_sealed, pepper_id, retired_at FROM signing_keys
           WHERE retired_at IS NULL OR retired_at > now() - interval '1 day'
           ORDER BY (retired_at IS NULL) DESC, created_at DESC`,
        );
      const { rows } = await select();
      if (rows.some((r) => r.retired_at === null)) return rows;
      const key = await fresh();
      await client.query(
        "INSERT INTO signing_keys (kid, public_jwk, private_sealed, pepper_id) VALUES ($1, $2, $3, $4)",
        [key.kid, key.publicJwk, key.privateSealed, key.pepperId],
      );
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
}
