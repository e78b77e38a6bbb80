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
  },
});
