import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { hostCommand, readRuntimeOptions, splitNodeArgs } from "../ops/offline/host-run";
import { ROOT } from "./helpers/cli";
import { failure } from "./helpers/errors";

/**
 * How the language host starts the program, checked without starting it
 * (test/runtime/host-load.test.ts runs every stack file through it).
 */

describe("Pulumi.yaml's nodeargs", () => {
  it("splits like the language host (Go's shlex): blanks separate, quotes group, a backslash escapes", () => {
    expect(splitNodeArgs("--require ./ops/offline/preload.js")).toEqual(["--require", "./ops/offline/preload.js"]);
    expect(splitNodeArgs("  --title \"a b\"  -r 'c d'\t--x=e\\ f ")).toEqual(["--title", "a b", "-r", "c d", "--x=e f"]);
    expect(splitNodeArgs('--a="x \\"y\\""')).toEqual(['--a=x "y"']);
    expect(splitNodeArgs("")).toEqual([]);
    expect(failure(() => splitNodeArgs("--require 'x")).message).toMatch(/nodeargs has an unclosed ' quote/);
  });

  it("the project preloads ops/offline/preload.js, a file that exists, with TypeScript on", () => {
    const runtime = readRuntimeOptions(ROOT);
    expect(runtime).toEqual({ typescript: true, nodeArgs: ["--require", "./ops/offline/preload.js"], tsconfig: undefined });
    expect(fs.existsSync(path.join(ROOT, runtime.nodeArgs[1]))).toBe(true);
  });

  it("the preload turns on the compile cache in a directory of its own and Node's source maps for the program only", () => {
    // The process is what is tested: the preload runs at its start, before anything else.
    const probe = 'const m = require("node:module"); console.log(JSON.stringify({ dir: m.getCompileCacheDir(), maps: m.getSourceMapsSupport() }))';
    const r = spawnSync(process.execPath, ["--require", "./ops/offline/preload.js", "-e", probe], { cwd: ROOT, encoding: "utf8", env: { ...process.env, NODE_COMPILE_CACHE: "" } });
    expect(r.status, r.stderr).toBe(0);
    const { dir, maps } = JSON.parse(r.stdout) as { dir: string; maps: { enabled: boolean; nodeModules: boolean } };
    expect(dir.startsWith(path.join(os.tmpdir(), "node-compile-cache-pulumi-host"))).toBe(true);
    expect(maps).toMatchObject({ enabled: true, nodeModules: false });
  });
});

describe("the language host's command line", () => {
  it("is nodeargs, the SDK's run entry point, then the engine's flags and the program, with config in the environment", () => {
    const runtime = readRuntimeOptions(ROOT);
    const { args, env } = hostCommand(ROOT, runtime, {
      project: "appstack",
      stack: "staging",
      preview: true,
      address: "127.0.0.1:4000",
      config: { "appstack:environment": "staging", "appstack:postgres": '{"mode":"container"}' },
      secretKeys: ["appstack:OPENAI_API_KEY"],
    });
    expect(args).toEqual([
      "--require",
      "./ops/offline/preload.js",
      path.join(ROOT, "node_modules/@pulumi/pulumi/cmd/run/index.js"),
      ...["--monitor", "127.0.0.1:4000", "--engine", "127.0.0.1:4000", "--project", "appstack", "--root-directory", ROOT, "--stack", "staging", "--pwd", ROOT],
      "--dry-run",
      ...["--parallel", "16", "."],
    ]);
    // The language host passes config keys as <namespace>:config:<key>, and every secret key's name.
    expect(JSON.parse(env.PULUMI_CONFIG)).toEqual({ "appstack:config:environment": "staging", "appstack:config:postgres": '{"mode":"container"}' });
    expect(JSON.parse(env.PULUMI_CONFIG_SECRET_KEYS)).toEqual(["appstack:OPENAI_API_KEY"]);
    expect(env.PULUMI_NODEJS_TYPESCRIPT).toBe("true");
    expect(hostCommand(ROOT, runtime, { project: "appstack", stack: "dev", preview: false, address: "a", config: {}, secretKeys: [] }).args).not.toContain("--dry-run");
  });
});
