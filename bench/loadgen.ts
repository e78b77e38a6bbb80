// The load generator, run as its own process (forked by bench/run.ts) so its
// CPU is not the service's or the bench's. One process per route:
//   parent → {type:"start", spec}     warm-up runs at once
//   child  → {type:"warmed", …}       parent drains the outbox, snapshots /proc
//   parent → {type:"go"}              the measured window runs
//   child  → {type:"done", result}    then the child exits
// Two small C clients that the bench builds at run time (bench/cgen.ts) do
// the requests; this process spawns one and drives it over its stdin/stdout
// (the line protocol of bench/gen-common.h):
//  - h1gen (bench/h1gen.c): the HTTP/1.1 routes (healthz, legacy REST, Stytch
//    REST, Connect JSON) with one request in flight per connection, and the
//    paced and overload phases: a fixed rate, evenly spaced (open loop), over
//    keep-alive HTTP/1.1, the overload phase at twice the measured maximum.
//  - h2gen (bench/h2gen.c, on libnghttp2): gRPC, Connect binary and Connect
//    JSON over h2c, one connection per spec connection, one stream in flight
//    on each, the headers and body encoding of h2Shape below.
// The node clients below do the same and are used when a C client cannot be
// built (or with BENCH_H1GEN=0 / BENCH_H2GEN=0): autocannon for the HTTP/1.1
// routes, node:http for the open-loop phases, node:http2 for the HTTP/2
// routes. They cost 90-150 µs of CPU per request against 20-60 µs for the C
// clients, CPU that the service on two shared CPUs then does not get.
// Every request carries a fresh email address: that is why h2load, whose
// body is the same for every request, cannot drive the send routes (one
// address would make every send after the first a different, serialised
// send on one rate-limit row, and its mail could not be told apart).
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import readline from "node:readline";
import autocannon from "autocannon";
import { H2_ROUTES } from "./cgen.js";
import { nowMs, percentiles, type Percentiles } from "./stats.js";

export type RouteName = "healthz" | "legacy-rest" | "stytch-rest" | "connect-json" | "connect-binary" | "grpc" | "connect-json-h2" | "stytch-rest-traced";

export interface LoadSpec {
  readonly route: RouteName;
  readonly baseUrl: string;
  readonly connections: number;
  readonly warmupSeconds: number;
  readonly seconds: number;
  /** Paced and overload phases: requests per second, evenly spaced (open loop). */
  readonly rate?: number;
  /** Open loop: sockets the client may open (default: connections). */
  readonly maxSockets?: number;
  /** "Basic …" for the Stytch-contract RPCs. */
  readonly authorization: string;
  readonly businessId: number;
  /** Makes this process's addresses unique in the run. */
  readonly tag: string;
  readonly userAgent: string;
  /** The built h1gen (bench/h1gen.c): when set, it drives the HTTP/1.1 routes and the open-loop phases. */
  readonly h1gen?: string;
  /** The built h2gen (bench/h2gen.c): when set, it drives the HTTP/2 routes. */
  readonly h2gen?: string;
}

export interface LoadResult {
  readonly route: RouteName;
  readonly durationMs: number;
  readonly requests: number;
  readonly ok: number;
  /** Non-2xx answers plus transport errors. */
  readonly errors: number;
  readonly statusCounts: Record<string, number>;
  readonly latencyMs: Percentiles;
  /** [recipient, epoch ms of the 2xx answer] for every accepted send of the window. */
  readonly accepted: [string, number][];
  /** CPU the load generator used in the window, µs (its h2gen child's included). */
  readonly clientCpuUs: number;
  /**
   * The C client's part of it, µs: the bench reads this process's CPU in
   * /proc, which does not show a live child's, and adds this.
   */
  readonly helperCpuUs: number;
  /** What drove the route. */
  readonly client: string;
  readonly firstError?: string;
  /** Answers 429 or 503 (refused), how many carried Retry-After, and how long they took. */
  readonly refused: number;
  readonly refusedWithRetryAfter: number;
  readonly refusedLatencyMs: Percentiles;
}

type Msg = { type: "start"; spec: LoadSpec } | { type: "go" };

class Recorder {
  latencies: number[] = [];
  accepted: [string, number][] = [];
  statusCounts: Record<string, number> = {};
  errors = 0;
  requests = 0;
  firstError: string | undefined;
  refusedLatencies: number[] = [];
  refusedWithRetryAfter = 0;
  constructor(private readonly keepAccepted: boolean) {}
  refusal(latencyMs: number, retryAfter: boolean): void {
    this.refusedLatencies.push(latencyMs);
    if (retryAfter) this.refusedWithRetryAfter++;
  }
  /** `at`: epoch ms (nowMs) of the answer, when it came before this call (a C client's records). */
  record(email: string, status: string, ok: boolean, latencyMs: number, detail?: string, at?: number): void {
    this.requests++;
    this.statusCounts[status] = (this.statusCounts[status] ?? 0) + 1;
    if (ok) {
      this.latencies.push(latencyMs);
      if (this.keepAccepted) this.accepted.push([email, at ?? nowMs()]);
    } else {
      this.errors++;
      this.firstError ??= `${status}${detail ? `: ${detail.slice(0, 300)}` : ""}`;
    }
  }
}

/**
 * The window's accepted requests as [answer time (epoch ms), latency (ms)],
 * for the shape of the tail: when slow answers come, and whether together.
 */
function dumpLatencies(file: string, rec: Recorder): void {
  writeFileSync(file, JSON.stringify(rec.accepted.map(([, at], i) => [at, rec.latencies[i]])));
}

/** Phases as they appear in addresses; run.ts finds the window's mail by `b.<tag>.m.`. */
const WARM_PHASE = "w";
const MEASURED_PHASE = "m";
const EMAIL_DOMAIN = "@bench.example";
const emailPrefix = (spec: LoadSpec) => `b.${spec.tag}.`;
let seq = 0;
/** The C clients build their addresses the same way: prefix, phase, ".", the counter in base 36, domain. */
function freshEmail(spec: LoadSpec, phase: string): string {
  return `${emailPrefix(spec)}${phase}.${(seq++).toString(36)}${EMAIL_DOMAIN}`;
}

// ---------------------------------------------------------------- HTTP/1.1 (autocannon)

interface HttpShape {
  method: "GET" | "POST";
  path(email: string): string;
  headers: Record<string, string>;
  body?(email: string): string;
}

function httpShape(spec: LoadSpec): HttpShape {
  const json = { "content-type": "application/json", authorization: spec.authorization };
  switch (spec.route) {
    case "healthz":
      return { method: "GET", path: () => "/healthz", headers: {} };
    case "legacy-rest":
      return {
        method: "GET",
        path: (email) => `/api/sys/users/sendOtp?email=${encodeURIComponent(email)}&businessId=${spec.businessId}`,
        headers: { "user-agent": spec.userAgent },
      };
    case "stytch-rest":
    case "stytch-rest-traced":
      return { method: "POST", path: () => "/v1/otps/email/login_or_create", headers: json, body: (email) => JSON.stringify({ email }) };
    case "connect-json":
      return {
        method: "POST",
        path: () => "/otp.v1.OtpService/LoginOrCreateEmailOtp",
        headers: { ...json, "connect-protocol-version": "1" },
        body: (email) => JSON.stringify({ email }),
      };
    default:
      throw new Error(`${spec.route} is not an HTTP/1.1 route`);
  }
}

async function runAutocannon(spec: LoadSpec, seconds: number, rec: Recorder, phase: string): Promise<void> {
  const shape = httpShape(spec);
  const instance = autocannon({
    url: spec.baseUrl,
    connections: spec.connections,
    pipelining: 1,
    duration: seconds,
    timeout: 10,
    requests: [
      {
        method: shape.method,
        setupRequest: (req, context) => {
          const email = freshEmail(spec, phase);
          context.email = email;
          context.sentAt = performance.now();
          return {
            ...req,
            method: shape.method,
            path: shape.path(email),
            headers: shape.headers,
            ...(shape.body ? { body: shape.body(email) } : {}),
          };
        },
        onResponse: (status, body, context) => {
          const ok = status >= 200 && status < 300;
          rec.record(String(context.email), String(status), ok, performance.now() - Number(context.sentAt), ok ? undefined : body);
        },
      },
    ],
  });
  instance.on("reqError", (err: Error) => {
    rec.errors++;
    rec.requests++;
    rec.statusCounts.transport_error = (rec.statusCounts.transport_error ?? 0) + 1;
    rec.firstError ??= `transport: ${err.message}`;
  });
  await instance;
}

// ---------------------------------------------------------------- HTTP/2 (node:http2, h2c)

const RPC_PATH = "/otp.v1.OtpService/LoginOrCreateEmailOtp";

/** LoginOrCreateEmailOtpRequest { email = 1 } in protobuf's wire format. */
function protoEmail(email: string): Buffer {
  const bytes = Buffer.from(email);
  if (bytes.length > 127) throw new Error("bench addresses are short");
  return Buffer.concat([Buffer.from([0x0a, bytes.length]), bytes]);
}

interface H2Shape {
  headers: http2.OutgoingHttpHeaders;
  /** How body() encodes the address, for h2gen, which encodes it itself. */
  encoding: "json" | "proto" | "grpc";
  body(email: string): Buffer;
  /** Whether the answer (status, headers, trailers, body) is a success; the reason otherwise. */
  check(status: number, headers: http2.IncomingHttpHeaders, trailers: http2.IncomingHttpHeaders): string | undefined;
}

function h2Shape(spec: LoadSpec): H2Shape {
  const base = { ":method": "POST", ":path": RPC_PATH, authorization: spec.authorization };
  switch (spec.route) {
    case "grpc":
      return {
        headers: { ...base, "content-type": "application/grpc+proto", te: "trailers" },
        encoding: "grpc",
        body: (email) => {
          const msg = protoEmail(email);
          const frame = Buffer.allocUnsafe(5 + msg.length);
          frame[0] = 0;
          frame.writeUInt32BE(msg.length, 1);
          msg.copy(frame, 5);
          return frame;
        },
        check: (status, headers, trailers) => {
          const g = trailers["grpc-status"] ?? headers["grpc-status"];
          return status === 200 && g === "0" ? undefined : `grpc_${String(g ?? status)}`;
        },
      };
    case "connect-binary":
      return {
        headers: { ...base, "content-type": "application/proto", "connect-protocol-version": "1" },
        encoding: "proto",
        body: protoEmail,
        check: (status) => (status === 200 ? undefined : String(status)),
      };
    case "connect-json-h2":
      return {
        headers: { ...base, "content-type": "application/json", "connect-protocol-version": "1" },
        encoding: "json",
        body: (email) => Buffer.from(JSON.stringify({ email })),
        check: (status) => (status === 200 ? undefined : String(status)),
      };
    default:
      throw new Error(`${spec.route} is not an HTTP/2 route`);
  }
}

function h2Sessions(spec: LoadSpec): http2.ClientHttp2Session[] {
  return Array.from({ length: spec.connections }, () => {
    const s = http2.connect(spec.baseUrl);
    s.on("error", () => {});
    return s;
  });
}

/** Refusals: grpc-status 8 resource_exhausted / 14 unavailable; Connect's 429 / 503. */
const REFUSED = ["grpc_8", "grpc_14", "429", "503"];

/** One request on a session; resolves with an error reason, or undefined for a success. */
function h2Request(
  session: http2.ClientHttp2Session,
  shape: H2Shape,
  email: string,
): Promise<{ fail?: string; detail?: string; refused?: boolean; retryAfter?: boolean }> {
  return new Promise((resolve) => {
    const stream = session.request(shape.headers);
    let status = 0;
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    let body = "";
    stream.setTimeout(10_000, () => stream.close(http2.constants.NGHTTP2_CANCEL));
    stream.on("response", (h) => {
      headers = h;
      status = Number(h[":status"]);
    });
    stream.on("trailers", (t) => (trailers = t));
    stream.on("data", (c: Buffer) => {
      if (status !== 200 && body.length < 300) body += c.toString();
    });
    stream.on("error", (err) => resolve({ fail: "transport_error", detail: err.message }));
    stream.on("close", () => {
      if (status === 0) return resolve({ fail: "transport_error", detail: "stream closed without an answer" });
      const fail = shape.check(status, headers, trailers);
      if (!fail) return resolve({});
      const refused = REFUSED.includes(fail);
      const retryAfter = (headers["retry-after"] ?? trailers["retry-after"]) !== undefined;
      resolve({ fail, detail: `${String(headers["grpc-message"] ?? trailers["grpc-message"] ?? "")} ${body}`, refused, retryAfter });
    });
    stream.end(shape.body(email));
  });
}

async function runH2(spec: LoadSpec, sessions: http2.ClientHttp2Session[], seconds: number, rec: Recorder, phase: string): Promise<void> {
  const shape = h2Shape(spec);
  const deadline = performance.now() + seconds * 1000;
  await Promise.all(
    sessions.map(async (session) => {
      while (performance.now() < deadline) {
        const email = freshEmail(spec, phase);
        const t0 = performance.now();
        const r = await h2Request(session, shape, email);
        const ms = performance.now() - t0;
        if (r.refused) rec.refusal(ms, r.retryAfter === true);
        rec.record(email, r.fail ?? "ok", r.fail === undefined, ms, r.detail);
      }
    }),
  );
}

// ---------------------------------------------------------------- the C clients (h1gen, h2gen)

interface CGen {
  /** The warm-up's counts, once the client has run it. */
  warmed(): Promise<{ requests: number; errors: number; firstError?: string }>;
  /** Starts the measured window; resolves when the client has reported every request of it. */
  measure(rec: Recorder): Promise<{ durationMs: number; cpuUs: number }>;
}

const addressArgs = (spec: LoadSpec) => ["--email-prefix", emailPrefix(spec), "--email-domain", EMAIL_DOMAIN, "--warm-phase", WARM_PHASE, "--phase", MEASURED_PHASE];
const windowArgs = (spec: LoadSpec) => ["--connections", String(spec.connections), "--warmup", String(spec.warmupSeconds), "--seconds", String(spec.seconds)];

/** h2gen's arguments for an HTTP/2 route. */
function h2genArgs(spec: LoadSpec): string[] {
  const shape = h2Shape(spec);
  const url = new URL(spec.baseUrl);
  const { ":method": method, ":path": rpcPath, ...headers } = shape.headers;
  if (method !== "POST") throw new Error("h2gen sends POST only");
  return [
    ...["--host", url.hostname, "--port", url.port, "--authority", url.host, "--path", String(rpcPath)],
    ...windowArgs(spec),
    ...["--body", shape.encoding, "--check", shape.encoding === "grpc" ? "grpc" : "http"],
    ...addressArgs(spec),
    ...Object.entries(headers).flatMap(([k, v]) => ["--header", k, String(v)]),
  ];
}

/** h1gen's arguments for an HTTP/1.1 route, closed loop or (with spec.rate) open loop. */
function h1genArgs(spec: LoadSpec): string[] {
  const shape = httpShape(spec);
  const url = new URL(spec.baseUrl);
  // The address goes where h1gen finds "{email}", percent-encoded as encodeURIComponent does.
  const marker = "\u0000";
  const template = shape.path(marker).replace(encodeURIComponent(marker), "{email}");
  return [
    ...["--host", url.hostname, "--port", url.port, "--authority", url.host, "--method", shape.method, "--path", template],
    ...windowArgs(spec),
    ...(spec.rate ? ["--rate", String(spec.rate), "--max-sockets", String(spec.maxSockets ?? spec.connections)] : []),
    ...(shape.body ? ["--body", "json"] : []),
    ...addressArgs(spec),
    ...Object.entries(shape.headers).flatMap(([k, v]) => ["--header", k, v]),
  ];
}

/**
 * Spawns a C client with its arguments: it opens its connections and runs the
 * warm-up at once. The protocol (tab-separated lines) is described in
 * bench/gen-common.h.
 */
function startCGen(name: string, bin: string, args: string[]): CGen {
  const child = spawn(bin, args, { stdio: ["pipe", "pipe", "inherit"] });
  let exit: string | undefined;
  child.on("exit", (code, signal) => (exit = `${name} exited with ${code ?? signal}`));
  const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const line = async (): Promise<string[]> => {
    const next = await lines.next();
    if (next.done) throw new Error(exit ?? `${name} closed its output`);
    return next.value.split("\t");
  };
  return {
    async warmed() {
      const [kind, requests, errors, firstError] = await line();
      if (kind !== "W") throw new Error(`${name}: expected its warm-up line, got ${kind}`);
      return { requests: Number(requests), errors: Number(errors), ...(firstError ? { firstError } : {}) };
    },
    async measure(rec) {
      child.stdin!.end("go\n");
      // The C clients stamp answers with CLOCK_MONOTONIC (ms), which process.hrtime reads:
      // this offset puts them on nowMs()'s clock, as the node clients stamp them.
      const monoToNowMs = nowMs() - Number(process.hrtime.bigint()) / 1e6;
      for (;;) {
        const f = await line();
        if (f[0] === "A") rec.record(f[1]!, "ok", true, Number(f[3]), undefined, Number(f[2]) + monoToNowMs);
        else if (f[0] === "F") {
          const [, status, ms, retryAfter, detail] = f as [string, string, string, string, string];
          if (REFUSED.includes(status)) rec.refusal(Number(ms), retryAfter === "1");
          rec.record("", status, false, Number(ms), detail);
        } else if (f[0] === "E") return { durationMs: Number(f[1]), cpuUs: Number(f[2]) };
        else throw new Error(`${name}: unexpected line ${f.join(" ")}`);
      }
    },
  };
}

// ---------------------------------------------------------------- paced (open loop)

async function runPaced(spec: LoadSpec, rate: number, seconds: number, rec: Recorder, phase: string): Promise<void> {
  const shape = httpShape(spec);
  const url = new URL(spec.baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.maxSockets ?? spec.connections });
  const total = Math.round(rate * seconds);
  const start = performance.now();
  let issued = 0;
  const inFlight = new Set<Promise<void>>();
  const one = (email: string) =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const body = shape.body?.(email);
      const req = http.request(
        { agent, host: url.hostname, port: url.port, method: shape.method, path: shape.path(email), headers: shape.headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const status = res.statusCode ?? 0;
            const ok = status >= 200 && status < 300;
            const ms = performance.now() - t0;
            if (status === 429 || status === 503) rec.refusal(ms, res.headers["retry-after"] !== undefined);
            rec.record(email, String(status), ok, ms, ok ? undefined : Buffer.concat(chunks).toString());
            resolve();
          });
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error("timeout")));
      req.on("error", (err) => {
        rec.record(email, "transport_error", false, performance.now() - t0, err.message);
        resolve();
      });
      req.end(body);
    });
  while (issued < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
    while (issued < due) {
      const p = one(freshEmail(spec, phase)).finally(() => inFlight.delete(p));
      inFlight.add(p);
      issued++;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(inFlight);
  agent.destroy();
}

// ---------------------------------------------------------------- driver

async function main(): Promise<void> {
  process.title = "otp-bench-loadgen";
  const next = () => new Promise<Msg>((resolve) => process.once("message", (m) => resolve(m as Msg)));
  const start = await next();
  if (start.type !== "start") throw new Error("expected start");
  const { spec } = start;
  const h2 = H2_ROUTES.includes(spec.route) && !spec.rate;
  const gen = h2 && spec.h2gen ? startCGen("h2gen", spec.h2gen, h2genArgs(spec)) : !h2 && spec.h1gen ? startCGen("h1gen", spec.h1gen, h1genArgs(spec)) : undefined;
  const sessions = h2 && !gen ? h2Sessions(spec) : [];
  const client = gen ? (h2 ? "h2gen (C, libnghttp2)" : spec.rate ? "h1gen (C, open loop)" : "h1gen (C)") : h2 ? "node:http2" : spec.rate ? "node:http" : "autocannon";

  const run = async (seconds: number, rec: Recorder, phase: string) => {
    if (spec.rate) return runPaced(spec, spec.rate, seconds, rec, phase);
    if (h2) return runH2(spec, sessions, seconds, rec, phase);
    return runAutocannon(spec, seconds, rec, phase);
  };

  const warm = new Recorder(false);
  if (gen) Object.assign(warm, await gen.warmed());
  else if (spec.warmupSeconds > 0) await run(spec.warmupSeconds, warm, WARM_PHASE);
  const go = next();
  process.send!({ type: "warmed", requests: warm.requests, errors: warm.errors, firstError: warm.firstError });
  await go;

  const rec = new Recorder(true);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  // A C client times the window itself, from the moment it reads the start line.
  let helper = { durationMs: 0, cpuUs: 0 };
  if (gen) helper = await gen.measure(rec);
  else await run(spec.seconds, rec, MEASURED_PHASE);
  const durationMs = gen ? helper.durationMs : performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (process.env.BENCH_LATENCY_DUMP) dumpLatencies(`${process.env.BENCH_LATENCY_DUMP}-${spec.route}.json`, rec);
  const result: LoadResult = {
    route: spec.route,
    durationMs,
    requests: rec.requests,
    ok: rec.requests - rec.errors,
    errors: rec.errors,
    statusCounts: rec.statusCounts,
    latencyMs: percentiles(rec.latencies),
    accepted: rec.accepted,
    clientCpuUs: cpu.user + cpu.system + helper.cpuUs,
    helperCpuUs: helper.cpuUs,
    client,
    refused: rec.refusedLatencies.length,
    refusedWithRetryAfter: rec.refusedWithRetryAfter,
    refusedLatencyMs: percentiles(rec.refusedLatencies),
    ...(rec.firstError ? { firstError: rec.firstError } : {}),
  };
  process.send!({ type: "done", result }, () => process.exit(0));
}

if (process.send) {
  main().catch((err) => {
    process.stderr.write(`loadgen: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
