import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

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
