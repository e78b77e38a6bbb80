// One Postgres server for the whole run: the machine's, when
// TEST_DATABASE_URL names it, else an embedded one started here. Each test
// file then makes its own database on it (see database.ts).
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import type { TestProject } from "vitest/node";
import { buildDist } from "../../src/build.js";
import { startEmbeddedPostgres, type EmbeddedDatabase } from "../../src/storage/embedded.js";

declare module "vitest" {
  export interface ProvidedContext {
    serverUrl: string;
  }
}

let embedded: EmbeddedDatabase | undefined;
let dir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  // The service reads its sign-in page from dist/web/ and never builds it:
  // build it (and the server bundles) from the sources under test.
  await buildDist();
  let url = process.env.TEST_DATABASE_URL;
  if (!url) {
    dir = await mkdtemp(path.join(os.tmpdir(), "otp-test-pg-"));
    embedded = await startEmbeddedPostgres(dir, 0, pino({ level: "warn" }));
    url = embedded.url;
  }
  project.provide("serverUrl", url);
}

export async function teardown(): Promise<void> {
  await embedded?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}
