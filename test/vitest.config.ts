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
    // Most of a test's time is waiting (servers starting, Postgres, SMTP,
    // Chromium), not CPU: four forks on two cores finish the suite in about
    // 90 s against 167 s with Vitest's default of one per core.
    maxWorkers: 4,
  },
});
