import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import { AppStack } from "../../components/app-stack";
import { loadConfig } from "../../config";
import { installMockRuntime, waitForRegistrations } from "../../ops/offline/offline-runtime";
import { loadStack } from "../../ops/offline/plan";
import { PROJECT_ROOT, SETUP_TIMEOUT_MS } from "../helpers/declared-stack";
import { runHealthcheck, waitUntil } from "./servers";

/**
 * The worker health check the staging stack declares by default (the
 * `process` check), run as Docker runs a `CMD` test: the argv exec'd, no
 * shell. The worker is a stand-in for one that knows nothing about appstack:
 * a Node program at the declared command's path that writes no heartbeat.
 *
 * Like a container, the check and the worker share a PID namespace of their
 * own (`unshare --pid --mount-proc`, entered with `nsenter`): the check sees
 * their processes only, never another program on the host that happens to
 * run the same command line.
 *
 * One host adaptation: the declared `upSeconds` (10) becomes 1, so the test
 * does not wait ten seconds for the check to pass.
 */

let tests: string[];
let command: string[];
let tmp: string;
let worker: ChildProcess | undefined;
/** The "container": PID 1 of a PID namespace of its own, and the host PID to enter it by. */
let container: ChildProcess | undefined;
let containerPid: number;

/** argv run inside the container's PID namespace (and its /proc). */
const inContainer = (argv: string[]) => ["nsenter", "--target", String(containerPid), "--pid", "--mount", `--wd=${tmp}`, "--", ...argv];

/** The declared command line, `node dist/workers/memory-worker.js`, as a real process in the container. */
function startWorker(command: string[]): ChildProcess {
  const [program, script] = command;
  expect(program).toBe("node");
  fs.mkdirSync(path.dirname(path.join(tmp, script)), { recursive: true });
  fs.writeFileSync(path.join(tmp, script), "setInterval(() => {}, 1000);\n");
  const [cmd, ...args] = inContainer(["sh", "-c", `PATH=${path.dirname(process.execPath)}:$PATH exec node ${script}`]);
  return spawn(cmd, args, { cwd: tmp, stdio: "ignore" });
}

/** Stops the worker: SIGKILL to the node process inside the container (nsenter forked it). */
async function killWorker(): Promise<void> {
  const r = await runHealthcheck(["CMD", ...inContainer(["pkill", "-KILL", "-f", "^node dist/workers/memory-worker.js$"])], {}, undefined, tmp);
  expect(r.code, r.stderr).toBe(0);
  await new Promise((r) => (worker!.exitCode !== null || worker!.signalCode !== null ? r(undefined) : worker!.once("exit", r)));
}

const check = () => {
  const [kind, ...argv] = tests;
  expect(kind).toBe("CMD");
  return runHealthcheck(["CMD", ...inContainer(argv)], { PATH: `${path.dirname(process.execPath)}:${process.env.PATH}` }, undefined, tmp);
};

beforeAll(async () => {
  // The staging stack file evaluated in this process, as validate does it.
  const { project, sc } = loadStack({ root: PROJECT_ROOT, stack: "staging" });
  const rt = await installMockRuntime(project, sc);
  new AppStack("appstack", { config: loadConfig(new pulumi.Config(project)), root: PROJECT_ROOT });
  await waitForRegistrations();
  const declared = rt.resources.find((r) => r.name === "worker-1")!;
  const declaredTests = (declared.inputs.healthcheck as { tests: string[] }).tests;
  expect(declaredTests[3]).toContain(",up=10;");
  tests = declaredTests.map((t) => t.replace(",up=10;", ",up=1;"));
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-worker-health-"));
  command = declared.inputs.command as string[];
  container = spawn("unshare", ["--pid", "--fork", "--mount-proc", "sleep", "600"], { stdio: "ignore" });
  await waitUntil("the container's PID 1", () => {
    const children = fs.existsSync(`/proc/${container!.pid}/task/${container!.pid}/children`)
      ? fs.readFileSync(`/proc/${container!.pid}/task/${container!.pid}/children`, "utf8").trim()
      : "";
    if (container!.exitCode !== null) throw new Error(`unshare exited ${container!.exitCode} (the contract tests run as root, as .ci/run does)`);
    containerPid = Number(children.split(" ")[0]);
    return containerPid > 0;
  });
}, SETUP_TIMEOUT_MS);

afterAll(() => {
  worker?.kill("SIGKILL");
  container?.kill("SIGKILL");
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe("contract: the default worker health check (process) against a real process", () => {
  it("is an exec'd Node program, not a shell: nothing in it can match its own command line", () => {
    expect(tests.slice(0, 3)).toEqual(["CMD", "node", "-e"]);
  });

  it("fails while no worker runs, and says so", async () => {
    const r = await check();
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('no process whose command line contains "node dist/workers/memory-worker.js"\n');
  });

  it("fails for a worker that has just started, passes once it has run upSeconds, and fails again once it is killed", async () => {
    worker = startWorker(command);
    const young = await check();
    expect(young.code, young.stdout).toBe(1);
    expect(young.stdout).toMatch(/has run 0 s; healthy after 1 s/);
    await waitUntil("the check to pass", async () => (await check()).code === 0, 10_000);
    await killWorker();
    const gone = await check();
    expect(gone.code).toBe(1);
    expect(gone.stdout).toMatch(/^no process whose command line contains/);
  });

  it("the check it replaces (sh -c \"pgrep -f 'X'\") passes with no such process: its own shell matches", async () => {
    const r = await runHealthcheck(["CMD", ...inContainer(["sh", "-c", "pgrep -f 'node dist/workers/memory-worker.js' >/dev/null"])], {}, undefined, tmp);
    expect(r.code).toBe(0);
  });
});
