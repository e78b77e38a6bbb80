// A start that fails leaves nothing running and says why. The service runs
// as a real process (`node --import tsx src/server.ts`) on the embedded
// Postgres, and each way a first hour goes wrong is tried for real: the port
// is taken, a second copy starts on the same DATA_DIR, the service is killed
// with SIGKILL and started again. After each: the exit code, the one line a
// person reads, and no process (the embedded Postgres included) left running
// on the data directory. On the way, the dev mailbox survives a restart.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import pg from "pg";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmbeddedPostgres } from "../../src/storage/embedded.js";
import { killAll, REPO, serviceEnv, sleep, startService, waitFor, type Service } from "./support/service.js";
import { FAULTS_ENABLED, tempDir } from "./support/suite.js";

interface Run {
  readonly code: number | null;
  readonly stderr: string;
  readonly stdout: string;
}

/** Runs the service to its exit (it is expected to fail), bounded in time. */
function runToExit(env: Record<string, string | undefined>, timeoutMs = 60_000): Promise<Run> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/server.ts"], { cwd: REPO, env: serviceEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (c: Buffer) => (stdout += c));
  child.stderr!.on("data", (c: Buffer) => (stderr += c));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  return new Promise((resolve) =>
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, stdout });
    }),
  );
}

/** Pids of every process whose command line names this directory (postgres -D <dir>/postgres, ours). */
function processesOn(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").some((arg) => arg.startsWith(dir))) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

function busyPort(): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer();
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ port: (server.address() as net.AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) }),
    ),
  );
}

describe.runIf(FAULTS_ENABLED)("a failed start leaves nothing running and says why", () => {
  let data: Awaited<ReturnType<typeof tempDir>>;
  const services: Service[] = [];
  const embedded = () => ({ DATA_DIR: data.path, OTP_PEPPER: undefined, SEED_DEMO: "true" });

  beforeAll(async () => {
    data = await tempDir("start");
  });

  afterAll(async () => {
    await killAll(services);
    for (const pid of processesOn(data.path)) process.kill(pid, "SIGKILL");
    await data?.remove();
  });

  it("a busy PORT: exit 1, names the port and PORT, and the embedded Postgres it started is stopped", async () => {
    const taken = await busyPort();
    try {
      const run = await runToExit({ ...embedded(), PORT: String(taken.port) });
      expect(run.code).toBe(1);
      expect(run.stderr).toBe(
        `otp-service: failed to start: port ${taken.port} on 127.0.0.1 is already in use (127.0.0.1:${taken.port}, EADDRINUSE): stop what listens there, or set PORT to a free port (PORT=0 picks one)\n`,
      );
      // The embedded Postgres did start (and migrate) before listening failed.
      expect(run.stdout).toContain("embedded Postgres started");
    } finally {
      await taken.close();
    }
    expect(processesOn(data.path)).toEqual([]);
    expect(existsSync(path.join(data.path, "postgres", "postmaster.pid"))).toBe(false);
    expect(existsSync(path.join(data.path, "otp-service.pid"))).toBe(false);
  });

  it("the next start on the same DATA_DIR works, and a second copy on it is refused naming DATA_DIR and the running pid", async () => {
    const first = await startService("start-first", embedded());
    services.push(first);
    const second = await runToExit(embedded(), 30_000);
    expect(second.code).toBe(1);
    expect(second.stderr).toBe(
      `otp-service: failed to start: DATA_DIR ${data.path} is in use by another otp-service (pid ${first.pid}): stop that one (kill ${first.pid}), or give this one its own directory with DATA_DIR=…\n`,
    );
    // The refused copy touched nothing: the first still answers.
    expect((await fetch(`${first.url}/readyz`)).status).toBe(200);
    // Mail for the next test: the dev mailbox is kept in DATA_DIR across restarts.
    expect((await fetch(`${first.url}/api/sys/users/sendOtp?email=jane.doe%40example.com&businessId=7`)).status).toBe(200);
    await waitFor("the mail in the dev mailbox", async () => (((await (await fetch(`${first.url}/dev/mailbox`)).json()) as unknown[]).length > 0 ? true : undefined), 10_000);
    const exit = await first.stop();
    expect(exit.code).toBe(0);
    expect(first.logs().at(-1)).toMatchObject({ msg: "stopped", exit_code: 0 });
    expect(processesOn(data.path)).toEqual([]);
  });

  it("after a SIGKILL the Postgres left behind is stopped by the next start, which then runs", async () => {
    const killed = await startService("start-killed", embedded());
    services.push(killed);
    const kept = (await (await fetch(`${killed.url}/dev/mailbox?to=jane.doe%40example.com`)).json()) as { to: string }[];
    expect(kept.map((m) => m.to)).toEqual(["jane.doe@example.com"]);
    killed.signal("SIGKILL");
    await killed.exit;
    const orphans = processesOn(data.path);
    expect(orphans.length).toBeGreaterThan(0);

    const next = await startService("start-after-kill", embedded());
    services.push(next);
    expect(next.logs().map((l) => l.msg)).toContain("stopping the embedded Postgres an earlier otp-service left running on this DATA_DIR");
    expect((await fetch(`${next.url}/readyz`)).status).toBe(200);
    for (const pid of orphans) expect(existsSync(`/proc/${pid}/cmdline`) && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(data.path)).toBe(false);
    await next.stop();
    await waitFor("no process on the data directory", () => (processesOn(data.path).length === 0 ? true : undefined), 10_000);
  });

  it("a busy EMBEDDED_PG_PORT: Postgres's own reason reaches the user, naming EMBEDDED_PG_PORT", async () => {
    const taken = await busyPort();
    try {
      const run = await runToExit({ ...embedded(), EMBEDDED_PG_PORT: String(taken.port) });
      expect(run.code).toBe(1);
      expect(run.stderr).toBe(
        `otp-service: failed to start: EMBEDDED_PG_PORT ${taken.port} is already in use: set EMBEDDED_PG_PORT to a free port, or unset it to pick one\n`,
      );
    } finally {
      await taken.close();
    }
    expect(processesOn(data.path)).toEqual([]);
  });

  it("a crash after the start (an uncaught exception) stops the embedded Postgres too, exit 1", async () => {
    const crashing = await startService("start-crash", embedded(), { preload: ["./test/faults/support/crash-on-sigusr2.ts"] });
    services.push(crashing);
    crashing.signal("SIGUSR2");
    const exit = await crashing.exit;
    expect(exit.code).toBe(1);
    const messages = crashing.logs().map((l) => l.msg);
    expect(messages).toContain("crashed; stopping");
    expect(crashing.logs().at(-1)).toMatchObject({ msg: "stopped", exit_code: 1 });
    await waitFor("no process on the data directory", () => (processesOn(data.path).length === 0 ? true : undefined), 10_000);
  });

  it("a migration that fails on the embedded Postgres: exit 1, says so with DATA_DIR, and the Postgres is stopped", async () => {
    const broken = await tempDir("start-migration");
    try {
      // A table in the way of the first migration, made by an earlier "version".
      const embedded = await startEmbeddedPostgres(broken.path, 0, pino({ level: "silent" }));
      const client = new pg.Client({ connectionString: embedded.url });
      await client.connect();
      await client.query("CREATE TABLE tenants (id int)");
      await client.end();
      await embedded.stop();

      const run = await runToExit({ DATA_DIR: broken.path, OTP_PEPPER: undefined });
      expect(run.code).toBe(1);
      expect(run.stderr).toBe(
        `otp-service: failed to start: the embedded Postgres in DATA_DIR ${broken.path} failed while applying migrations: relation "tenants" already exists (42P07); if that directory holds nothing you need, remove it (or set DATA_DIR to a new one) and start again\n`,
      );
      expect(run.stdout).toContain("embedded Postgres started");
      expect(processesOn(broken.path)).toEqual([]);
    } finally {
      for (const pid of processesOn(broken.path)) process.kill(pid, "SIGKILL");
      await broken.remove();
    }
  });

  it("an unreachable DATABASE_URL: exit 1, names DATABASE_URL and its host, never the password", async () => {
    const closed = await busyPort();
    await closed.close();
    const run = await runToExit({ DATABASE_URL: `postgres://otp:hunter2-secret@127.0.0.1:${closed.port}/otp`, SMTP_URL: "smtp://127.0.0.1:2525" });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      `otp-service: failed to start: cannot reach the database at DATABASE_URL (127.0.0.1:${closed.port}/otp): ECONNREFUSED; check that Postgres runs there and that DATABASE_URL is right, or unset DATABASE_URL to run an embedded Postgres\n`,
    );
    expect(run.stdout + run.stderr).not.toContain("hunter2");
    await sleep(0);
  });
});
