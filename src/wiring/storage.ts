// The database side of the composition root: the embedded Postgres (when no
// DATABASE_URL is set), the pepper, tracing, the pool, and the schema.
import type { Logger } from "pino";
import type { Config } from "../config.js";
import type { Pepper } from "../domain/secrets.js";
import { startTracing, type Tracing } from "../observability/tracing.js";
import { databaseFailure, dataDirFailure } from "../start-failure.js";
import { lockDataDir } from "../storage/data-dir-lock.js";
import { createPool, type Db } from "../storage/db.js";
import { loadOrCreatePepper } from "../storage/dev-state.js";
import { startEmbeddedPostgres, type EmbeddedDatabase } from "../storage/embedded.js";
import { checkSchemaVersion, migrate } from "../storage/migrate.js";
import { traceStatements } from "../storage/statement-deadline.js";
import type { Resources } from "./resources.js";

export interface Storage {
  readonly db: Db;
  /** Set in embedded mode (no DATABASE_URL). */
  readonly embedded: EmbeddedDatabase | undefined;
  readonly pepper: Pepper;
  readonly tracing: Tracing | undefined;
  /** Migrations this build needs applied: readiness checks for them. */
  readonly migrationCount: number;
}

export async function openStorage(config: Config, logger: Logger, resources: Resources): Promise<Storage> {
  const { cleanups } = resources;
  let databaseUrl = config.databaseUrl;
  let embedded: EmbeddedDatabase | undefined;
  if (databaseUrl === undefined) {
    resources.lock = await lockDataDir(config.dataDir).catch((err) => Promise.reject(dataDirFailure(err, config.dataDir)));
    const started = await startEmbeddedPostgres(config.dataDir, config.embeddedPostgresPort, logger).catch((err) =>
      Promise.reject(dataDirFailure(err, config.dataDir)),
    );
    embedded = started;
    cleanups.push(() => started.stop());
    databaseUrl = started.url;
  }
  const pepper = config.pepper ?? {
    id: config.pepperId,
    secret: await loadOrCreatePepper(config.dataDir).catch((err) => Promise.reject(dataDirFailure(err, config.dataDir))),
  };
  // Traces (when an OTLP endpoint is configured): started before the pool
  // so every statement can be a span; stopped last, after the deliveries.
  const tracing = await startTracing(config.tracing);
  if (tracing) {
    traceStatements(true);
    cleanups.push(async () => {
      traceStatements(false);
      await tracing.shutdown();
    });
  }
  const db = createPool(databaseUrl, config.dbPoolSize);
  cleanups.unshift(() => db.end());
  // Embedded mode always migrates; with MIGRATE_ON_START=false a separate
  // step (`npm run migrate`) does, and this instance needs no DDL rights.
  let migrationCount: number;
  if (embedded || config.migrateOnStart) {
    const { applied, total } = await migrate(db).catch((err) => Promise.reject(databaseFailure(err, config)));
    if (applied.length > 0) logger.info({ applied }, "migrations applied");
    migrationCount = total;
  } else {
    const { required, differing } = await checkSchemaVersion(db).catch((err) => Promise.reject(databaseFailure(err, config)));
    if (differing.length > 0) logger.warn({ functions: differing }, "SQL functions differ from this build's; run the migrate step of the build that should serve");
    migrationCount = required;
  }
  return { db, embedded, pepper, tracing, migrationCount };
}
