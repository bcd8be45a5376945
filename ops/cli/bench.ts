import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { EXIT, UserError } from "../shared/errors";
import { listStacks } from "../offline/stack-files";

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

export interface Sample {
  /** Wall-clock milliseconds. */
  wall: number;
  /** CPU milliseconds of the command and every process it waited for; undefined where /proc is not there. */
  cpu?: number;
}

export interface BenchRow {
  stack: string;
  plan: Sample[];
  diff: Sample[];
}

/**
 * CPU time of this process's waited-for children (utime+stime of all of them,
 * grandchildren included once reaped), from /proc: the part of a figure that
 * other load on the machine does not inflate. Linux only.
 */
function childrenCpuMs(): number | undefined {
  try {
    const stat = fs.readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 16 and 17 of stat(5) (cutime, cstime), counted from `state` as field 3.
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / 100;
  } catch {
    return undefined;
  }
}

function timeRun(root: string, args: string[], okCodes: number[]): Sample {
  const cpuBefore = childrenCpuMs();
  const start = process.hrtime.bigint();
  const result = spawnSync(process.execPath, [path.join("ops", "run.js"), ...args], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const wall = Number(process.hrtime.bigint() - start) / 1e6;
  const cpuAfter = childrenCpuMs();
  if (!okCodes.includes(result.status ?? -1)) {
    throw new UserError(`bench: \`${args.join(" ")}\` exited with ${result.status}:\n${result.stderr.trim()}`, EXIT.programError);
  }
  return { wall, cpu: cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore };
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
  const wall = (xs: Sample[]) => xs.map((x) => x.wall);
  const cpu = (xs: Sample[]) => (xs.every((x) => x.cpu !== undefined) ? s(median(xs.map((x) => x.cpu!))) : "n/a");
  // Other work on the machine slows every figure; say how busy it was.
  const load = os.loadavg()[0].toFixed(1);
  return [
    `${opts.runs} run${opts.runs === 1 ? "" : "s"} per command, each a fresh process; diff against ${opts.base}. ` +
      `${os.cpus().length} CPUs, load average ${load} at the end.`,
    "",
    "| stack | plan min | plan median | plan CPU (median) | diff min | diff median | diff CPU (median) |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...rows.map(
      (r) =>
        `| ${r.stack} | ${s(min(wall(r.plan)))} | ${s(median(wall(r.plan)))} | ${cpu(r.plan)} | ${s(min(wall(r.diff)))} | ${s(median(wall(r.diff)))} | ${cpu(r.diff)} |`,
    ),
  ].join("\n");
}
