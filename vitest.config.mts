import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Tests that need a Docker engine run with `npm run test:runtime` (vitest.runtime.config.mts).
    exclude: [...configDefaults.exclude, "test/runtime/**"],
    // Each file gets its own Pulumi runtime state; the CLI tests spawn processes.
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
