import { defineConfig } from "vitest/config";

/**
 * `npm run test:runtime`: what only real components can show, run by .ci/run
 * after test/runtime/setup/ has built them: a real Caddy under load, a real
 * Docker engine. One file at a time: each starts servers and applies load, and
 * on a 2-CPU machine two such files at once would measure each other.
 */
export default defineConfig({
  test: {
    include: ["test/runtime/**/*.test.ts"],
    pool: "forks",
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
