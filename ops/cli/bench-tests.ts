import { spawnSync } from "node:child_process";
import * as os from "node:os";
import { EXIT, UserError } from "../shared/errors";
import { childrenCpuMs, median, min } from "./bench";

/**
 * The `npm test` row of `npm run bench`: the whole suite, run as a developer
 * runs it (`npm test` in the project, a fresh process tree each time), timed
 * from start to exit. The budget it is held to is in docs/performance.md;
 * nothing here asserts it.
 */

/** How many times `npm test` runs; the figure is the median. */
export const TEST_RUNS = 3;

export interface TestsSample {
  /** Wall-clock milliseconds, `npm test` start to exit. */
  wall: number;
  /** CPU milliseconds of `npm test` and every process it waited for; undefined where /proc is not there. */
  cpu?: number;
  /** Tests that passed, as vitest counted them. */
  passed: number;
}

export interface TestsFigure {
  runs: number;
  minMs: number;
  medianMs: number;
  cpuMs?: number;
  passed: number;
}

export interface TestsHeading {
  cpus: number;
  /** One-minute load averages before the first run and after the last. */
  loadBefore: number;
  loadAfter: number;
}

/** The passed count from vitest's summary line (`Tests  680 passed (680)`); a run with a failure is no figure. */
export function passedTests(output: string): number {
  const plain = output.replace(/\x1b\[[0-9;]*m/g, "");
  const summary = /^\s*Tests\s+(.*)$/m.exec(plain)?.[1];
  const passed = summary && /^(\d+) passed \(\d+\)$/.exec(summary.trim());
  if (!passed) throw new UserError(`bench: npm test did not pass: ${summary ?? "no summary line"}`, EXIT.programError);
  return Number(passed[1]);
}

function timeTests(root: string): TestsSample {
  const cpuBefore = childrenCpuMs();
  const start = process.hrtime.bigint();
  const result = spawnSync("npm", ["test"], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
  const wall = Number(process.hrtime.bigint() - start) / 1e6;
  const cpuAfter = childrenCpuMs();
  if (result.status !== 0) throw new UserError(`bench: npm test exited with ${result.status}:\n${result.stdout.slice(-2000)}${result.stderr.slice(-2000)}`, EXIT.programError);
  return { wall, cpu: cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore, passed: passedTests(result.stdout) };
}

/** Runs `npm test` `runs` times in a row. */
export function runTestsBench(root: string, runs = TEST_RUNS, progress: (line: string) => void = () => {}): { heading: TestsHeading; samples: TestsSample[] } {
  const loadBefore = os.loadavg()[0];
  const samples: TestsSample[] = [];
  for (let i = 0; i < runs; i++) {
    samples.push(timeTests(root));
    progress(`npm test: run ${i + 1}/${runs}`);
  }
  return { heading: { cpus: os.cpus().length, loadBefore, loadAfter: os.loadavg()[0] }, samples };
}

export function testsFigure(samples: TestsSample[]): TestsFigure {
  const walls = samples.map((s) => s.wall);
  const cpu = samples.every((s) => s.cpu !== undefined) ? median(samples.map((s) => s.cpu!)) : undefined;
  return { runs: samples.length, minMs: min(walls), medianMs: median(walls), cpuMs: cpu, passed: Math.min(...samples.map((s) => s.passed)) };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The heading line and the one-row table, as docs/performance.md quotes them. */
export function renderTestsTable(heading: TestsHeading, f: TestsFigure): string {
  return [
    `npm test: ${f.runs} run${f.runs === 1 ? "" : "s"}, each the whole suite from the start. ` +
      `${heading.cpus} CPUs, load average ${heading.loadBefore.toFixed(1)} before the first run and ${heading.loadAfter.toFixed(1)} after the last.`,
    "",
    "| command | tests passed | min | median | CPU (median) |",
    "| --- | --- | --- | --- | --- |",
    `| npm test | ${f.passed} | ${seconds(f.minMs)} | ${seconds(f.medianMs)} | ${f.cpuMs === undefined ? "n/a" : seconds(f.cpuMs)} |`,
  ].join("\n");
}
