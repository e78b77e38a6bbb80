// The load generator, run as its own process (forked by bench/run.ts) so its
// CPU is not the service's or the bench's. One process per route:
//   parent → {type:"start", spec}     warm-up runs at once
//   child  → {type:"warmed", …}       parent drains the outbox, snapshots /proc
//   parent → {type:"go"}              the measured window runs
//   child  → {type:"done", result}    then the child exits
// REST and Connect JSON go through autocannon (HTTP/1.1, one request in
// flight per connection); gRPC and Connect binary through a pool of
// connect-node transports over HTTP/2, one session per connection. A paced
// phase sends at a fixed rate, evenly spaced, over keep-alive HTTP/1.1.
// Every request carries a fresh email address.
import http from "node:http";
import autocannon from "autocannon";
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { OtpService } from "../gen/otp/v1/otp_service_pb.js";
import { nowMs, percentiles, type Percentiles } from "./stats.js";

export type RouteName = "healthz" | "legacy-rest" | "stytch-rest" | "connect-json" | "connect-binary" | "grpc";

export interface LoadSpec {
  readonly route: RouteName;
  readonly baseUrl: string;
  readonly connections: number;
  readonly warmupSeconds: number;
  readonly seconds: number;
  /** Paced phase: requests per second, evenly spaced (open loop). */
  readonly rate?: number;
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
}

type Msg = { type: "start"; spec: LoadSpec } | { type: "go" };

class Recorder {
  latencies: number[] = [];
  accepted: [string, number][] = [];
  statusCounts: Record<string, number> = {};
  errors = 0;
  requests = 0;
  firstError: string | undefined;
  constructor(private readonly keepAccepted: boolean) {}
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

// ---------------------------------------------------------------- HTTP/2 (connect-node)

function connectClients(spec: LoadSpec): Client<typeof OtpService>[] {
  return Array.from({ length: spec.connections }, () =>
    createClient(
      OtpService,
      spec.route === "grpc"
        ? createGrpcTransport({ baseUrl: spec.baseUrl })
        : createConnectTransport({ baseUrl: spec.baseUrl, httpVersion: "2", useBinaryFormat: true }),
    ),
  );
}

async function runConnect(spec: LoadSpec, clients: Client<typeof OtpService>[], seconds: number, rec: Recorder, phase: string): Promise<void> {
  const deadline = performance.now() + seconds * 1000;
  const headers = { authorization: spec.authorization };
  await Promise.all(
    clients.map(async (client) => {
      while (performance.now() < deadline) {
        const email = freshEmail(spec, phase);
        const t0 = performance.now();
        try {
          await client.loginOrCreateEmailOtp({ email }, { headers, timeoutMs: 10_000 });
          rec.record(email, "ok", true, performance.now() - t0);
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          rec.record(email, `connect_${String(code ?? "error")}`, false, performance.now() - t0, (err as Error).message);
        }
      }
    }),
  );
}

// ---------------------------------------------------------------- paced (open loop)

async function runPaced(spec: LoadSpec, rate: number, seconds: number, rec: Recorder, phase: string): Promise<void> {
  const shape = httpShape(spec);
  const url = new URL(spec.baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.connections });
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
            rec.record(email, String(status), ok, performance.now() - t0, ok ? undefined : Buffer.concat(chunks).toString());
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
  const h2 = spec.route === "grpc" || spec.route === "connect-binary";
  const clients = h2 ? connectClients(spec) : [];

  const run = async (seconds: number, rec: Recorder, phase: string) => {
    if (spec.rate) return runPaced(spec, spec.rate, seconds, rec, phase);
    if (h2) return runConnect(spec, clients, seconds, rec, phase);
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
