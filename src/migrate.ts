// The migrate step: `npm run migrate`, or `node dist/server/migrate.mjs` in
// the image (the Kubernetes migration Job). Applies what is pending to
// DATABASE_URL and exits; running it again applies nothing. Exit codes:
// 0 done, 1 failed, 2 configuration error.
import { pathToFileURL } from "node:url";
import { ConfigError, loadMigrateConfig } from "./config.js";
import { createPool } from "./storage/db.js";
import { migrate } from "./storage/migrate.js";

async function main(): Promise<number> {
  let databaseUrl: string;
  try {
    ({ databaseUrl } = loadMigrateConfig());
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`otp-service migrate: configuration error: ${err.message}\n`);
    return 2;
  }
  const db = createPool(databaseUrl, 1);
  try {
    const { applied, total } = await migrate(db);
    const line = { level: "info", time: new Date().toISOString(), msg: applied.length ? "migrations applied" : "schema up to date", applied, schema_version: total };
    process.stdout.write(`${JSON.stringify(line)}\n`);
    return 0;
  } catch (err) {
    const host = URL.canParse(databaseUrl) ? new URL(databaseUrl).host : "?";
    process.stderr.write(`otp-service migrate: failed on DATABASE_URL (host ${host}): ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    await db.end().catch(() => {});
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // As PID 1 in a container node ignores SIGTERM unless it listens for it.
  // Stopping mid-way is safe: the migrations run in one transaction, which
  // Postgres rolls back when the connection drops.
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => process.exit(signal === "SIGTERM" ? 143 : 130));
  main().then((code) => process.exit(code));
}
