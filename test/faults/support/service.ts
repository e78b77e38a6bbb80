// The service as a real child process (`node --import tsx src/server.ts`),
// as an operator runs it: its own environment, its own pid, stopped with real
// signals. Each child's log goes to a file under the OS temp dir (printed
// when a start fails), and every child a test file started is killed when
// that file ends, or when the test process exits.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createWriteStream, mkdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
/** A fixed pepper: several processes on one database must share it. */
export const PEPPER = "faults-pepper-0123456789abcdef0123456789abcdef";
export const LOG_DIR = path.join(os.tmpdir(), "otp-faults-logs");

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Milliseconds since the service process was spawned. */
  readonly at: number;
}

export interface Service {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly child: ChildProcess;
  readonly logFile: string;
  /** Resolves when the process has exited. */
  readonly exit: Promise<Exit>;
  readonly exited: boolean;
  /** The last log lines (stdout and stderr). */
  tail(lines?: number): string;
  /** Parsed JSON log lines so far. */
  logs(): Record<string, unknown>[];
  signal(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL if it has not exited within timeoutMs. */
  stop(timeoutMs?: number): Promise<Exit>;
  /** Resident set size in kB, from /proc/<pid>/status. */
  rssKb(): number;
}

const children = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
}

/** The environment a child gets: only what is named here, plus PATH and HOME. */
export function serviceEnv(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? os.homedir(),
    TMPDIR: os.tmpdir(),
    HOST: "127.0.0.1",
    PORT: "0",
    LOG_LEVEL: "info",
    OTP_PEPPER: PEPPER,
    // The suite's processes share two CPUs: their event loops run late for
    // reasons of their own, which this check would turn into refused sends.
    SEND_MAX_LOOP_DELAY_MS: "0",
  };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

/**
 * Spawns the service and resolves once it listens and /healthz answers 200.
 * PORT=0 by default: the port is read from its "listening" log line.
 */
export async function startService(
  name: string,
  env: Record<string, string | undefined>,
  options: { timeoutMs?: number; preload?: readonly string[] } = {},
): Promise<Service> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  installExitHook();
  mkdirSync(LOG_DIR, { recursive: true });
  const started = Date.now();
  const preload = (options.preload ?? []).flatMap((p) => ["--import", p]);
  const child = spawn(process.execPath, ["--import", "tsx", ...preload, "src/server.ts"], {
    cwd: REPO,
    env: serviceEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  const logFile = path.join(LOG_DIR, `${name}-${child.pid}.log`);
  const file = createWriteStream(logFile);
  const lines: string[] = [];
  const parsed: Record<string, unknown>[] = [];
  let exited = false;
  const exit = new Promise<Exit>((resolve) => {
    child.once("close", (code, signal) => {
      file.end(`[faults] process exited: code ${code} signal ${signal} after ${Date.now() - started} ms\n`);
    });
    child.once("exit", (code, signal) => {
      exited = true;
      children.delete(child);
      resolve({ code, signal, at: Date.now() - started });
    });
  });
  let resolveUrl: (url: string) => void = () => {};
  const urlSeen = new Promise<string>((resolve) => (resolveUrl = resolve));
  const onLine = (line: string) => {
    if (line.length === 0) return;
    lines.push(line);
    if (lines.length > 400) lines.splice(0, lines.length - 400);
    file.write(`${line}\n`);
    if (line.startsWith("{")) {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (parsed.length < 20_000) parsed.push(entry);
        if (typeof entry.url === "string" && String(entry.msg ?? "").includes("listening")) resolveUrl(entry.url);
      } catch {
        // Not JSON: kept as text.
      }
    }
  };
  for (const stream of [child.stdout!, child.stderr!]) {
    let buffered = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      buffered += chunk;
      for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
        onLine(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
    });
    stream.on("end", () => onLine(buffered));
  }
  const tail = (n = 40) => lines.slice(-n).join("\n");

  const deadline = Date.now() + timeoutMs;
  const failed = (why: string) => {
    if (!exited) child.kill("SIGKILL");
    return new Error(`service ${name} (pid ${child.pid}) ${why}; log ${logFile}:\n${tail()}`);
  };
  let startTimer: NodeJS.Timeout | undefined;
  const url = await Promise.race([
    urlSeen,
    exit.then((e) => Promise.reject(failed(`exited with ${e.code ?? e.signal} before listening`))),
    new Promise<never>((_, reject) => {
      startTimer = setTimeout(() => reject(failed(`did not listen within ${timeoutMs} ms`)), timeoutMs);
    }),
  ]).finally(() => clearTimeout(startTimer));
  for (;;) {
    if (exited) throw failed("exited before /healthz answered");
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) });
      if (res.status === 200) break;
    } catch {
      // Not yet.
    }
    if (Date.now() > deadline) throw failed("did not answer /healthz");
    await sleep(100);
  }
  const port = Number(new URL(url).port);
  return {
    name,
    url,
    port,
    pid: child.pid!,
    child,
    logFile,
    exit,
    get exited() {
      return exited;
    },
    tail,
    logs: () => parsed,
    signal(signal) {
      if (!exited) child.kill(signal);
    },
    async stop(stopTimeoutMs = 20_000) {
      if (!exited) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => !exited && child.kill("SIGKILL"), stopTimeoutMs);
        const e = await exit;
        clearTimeout(timer);
        return e;
      }
      return exit;
    },
    rssKb() {
      const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
      const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
      if (!m) throw new Error(`no VmRSS for pid ${child.pid}`);
      return Number(m[1]);
    },
  };
}

/** SIGKILLs whatever is still running of these (afterAll). */
export async function killAll(services: readonly (Service | undefined)[]): Promise<void> {
  await Promise.all(
    services.map(async (s) => {
      if (!s || s.exited) return;
      s.signal("SIGKILL");
      await Promise.race([s.exit, sleep(5_000)]);
    }),
  );
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns a value other than undefined, or throws after timeoutMs. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`);
    }
    await sleep(everyMs);
  }
}

/** Reads the demo credentials a SEED_DEMO=true service wrote into its DATA_DIR. */
export function demoCredentials(dataDir: string): { project_id: string; secret: string; business_id: number; basic: string } {
  const c = JSON.parse(readFileSync(path.join(dataDir, "dev-credentials.json"), "utf8")) as {
    project_id: string;
    secret: string;
    business_id: number;
  };
  return { ...c, basic: `Basic ${Buffer.from(`${c.project_id}:${c.secret}`).toString("base64")}` };
}

export interface Answer {
  readonly status: number;
  readonly text: string;
  readonly headers: Headers;
  /** Wall time from the call to the whole body read, in ms. */
  readonly ms: number;
  /** Set when the call itself failed (refused, reset, timed out). */
  readonly error?: string;
  json<T = Record<string, unknown>>(): T;
}

/** One HTTP call with a hard time bound; a network failure is an Answer with status 0. */
export async function call(url: string, init: RequestInit & { timeoutMs?: number } = {}): Promise<Answer> {
  const t0 = performance.now();
  const { timeoutMs = 15_000, ...rest } = init;
  try {
    const res = await fetch(url, { ...rest, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    const ms = performance.now() - t0;
    return { status: res.status, text, headers: res.headers, ms, json: () => JSON.parse(text) };
  } catch (err) {
    const ms = performance.now() - t0;
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const error = `${(err as Error).name}: ${(err as Error).message}${cause ? ` (${cause.code ?? cause.message})` : ""}`;
    return { status: 0, text: "", headers: new Headers(), ms, error, json: () => ({}) as never };
  }
}

export function postJson(base: string, route: string, body: unknown, headers: Record<string, string> = {}, timeoutMs?: number) {
  return call(`${base}${route}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
    timeoutMs,
  });
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function countBy<T>(xs: readonly T[], key: (x: T) => string | number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[String(key(x))] = (out[String(key(x))] ?? 0) + 1;
  return out;
}

/** Tells whether a TCP connection to the port is refused (true) or accepted (false). */
export async function connectionRefused(port: number, timeoutMs = 2_000): Promise<boolean> {
  const net = await import("node:net");
  const socket = net.connect({ host: "127.0.0.1", port });
  const timer = setTimeout(() => socket.destroy(new Error("connect timeout")), timeoutMs);
  try {
    await once(socket, "connect");
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ECONNREFUSED";
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
}
