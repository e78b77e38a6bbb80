// The service as production runs it: `npm run build`'s output, copied into a
// tree nobody may write to, started with `node dist/server/server.mjs` as an
// unprivileged user (nobody, when the tests run as root).
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { chmod, cp, mkdtemp, readdir, rm, stat, symlink } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildDist } from "../../src/build.js";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const NOBODY = { uid: 65534, gid: 65534 };
const asRoot = process.getuid?.() === 0;

export interface BuiltTree {
  readonly dir: string;
  /** Every file under dir with its size and mtime, to show nothing changed. */
  snapshot(): Promise<string[]>;
  remove(): Promise<void>;
}

/** What the image holds: dist/ (freshly built), migrations/, package.json, node_modules (linked), all read-only. */
export async function readOnlyBuiltTree(): Promise<BuiltTree> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "otp-prod-tree-"));
  await buildDist(path.join(dir, "dist"));
  await cp(path.join(REPO, "migrations"), path.join(dir, "migrations"), { recursive: true });
  await cp(path.join(REPO, "package.json"), path.join(dir, "package.json"));
  await symlink(path.join(REPO, "node_modules"), path.join(dir, "node_modules"));
  await setModes(dir, 0o555, 0o444);
  const snapshot = async () => {
    const out: string[] = [];
    const walk = async (d: string) => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isSymbolicLink()) out.push(p);
        else if (e.isDirectory()) await walk(p);
        else {
          const s = await stat(p);
          out.push(`${p} ${s.size} ${s.mtimeMs}`);
        }
      }
    };
    await walk(dir);
    return out.sort();
  };
  return {
    dir,
    snapshot,
    async remove() {
      await setModes(dir, 0o755, 0o644);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function setModes(dir: string, dirMode: number, fileMode: number): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isSymbolicLink()) continue;
    if (e.isDirectory()) await setModes(p, dirMode, fileMode);
    else await chmod(p, fileMode);
  }
  await chmod(dir, dirMode);
}

/** A directory the unprivileged user may write to (to show the service does not). */
export async function writableDir(prefix: string): Promise<{ dir: string; list(): Promise<string[]>; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  await chmod(dir, 0o777);
  return { dir, list: () => readdir(dir), remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  output(): string;
  logs(): Record<string, unknown>[];
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs `node <script>` in `cwd` as nobody (when root), with exactly `env` (plus PATH). */
export function runNode(cwd: string, script: string, env: Record<string, string>): Proc {
  const nodeArgs = ["--enable-source-maps", script];
  const [cmd, args] = asRoot
    ? ["setpriv", [`--reuid=${NOBODY.uid}`, `--regid=${NOBODY.gid}`, "--clear-groups", "--inh-caps=-all", process.execPath, ...nodeArgs]]
    : [process.execPath, nodeArgs];
  const child = spawn(cmd as string, args as string[], {
    cwd,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: "/nonexistent", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (out += c.toString()));
  const exit = once(child, "exit").then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  return {
    child,
    pid: child.pid!,
    output: () => out,
    logs: () =>
      out
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    exit,
  };
}

/** Waits for the "listening" log line and returns the service's URL. */
export async function listeningUrl(proc: Proc, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = proc.logs().find((l) => typeof l.url === "string" && String(l.msg).includes("listening"));
    if (line) return line.url as string;
    if (proc.child.exitCode !== null) throw new Error(`the service exited (${proc.child.exitCode}):\n${proc.output()}`);
    if (Date.now() > deadline) throw new Error(`the service did not listen within ${timeoutMs} ms:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The pids of the process's children (from /proc; every thread's list). */
export async function childPids(pid: number): Promise<number[]> {
  const { readFile } = await import("node:fs/promises");
  const tasks = await readdir(`/proc/${pid}/task`);
  const kids = await Promise.all(tasks.map((t) => readFile(`/proc/${pid}/task/${t}/children`, "utf8").catch(() => "")));
  return kids.flatMap((k) => k.split(/\s+/).filter(Boolean).map(Number));
}

/** The real uid of a running process. */
export async function uidOf(pid: number): Promise<number> {
  const { readFile } = await import("node:fs/promises");
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/^Uid:\s+(\d+)/m.exec(status)![1]);
}

export const runningAsRoot = asRoot;
export const NOBODY_UID = NOBODY.uid;

/**
 * A login role with only deploy/postgres/runtime-grants.sql's grants on the
 * database at `databaseUrl` (run as the migrating role, as documented).
 * Roles are cluster-wide, so each gets a random name; drop() removes it
 * (after the test database is dropped).
 */
export async function createRuntimeRole(databaseUrl: string): Promise<{ url: string; role: string; drop(): Promise<void> }> {
  const { readFile } = await import("node:fs/promises");
  const { randomBytes } = await import("node:crypto");
  const pg = (await import("pg")).default;
  const role = `otp_runtime_${randomBytes(5).toString("hex")}`;
  const password = randomBytes(12).toString("hex");
  const grants = (await readFile(path.join(REPO, "deploy/postgres/runtime-grants.sql"), "utf8")).replaceAll("otp_runtime", role);
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    await admin.query(grants);
  } finally {
    await admin.end();
  }
  const url = new URL(databaseUrl);
  url.username = role;
  url.password = password;
  return {
    url: url.toString(),
    role,
    async drop() {
      const server = new URL(databaseUrl);
      server.pathname = "/postgres";
      const c = new pg.Client({ connectionString: server.toString() });
      await c.connect();
      try {
        await c.query(`DROP ROLE IF EXISTS ${role}`);
      } finally {
        await c.end();
      }
    },
  };
}
