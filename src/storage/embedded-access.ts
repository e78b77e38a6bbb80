// Who may connect to the embedded Postgres: only this machine, over TCP on
// 127.0.0.1 (no Unix socket), only as its one user, and only with the
// random password kept in DATA_DIR, checked by SCRAM (the password never
// crosses the connection). A data directory made before this was so (its
// password was "postgres") is moved to a random password on its next start.
import { chown, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import type { Logger } from "pino";

export const EMBEDDED_USER = "postgres";
/** The password every embedded data directory had before it was random. */
const LEGACY_PASSWORD = "postgres";

/** Server flags: loopback TCP only, no socket, SCRAM verifiers for passwords. */
export const ACCESS_FLAGS = ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "password_encryption=scram-sha-256"];

/**
 * Writes pg_hba.conf before every start, so a data directory made with
 * weaker rules (initdb's defaults, `password`, `trust`) gets these. Any role
 * may log in, but only over loopback and only with a SCRAM password: a role
 * created without one (the default) cannot log in at all, while a
 * least-privilege role given a password (the runtime role of
 * deploy/postgres/runtime-grants.sql) can, as it would on a real server.
 */
export async function restrictAccess(databaseDir: string): Promise<void> {
  const file = path.join(databaseDir, "pg_hba.conf");
  await writeFile(file, `# Written by otp-service at each start.\nhost all all 127.0.0.1/32 scram-sha-256\n`, { mode: 0o600 });
  // Postgres (as its own system user when we run as root) must read it.
  const owner = await stat(databaseDir);
  await chown(file, owner.uid, owner.gid);
}

/** The connection URL for the embedded database. */
export function embeddedUrl(port: number, password: string): string {
  return `postgres://${EMBEDDED_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
}

/**
 * Makes sure `password` is the user's password: if it is refused and the
 * old fixed one is accepted, the data directory predates random passwords,
 * and its password is changed to `password`.
 */
export async function adoptPassword(port: number, password: string, logger: Logger): Promise<void> {
  if (await accepts(port, password)) return;
  const legacy = new pg.Client({ connectionString: embeddedUrl(port, LEGACY_PASSWORD) });
  try {
    await legacy.connect();
  } catch {
    throw new Error(`the embedded Postgres refused the password in DATA_DIR/postgres-password`);
  }
  try {
    await legacy.query(`ALTER ROLE ${EMBEDDED_USER} PASSWORD ${legacy.escapeLiteral(password)}`);
    logger.info("embedded Postgres: replaced the old fixed password by the random one in DATA_DIR");
  } finally {
    await legacy.end();
  }
}

async function accepts(port: number, password: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: embeddedUrl(port, password) });
  try {
    await client.connect();
    return true;
  } catch (err) {
    // 28P01: wrong password. Anything else (not up, not reachable) is not ours to fix here.
    if ((err as { code?: string }).code === "28P01") return false;
    throw err;
  } finally {
    await client.end().catch(() => {});
  }
}
