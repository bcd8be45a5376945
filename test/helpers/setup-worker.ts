/**
 * Test setup (vitest.config.mts `setupFiles`), run in each worker before each
 * test file; what it does is done once per worker.
 */
import * as nodeModule from "node:module";
import * as os from "node:os";
import * as path from "node:path";

// V8's compile cache for what a worker loads after vitest itself: the Pulumi
// SDK, the providers, TypeScript. A folder of its own, as the language host's
// preload has one (ops/offline/preload.js): V8 rejects a cache written under
// other flags, and the workers run under vitest's.
nodeModule.enableCompileCache?.(path.join(os.tmpdir(), "node-compile-cache-vitest"));

/*
 * The Pulumi SDK's own stack captures are not formatted. The SDK takes a
 * stack trace for every promise it makes and every resource it registers
 * (`new Error().stack`, message-less, kept for leak reports and source
 * positions that the mock runtime ignores), thousands per evaluation of the
 * program. Under vitest each went through vite's source-map
 * `prepareStackTrace`, which cost the in-process tests about 40 % of their
 * CPU. The ops commands do not map them either
 * (ops/offline/register-typescript.js). Every other stack trace (an error the
 * SDK throws, a failed assertion) is formatted as before, mapped to its line
 * in the `.ts` file.
 */
/*
 * And fewer frames for each of those captures: capturing one costs in
 * proportion to the frames it takes, and a stack trace of 3 frames still shows
 * where an error was thrown and the two calls above it (vitest shows a failed
 * assertion at its line in the test whatever the limit). 3 frames instead of
 * Node's 10 saved the whole suite about 2.5 s of its 75 s of CPU.
 * APPSTACK_DEBUG=1 keeps Node's default, as it does for the ops commands.
 */
if (!process.env.APPSTACK_DEBUG) Error.stackTraceLimit = 3;

const MARK = Symbol.for("appstack.sdkCapturesUnformatted");
const SDK_FILE = /[\\/]node_modules[\\/]@pulumi[\\/]pulumi[\\/]/;

type Prepare = (err: Error, sites: NodeJS.CallSite[]) => unknown;
const mapped = Error.prepareStackTrace as (Prepare & { [MARK]?: true }) | undefined;

if (mapped && !mapped[MARK]) {
  const prepare: Prepare & { [MARK]?: true } = (err, sites) =>
    err.message === "" && SDK_FILE.test(sites[0]?.getFileName() ?? "") ? String(err) : mapped(err, sites);
  prepare[MARK] = true;
  Error.prepareStackTrace = prepare;
}
