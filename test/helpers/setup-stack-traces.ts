/**
 * Test setup (vitest.config.mts `setupFiles`): the Pulumi SDK's own stack
 * captures are not source-mapped.
 *
 * The SDK takes a stack trace for every promise it makes and every resource
 * it registers (`new Error().stack`, for leak reports and source positions),
 * thousands per evaluation of the program. Under vitest every one of them went
 * through vite's source-map `prepareStackTrace`, which cost the in-process
 * tests about 40 % of their CPU. The ops commands do not map those traces
 * either (ops/offline/register-typescript.js). Every other stack trace, such
 * as a failed assertion's, is still mapped to its line in the `.ts` file.
 */
const MARK = Symbol.for("appstack.sdkTracesUnmapped");
const SDK_FILE = /[\\/]node_modules[\\/]@pulumi[\\/]/;

type Prepare = (err: Error, sites: NodeJS.CallSite[]) => unknown;
const mapped = Error.prepareStackTrace as (Prepare & { [MARK]?: true }) | undefined;

if (mapped && !mapped[MARK]) {
  const prepare: Prepare & { [MARK]?: true } = (err, sites) => {
    // V8's own format, the same text the SDK gets outside vitest.
    if (SDK_FILE.test(sites[0]?.getFileName() ?? "")) return `${err}${sites.map((s) => `\n    at ${s}`).join("")}`;
    return mapped(err, sites);
  };
  prepare[MARK] = true;
  Error.prepareStackTrace = prepare;
}
