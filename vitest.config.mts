import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Tests that need a Docker engine run with `npm run test:runtime` (vitest.runtime.config.mts).
    exclude: [...configDefaults.exclude, "test/runtime/**"],
    // Sized for the 2-CPU machine `npm test` is budgeted on (docs/performance.md):
    // - forks, not threads: the Pulumi SDK keeps its runtime (mock monitor,
    //   config) in process-wide state, and tests spawn processes and change
    //   process.env; a forked worker keeps all of that to itself.
    // - 2 workers, one per CPU (vitest's default, CPUs - 1, is 1 here). A
    //   third would not find a free CPU: while one worker waits for a child
    //   process, that child is using the CPU.
    // - isolate: false: each worker loads vitest, the SDK and the program's
    //   modules once, not once per file (about 1 s of CPU per file). Test
    //   files must leave no global state behind them (env, PATH, cwd, the
    //   mock runtime, process handlers); the SDK's runtime is set afresh by
    //   each evaluation (ops/offline/offline-runtime.ts).
    pool: "forks",
    maxWorkers: 2,
    isolate: false,
    globalSetup: ["test/helpers/global-setup.ts"],
    setupFiles: ["test/helpers/setup-worker.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
