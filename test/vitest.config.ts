import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Kept under test/ so the repository's top level holds only what it must.
export default defineConfig({
  root: fileURLToPath(new URL("..", import.meta.url)),
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/faults/**", "**/node_modules/**"],
    globalSetup: ["test/support/global-setup.ts"],
    // Every REST answer is validated against docs/openapi.json.
    setupFiles: ["test/support/check-rest-answers.ts"],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Much of a test's time is waiting (servers starting, Postgres, SMTP,
    // Chromium), not CPU: four forks on two cores beat Vitest's default of
    // one per core (three took as long as four: 106 s).
    maxWorkers: 4,
    // A worker runs its files one after another in one process, modules
    // loaded once: no test mocks modules, stubs globals or edits
    // process.env, and every app a file builds is closed in its afterAll.
    // Loading the service's modules afresh for each of 80 files was half of
    // the suite's CPU (257 s of CPU, 182 s wall, against 128 s and 119 s).
    isolate: false,
  },
});
