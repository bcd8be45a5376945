import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { EXIT, UserError } from "../shared/errors";
import { listStacks } from "../offline/stack-files";

/**
 * Times `plan`, `policy` and `diff` per stack the way a user runs them (a
 * fresh process each time, through ops/run.js) and reports min and median
 * wall time and the median CPU time. Numbers for docs/performance.md, which
 * quotes this command's output as it printed it; nothing here asserts a budget.
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

/** The commands timed, in the order they run. */
export const BENCH_COMMANDS = ["plan", "policy", "diff"] as const;
export type BenchCommand = (typeof BENCH_COMMANDS)[number];

export interface BenchRow {
  stack: string;
  samples: Record<BenchCommand, Sample[]>;
}

/** What one table row shows: one command on one stack. */
export interface BenchFigure {
  stack: string;
  command: BenchCommand;
  minMs: number;
  medianMs: number;
  /** Undefined where /proc is not there. */
  cpuMs?: number;
}

export interface BenchHeading {
  runs: number;
  base: string;
  cpus: number;
  /** The one-minute load average when the runs ended. */
  load: number;
}

/**
 * CPU time of this process's waited-for children (utime+stime of all of them,
 * grandchildren included once reaped), from /proc: the part of a figure that
 * other load on the machine does not inflate. Linux only.
 */
export function childrenCpuMs(): number | undefined {
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
  const args = (command: BenchCommand, stack: string): { args: string[]; ok: number[] } => {
    switch (command) {
      case "plan":
        return { args: ["plan", "--stack", stack, "--format", "json"], ok: [EXIT.ok] };
      case "policy":
        return { args: ["policy", "--stack", stack, "--format", "json"], ok: [EXIT.ok, EXIT.policy] };
      case "diff":
        return { args: ["diff", "--stack", stack, "--base", opts.base, "--format", "json"], ok: [EXIT.ok, EXIT.destructive] };
    }
  };
  return stacks.map((stack) => {
    const row: BenchRow = { stack, samples: { plan: [], policy: [], diff: [] } };
    for (let i = 0; i < opts.runs; i++) {
      for (const command of BENCH_COMMANDS) {
        const run = args(command, stack);
        row.samples[command].push(timeRun(opts.root, run.args, run.ok));
      }
      progress(`${stack}: run ${i + 1}/${opts.runs}`);
    }
    return row;
  });
}

/** Min, median and median CPU of each command on each stack. */
export function benchFigures(rows: BenchRow[]): BenchFigure[] {
  return rows.flatMap((r) =>
    BENCH_COMMANDS.map((command) => {
      const xs = r.samples[command];
      const cpu = xs.every((x) => x.cpu !== undefined) ? median(xs.map((x) => x.cpu!)) : undefined;
      return { stack: r.stack, command, minMs: min(xs.map((x) => x.wall)), medianMs: median(xs.map((x) => x.wall)), cpuMs: cpu };
    }),
  );
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** The heading line and the table, as docs/performance.md quotes them. */
export function renderBenchTable(heading: BenchHeading, figures: BenchFigure[]): string {
  return [
    `${heading.runs} run${heading.runs === 1 ? "" : "s"} per command, each a fresh process; diff against ${heading.base}. ` +
      `${heading.cpus} CPUs, load average ${heading.load.toFixed(1)} at the end.`,
    "",
    "| stack | command | min | median | CPU (median) |",
    "| --- | --- | --- | --- | --- |",
    ...figures.map((f) => `| ${f.stack} | ${f.command} | ${seconds(f.minMs)} | ${seconds(f.medianMs)} | ${f.cpuMs === undefined ? "n/a" : seconds(f.cpuMs)} |`),
  ].join("\n");
}

export function renderBench(rows: BenchRow[], opts: { runs: number; base: string }): string {
  // Other work on the machine slows every figure; say how busy it was.
  return renderBenchTable({ ...opts, cpus: os.cpus().length, load: os.loadavg()[0] }, benchFigures(rows));
}
