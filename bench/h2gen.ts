// Builds h2gen.c, the C HTTP/2 load generator on libnghttp2 (see the comment
// at its top), into the run's temp dir. It is compiled at run time rather than
// committed as a binary. When gcc or libnghttp2's headers are missing,
// Debian's libnghttp2-dev (and gcc) are installed with apt-get, as pgbench.ts
// installs postgresql; when it still does not build, the HTTP/2 routes fall
// back to loadgen.ts's node:http2 client and the log says so.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { RouteName } from "./loadgen.js";

/** The routes over HTTP/2, which h2gen drives when it builds. */
export const H2_ROUTES: readonly RouteName[] = ["connect-json-h2", "connect-binary", "grpc"];

const SOURCE = path.join(path.dirname(fileURLToPath(import.meta.url)), "h2gen.c");

function onPath(cmd: string): boolean {
  try {
    return execFileSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" }).trim() !== "";
  } catch {
    return false;
  }
}

function compile(out: string): string | undefined {
  try {
    execFileSync("gcc", ["-O2", "-o", out, SOURCE, "-lnghttp2"], { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
    return undefined;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return (e.stderr?.trim() || e.message).split("\n").slice(0, 3).join(" | ");
  }
}

/** The path of the built h2gen, or undefined (logged) when it cannot be built. */
export function buildH2gen(dir: string, log: (s: string) => void): string | undefined {
  const out = path.join(dir, "h2gen");
  let failure = compile(out);
  if (failure === undefined) return out;
  // Debian puts the header here; without it (or gcc) the compile cannot work.
  const missing = [...(onPath("gcc") ? [] : ["gcc"]), ...(existsSync("/usr/include/nghttp2/nghttp2.h") ? [] : ["libnghttp2-dev"])];
  if (missing.length > 0) {
    log(`h2gen: ${missing.join(" and ")} missing: installing ${missing.join(" ")} with apt-get`);
    try {
      const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
      execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
      execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], { stdio: "inherit", env });
    } catch (err) {
      log(`h2gen: apt-get failed: ${(err as Error).message.split("\n")[0]}`);
    }
    failure = compile(out);
    if (failure === undefined) return out;
  }
  log(`h2gen: could not build bench/h2gen.c (${failure}); the HTTP/2 routes fall back to the node:http2 client in loadgen.ts`);
  return undefined;
}
