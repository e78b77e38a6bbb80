// The README's walkthrough runs as written: every ```sh block between the
// walkthrough markers, in order, in one bash under `set -euo pipefail`,
// against a started service with a dev mailbox and the demo credentials in
// its DATA_DIR (OTP_URL and DATA_DIR point the blocks at it). It must
// succeed, show the answers it promises, and leave the repository as it was.
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { DEV_ADMIN_TOKEN, startDevService, type DevService } from "../support/dev-service.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const START = "<!-- walkthrough:start";
const END = "<!-- walkthrough:end -->";

/** The walkthrough's sh blocks, in order; throws when the markers are gone or misplaced. */
function walkthroughBlocks(readme: string): string[] {
  const from = readme.indexOf(START);
  const to = readme.indexOf(END);
  if (from < 0 || to < 0 || to < from) throw new Error(`README.md lost its walkthrough markers (${START} … ${END})`);
  const section = readme.slice(from, to);
  return [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

async function repositoryState(): Promise<string> {
  const { stdout } = await promisify(execFile)("git", ["status", "--porcelain", "--untracked-files=all"], { cwd: ROOT });
  return stdout;
}

let dev: DevService;
beforeAll(async () => {
  dev = await startDevService();
});
afterAll(async () => {
  await dev?.close();
});

it("finds the walkthrough's blocks, and they hold to its rules", async () => {
  const blocks = walkthroughBlocks(await readFile(path.join(ROOT, "README.md"), "utf8"));
  expect(blocks.length).toBeGreaterThanOrEqual(6);
  const all = blocks.join("\n");
  // Every curl fails loudly; the mailbox is read by recipient; nothing is written to a file.
  for (const line of all.split("\n").filter((l) => /^\s*(\S+=\$\()?curl\b/.test(l))) expect(line).toMatch(/curl -f/);
  expect(all).toContain("--data-urlencode \"to=$1\"");
  expect(all).not.toMatch(/>\s*[\w.]+\.json|\btee\b|-o\s+\S/);
  expect(all).not.toContain("jane.doe@example.com");
});

it("runs as written against a started service, and leaves the repository as it was", async () => {
  const blocks = walkthroughBlocks(await readFile(path.join(ROOT, "README.md"), "utf8"));
  const before = await repositoryState();
  const script = ["set -euo pipefail", ...blocks].join("\n");
  const run = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const child = spawn("bash", ["-c", script], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: process.env.HOME ?? "/root",
        OTP_URL: dev.url,
        DATA_DIR: dev.dataDir,
        // In embedded mode the CLI reads the token from DATA_DIR; here the service was given one.
        ADMIN_TOKEN: DEV_ADMIN_TOKEN,
        npm_config_update_notifier: "false",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c));
    child.stderr.on("data", (c: Buffer) => (err += c));
    const timer = setTimeout(() => child.kill("SIGKILL"), 100_000);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
  expect(run.code, `the walkthrough failed:\n--- stdout\n${run.out}\n--- stderr\n${run.err}`).toBe(0);
  // What the blocks promise: sends accepted, codes read, a session made, checked and revoked, a legacy token.
  expect(run.out).toMatch(/"user_created":true,"status_code":200/);
  expect(run.out).toMatch(/^\d{6}$/m);
  expect(run.out).toMatch(/"session":\{[\s\S]*"status_code":200/);
  expect(run.out).toMatch(/"keys":\[\{/);
  expect(run.out).toMatch(/"WasSuccessful":true,"Value":"eyJ[\w-]+\.[\w-]+\.[\w-]+"/);
  expect(await repositoryState()).toBe(before);
}, 120_000);

it("names in its architecture tree only paths that exist", async () => {
  const readme = await readFile(path.join(ROOT, "README.md"), "utf8");
  const tree = /^## Architecture\n\n```\n([\s\S]*?)^```$/m.exec(readme)?.[1];
  expect(tree, "README.md lost its architecture tree").toBeDefined();
  // "src/config.ts, config/   text": the names before the text; later ones sit beside the first.
  const named = tree!.split("\n").flatMap((line) => {
    const names = /^(\S.*?)\s{2,}/.exec(line)?.[1]?.split(", ") ?? [];
    const dir = path.dirname(names[0] ?? "");
    return names.map((name, i) => (i === 0 ? name : path.join(dir, name)));
  });
  expect(named.length).toBeGreaterThan(8);
  const missing = named.filter((name) => !existsSync(path.join(ROOT, name.includes("*") ? path.dirname(name) : name)));
  expect(missing).toEqual([]);
});
