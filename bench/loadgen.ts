// The load generator, run as its own process (forked by bench/run.ts) so its
// CPU is not the service's or the bench's. One process per route:
//   parent → {type:"start", spec}     warm-up runs at once
//   child  → {type:"warmed", …}       parent drains the outbox, snapshots /proc
//   parent → {type:"go"}              the measured window runs
//   child  → {type:"done", result}    then the child exits
// REST and Connect JSON go through autocannon (HTTP/1.1, one request in
// flight per connection); gRPC, Connect binary and Connect JSON over HTTP/2
// through a lean node:http2 client (h2c, one session per connection, one
// stream in flight per session, the request body encoded by hand), which
// costs the machine about what autocannon does. A paced phase sends at a
// fixed rate, evenly spaced (open loop), over keep-alive HTTP/1.1; the
// overload phase does the same at twice the measured maximum.
// Every request carries a fresh email address: that is why h2load, whose
// body is the same for every request, cannot drive the send routes (one
// address would make every send after the first a different, serialised
// send on one rate-limit row, and its mail could not be told apart).
import http from "node:http";
import http2 from "node:http2";
import autocannon from "autocannon";
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
  /** CPU the load generator used in the window, µs. */
  readonly clientCpuUs: number;
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
  record(email: string, status: string, ok: boolean, latencyMs: number, detail?: string): void {
    this.requests++;
    this.statusCounts[status] = (this.statusCounts[status] ?? 0) + 1;
    if (ok) {
      this.latencies.push(latencyMs);
      if (this.keepAccepted) this.accepted.push([email, nowMs()]);
    } else {
      this.errors++;
      this.firstError ??= `${status}${detail ? `: ${detail.slice(0, 300)}` : ""}`;
    }
  }
}

let seq = 0;
function freshEmail(spec: LoadSpec, phase: string): string {
  return `b.${spec.tag}.${phase}.${(seq++).toString(36)}@bench.example`;
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
        body: protoEmail,
        check: (status) => (status === 200 ? undefined : String(status)),
      };
    case "connect-json-h2":
      return {
        headers: { ...base, "content-type": "application/json", "connect-protocol-version": "1" },
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
      // grpc-status 8 resource_exhausted / 14 unavailable; Connect's 429 / 503.
      const refused = ["grpc_8", "grpc_14", "429", "503"].includes(fail);
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
  const h2 = spec.route === "grpc" || spec.route === "connect-binary" || spec.route === "connect-json-h2";
  const sessions = h2 ? h2Sessions(spec) : [];

  const run = async (seconds: number, rec: Recorder, phase: string) => {
    if (spec.rate) return runPaced(spec, spec.rate, seconds, rec, phase);
    if (h2) return runH2(spec, sessions, seconds, rec, phase);
    return runAutocannon(spec, seconds, rec, phase);
  };

  const warm = new Recorder(false);
  if (spec.warmupSeconds > 0) await run(spec.warmupSeconds, warm, "w");
  const go = next();
  process.send!({ type: "warmed", requests: warm.requests, errors: warm.errors, firstError: warm.firstError });
  await go;

  const rec = new Recorder(true);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await run(spec.seconds, rec, "m");
  const durationMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const result: LoadResult = {
    route: spec.route,
    durationMs,
    requests: rec.requests,
    ok: rec.requests - rec.errors,
    errors: rec.errors,
    statusCounts: rec.statusCounts,
    latencyMs: percentiles(rec.latencies),
    accepted: rec.accepted,
    clientCpuUs: cpu.user + cpu.system,
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
