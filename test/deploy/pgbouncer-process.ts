// A real PgBouncer (Debian's package) in front of the test Postgres server,
// in transaction pooling mode with nothing else changed from its defaults
// but the pool size: what most deployments with many instances run.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export interface PgBouncer {
  readonly port: number;
  /** `databaseUrl` with its host and port replaced by PgBouncer's. */
  through(databaseUrl: string): string;
  output(): string;
  stop(): Promise<void>;
}

/** The pgbouncer binary, or undefined when it is not installed. */
export function pgbouncerBinary(): string | undefined {
  for (const candidate of ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]) {
    try {
      execFileSync(candidate, ["--version"], { stdio: "ignore" });
      return candidate;
    } catch {
      // not this one
    }
  }
  return undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Starts PgBouncer for the Postgres server of `serverUrl` (trust auth; every
 * database by wildcard). `poolSize` server connections per database and
 * user: small, so consecutive statements of one client land on different
 * server connections. PgBouncer refuses to run as root: as root it runs as
 * nobody.
 */
export async function startPgBouncer(serverUrl: string, options: { poolSize?: number; binary?: string } = {}): Promise<PgBouncer> {
  // The free port found can be taken by another process before PgBouncer
  // binds it (the machine runs other suites): try a few ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(serverUrl, options);
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
}

async function startOnce(serverUrl: string, options: { poolSize?: number; binary?: string }): Promise<PgBouncer> {
  const binary = options.binary ?? pgbouncerBinary();
  if (!binary) throw new Error("pgbouncer is not installed (apt-get install pgbouncer)");
  const server = new URL(serverUrl);
  // PgBouncer logs in to Postgres with the password in its auth file (the
  // embedded Postgres of a run without TEST_DATABASE_URL wants one).
  const user = decodeURIComponent(server.username || "postgres");
  const password = decodeURIComponent(server.password);
  const dir = await mkdtemp(path.join(os.tmpdir(), "otp-pgbouncer-"));
  await chmod(dir, 0o755);
  const port = await freePort();
  const userFile = path.join(dir, "users.txt");
  await writeFile(userFile, `"${user}" "${password.replaceAll('"', '""')}"\n`);
  const ini = path.join(dir, "pgbouncer.ini");
  await writeFile(
    ini,
    [
      "[databases]",
      `* = host=${server.hostname} port=${server.port || 5432}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${userFile}`,
      "pool_mode = transaction",
      `default_pool_size = ${options.poolSize ?? 4}`,
      "max_client_conn = 1000",
      "logfile =",
      "pidfile =",
      "",
    ].join("\n"),
  );
  await chmod(userFile, 0o644); // read by nobody; a throwaway file in a throwaway directory
  await chmod(ini, 0o644);
  const asRoot = process.getuid?.() === 0;
  const child: ChildProcess = asRoot
    ? spawn("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", binary, ini], { stdio: ["ignore", "pipe", "pipe"] })
    : spawn(binary, [ini], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (out += c.toString()));
  const exited = once(child, "exit");
  const deadline = Date.now() + 20_000;
  // "process up" alone is not enough: PgBouncer carries on when it cannot
  // bind its port (another process took it after freePort()), and a client
  // would then reach whatever listens there.
  while (!out.includes("process up")) {
    const failed =
      child.exitCode !== null
        ? "exited"
        : /bind|Address already in use|listen.*failed/i.test(out)
          ? "could not listen"
          : Date.now() > deadline
            ? "did not start"
            : undefined;
    if (failed) {
      child.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
      throw new Error(`pgbouncer ${failed}:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!out.includes(`listening on 127.0.0.1:${port}`)) {
    child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
    throw new Error(`pgbouncer is not listening on 127.0.0.1:${port}:\n${out}`);
  }
  return {
    port,
    through(databaseUrl) {
      const url = new URL(databaseUrl);
      url.hostname = "127.0.0.1";
      url.port = String(port);
      return url.toString();
    },
    output: () => out,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
