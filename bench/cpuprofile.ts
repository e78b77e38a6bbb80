// Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and
// by where the code lives (the service's src/, a package, Node's internals).
import { existsSync, readFileSync } from "node:fs";
import { SourceMap } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileRow {
  readonly name: string;
  readonly where: string;
  readonly selfMs: number;
  readonly pct: number;
}

export interface ProfileSummary {
  readonly totalMs: number;
  /** Sampled time not idle, ms. */
  readonly busyMs: number;
  readonly functions: ProfileRow[];
  readonly modules: ProfileRow[];
  /** Busy time by the work it served, from each sample's stack (see OWNERS). */
  readonly owners: ProfileRow[];
}

/**
 * Who a sample works for: the nearest frame on its stack that is a file of a
 * package or of the service (node: internals and native frames are skipped),
 * so a socket write made by the pg driver counts as database work and one
 * made by nodemailer as mail delivery.
 */
const OWNERS: readonly [string, RegExp][] = [
  ["mail delivery: nodemailer (SMTP client, MIME)", /\/node_modules\/(nodemailer|smtp-)/],
  ["mail delivery: src/mail (outbox worker, templates)", /\/src\/mail\//],
  ["database: pg driver", /\/node_modules\/(pg|pg-protocol|pg-pool|pg-types|pgpass|pg-connection-string)\//],
  ["module loading: tsx, esbuild", /\/node_modules\/(tsx|esbuild|get-tsconfig)\//],
  ["Connect and protobuf", /\/node_modules\/@(connectrpc|bufbuild)\//],
  ["metrics and logging: prom-client, pino", /\/node_modules\/(prom-client|pino|pino-std-serializers|sonic-boom|fast-redact|thread-stream)\//],
  ["service code (src/, with the node: calls it makes)", /\/(src|gen)\//],
  ["other packages", /\/node_modules\//],
];

/** For stacks with no package or service frame: the kind of node: internals at the top. */
function internalOwner(url: string, name: string): string | undefined {
  if (/^node:internal\/modules\//.test(url)) return "module loading: Node's ESM/CJS loader";
  if (/^node:(_http|net|internal\/stream|stream|internal\/streams)/.test(url)) return "HTTP and sockets (node: internals, no package frame)";
  if (name === "(garbage collector)") return "garbage collector";
  if (name === "(program)") return "(program): native, unattributed";
  return undefined;
}

/** Where a frame's code lives: "src/…", "pkg:<name>", "node:<module>" or a V8 pseudo-frame. */
function locate(url: string, cwd: string): string {
  if (!url) return "(native/V8)";
  const u = url.replace(/^file:\/\//, "");
  const nm = u.lastIndexOf("/node_modules/");
  if (nm >= 0) {
    const rest = u.slice(nm + "/node_modules/".length).split("/");
    return `pkg:${rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  if (u.startsWith("node:")) return u.split("/").slice(0, 3).join("/").replace(/\.js$/, "");
  const rel = u.startsWith(cwd) ? u.slice(cwd.length + 1) : u;
  return rel;
}

/**
 * The service runs compiled into one file (npm run build): frames in a file
 * with a source map beside it are put back at their source file and line.
 */
function applySourceMaps(p: Profile): void {
  const maps = new Map<string, { map: SourceMap; dir: string } | null>();
  for (const n of p.nodes) {
    const f = n.callFrame;
    if (!f.url.startsWith("file:") || f.url.includes("/node_modules/")) continue;
    if (!maps.has(f.url)) {
      const mapFile = `${fileURLToPath(f.url)}.map`;
      maps.set(f.url, existsSync(mapFile) ? { map: new SourceMap(JSON.parse(readFileSync(mapFile, "utf8"))), dir: path.dirname(mapFile) } : null);
    }
    const m = maps.get(f.url);
    if (!m || f.lineNumber < 0) continue;
    const entry = m.map.findEntry(f.lineNumber, Math.max(0, f.columnNumber)) as { originalSource?: string; originalLine?: number };
    if (!entry.originalSource) continue;
    const source = entry.originalSource.startsWith("file:") ? fileURLToPath(entry.originalSource) : path.resolve(m.dir, entry.originalSource);
    f.url = pathToFileURL(source).href;
    f.lineNumber = entry.originalLine ?? f.lineNumber;
  }
}

export function summariseProfile(file: string, cwd: string, top = 25): ProfileSummary {
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  applySourceMaps(p);
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const ownerOf = new Map<number, string>();
  const owner = (id: number): string => {
    const known = ownerOf.get(id);
    if (known) return known;
    let found: string | undefined;
    let fallback: string | undefined;
    for (let cur: number | undefined = id; cur !== undefined && !found; cur = parent.get(cur)) {
      const { url, functionName } = byId.get(cur)!.callFrame;
      if (url.startsWith("file:") || url.startsWith("/")) found = OWNERS.find(([, re]) => re.test(url))?.[0] ?? "other files";
      else fallback ??= internalOwner(url, functionName);
    }
    const result = found ?? fallback ?? "other (no owner on the stack)";
    ownerOf.set(id, result);
    return result;
  };
  const own = new Map<string, number>();
  const fn = new Map<string, { name: string; where: string; us: number }>();
  const mod = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    total += us;
    const name = n.callFrame.functionName || "(anonymous)";
    if (name === "(idle)") {
      idle += us;
      continue;
    }
    const o = owner(id);
    own.set(o, (own.get(o) ?? 0) + us);
    const where = n.callFrame.url ? `${locate(n.callFrame.url, cwd)}:${n.callFrame.lineNumber + 1}` : "";
    const key = `${name}@${where}`;
    const e = fn.get(key) ?? { name, where, us: 0 };
    e.us += us;
    fn.set(key, e);
    const m = n.callFrame.url ? locate(n.callFrame.url, cwd) : name;
    mod.set(m, (mod.get(m) ?? 0) + us);
  }
  const busy = total - idle;
  const row = (name: string, where: string, us: number): ProfileRow => ({ name, where, selfMs: us / 1000, pct: (100 * us) / busy });
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    functions: [...fn.values()].sort((a, b) => b.us - a.us).slice(0, top).map((e) => row(e.name, e.where, e.us)),
    modules: [...mod.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([m, us]) => row(m, "", us)),
    owners: [...own.entries()].sort((a, b) => b[1] - a[1]).map(([m, us]) => row(m, "", us)),
  };
}
