import { spawnSync } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import { EXIT, UserError } from "./errors";
import { listStacks } from "./stack-files";

/**
 * Times `plan` and `diff` per stack the way a user runs them (a fresh process
 * each time, through ops/run.js) and reports min and median wall time.
 * Numbers for the README, not a test: nothing here asserts a budget.
 */

export interface BenchOptions {
  root: string;
  stacks?: string[];
  runs: number;
  base: string;
}

export interface BenchRow {
  stack: string;
  plan: number[];
  diff: number[];
}

function timeRun(root: string, args: string[], okCodes: number[]): number {
  const start = process.hrtime.bigint();
  const result = spawnSync(process.execPath, [path.join("ops", "run.js"), ...args], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (!okCodes.includes(result.status ?? -1)) {
    throw new UserError(`bench: \`${args.join(" ")}\` exited with ${result.status}:\n${result.stderr.trim()}`, EXIT.programError);
  }
  return ms;
}

export const min = (xs: number[]): number => Math.min(...xs);

export function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function runBench(opts: BenchOptions, progress: (line: string) => void = () => {}): BenchRow[] {
  if (!Number.isInteger(opts.runs) || opts.runs < 1 || opts.runs > 50) throw new UserError("--runs must be a whole number from 1 to 50.");
  const stacks = opts.stacks?.length ? opts.stacks : listStacks(opts.root);
  return stacks.map((stack) => {
    const row: BenchRow = { stack, plan: [], diff: [] };
    for (let i = 0; i < opts.runs; i++) {
      row.plan.push(timeRun(opts.root, ["plan", "--stack", stack, "--format", "json"], [EXIT.ok]));
      row.diff.push(timeRun(opts.root, ["diff", "--stack", stack, "--base", opts.base, "--format", "json"], [EXIT.ok, EXIT.destructive]));
      progress(`${stack}: run ${i + 1}/${opts.runs}`);
    }
    return row;
  });
}

export function renderBench(rows: BenchRow[], opts: { runs: number; base: string }): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  // Other work on the machine slows every figure; say how busy it was.
  const load = os.loadavg()[0].toFixed(1);
  return [
    `${opts.runs} run${opts.runs === 1 ? "" : "s"} per command, each a fresh process; diff against ${opts.base}. ` +
      `${os.cpus().length} CPUs, load average ${load} at the end.`,
    "",
    "| stack | plan min | plan median | diff min | diff median |",
    "| --- | --- | --- | --- | --- |",
    ...rows.map((r) => `| ${r.stack} | ${s(min(r.plan))} | ${s(median(r.plan))} | ${s(min(r.diff))} | ${s(median(r.diff))} |`),
  ].join("\n");
}
