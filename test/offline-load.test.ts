import { spawnSync } from "node:child_process";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { ROOT } from "./helpers/cli";

/**
 * How an ops command's process loads the SDK (ops/offline/register-typescript.js):
 * what it leaves out at start and how it formats stack traces. That is the
 * process's own state, so each case is a fresh `node`.
 */

/** Runs `script` in a fresh node after `preamble`; what it prints on stdout is JSON. */
function inFreshNode(preamble: string, script: string, env: Record<string, string> = {}): Record<string, unknown> {
  const r = spawnSync(process.execPath, ["-e", `${preamble}\n${script}`], {
    cwd: ROOT,
    env: { ...process.env, APPSTACK_DEBUG: "", ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

const REGISTER = `require(${JSON.stringify(path.join(ROOT, "ops/offline/register-typescript.js"))});`;
const LOADED = `const loaded = (name) => Object.keys(require.cache).some((f) => f.includes("/node_modules/" + name + "/"));`;
// What the process prints: whether the deferred modules were loaded at start; the SDK's own way to list a
// package's files for a serialized function (the one user of what is deferred); the stack of an error thrown
// two calls deep; and the stack the SDK keeps on each promise it makes (runtime/debuggable.js).
const PROBE = `
  const pulumi = require("@pulumi/pulumi");
  ${LOADED}
  const atStart = { arborist: loaded("@npmcli/arborist"), normalize: loaded("normalize-package-data") };
  function thrower() { throw new Error("boom"); }
  function caller() { try { thrower(); } catch (err) { return err.stack; } }
  const p = Promise.resolve();
  require("@pulumi/pulumi/runtime/debuggable").debuggablePromise(p, "test");
  pulumi.runtime.computeCodePaths({ extraIncludePackages: ["yaml"] }).then((paths) => {
    console.log(JSON.stringify({ atStart, paths: [...paths.keys()].sort(), arborist: loaded("@npmcli/arborist"), thrown: caller(), sdk: p._debugStackTrace }));
  });`;

describe("an ops command's process", { timeout: 60_000 }, () => {
  it("does not load the SDK's function-serializing dependencies at start, and they still work when used", async () => {
    const deferred = inFreshNode(REGISTER, PROBE);
    expect(deferred.atStart).toEqual({ arborist: false, normalize: false });
    expect(deferred.arborist).toBe(true);
    // The same answer as the SDK gives loaded as it comes, as in this test's own process.
    const plain = [...(await pulumi.runtime.computeCodePaths({ extraIncludePackages: ["yaml"] })).keys()].sort();
    expect(deferred.paths).toEqual(plain);
    expect(plain).toEqual(expect.arrayContaining([expect.stringMatching(/node_modules\/yaml$/)]));

    // A stack trace keeps the frame that threw; the SDK's captures are not formatted.
    expect(deferred.thrown).toMatch(/^Error: boom\n {4}at thrower \(\[eval\]:\d+:\d+\)$/);
    expect(deferred.sdk).toBe("Error");
  });

  it("with APPSTACK_DEBUG, keeps every trace whole and mapped, the SDK's captures included", () => {
    const r = inFreshNode(REGISTER, PROBE, { APPSTACK_DEBUG: "1" });
    expect(r.thrown).toMatch(/^Error: boom\n {4}at thrower .*\n {4}at caller /);
    // Mapped by ts-node to the SDK's own TypeScript source.
    expect(r.sdk).toMatch(/^Error\n {4}at (Object\.)?debuggablePromise .*debuggable\.ts:\d+/);
  });
});
