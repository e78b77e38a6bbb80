// The ceiling: pgbench running the service's own send statement (SEND_SQL
// from src/storage/otp-store.ts, a call of otp_send()) with the parameter
// shapes the service binds, so "service rps / ceiling tps" says how much of
// what the database can do the service turns into sends.
//
// The statement is SEND_SQL itself with each $k replaced by an expression for
// otp_send's k-th argument, looked up by name in pg_proc, so the script
// follows the function when it changes. Fresh values come from one
// \set random per transaction; constant arrays (limit periods and bursts) are
// pgbench variables bound as text parameters, as node-postgres binds them.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type pg from "pg";
import { percentiles, type Percentiles } from "./stats.js";

export interface LimitShape {
  readonly burst: number;
  readonly periodMs: number;
}

/** What the service binds for one kind of send. */
export interface SendShape {
  readonly name: string;
  readonly tenantId: string;
  /** Charged limits in the service's order: tenant, email, then IP when known. */
  readonly limits: { tenant: LimitShape; email: LimitShape; ip?: LimitShape };
  /** Rows the tenant limit is split over (`limits.tenant` is one shard's share); 1: one row. */
  readonly tenantShards: number;
  readonly createStatus: "active" | "pending" | null;
  readonly ttlSeconds: number;
  readonly locale: string;
  readonly ipAddress: string | null;
  readonly userAgent: string | null;
  readonly keyId: number;
  readonly messageIdDomain: string;
  readonly live: boolean;
}

export interface CeilingResult {
  readonly shape: string;
  readonly tps: number;
  readonly transactions: number;
  readonly failed: number;
  readonly latencyMs: Percentiles;
  /** Postgres CPU per transaction, µs (embedded Postgres only). */
  readonly pgCpuUsPerTx: number;
  readonly script: string;
  readonly unmappedArgs: readonly string[];
}

export function findPgbench(): string | undefined {
  try {
    const found = execFileSync("sh", ["-c", "command -v pgbench"], { encoding: "utf8" }).trim();
    if (found) return found;
  } catch {
    // not on PATH
  }
  const root = "/usr/lib/postgresql";
  if (existsSync(root)) {
    for (const v of readdirSync(root).sort((a, b) => Number(b) - Number(a))) {
      const p = path.join(root, v, "bin", "pgbench");
      if (existsSync(p)) return p;
    }
  }
  return undefined;
}

/**
 * Finds pgbench, installing Debian's PostgreSQL (pgbench ships in the
 * postgresql-NN server package there) when it is missing.
 */
export function ensurePgbench(log: (s: string) => void): string {
  const found = findPgbench();
  if (found) return found;
  log("pgbench not found: installing Debian's postgresql package with apt-get (it ships pgbench)");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
  execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "postgresql"], { stdio: "inherit", env });
  const after = findPgbench();
  if (!after) throw new Error("pgbench is still missing after apt-get install postgresql");
  return after;
}

const pgArray = (values: readonly (string | number)[]) => `{${values.join(",")}}`;
const lit = (v: string | null) => (v === null ? "NULL" : `'${v.replaceAll("'", "''")}'`);

/**
 * The pgbench script for one shape: SEND_SQL with every $k bound to an
 * expression for the k-th input argument of otp_send().
 */
export async function buildScript(
  db: pg.Client,
  sendSql: string,
  shape: SendShape,
): Promise<{ script: string; vars: Record<string, string>; unmapped: string[] }> {
  const { rows } = await db.query<{ names: string[] | null; modes: string[] | null; nargs: number; types: string; argtypes: string[] }>(
    `SELECT proargnames AS names, proargmodes::text[] AS modes, pronargs AS nargs,
            pg_get_function_identity_arguments(oid) AS types,
            ARRAY(SELECT format_type(t, NULL) FROM unnest(proargtypes) WITH ORDINALITY AS a(t, i) ORDER BY i) AS argtypes
     FROM pg_proc WHERE proname = 'otp_send'`,
  );
  if (rows.length !== 1) throw new Error(`expected one otp_send() function, found ${rows.length}`);
  const fn = rows[0]!;
  const inputNames = (fn.names ?? []).filter((_, i) => !fn.modes || fn.modes[i] === "i" || fn.modes[i] === "b");
  const params = [...sendSql.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]));
  const nParams = Math.max(0, ...params);
  if (nParams !== fn.nargs || inputNames.length !== fn.nargs) {
    throw new Error(`SEND_SQL binds ${nParams} parameters but otp_send(${fn.types}) takes ${fn.nargs}`);
  }
  // Named notation (name => $k) binds by name; otherwise $k is the k-th argument.
  const named = new Map([...sendSql.matchAll(/(\w+)\s*=>\s*\$(\d+)/g)].map((m) => [Number(m[2]), m[1]!]));
  const nameOf = (k: number) => named.get(k) ?? inputNames[k - 1]!;
  const typeOf = (name: string) => fn.argtypes[inputNames.indexOf(name)]!;

  const rnd = ":n";
  // Spread over the tenant's shards as the service spreads addresses.
  const tenantKey = shape.tenantShards > 1 ? `'t:' || :tenant || ':' || (${rnd}::bigint % ${shape.tenantShards})` : `'t:' || :tenant`;
  const limitKeys = [tenantKey, `'e:' || :tenant || ':' || substr(md5(${rnd}::text), 1, 22)`];
  const limits = [shape.limits.tenant, shape.limits.email];
  if (shape.limits.ip) {
    limitKeys.push(`'i:' || :tenant || ':' || :ipkey`);
    limits.push(shape.limits.ip);
  }
  const kind = shape.live ? "live" : "test";
  const vars: Record<string, string> = {
    tenant: shape.tenantId,
    periods: pgArray(limits.map((l) => l.periodMs)),
    bursts: pgArray(limits.map((l) => l.burst)),
    // A 22-character stand-in for the HMAC of the client IP, as the service keys it.
    ipkey: "pgbenchIpKey0123456789",
  };
  const exprs: Record<string, string> = {
    p_tenant_id: ":tenant",
    p_address: `'pgb.' || ${rnd} || '@bench.example'`,
    p_limit_keys: `ARRAY[${limitKeys.join(", ")}]`,
    p_limit_periods: ":periods",
    p_limit_bursts: ":bursts",
    p_create_status: lit(shape.createStatus),
    p_new_user_id: `'user-${kind}-' || gen_random_uuid()`,
    p_new_email_id: `'email-${kind}-' || gen_random_uuid()`,
    p_for_user_id: "NULL",
    // HMAC-SHA256: 32 bytes.
    p_code_hash: `sha256(${rnd}::text::bytea)`,
    p_key_id: String(shape.keyId),
    p_ttl_seconds: String(shape.ttlSeconds),
    // AES-GCM iv(12) | tag(16) | 6-digit code: 34 bytes.
    p_payload: `substring(sha512(${rnd}::text::bytea) from 1 for 34)`,
    p_message_id: `'<' || gen_random_uuid() || '@${shape.messageIdDomain}>'`,
    p_locale: lit(shape.locale),
    p_ip_address: lit(shape.ipAddress),
    p_user_agent: lit(shape.userAgent),
    p_deliver: "true",
    // A batch's arguments (otp_send taking one array element per send): a batch of one.
    p_limit_counts: `ARRAY[${limitKeys.length}]`,
    p_traceparent: "NULL",
  };
  // Arguments that are the limits themselves are arrays either way.
  const perLimit = new Set(["p_limit_keys", "p_limit_periods", "p_limit_bursts", "p_limit_counts"]);
  const unmapped: string[] = [];
  // Each argument cast to its declared type, as the server resolves the
  // service's untyped parameters.
  const call = sendSql.replace(/\$(\d+)/g, (_, k: string) => {
    const name = nameOf(Number(k));
    const type = typeOf(name);
    let e = exprs[name];
    if (e === undefined) {
      unmapped.push(name);
      e = "NULL";
    }
    if (type.endsWith("[]") && !perLimit.has(name)) return `ARRAY[(${e})::${type.slice(0, -2)}]`;
    return `(${e})::${type}`;
  });
  const script = `\\set n random(1, 9000000000000000)\n${call.replace(/\s+/g, " ")};\n`;
  return { script, vars, unmapped };
}

export interface PgbenchTarget {
  readonly url: string;
  /** Postmaster pid, for Postgres CPU (embedded only). */
  readonly postmasterPid: number | undefined;
}

/** Runs pgbench for `seconds` with `clients`; returns tps (without connection time) and latency from the transaction log. */
export async function runPgbench(
  bin: string,
  target: PgbenchTarget,
  script: { script: string; vars: Record<string, string>; unmapped: string[] },
  opts: { shape: string; clients: number; seconds: number; dir: string; treeCpuUs: (pid: number) => number },
): Promise<CeilingResult> {
  const file = path.join(opts.dir, `pgbench-${opts.shape}.sql`);
  writeFileSync(file, script.script);
  const url = new URL(target.url);
  const logPrefix = path.join(opts.dir, `pgbench-${opts.shape}-log`);
  const args = [
    "-n",
    "-M", "prepared",
    "-c", String(opts.clients),
    "-j", "2",
    "-T", String(opts.seconds),
    "-f", file,
    "--log", `--log-prefix=${logPrefix}`,
    "-h", url.hostname,
    "-p", url.port || "5432",
    "-U", decodeURIComponent(url.username || "postgres"),
    ...Object.entries(script.vars).flatMap(([k, v]) => ["-D", `${k}=${v}`]),
    decodeURIComponent(url.pathname.slice(1) || "postgres"),
  ];
  const env = { ...process.env, PGPASSWORD: decodeURIComponent(url.password), PGAPPNAME: "otp-bench-pgbench" };
  const cpu0 = target.postmasterPid ? opts.treeCpuUs(target.postmasterPid) : NaN;
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(bin, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    child.stdout.on("data", (c: Buffer) => (text += c));
    child.stderr.on("data", (c: Buffer) => (text += c));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve(text) : reject(new Error(`pgbench exited ${code}:\n${text}`))));
  });
  const cpu1 = target.postmasterPid ? opts.treeCpuUs(target.postmasterPid) : NaN;
  const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(out)?.[1] ?? NaN);
  const transactions = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1] ?? NaN);
  const failed = Number(/number of failed transactions: (\d+)/.exec(out)?.[1] ?? 0);
  if (!Number.isFinite(tps)) throw new Error(`could not read pgbench's tps:\n${out}`);
  // Log lines: client_id transaction_no latency_us script_no epoch epoch_us
  const latencies: number[] = [];
  const base = path.basename(logPrefix);
  for (const f of readdirSync(opts.dir)) {
    if (!f.startsWith(`${base}.`)) continue;
    for (const line of readFileSync(path.join(opts.dir, f), "utf8").split("\n")) {
      const us = Number(line.split(" ")[2]);
      if (Number.isFinite(us) && line) latencies.push(us / 1000);
    }
  }
  return {
    shape: opts.shape,
    tps,
    transactions,
    failed,
    latencyMs: percentiles(latencies),
    pgCpuUsPerTx: (cpu1 - cpu0) / transactions,
    script: script.script,
    unmappedArgs: script.unmapped,
  };
}

// ---------------------------------------------------------------- the minimal-send reference

/**
 * The least a durable send can do: one rate-limit upsert, one code insert and
 * one outbox insert in one transaction, as prepared statements. It runs on the
 * bench's own three tables (schema bench_ref, made here), so it does not move
 * when the service's schema does: "service sends/s ÷ reference tps" says how
 * much of what this Postgres can do for a send the service turns into sends.
 */
export const REFERENCE_SETUP = `
DROP SCHEMA IF EXISTS bench_ref CASCADE;
CREATE SCHEMA bench_ref;
CREATE TABLE bench_ref.rate_limits (key text PRIMARY KEY, tat timestamptz NOT NULL);
CREATE TABLE bench_ref.codes (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id bigint NOT NULL, address text NOT NULL, code_hash bytea NOT NULL,
  expires_at timestamptz NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON bench_ref.codes (tenant_id, address);
CREATE TABLE bench_ref.outbox (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  code_id bigint NOT NULL, recipient text NOT NULL, payload bytea NOT NULL,
  status text NOT NULL DEFAULT 'pending', created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON bench_ref.outbox (created_at) WHERE status = 'pending';
`;

/** The reference transaction: a fresh address per transaction, as every bench send has. */
export function referenceScript(): { script: string; vars: Record<string, string>; unmapped: string[] } {
  const script = [
    "\\set n random(1, 9000000000000000)",
    "BEGIN;",
    "INSERT INTO bench_ref.rate_limits (key, tat) VALUES ('e:1:' || :n, now() + interval '20 seconds') ON CONFLICT (key) DO UPDATE SET tat = greatest(bench_ref.rate_limits.tat, now()) + interval '20 seconds';",
    "INSERT INTO bench_ref.codes (tenant_id, address, code_hash, expires_at) VALUES (1, 'pgb.' || :n || '@bench.example', sha256(:n::text::bytea), now() + interval '2 minutes');",
    "INSERT INTO bench_ref.outbox (code_id, recipient, payload) VALUES (lastval(), 'pgb.' || :n || '@bench.example', substring(sha512(:n::text::bytea) from 1 for 34));",
    "COMMIT;",
    "",
  ].join("\n");
  return { script, vars: {}, unmapped: [] };
}
