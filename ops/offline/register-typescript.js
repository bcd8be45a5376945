// Registers TypeScript exactly as Pulumi's Node.js language host does in
// @pulumi/pulumi/cmd/run/run.js (same ts-node and compiler the SDK resolves,
// the project's tsconfig.json, `noCheck` -> transpile-only, the same default
// compiler options), so a program the real host cannot load fails here first.
// Shared by ops/run.js and by the child processes the tests evaluate stacks in.
"use strict";
// V8 bytecode cache for the SDK and the compiler: most of a plan's time is loading them.
require("node:module").enableCompileCache?.();
// What the SDK loads for serializing functions, which no ops command does: on first use.
require("./defer-sdk-closure-deps");
const path = require("path");

const root = path.resolve(__dirname, "../..");
const tsConfigPath = path.join(root, "tsconfig.json");
const tsutils = require("@pulumi/pulumi/tsutils");
const compilerOptions = tsutils.loadTypeScriptCompilerOptions(tsConfigPath);
const transpileEnv = process.env.PULUMI_NODEJS_TRANSPILE_ONLY;
const { tsnodeRequire, typescriptRequire } = tsutils.typeScriptRequireStrings();
require(tsnodeRequire).register({
  compiler: typescriptRequire,
  transpileOnly: transpileEnv ? transpileEnv === "true" : compilerOptions.noCheck,
  project: tsConfigPath,
  skipProject: false,
  compilerOptions: {
    target: "ES2020",
    module: "nodenext",
    moduleResolution: "nodenext",
    sourceMap: "true",
    ...compilerOptions,
  },
});

// The Pulumi SDK captures a stack for each promise, Output and resource it
// makes (a message-less `new Error().stack`, thousands per plan, kept for leak
// reports). Capturing, then formatting (ts-node maps every trace to its .ts
// source through source-map-support) was a third of a plan's CPU. No command
// prints a stack trace unless APPSTACK_DEBUG is set (runCliOutcome in
// ops/cli/cli.ts); without it, a trace keeps its first frame, where the error
// was thrown, formatted as V8 does by default and not mapped, and the SDK's
// captures are not formatted at all. With APPSTACK_DEBUG=1 every trace is
// whole and mapped, the SDK's too. Measured in docs/performance.md.
if (!process.env.APPSTACK_DEBUG) {
  Error.stackTraceLimit = 1;
  const SDK_FILE = /[\\/]node_modules[\\/]@pulumi[\\/]pulumi[\\/]/;
  Error.prepareStackTrace = (err, sites) =>
    err.message === "" && SDK_FILE.test(sites[0]?.getFileName() ?? "")
      ? String(err)
      : [String(err), ...sites.map((site) => `    at ${site}`)].join("\n");
}
