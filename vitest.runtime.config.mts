import { defineConfig } from "vitest/config";

/** Tests that need a Docker engine (or minutes): `npm run test:runtime`, run by .ci/run; not part of `npm test`. */
export default defineConfig({
  test: {
    include: ["test/runtime/**/*.test.ts"],
    pool: "forks",
    testTimeout: 120_000,
    hookTimeout: 300_000,
  },
});
