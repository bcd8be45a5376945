// Registers TypeScript exactly as Pulumi's Node.js language host does in
// @pulumi/pulumi/cmd/run/run.js (same ts-node and compiler the SDK resolves,
// the project's tsconfig.json, `noCheck` -> transpile-only, the same default
// compiler options), so a program the real host cannot load fails here first.
// Shared by ops/run.js and by the child processes the tests evaluate stacks in.
"use strict";
// V8 bytecode cache for the SDK and the compiler: most of a plan's time is loading them.
require("node:module").enableCompileCache?.();
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

// ts-node maps every stack trace back to the .ts source (source-map-support).
// The Pulumi SDK captures stacks for each Output and resource it creates, and
// that mapping costs a plan about a third of its time; the traces themselves
// print only with APPSTACK_DEBUG, so map them only then.
if (!process.env.APPSTACK_DEBUG) Error.prepareStackTrace = undefined;
