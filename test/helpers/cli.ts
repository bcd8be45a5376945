import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { runCliOutcome } from "../../ops/cli/cli";
import { captureCli } from "../../ops/cli/docs";
import { sharedResult } from "./shared-results";

export const ROOT = path.resolve(__dirname, "../..");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs an ops command as a user would (`npm run <cmd> -- ...` runs exactly this), in its own process. */
export function runOps(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; root?: string; timeout?: number } = {}): CliResult {
  const root = opts.root ?? ROOT;
  const r = spawnSync(process.execPath, [path.join(root, "ops/run.js"), ...args], {
    cwd: opts.cwd ?? root,
    env: { ...process.env, ...opts.env },
    encoding: "utf8",
    timeout: opts.timeout ?? 60_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** `runOps` without blocking the test file's process while the command runs. */
export function runOpsAsync(args: string[], opts: { env?: NodeJS.ProcessEnv; timeout?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, "ops/run.js"), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
      timeout: opts.timeout ?? 60_000,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") }));
  });
}

/**
 * An ops command of this checkout that only reads the repository (`plan` of a
 * stack file), run as a user runs it, once per `npm test`: every test file
 * that asks gets the same run's result (test/helpers/shared-results.ts).
 */
export function sharedOps(args: string[]): Promise<CliResult> {
  return sharedResult(`ops ${JSON.stringify(args)}`, () => runOpsAsync(args));
}

/**
 * An ops command run in this process, where the command's own process is not
 * what a test is about (a refusal, a message): what `main` does with
 * `runCli`'s outcome, with the console captured instead of printed. The
 * commands that evaluate the program need their own process (`runOps`).
 */
export async function runOpsInProcess(args: string[], opts: { env?: Record<string, string> } = {}): Promise<CliResult> {
  // The environment the command sees, for as long as it runs (the tests of a worker run one at a time).
  const saved = Object.entries(opts.env ?? {}).map(([name]) => [name, process.env[name]] as const);
  Object.assign(process.env, opts.env);
  try {
    return await captureCli(args, runCliOutcome);
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

/** Every stack file in the repository. */
export function repoStacks(): string[] {
  return fs
    .readdirSync(ROOT)
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => !!s)
    .sort();
}

/** A stack trace looks like "    at fn (file:line:col)". */
export const STACK_TRACE = /\n\s+at .+:\d+:\d+/;

/**
 * Runs an ops command with its stdout going into a real pipe (`|`, as a shell
 * makes it: 64 KiB of buffer) whose reader is slow (test/helpers/slow-reader.js).
 * `stdout` is what came out of the far end of the pipe. `reader` replaces the
 * slow reader with another shell command (`head -c 100`).
 */
export function runOpsThroughSlowPipe(args: string[], opts: { root?: string; reader?: string } = {}): Promise<CliResult> {
  const root = opts.root ?? ROOT;
  // The command's exit status comes back on fd 3: a shell pipeline's own status is its last command's.
  const script = `{ "$0" ops/run.js "$@"; echo $? >&3; } | ${opts.reader ?? '"$0" "$SLOW_READER"'}`;
  return new Promise((resolve, reject) => {
    const child = spawn("sh", ["-c", script, process.execPath, ...args], {
      cwd: root,
      env: { ...process.env, SLOW_READER: path.join(__dirname, "slow-reader.js") },
      stdio: ["ignore", "pipe", "pipe", "pipe"],
    });
    const streams = { stdout: [] as Buffer[], stderr: [] as Buffer[], status: [] as Buffer[] };
    child.stdout!.on("data", (b: Buffer) => streams.stdout.push(b));
    child.stderr!.on("data", (b: Buffer) => streams.stderr.push(b));
    (child.stdio[3] as NodeJS.ReadableStream).on("data", (b: Buffer) => streams.status.push(b));
    child.on("error", reject);
    child.on("close", () => {
      const text = (parts: Buffer[]) => Buffer.concat(parts).toString("utf8");
      const status = text(streams.status).trim();
      resolve({ code: status === "" ? -1 : Number(status), stdout: text(streams.stdout), stderr: text(streams.stderr) });
    });
  });
}

/**
 * A plan as `npm run plan -- --format json` printed it, without what belongs
 * to the machine or the example app's sources rather than to the stack: the
 * project's directory, and the content hash that tags a local build (dev).
 */
export function portablePlan(raw: string, root = ROOT): string {
  return raw.split(root).join("<project>").replace(/(appstack-[\w.-]+-(?:api|worker|frontend)):[0-9a-f]{12}\b/g, "$1:<context hash>");
}
