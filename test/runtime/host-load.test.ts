import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runUnderHost, type HostRun, type Registration } from "../../ops/offline/host-run";
import { ROOT, repoStacks, runOps } from "../helpers/cli";

/**
 * Every stack file loaded the way `pulumi preview` loads it: the SDK's own
 * entry point in a fresh process, Pulumi.yaml's nodeargs (the preload), the
 * language host's argv and environment; only the engine is a mock. A preload,
 * tsconfig or program change that `pulumi up` cannot load fails here.
 */

const failures = (run: HostRun) => run.logs.filter((l) => l.severity === "error" || l.severity === "warning").map((l) => l.message);
const where = (r: Registration) => (r.sourcePosition ? `${path.relative(ROOT, fileURLToPath(r.sourcePosition.uri))}:${r.sourcePosition.line}` : "(none)");
const lineAt = (uri: string, line: number) => fs.readFileSync(fileURLToPath(uri), "utf8").split("\n")[line - 1] ?? "";
/** The program's own resources: declared outside node_modules (the root Stack is declared by the SDK, before the program loads). */
const programResources = (run: HostRun) => run.registrations.filter((r) => r.sourcePosition && !r.sourcePosition.uri.includes("/node_modules/"));

describe.each(repoStacks())("the language host's entry point loads stack %s", (stack) => {
  it("registers what the offline plan declares, with no error or warning, and exits 0", async () => {
    const run = await runUnderHost({ root: ROOT, stack });
    const plan = runOps(["plan", "--stack", stack, "--format", "json"]);
    expect(plan.code, plan.stderr).toBe(0);
    expect(failures(run), run.stderr).toEqual([]);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.registrations[0].type).toBe("pulumi:pulumi:Stack");
    // Compared by type and name: the SDK's mock monitor qualifies a URN with the parent's type only, the engine with every ancestor's.
    const declared = (JSON.parse(plan.stdout) as { resources: { type: string; name: string }[] }).resources.map((r) => `${r.type}::${r.name}`).sort();
    expect(run.registrations.slice(1).map((r) => `${r.type}::${r.name}`).sort()).toEqual(declared);
  });
});

describe("stack traces and the compile cache under the language host", () => {
  it("Node maps the program's frames to its .ts lines; ts-node's source-map-support is off, and back with APPSTACK_DEBUG=1", async () => {
    const fast = await runUnderHost({ root: ROOT, stack: "production" });
    const debug = await runUnderHost({ root: ROOT, stack: "production", env: { APPSTACK_DEBUG: "1" } });
    for (const run of [fast, debug]) expect(run.exitCode, run.stderr).toBe(0);

    // The source position the engine stores for each resource is the line of its `new` in the .ts file.
    const resources = programResources(fast);
    expect(resources.length).toBeGreaterThan(20);
    for (const r of resources) expect(lineAt(r.sourcePosition!.uri, r.sourcePosition!.line), where(r)).toMatch(/\bnew \w|\bcreate\w*\(|\bjob\(/);
    // The same positions either way: the fast path loses no program position.
    expect(resources.map(where)).toEqual(programResources(debug).map(where));

    // Frames in node_modules (the SDK's run.js, which requires the program) stay JavaScript without source-map-support...
    const sdkFrames = (run: HostRun) => programResources(run).flatMap((r) => r.stackTrace).filter((f) => f.uri.includes("/node_modules/@pulumi/"));
    expect(sdkFrames(fast).some((f) => f.uri.endsWith("/cmd/run/run.js"))).toBe(true);
    expect(sdkFrames(fast).some((f) => f.uri.endsWith(".ts"))).toBe(false);
    // ...and map to the SDK's TypeScript sources with it.
    expect(sdkFrames(debug).some((f) => f.uri.endsWith("/cmd/run/run.ts"))).toBe(true);
    expect(sdkFrames(debug).some((f) => f.uri.endsWith("/cmd/run/run.js"))).toBe(false);
  });

  it("the preload's compile cache is on, in a directory of its own: a plan run in between makes it reject nothing", async () => {
    // A plan first, as `npm run deploy` validates before `pulumi up`. In one shared directory, V8 would reject what
    // the other process wrote (other V8 flags at the time of compiling) and the host would compile everything anew.
    const plan = runOps(["plan", "--stack", "production", "--format", "json"]);
    expect(plan.code, plan.stderr).toBe(0);
    const run = await runUnderHost({ root: ROOT, stack: "production", env: { NODE_DEBUG_NATIVE: "COMPILE_CACHE" } });
    expect(run.exitCode, run.stderr).toBe(0);
    const log = run.stderr.split("\n").filter((l) => l.startsWith("[compile cache]"));
    expect(log.find((l) => l.includes("resolved path"))).toContain(path.join(os.tmpdir(), "node-compile-cache-pulumi-host"));
    const ts = log.filter((l) => l.includes("node_modules/typescript/lib/typescript.js"));
    expect(ts.some((l) => l.includes("was accepted")), ts.join("\n")).toBe(true);
    expect(log.filter((l) => l.includes("was rejected"))).toEqual([]);
  });
});
