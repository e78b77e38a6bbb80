// Builds the bench's C programs into the run's temp dir: the load generators
// h1gen.c (HTTP/1.1: the REST and Connect JSON routes, healthz, the paced and
// overload phases) and h2gen.c (HTTP/2 on libnghttp2: the gRPC and Connect
// routes over h2c), and the SMTP sink smtpsink.c. See the comment at the top
// of each. They are compiled at run time rather than committed as binaries.
// When gcc or libnghttp2's headers are missing, Debian's gcc and
// libnghttp2-dev are installed with apt-get, as pgbench.ts installs
// postgresql; a program that still does not build is replaced by its node
// counterpart (loadgen.ts's autocannon, node:http and node:http2 clients;
// smtp-server for the sink), and the log says so.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { RouteName } from "./loadgen.js";

/** The routes over HTTP/2, which h2gen drives when it builds; h1gen drives the others. */
export const H2_ROUTES: readonly RouteName[] = ["connect-json-h2", "connect-binary", "grpc"];

const HERE = path.dirname(fileURLToPath(import.meta.url));

type Program = "h1gen" | "h2gen" | "smtpsink";

interface Recipe {
  readonly name: Program;
  readonly libs: readonly string[];
  /** Debian packages it needs, by the file each provides. */
  readonly needs: readonly [string, string][];
  /** What stands in when it does not build. */
  readonly fallback: string;
}

const CLIENTS = "its routes fall back to loadgen.ts's node clients";
const RECIPES: Record<Program, Recipe> = {
  h1gen: { name: "h1gen", libs: [], needs: [], fallback: CLIENTS },
  h2gen: { name: "h2gen", libs: ["-lnghttp2"], needs: [["/usr/include/nghttp2/nghttp2.h", "libnghttp2-dev"]], fallback: CLIENTS },
  smtpsink: { name: "smtpsink", libs: [], needs: [], fallback: "the sink is smtp-server in the bench process" },
};

function onPath(cmd: string): boolean {
  try {
    return execFileSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" }).trim() !== "";
  } catch {
    return false;
  }
}

function compile(recipe: Recipe, out: string): string | undefined {
  try {
    execFileSync("gcc", ["-O2", "-o", out, path.join(HERE, `${recipe.name}.c`), ...recipe.libs], { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
    return undefined;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return (e.stderr?.trim() || e.message).split("\n").slice(0, 3).join(" | ");
  }
}

/** The path of the built program, or undefined (logged) when it cannot be built. */
export function buildCGen(which: Program, dir: string, log: (s: string) => void): string | undefined {
  const recipe = RECIPES[which];
  const out = path.join(dir, which);
  let failure = compile(recipe, out);
  if (failure === undefined) return out;
  const missing = [...(onPath("gcc") ? [] : ["gcc"]), ...recipe.needs.filter(([file]) => !existsSync(file)).map(([, pkg]) => pkg)];
  if (missing.length > 0) {
    log(`${which}: ${missing.join(" and ")} missing: installing ${missing.join(" ")} with apt-get`);
    try {
      const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
      execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
      execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], { stdio: "inherit", env });
    } catch (err) {
      log(`${which}: apt-get failed: ${(err as Error).message.split("\n")[0]}`);
    }
    failure = compile(recipe, out);
    if (failure === undefined) return out;
  }
  log(`${which}: could not build bench/${which}.c (${failure}); ${recipe.fallback}`);
  return undefined;
}
