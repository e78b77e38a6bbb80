// What a bench run prints and writes: a human table, one `bench route=…`
// line per route (last), bench/results/latest.json and bench/RESULTS.md.
// With several runs every figure is the median over the runs.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { ProfileSummary } from "./cpuprofile.js";
import type { CeilingResult } from "./pgbench.js";
import type { RouteName } from "./loadgen.js";
import { median, type Percentiles } from "./stats.js";

export interface DeliveryStats {
  /** Sends accepted (2xx) in the window, each expecting one mail. */
  readonly expected: number;
  readonly delivered: number;
  readonly undelivered: number;
  /** Accepted sends whose mail never arrived or arrived after the code expired. */
  readonly expiredUndelivered?: number;
  /** Mails the sink received during the window, and per second. */
  readonly mailsInWindow: number;
  readonly mailsPerSec: number;
  /** After the window: how long the outbox took to empty, and the rate it emptied at. */
  readonly drainSeconds: number;
  readonly drainMails: number;
  readonly drainMailsPerSec: number;
  readonly dropped: number;
  /** SMTP connections the service opened per mail (1 = a new connection for every mail). */
  readonly smtpConnectionsPerMail: number;
  /** Accepted (the send's 2xx answer) → delivered (the sink got the mail), by recipient; undelivered mail counts as ∞. */
  readonly latencyMs: Percentiles;
}

export interface RouteResult {
  readonly route: RouteName;
  readonly rate: number | undefined;
  readonly seconds: number;
  readonly requests: number;
  readonly ok: number;
  readonly errors: number;
  readonly statusCounts: Record<string, number>;
  readonly firstError: string | undefined;
  readonly rps: number;
  readonly latencyMs: Percentiles;
  /** Service CPU (utime+stime) in the window / requests. */
  readonly cpuUsPerReq: number;
  /** Service CPU from the window's start until its mail was delivered / requests. */
  readonly cpuUsPerSendWithDelivery: number;
  readonly pgCpuUsPerReq: number;
  /** Database transactions (commits + rollbacks) in the window per request, the outbox worker's included. */
  readonly dbTxPerReq?: number;
  readonly clientCpuUsPerReq: number;
  /** What drove the route: h1gen or h2gen (the C clients), or autocannon, node:http or node:http2 (results from before this field have none). */
  readonly client?: string;
  readonly machineCpuPct: number;
  /** Share of the machine's CPU used by other processes during the window. */
  readonly otherCpuPct: number;
  readonly rssPeakMb: number;
  /** Peak VmRSS in the window's last third minus its first third's. */
  readonly rssGrowthMb?: number;
  readonly delivery: DeliveryStats | undefined;
  ceilingShape?: string | undefined;
  ceilingTps?: number | undefined;
  ratio?: number | undefined;
  /** The minimal-send reference (pgbench) of the same run, and rps / its tps. */
  refTps?: number | undefined;
  refRatio?: number | undefined;
  /** Requests issued and 2xx answers per second (open-loop phases say what was offered). */
  readonly offeredRps?: number;
  readonly acceptedRps?: number;
  /** 429/503 answers, those with Retry-After, and their latency. */
  readonly refused?: number;
  readonly refusedWithRetryAfter?: number;
  readonly refusedLatencyMs?: Percentiles;
  /** Tracing variant: OTLP export requests and bytes the bench's sink received. */
  readonly traceExports?: number;
  readonly traceBytes?: number;
}

export interface PacedResult extends RouteResult {
  readonly targetRate: number;
}

export interface RunResult {
  readonly index: number;
  readonly profiled: boolean;
  readonly startedAt: string;
  readonly wallSeconds: number;
  readonly commit: string;
  readonly source: string;
  readonly dirty: string[];
  readonly node: string;
  readonly machine: { cpus: number; model: string; memGb: number; loadBefore: number[]; loadAfter: number[] };
  readonly database: { describe: string; version: string; settings: string };
  readonly settings: { seconds: number; warmupSeconds: number; connections: number; drainCapSeconds: number };
  /** What received the mail (absent in results from before smtpsink.c). */
  readonly smtpSink?: string;
  readonly serviceEnv: Record<string, string>;
  readonly service: { startSeconds: number; rssHwmMb: number; cpuTotalSeconds: number };
  readonly routes: RouteResult[];
  readonly paced: PacedResult | undefined;
  /** Stytch REST offered at twice the measured maximum (open loop). */
  readonly overload?: PacedResult | undefined;
  readonly ceilings: Record<string, CeilingResult>;
  /** The minimal-send reference: pgbench's upsert + two inserts in one transaction. */
  readonly reference?: CeilingResult | undefined;
  readonly outboxFinal: Record<string, number>;
  readonly profile: ProfileSummary | undefined;
}

/** One route's figures, medians over the runs. */
export interface SummaryRow {
  route: RouteName;
  runs: number;
  rps: number;
  rpsPerRun: number[];
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  errors: number;
  cpu_us_per_req: number;
  cpu_us_per_send_with_delivery: number;
  pg_cpu_us_per_req: number;
  db_tx_per_req: number;
  client_cpu_us_per_req: number;
  machine_cpu_pct: number;
  other_cpu_pct: number;
  rss_mb: number;
  rss_growth_mb: number;
  mails_per_s: number;
  drain_mails_per_s: number;
  delivery_p50_ms: number;
  delivery_p99_ms: number;
  undelivered: number;
  smtp_connections_per_mail: number;
  ceiling_shape: string | undefined;
  ceiling_tps: number;
  ratio: number;
  ref_tps: number;
  ref_ratio: number;
}

const ROUTE_WHAT: Record<RouteName, string> = {
  healthz: "GET /healthz (HTTP/1.1; no database, no mail): the HTTP floor of this machine, for scale — not a send",
  "legacy-rest": "GET /api/sys/users/sendOtp?email=…&businessId=7 (HTTP/1.1); fresh addresses the business does not know: 200, no mail",
  "stytch-rest": "POST /v1/otps/email/login_or_create (HTTP/1.1); fresh addresses, each creates its user",
  "connect-json": "Connect JSON POST /otp.v1.OtpService/LoginOrCreateEmailOtp (HTTP/1.1)",
  "connect-binary": "Connect binary LoginOrCreateEmailOtp over HTTP/2 h2c, one stream in flight per connection",
  "stytch-rest-traced": "Stytch REST as stytch-rest, against a second service started with tracing on (OTEL_* set: every request sampled, OTLP/HTTP export to a sink in the bench that discards it)",
  "connect-json-h2": "Connect JSON LoginOrCreateEmailOtp over HTTP/2 h2c, one stream in flight per connection",
  grpc: "gRPC LoginOrCreateEmailOtp over HTTP/2 h2c, one stream in flight per connection",
};

const med = (xs: number[]) => median(xs);

/** ", load generator: …" for a phase's results (nothing when they predate the field). */
function phaseClients(results: readonly { client?: string }[]): string {
  const names = [...new Set(results.flatMap((r) => (r.client ? [r.client] : [])))];
  return names.length ? `; load generator: ${names.join(", ")}` : "";
}

/** The clients that drove a route over the runs ("" when the results predate the field). */
function clientsOf(runs: RunResult[], route: RouteName): string {
  return [...new Set(runs.flatMap((r) => r.routes.filter((x) => x.route === route && x.client).map((x) => x.client!)))].join(", ");
}

/** RESULTS.md keeps what lies between these markers when it is rewritten. */
const KEPT_START = "<!-- kept by hand: a re-run keeps this part -->";
const KEPT_END = "<!-- end of the part kept by hand -->";

export function summarise(runs: RunResult[]): SummaryRow[] {
  const names = [...new Set(runs.flatMap((r) => r.routes.map((x) => x.route)))];
  return names.map((route) => {
    const rs = runs.map((r) => r.routes.find((x) => x.route === route)).filter((x): x is RouteResult => x !== undefined);
    const m = (f: (x: RouteResult) => number | undefined) => med(rs.map((x) => f(x) ?? NaN));
    return {
      route,
      runs: rs.length,
      rps: m((x) => x.rps),
      rpsPerRun: rs.map((x) => x.rps),
      p50_ms: m((x) => x.latencyMs.p50),
      p99_ms: m((x) => x.latencyMs.p99),
      max_ms: m((x) => x.latencyMs.max),
      errors: m((x) => x.errors),
      cpu_us_per_req: m((x) => x.cpuUsPerReq),
      cpu_us_per_send_with_delivery: m((x) => x.cpuUsPerSendWithDelivery),
      pg_cpu_us_per_req: m((x) => x.pgCpuUsPerReq),
      db_tx_per_req: m((x) => x.dbTxPerReq),
      client_cpu_us_per_req: m((x) => x.clientCpuUsPerReq),
      machine_cpu_pct: m((x) => x.machineCpuPct),
      other_cpu_pct: m((x) => x.otherCpuPct),
      rss_mb: m((x) => x.rssPeakMb),
      rss_growth_mb: m((x) => x.rssGrowthMb),
      mails_per_s: m((x) => x.delivery?.mailsPerSec),
      drain_mails_per_s: m((x) => x.delivery?.drainMailsPerSec),
      delivery_p50_ms: m((x) => x.delivery?.latencyMs.p50),
      delivery_p99_ms: m((x) => x.delivery?.latencyMs.p99),
      undelivered: m((x) => x.delivery?.undelivered),
      smtp_connections_per_mail: m((x) => x.delivery?.smtpConnectionsPerMail),
      ceiling_shape: rs[0]?.ceilingShape,
      ceiling_tps: m((x) => x.ceilingTps),
      ratio: m((x) => x.ratio),
      ref_tps: m((x) => x.refTps),
      ref_ratio: m((x) => x.refRatio),
    };
  });
}

// ---------------------------------------------------------------- formatting

function fmt(v: number | undefined, digits = 0): string {
  if (v === Infinity) return "∞";
  if (v === undefined || !Number.isFinite(v)) return "-";
  return v.toFixed(digits);
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

function mdTable(header: string[], rows: string[][]): string {
  const numeric = header.map((_, i) => i > 0 && rows.every((r) => /^(-|∞|yes|no|n\/a|\*\*no\*\*|[\d.]+)$/.test(r[i] ?? "")));
  return [`| ${header.join(" | ")} |`, `|${numeric.map((n) => (n ? "---:" : "---")).join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

const MAIN_HEADER = ["route", "rps", "p50 ms", "p99 ms", "max ms", "errors", "svc µs/req", "svc+deliv µs", "pg µs/req", "db tx/req", "client µs/req", "machine cpu %", "others cpu %", "rss MB", "rss growth MB", "ceiling tps", "ratio", "ref tps", "ref ratio"];
const DB_TX_COLUMN = MAIN_HEADER.indexOf("db tx/req");
/** The main table; the db tx/req column only when it was measured (results from before it have none). */
function mainTable(rows: SummaryRow[], render: (header: string[], rows: string[][]) => string): string {
  const keep = (_: unknown, i: number) => i !== DB_TX_COLUMN || rows.some((r) => Number.isFinite(r.db_tx_per_req));
  return render(MAIN_HEADER.filter(keep), mainRows(rows).map((r) => r.filter(keep)));
}
function mainRows(rows: SummaryRow[]): string[][] {
  return rows.map((r) => [
    r.route,
    fmt(r.rps),
    fmt(r.p50_ms, 2),
    fmt(r.p99_ms, 2),
    fmt(r.max_ms, 1),
    fmt(r.errors),
    fmt(r.cpu_us_per_req),
    fmt(r.cpu_us_per_send_with_delivery),
    fmt(r.pg_cpu_us_per_req),
    fmt(r.db_tx_per_req, 2),
    fmt(r.client_cpu_us_per_req),
    fmt(r.machine_cpu_pct),
    fmt(r.other_cpu_pct),
    fmt(r.rss_mb, 1),
    fmt(r.rss_growth_mb, 1),
    fmt(r.ceiling_tps),
    fmt(r.ratio, 2),
    fmt(r.ref_tps),
    fmt(r.ref_ratio, 2),
  ]);
}

const DELIVERY_HEADER = ["route", "mails/s in window", "drain mails/s", "accepted→delivered p50 ms", "p99 ms", "undelivered", "smtp conns/mail"];
function deliveryRows(rows: SummaryRow[]): string[][] {
  return rows.map((r) => [r.route, fmt(r.mails_per_s), fmt(r.drain_mails_per_s), fmt(r.delivery_p50_ms, 1), fmt(r.delivery_p99_ms, 1), fmt(r.undelivered), fmt(r.smtp_connections_per_mail, 2)]);
}

interface Target {
  readonly what: string;
  readonly measured: string;
  readonly met: boolean | undefined;
}

function targets(rows: SummaryRow[], runs: RunResult[]): Target[] {
  const get = (n: RouteName) => rows.find((r) => r.route === n);
  const out: Target[] = [];
  const rest = get("stytch-rest");
  // Ratios are taken within each run (both figures from the same minutes on
  // the same Postgres), then the median of the runs' ratios is judged: a
  // ratio of two medians could pair one run's fast window with another's slow one.
  const perRun = (f: (run: RunResult) => number | undefined) => runs.map((run) => f(run) ?? NaN).filter(Number.isFinite);
  const routeIn = (run: RunResult, n: RouteName) => run.routes.find((x) => x.route === n);
  const list = (xs: number[], f: (x: number) => string) => xs.map(f).join(" / ");
  const pct = (x: number) => `${x >= 0 ? "+" : ""}${fmt(100 * x, 1)} %`;
  if (rest) {
    const refRatios = perRun((run) => routeIn(run, "stytch-rest")?.refRatio);
    const refRatio = med(refRatios);
    out.push({
      what: "Stytch REST ≥ 0.35 × the minimal-send reference",
      measured: `${fmt(refRatio, 2)}, the median of the runs' ratios (${list(refRatios, (x) => fmt(x, 2))}); medians ${fmt(rest.rps)} rps, ${fmt(rest.ref_tps)} tps`,
      met: Number.isFinite(refRatio) ? refRatio >= 0.35 : undefined,
    });
    out.push({ what: "Stytch REST p99 < 20 ms at 32 connections", measured: `${fmt(rest.p99_ms, 2)} ms`, met: rest.p99_ms < 20 });
    for (const n of ["connect-json", "connect-json-h2", "connect-binary", "grpc"] as const) {
      const r = get(n);
      if (!r) continue;
      const diffs = perRun((run) => {
        const a = routeIn(run, n)?.rps;
        const b = routeIn(run, "stytch-rest")?.rps;
        return a !== undefined && b !== undefined ? a / b - 1 : undefined;
      });
      const d = med(diffs);
      out.push({
        what: `${n} within 15 % of Stytch REST's sends/s`,
        measured: `${pct(d)}, the median of the runs' differences (${list(diffs, pct)}); medians ${fmt(r.rps)} vs ${fmt(rest.rps)} rps; ${fmt(r.cpu_us_per_send_with_delivery)} µs/send with mail; client ${fmt(r.client_cpu_us_per_req)} µs/req`,
        met: d >= -0.15,
      });
    }
  }
  for (const r of rows.filter((x) => x.route !== "healthz" && x.route !== "legacy-rest" && x.route !== "stytch-rest-traced")) {
    out.push({ what: `≤ 250 µs service CPU per send, its mail's delivery included (${r.route})`, measured: `${fmt(r.cpu_us_per_send_with_delivery)} µs (${fmt(r.cpu_us_per_req)} µs in the window)`, met: r.cpu_us_per_send_with_delivery <= 250 });
  }
  const hwm = med(runs.map((r) => r.service.rssHwmMb));
  out.push({ what: "peak RSS < 150 MB over the whole bench", measured: `${fmt(hwm, 1)} MB (VmHWM of the service process over the run)`, met: hwm < 150 });
  const paced = runs.map((r) => r.paced).filter((p): p is PacedResult => p !== undefined);
  if (paced.length) {
    const p99 = med(paced.map((p) => p.delivery?.latencyMs.p99 ?? NaN));
    const undelivered = med(paced.map((p) => p.delivery?.undelivered ?? NaN));
    const rate = med(paced.map((p) => p.targetRate));
    out.push({ what: "mail keeps up: paced at 80 % of the max, accepted→delivered p99 < 1 s, nothing undelivered", measured: `p99 ${fmt(p99, 1)} ms, ${fmt(undelivered)} undelivered at ${fmt(rate)} sends/s offered (${fmt(med(paced.map((p) => p.rps)))} answered/s)`, met: p99 < 1000 && undelivered === 0 });
  }
  const over = runs.map((r) => r.overload).filter((p): p is PacedResult => p !== undefined);
  if (over.length) {
    const m = (f: (p: PacedResult) => number | undefined) => med(over.map((p) => f(p) ?? NaN));
    const refused = m((p) => p.refused);
    const withRetry = m((p) => p.refusedWithRetryAfter);
    const p99 = m((p) => p.latencyMs.p99);
    const expired = m((p) => p.delivery?.expiredUndelivered);
    const refusedP99 = m((p) => p.refusedLatencyMs?.p99);
    out.push({
      what: "overload refused, not queued: at 2× the max, excess answered at once with 429/503 + Retry-After, accepted p99 < 100 ms, no accepted code expires undelivered",
      measured: `offered ${fmt(m((p) => p.offeredRps))}/s, accepted ${fmt(m((p) => p.acceptedRps))}/s, accepted p99 ${fmt(p99, 1)} ms; refused ${fmt(refused)} (${fmt(withRetry)} with Retry-After, p99 ${fmt(refusedP99, 1)} ms); ${fmt(expired)} expired undelivered`,
      met: refused > 0 && withRetry === refused && p99 < 100 && expired === 0,
    });
  }
  return out;
}

/** What tracing costs: the traced Stytch REST route against the plain one, and whether spans arrived. */
function tracingNote(rows: SummaryRow[], runs: RunResult[]): string | undefined {
  const off = rows.find((r) => r.route === "stytch-rest");
  const on = rows.find((r) => r.route === "stytch-rest-traced");
  if (!off || !on) return undefined;
  const traced = runs.flatMap((r) => r.routes.filter((x) => x.route === "stytch-rest-traced"));
  const exports = med(traced.map((x) => x.traceExports ?? NaN));
  const bytes = med(traced.map((x) => x.traceBytes ?? NaN));
  const d = on.rps / off.rps - 1;
  const spans = exports > 0 ? `the sink received ${fmt(exports)} OTLP exports (${fmt(bytes / 1024)} KiB)` : "the sink received no OTLP export: the measured source does not trace (with OTEL_* set), so the two rows measure the same thing";
  return `tracing on (OTEL_* set, every request sampled, OTLP/HTTP to a local sink) vs off, Stytch REST: ${fmt(on.rps)} vs ${fmt(off.rps)} rps (${d >= 0 ? "+" : ""}${fmt(100 * d, 1)} %), p99 ${fmt(on.p99_ms, 2)} vs ${fmt(off.p99_ms, 2)} ms, ${fmt(on.cpu_us_per_send_with_delivery)} vs ${fmt(off.cpu_us_per_send_with_delivery)} µs of service CPU per send with its mail; ${spans}.`;
}

const num = (v: number | undefined, d: number) => (v !== undefined && Number.isFinite(v) ? v.toFixed(d) : "NaN");

function routeLine(r: SummaryRow): string {
  return `bench route=${r.route} rps=${num(r.rps, 0)} p50_ms=${num(r.p50_ms, 2)} p99_ms=${num(r.p99_ms, 2)} cpu_us_per_req=${num(r.cpu_us_per_req, 0)} cpu_us_with_mail=${num(r.cpu_us_per_send_with_delivery, 0)} rss_mb=${num(r.rss_mb, 1)} ceiling_tps=${num(r.ceiling_tps, 0)} ratio=${num(r.ratio, 2)} ref_tps=${num(r.ref_tps, 0)} ref_ratio=${num(r.ref_ratio, 2)}`;
}

function pacedLine(ps: PacedResult[]): string {
  const m = (f: (p: PacedResult) => number | undefined) => med(ps.map((p) => f(p) ?? NaN));
  return `bench paced target_rps=${num(m((p) => p.targetRate), 0)} rps=${num(m((p) => p.rps), 0)} delivered_p99_ms=${num(m((p) => p.delivery?.latencyMs.p99), 1)} undelivered=${num(m((p) => p.delivery?.undelivered), 0)}`;
}

function overloadLine(ps: PacedResult[]): string {
  const m = (f: (p: PacedResult) => number | undefined) => med(ps.map((p) => f(p) ?? NaN));
  return `bench overload offered_rps=${num(m((p) => p.offeredRps), 0)} accepted_rps=${num(m((p) => p.acceptedRps), 0)} accepted_p99_ms=${num(m((p) => p.latencyMs.p99), 1)} expired_undelivered=${num(m((p) => p.delivery?.expiredUndelivered), 0)}`;
}

// ---------------------------------------------------------------- output

export function writeReport(runs: RunResult[], profiled: RunResult | undefined, opts: { command: string; benchDir: string; writeResultsMd: boolean }): void {
  const rows = summarise(runs);
  const last = runs[runs.length - 1]!;
  const tgt = targets(rows, runs);
  const paced = runs.map((r) => r.paced).filter((p): p is PacedResult => p !== undefined);
  const ceilingNames = [...new Set(runs.flatMap((r) => Object.keys(r.ceilings)))];
  const ceilingRows = ceilingNames.map((n) => {
    const cs = runs.map((r) => r.ceilings[n]).filter((c): c is CeilingResult => c !== undefined);
    return [n, fmt(med(cs.map((c) => c.tps))), fmt(med(cs.map((c) => c.latencyMs.p50)), 2), fmt(med(cs.map((c) => c.latencyMs.p99)), 2), fmt(med(cs.map((c) => c.failed))), fmt(med(cs.map((c) => c.pgCpuUsPerTx)))];
  });
  const refs = runs.map((r) => r.reference).filter((c): c is CeilingResult => c !== undefined);
  if (refs.length) ceilingRows.push(["minimal_send (reference)", fmt(med(refs.map((c) => c.tps))), fmt(med(refs.map((c) => c.latencyMs.p50)), 2), fmt(med(refs.map((c) => c.latencyMs.p99)), 2), fmt(med(refs.map((c) => c.failed))), fmt(med(refs.map((c) => c.pgCpuUsPerTx)))]);
  const overloads = runs.map((r) => r.overload).filter((p): p is PacedResult => p !== undefined);
  const OVER_HEADER = ["run", "offered/s", "accepted/s", "accepted p50 ms", "accepted p99 ms", "refused", "with Retry-After", "refused p99 ms", "other errors", "accepted→delivered p99 ms", "expired undelivered"];
  const overRow = (p: PacedResult, i: number) => [String(runs.filter((r) => r.overload)[i]?.index ?? i + 1), fmt(p.offeredRps), fmt(p.acceptedRps), fmt(p.latencyMs.p50, 2), fmt(p.latencyMs.p99, 2), fmt(p.refused), fmt(p.refusedWithRetryAfter), fmt(p.refusedLatencyMs?.p99, 2), fmt(p.errors - (p.refused ?? 0)), fmt(p.delivery?.latencyMs.p99, 1), fmt(p.delivery?.expiredUndelivered)];
  const CEIL_HEADER = ["pgbench shape", "tps", "p50 ms", "p99 ms", "failed", "pg µs/tx"];
  const pacedRow = (p: PacedResult, i: number) => [String(runs.filter((r) => r.paced)[i]?.index ?? i + 1), String(p.targetRate), fmt(p.rps), fmt(p.latencyMs.p50, 2), fmt(p.latencyMs.p99, 2), fmt(p.errors), fmt(p.cpuUsPerReq), fmt(p.delivery?.mailsPerSec), fmt(p.delivery?.latencyMs.p50, 1), fmt(p.delivery?.latencyMs.p99, 1), fmt(p.delivery?.latencyMs.max, 1), fmt(p.delivery?.undelivered), fmt(p.delivery?.smtpConnectionsPerMail, 2)];
  const PACED_HEADER = ["run", "target/s", "rps", "p50 ms", "p99 ms", "errors", "svc µs/req", "mails/s", "accepted→delivered p50 ms", "p99 ms", "max ms", "undelivered", "smtp conns/mail"];
  const loads = runs.map((r) => `run ${r.index}: loadavg ${r.machine.loadBefore.map((x) => x.toFixed(2)).join(" ")} before, ${r.machine.loadAfter.map((x) => x.toFixed(2)).join(" ")} after`);
  const medNote = runs.length > 1 ? ` (medians of ${runs.length} runs)` : "";

  // The human output.
  const out: string[] = [];
  out.push("");
  out.push(`otp-service bench — commit ${last.commit}, ${last.source}${last.dirty.length ? ` (+${last.dirty.length} uncommitted files)` : ""}${medNote}`);
  out.push(`${last.machine.cpus} CPUs (${last.machine.model}), node ${last.node}, Postgres ${last.database.version}; ${runs[0]!.settings.connections} connections, ${runs[0]!.settings.warmupSeconds} s warm-up, ${runs[0]!.settings.seconds} s measured per route`);
  out.push(`service env: ${Object.entries(last.serviceEnv).map(([k, v]) => `${k}=${v}`).join(" ")}`);
  for (const l of loads) out.push(l);
  out.push("");
  out.push(mainTable(rows, table));
  out.push(`load generators: ${rows.map((r) => `${r.route} ${clientsOf(runs, r.route) || "?"}`).join("; ")}`);
  out.push("");
  out.push(table(DELIVERY_HEADER, deliveryRows(rows.filter((r) => r.route !== "healthz" && r.route !== "legacy-rest"))));
  if (paced.length) {
    out.push("");
    out.push("paced phase (Stytch REST at 80 % of the measured rate, open loop):");
    out.push(table(PACED_HEADER, paced.map(pacedRow)));
  }
  if (overloads.length) {
    out.push("");
    out.push("overload phase (Stytch REST offered twice the measured rate, open loop):");
    out.push(table(OVER_HEADER, overloads.map(overRow)));
  }
  if (ceilingRows.length) {
    out.push("");
    out.push(table(CEIL_HEADER, ceilingRows));
  }
  out.push("");
  out.push("targets:");
  for (const t of tgt) out.push(`  [${t.met === undefined ? "n/a " : t.met ? "met " : "MISS"}] ${t.what}: ${t.measured}`);
  if (profiled?.profile) {
    out.push("");
    out.push(`profile (separate run with --cpu-prof; ${fmt(profiled.profile.busyMs / 1000, 1)} s busy): busy time by the work it served`);
    out.push(table(["work", "self ms", "%"], profiled.profile.owners.map((o) => [o.name, fmt(o.selfMs), fmt(o.pct, 1)])));
    out.push("top self time:");
    out.push(table(["function", "where", "self ms", "%"], profiled.profile.functions.slice(0, 15).map((f) => [f.name, f.where, fmt(f.selfMs), fmt(f.pct, 1)])));
  }
  const tracing = tracingNote(rows, runs);
  if (tracing) {
    out.push("");
    out.push(tracing);
  }
  for (const r of runs.flatMap((x) => x.routes)) {
    if (r.errors > 0) out.push(`note: ${r.route} had ${r.errors} errors (${JSON.stringify(r.statusCounts)}); first: ${r.firstError}`);
  }
  out.push("");
  for (const r of rows.filter((x) => x.route !== "healthz")) out.push(routeLine(r));
  if (paced.length) out.push(pacedLine(paced));
  if (overloads.length) out.push(overloadLine(overloads));
  process.stdout.write(`${out.join("\n")}\n`);

  // JSON.
  const resultsDir = path.join(opts.benchDir, "results");
  mkdirSync(resultsDir, { recursive: true });
  // ∞ (mail never delivered) is written as the string "Infinity"; JSON has no such number.
  const json = `${JSON.stringify({ command: opts.command, commit: last.commit, source: last.source, dirty: last.dirty, routes: rows, targets: tgt, runs, profiled: profiled ?? null }, (_, v) => (v === Infinity ? "Infinity" : v), 2)}\n`;
  writeFileSync(path.join(resultsDir, "latest.json"), json);
  // Every invocation's figures are also kept under their start time.
  writeFileSync(path.join(resultsDir, `bench-${runs[0]!.startedAt.replace(/[:.]/g, "-")}.json`), json);
  if (!opts.writeResultsMd) return;

  // RESULTS.md.
  const md: string[] = [];
  md.push("# Bench results");
  md.push("");
  md.push(`Written by \`npm run bench\` (bench/run.ts) on ${last.startedAt.slice(0, 10)}. Re-running it rewrites this file up to the part kept by hand at the end (the history of changes and what they measured).`);
  md.push("");
  md.push(`- **Commit measured**: \`${last.commit}\` — ${last.source}${last.dirty.length ? `, with uncommitted changes in: ${last.dirty.map((d) => `\`${d.slice(3)}\``).join(", ")}` : ""}`);
  md.push(`- **Command**: \`${opts.command}\``);
  md.push(`- **Machine**: ${last.machine.cpus} CPUs (${last.machine.model}), ${fmt(last.machine.memGb)} GiB; node ${last.node}; ${last.database.describe}, Postgres ${last.database.version} (${last.database.settings})`);
  md.push(`- **Machine load** (1/5/15-min loadavg): ${loads.join("; ")}. The load generator, the SMTP sink, Postgres and the service share these CPUs.`);
  md.push(`- **Per route**: ${runs[0]!.settings.connections} connections, ${runs[0]!.settings.warmupSeconds} s warm-up, outbox drained, ${runs[0]!.settings.seconds} s measured, outbox drained again (capped at ${runs[0]!.settings.drainCapSeconds} s)${medNote}.`);
  if (runs.length > 1) {
    const orders = runs.map((r, i) => `run ${i + 1}: ${r.routes.filter((x) => x.route !== "stytch-rest-traced").map((x) => x.route).join(", ")}`);
    md.push(`- **Route order**: each run starts the send routes at a different place in the list, so that this machine's drifting speed does not always fall on the same route: ${orders.join("; ")}.`);
  }
  md.push(`- **Service env** (besides DATABASE_URL, DATA_DIR and a random OTP_PEPPER): ${Object.entries(last.serviceEnv).map(([k, v]) => `\`${k}=${v}\``).join(" ")}`);
  md.push("");
  md.push("Routes (every request a fresh address):");
  md.push("");
  for (const r of rows) md.push(`- \`${r.route}\`: ${ROUTE_WHAT[r.route]}${clientsOf(runs, r.route) ? `; load generator: ${clientsOf(runs, r.route)}` : ""}`);
  md.push("");
  md.push("## Throughput, latency, resources");
  md.push("");
  md.push(mainTable(rows, mdTable));
  md.push("");
  md.push(
    [
      "`svc µs/req`: the service process's CPU (utime+stime from /proc) in the window per 2xx answer (the CPU of refusals, when there were any, is charged to the accepted sends; `errors` counts them), the outbox worker's deliveries in that window included; `svc+deliv µs`: the same from the window's start until the window's mail was all delivered. `pg µs/req`: CPU of the Postgres server processes; ",
      rows.some((r) => Number.isFinite(r.db_tx_per_req)) ? "`db tx/req`: transactions committed or rolled back in the database per request (pg_stat_database), the outbox worker's included; " : "",
      "`client µs/req`: the load generator's (with h2gen, its C process's CPU included). `machine cpu %`: busy share of all CPUs in the window (/proc/stat); `others cpu %`: the part of it used by processes that are not the bench's (other work on the machine). `rss MB`: peak VmRSS sampled every 50 ms during the route; `rss growth MB`: the peak in the measured window's last third minus the peak in its first third. `ratio`: rps / ceiling tps of the matching pgbench shape.",
    ].join(""),
  );
  if (runs.length > 1) {
    md.push("");
    md.push(`rps per run: ${rows.map((r) => `${r.route} ${r.rpsPerRun.map((x) => x.toFixed(0)).join(" / ")}`).join("; ")}`);
  }
  md.push("");
  const tracingMd = tracingNote(rows, runs);
  if (tracingMd) {
    md.push("");
    md.push(`**Tracing.** ${tracingMd}`);
  }
  md.push("");
  md.push("## Delivery");
  md.push("");
  const sinks = [...new Set(runs.map((r) => r.smtpSink ?? "smtp-server (node, in the bench process)"))];
  md.push(`SMTP sink: ${sinks.join(", ")}.`);
  md.push("");
  md.push(mdTable(DELIVERY_HEADER, deliveryRows(rows.filter((r) => r.route !== "healthz" && r.route !== "legacy-rest"))));
  md.push("");
  md.push("`mails/s in window`: mails the SMTP sink received while the route's sends ran at full rate; `drain mails/s`: the rate the outbox emptied at after the window (no sends running). Accepted→delivered: from the send's 2xx answer to the sink receiving the mail, matched by recipient, for the window's sends; mail not delivered when the drain cap ran out counts as ∞ (and was dropped from the outbox so the next route starts clean). `smtp conns/mail`: SMTP connections the service opened per mail delivered (a pooled transport opens a few for the whole run). Legacy sends to unknown addresses queue no mail by design.");
  if (paced.length) {
    md.push("");
    md.push(`Paced phase: Stytch REST login_or_create at 80 % of the measured Stytch REST rate, evenly spaced (open loop over keep-alive HTTP/1.1${phaseClients(paced)}); mail still queued when the drain cap (30 s) ran out counts as undelivered:`);
    md.push("");
    md.push(mdTable(PACED_HEADER, paced.map(pacedRow)));
  }
  if (overloads.length) {
    md.push("");
    md.push("## Overload");
    md.push("");
    md.push(
      `Stytch REST login_or_create offered twice the measured Stytch REST rate, evenly spaced (open loop, up to 8 sockets per connection of the other phases, so the excess reaches the service${phaseClients(overloads)}). Latency is from the moment each request was due. \`refused\`: 429 and 503 answers; \`expired undelivered\`: accepted sends whose mail never arrived or arrived after the code expired (the drain waits up to the codes' 2-minute life).`,
    );
    md.push("");
    md.push(mdTable(OVER_HEADER, overloads.map(overRow)));
  }
  if (ceilingRows.length) {
    md.push("");
    md.push("## Ceiling: pgbench running the send statement");
    md.push("");
    md.push(mdTable(CEIL_HEADER, ceilingRows));
    md.push("");
    md.push(`pgbench ${runs[0]!.settings.connections} clients, 2 threads, \`-M prepared\`, ${runs[0]!.settings.seconds} s, on the same database after the service stopped. The statement is SEND_SQL (src/storage/otp-store.ts) with each parameter bound to what the service binds for that shape: \`login_or_create\` (Stytch REST, Connect, gRPC: tenant + email limits, create an active user, mail queued) and \`legacy_stranger\` (legacy: tenant + email + IP limits, unknown address, no mail). Scripts:`);
    for (const n of ceilingNames) {
      md.push("");
      md.push("```");
      md.push(last.ceilings[n]?.script.trim() ?? "");
      md.push("```");
    }
    if (refs.length) {
      md.push("");
      md.push("`minimal_send (reference)`: the least a durable send can do, on the bench's own three tables (schema bench_ref, made and dropped by the bench): one rate-limit upsert, one code insert and one outbox insert in one transaction, prepared, a fresh address per transaction. `ref ratio` in the tables above is a route's rps divided by its tps:");
      md.push("");
      md.push("```");
      md.push(refs[refs.length - 1]!.script.trim());
      md.push("```");
    }
  }
  md.push("");
  md.push("Machine lines (medians):");
  md.push("");
  md.push("```");
  for (const r of rows.filter((x) => x.route !== "healthz")) md.push(routeLine(r));
  if (paced.length) md.push(pacedLine(paced));
  if (overloads.length) md.push(overloadLine(overloads));
  md.push("```");
  md.push("");
  md.push("## Targets");
  md.push("");
  md.push(mdTable(["target", "measured", "met"], tgt.map((t) => [t.what, t.measured, t.met === undefined ? "n/a" : t.met ? "yes" : "**no**"])));
  if (profiled?.profile) {
    const p = profiled.profile;
    md.push("");
    md.push("## CPU profile of the service");
    md.push("");
    md.push(`A separate run with \`node --cpu-prof\` passed to the service (bench/results/service.cpuprofile; open it in Chrome DevTools or speedscope). ${fmt(p.totalMs / 1000, 1)} s sampled, ${fmt(p.busyMs / 1000, 1)} s not idle; percentages are of the busy time. Its own figures (profiling slows the service): ${profiled.routes.map((r) => `${r.route} ${fmt(r.rps)} rps, ${fmt(r.cpuUsPerReq)} µs/req`).join("; ")}.`);
    md.push("");
    md.push("Busy time by the work it served (each sample goes to the nearest package or service frame on its stack):");
    md.push("");
    md.push(mdTable(["work", "self ms", "%"], p.owners.map((o) => [o.name, fmt(o.selfMs), fmt(o.pct, 1)])));
    md.push("");
    md.push("Top self time by function:");
    md.push("");
    md.push(mdTable(["function", "where", "self ms", "%"], p.functions.slice(0, 20).map((f) => [`\`${f.name}\``, f.where ? `\`${f.where}\`` : "", fmt(f.selfMs), fmt(f.pct, 1)])));
    md.push("");
    md.push("Self time by where the code lives:");
    md.push("");
    md.push(mdTable(["code", "self ms", "%"], p.modules.slice(0, 15).map((m) => [`\`${m.name}\``, fmt(m.selfMs), fmt(m.pct, 1)])));
  }
  md.push("");
  // The hand-kept part (what each change did, with the commit it measured)
  // survives a re-run: everything between the markers is carried over.
  const resultsMd = path.join(opts.benchDir, "RESULTS.md");
  const kept = existsSync(resultsMd) ? new RegExp(`${KEPT_START}[\\s\\S]*?${KEPT_END}`).exec(readFileSync(resultsMd, "utf8"))?.[0] : undefined;
  writeFileSync(resultsMd, `${md.join("\n")}\n${kept ?? `${KEPT_START}\n${KEPT_END}`}\n`);
}
