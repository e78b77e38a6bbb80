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
  if (!/^https?:\/\/[^\s]+$/.test(url) || !URL.canParse(url)) throw new ConfigError(`OTP_URL must be an http:// or https:// URL, got "${url}"`);
  const { protocol, hostname } = new URL(url);
  // The token rides in every request: over plain HTTP anyone on the path
  // reads it. Only this machine's own loopback is safe without TLS, unless
  // the operator says the path is private (a cluster network, an SSH tunnel).
  if (protocol === "http:" && !isLoopbackHost(hostname) && env.OTP_ALLOW_HTTP !== "1") {
    throw new ConfigError(
      `OTP_URL is plain http:// to ${hostname}, which is not this machine: the admin token would cross the network in clear. Use https://, or set OTP_ALLOW_HTTP=1 if the path between is private`,
    );
  }
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

/** localhost, 127.0.0.0/8 and ::1: names that never leave this machine. */
function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host);
}
