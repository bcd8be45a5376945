import * as os from "node:os";
import { runUnderHost, type HostRun } from "../offline/host-run";
import { listStacks } from "../offline/stack-files";
import { EXIT, UserError } from "../shared/errors";
import { childrenCpuMs, median, min } from "./bench";

/**
 * The `host` rows of `npm run bench`: the program loaded the way every
 * `pulumi preview` loads it (the SDK's own entry point in a fresh process,
 * Pulumi.yaml's nodeargs, the language host's argv and environment), against
 * a mock engine (ops/offline/host-run.ts). Each stack runs as configured,
 * with APPSTACK_DEBUG=1 (ts-node's stack mapping kept), and as it loaded
 * before the project set nodeargs (no preload, and ts-node's mapping);
 * the three in turn, so that all see the same load on the machine.
 */

export const HOST_LOADS = {
  configured: { label: "as configured", nodeArgs: undefined, env: {} },
  /** The preload's compile cache, but ts-node's source-map-support kept: what APPSTACK_DEBUG=1 costs. */
  debug: { label: "as configured, APPSTACK_DEBUG=1", nodeArgs: undefined, env: { APPSTACK_DEBUG: "1" } },
  before: { label: "no nodeargs, APPSTACK_DEBUG=1", nodeArgs: [], env: { APPSTACK_DEBUG: "1" } },
} as const;
export type HostLoad = keyof typeof HOST_LOADS;

/** One run's figures, in milliseconds. */
export interface HostSample {
  /** Spawn to the SDK ready to require the program. */
  sdkReady: number;
  /** The program's own load: SDK ready to its last registration. */
  programLoad: number;
  /** Spawn to the last registration. */
  programDone: number;
  /** Spawn to exit. */
  exit: number;
  /** CPU of the program's load, and of the whole process (from /proc; undefined elsewhere). */
  cpuProgramLoad?: number;
  cpuProcess?: number;
}

export interface HostFigure {
  stack: string;
  load: HostLoad;
  runs: number;
  /** Medians, and the minimum of the program's load. */
  sdkReady: number;
  programLoad: number;
  programLoadMin: number;
  programDone: number;
  exit: number;
  cpuProgramLoad?: number;
  cpuProcess?: number;
}

export function hostSample(run: HostRun, cpuProcess?: number): HostSample {
  const { sdkReady, programDone, exit } = run.timings;
  if (run.exitCode !== 0 || sdkReady === undefined || programDone === undefined) {
    const errors = run.logs.filter((l) => l.severity === "error").map((l) => l.message);
    throw new UserError(`bench: the program failed under the language host's entry point (exit ${run.exitCode}):\n${[...errors, run.stderr.trim()].join("\n")}`, EXIT.programError);
  }
  const cpu = run.cpu.sdkReady !== undefined && run.cpu.programDone !== undefined ? run.cpu.programDone - run.cpu.sdkReady : undefined;
  return { sdkReady, programLoad: programDone - sdkReady, programDone, exit, cpuProgramLoad: cpu, cpuProcess };
}

export function hostFigure(stack: string, load: HostLoad, samples: HostSample[]): HostFigure {
  const med = (key: keyof HostSample) => median(samples.map((s) => s[key]!));
  const all = (key: keyof HostSample) => samples.every((s) => s[key] !== undefined);
  return {
    stack,
    load,
    runs: samples.length,
    sdkReady: med("sdkReady"),
    programLoad: med("programLoad"),
    programLoadMin: min(samples.map((s) => s.programLoad)),
    programDone: med("programDone"),
    exit: med("exit"),
    cpuProgramLoad: all("cpuProgramLoad") ? med("cpuProgramLoad") : undefined,
    cpuProcess: all("cpuProcess") ? med("cpuProcess") : undefined,
  };
}

export async function runHostBench(opts: { root: string; stacks?: string[]; runs: number }, progress: (line: string) => void = () => {}): Promise<HostFigure[]> {
  if (!Number.isInteger(opts.runs) || opts.runs < 1 || opts.runs > 50) throw new UserError("--runs must be a whole number from 1 to 50.");
  const stacks = opts.stacks?.length ? opts.stacks : listStacks(opts.root);
  const figures: HostFigure[] = [];
  for (const stack of stacks) {
    const samples = Object.fromEntries(Object.keys(HOST_LOADS).map((k) => [k, []])) as unknown as Record<HostLoad, HostSample[]>;
    for (let i = 0; i < opts.runs; i++) {
      for (const load of Object.keys(HOST_LOADS) as HostLoad[]) {
        const { nodeArgs, env } = HOST_LOADS[load];
        // Runs are one at a time, so this process's reaped children are exactly this run's process.
        const cpuBefore = childrenCpuMs();
        const run = await runUnderHost({ root: opts.root, stack, nodeArgs: nodeArgs && [...nodeArgs], env });
        const cpuAfter = childrenCpuMs();
        samples[load].push(hostSample(run, cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore));
      }
      progress(`${stack}: host run ${i + 1}/${opts.runs}`);
    }
    for (const load of Object.keys(HOST_LOADS) as HostLoad[]) figures.push(hostFigure(stack, load, samples[load]));
  }
  return figures;
}

const seconds = (ms: number | undefined) => (ms === undefined ? "n/a" : `${(ms / 1000).toFixed(2)} s`);

/** The heading line and the table, as docs/performance.md quotes them. */
export function renderHostTable(heading: { runs: number; cpus: number; load: number }, figures: HostFigure[]): string {
  return [
    `host: ${heading.runs} run${heading.runs === 1 ? "" : "s"} per stack and way of loading, each a fresh process under the SDK's entry point ` +
      `(pulumi preview, mock engine); medians. ${heading.cpus} CPUs, load average ${heading.load.toFixed(1)} at the end.`,
    "",
    "| stack | loaded | SDK ready | program load (min) | start to program done | whole process | CPU: program load | CPU: whole process |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ...figures.map(
      (f) =>
        `| ${f.stack} | ${HOST_LOADS[f.load].label} | ${seconds(f.sdkReady)} | ${seconds(f.programLoad)} (${seconds(f.programLoadMin)}) | ` +
        `${seconds(f.programDone)} | ${seconds(f.exit)} | ${seconds(f.cpuProgramLoad)} | ${seconds(f.cpuProcess)} |`,
    ),
  ].join("\n");
}

export function renderHostBench(figures: HostFigure[], runs: number): string {
  // Other work on the machine slows every figure; say how busy it was.
  return renderHostTable({ runs, cpus: os.cpus().length, load: os.loadavg()[0] }, figures);
}
