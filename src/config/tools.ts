// Configuration of the service's tools: the admin CLI and the migrate step.
import path from "node:path";
import { ConfigError, type Env } from "./config-error.js";

/** What the admin CLI needs: where the server is, and the admin token if set. */
export interface AdminCliConfig {
  readonly url: string;
  readonly token: string | undefined;
  readonly dataDir: string;
}

export function loadAdminCliConfig(env: Env = process.env): AdminCliConfig {
  const url = env.OTP_URL || "http://127.0.0.1:8080";
  if (!/^https?:\/\/[^\s]+$/.test(url)) throw new ConfigError(`OTP_URL must be an http:// or https:// URL, got "${url}"`);
  return Object.freeze({
    url: url.replace(/\/+$/, ""),
    token: env.ADMIN_TOKEN || undefined,
    dataDir: path.resolve(env.DATA_DIR || ".data"),
  });
}

/** What the migrate step (`npm run migrate`) needs: the database to migrate. */
export function loadMigrateConfig(env: Env = process.env): { readonly databaseUrl: string } {
  const databaseUrl = env.DATABASE_URL;
  if (!databaseUrl) throw new ConfigError("DATABASE_URL is required: the migrate step applies migrations to that database");
  if (!/^postgres(ql)?:\/\//.test(databaseUrl)) throw new ConfigError("DATABASE_URL must be a postgres:// or postgresql:// URL");
  return Object.freeze({ databaseUrl });
}
