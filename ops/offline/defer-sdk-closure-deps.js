// The Pulumi SDK loads, at its start, what only serializing a function needs:
// runtime/closure/codePaths.js requires @npmcli/arborist and
// normalize-package-data (with tar, semver, spdx and about 200 other
// modules), to list the packages a serialized function would ship. No ops
// command serializes a function, so for the processes that load the program
// through ops/offline/register-typescript.js (every ops command, and each side
// of a diff) these two are loaded on first use instead: the SDK gets a
// stand-in that loads the real module the first time any of its members is
// read. Measured alone: 12 % less CPU for a plan (farm-bench, paired with and
// without it; docs/performance.md has the figure with the stack-trace change). The SDK's
// `computeCodePaths` still works (test/offline-load.test.ts).
"use strict";
const Module = require("node:module");

const DEFERRED = new Set(["@npmcli/arborist", "normalize-package-data"]);
const REQUIRED_BY = /[\\/]@pulumi[\\/]pulumi[\\/]runtime[\\/]closure[\\/]codePaths\.js$/;

const load = Module._load;
Module._load = function deferClosureDeps(request, parent, isMain) {
  if (!DEFERRED.has(request) || !REQUIRED_BY.test(parent?.filename ?? "")) return load.apply(this, arguments);
  let real;
  const loaded = () => (real ??= load.call(this, request, parent, isMain));
  // codePaths.js reads these through TypeScript's __importStar/__importDefault:
  // `__esModule` makes both hand back the stand-in itself, and `default` is
  // then what a CommonJS module's default import is, the module.
  return new Proxy(
    {},
    {
      get: (_, key) => {
        if (key === "__esModule") return true;
        const mod = loaded();
        return key === "default" && !mod.__esModule ? mod : mod[key];
      },
    },
  );
};
