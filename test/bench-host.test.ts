import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { HOST_LOADS, hostFigure, hostSample, renderHostTable, type HostFigure, type HostLoad } from "../ops/cli/bench-host";
import type { HostRun } from "../ops/offline/host-run";
import { ROOT, repoStacks } from "./helpers/cli";
import { failure } from "./helpers/errors";

const run = (over: Partial<HostRun> = {}): HostRun => ({
  exitCode: 0,
  stdout: "",
  stderr: "",
  logs: [],
  registrations: [],
  timings: { sdkReady: 400, programDone: 900, exit: 1100 },
  cpu: { sdkReady: 350, programDone: 700 },
  ...over,
});

describe("bench: the host rows", () => {
  it("a run's program load is SDK ready to the last registration, its CPU the same span of the process's CPU", () => {
    expect(hostSample(run(), 1000)).toEqual({ sdkReady: 400, programLoad: 500, programDone: 900, exit: 1100, cpuProgramLoad: 350, cpuProcess: 1000 });
    expect(hostSample(run({ cpu: {} })).cpuProgramLoad).toBeUndefined();
  });

  it("a run that failed stops the bench with the program's errors, not a figure", () => {
    const err = failure(() => hostSample(run({ exitCode: 32, timings: { exit: 300 }, logs: [{ severity: "error", message: "appstack:environment is missing" }] })));
    expect(err.message).toMatch(/exit 32[\s\S]*appstack:environment is missing/);
  });

  it("figures are medians of each column, with the minimum of the program's load", () => {
    const samples = [100, 300, 200].map((ms) => hostSample(run({ timings: { sdkReady: ms, programDone: ms * 3, exit: ms * 4 }, cpu: { sdkReady: 0, programDone: ms } }), ms * 2));
    expect(hostFigure("dev", "configured", samples)).toEqual({
      stack: "dev",
      load: "configured",
      runs: 3,
      sdkReady: 200,
      programLoad: 400,
      programLoadMin: 200,
      programDone: 600,
      exit: 800,
      cpuProgramLoad: 200,
      cpuProcess: 400,
    });
  });

  it("docs/performance.md quotes the host table as `npm run bench` prints it, for every stack and every way of loading", () => {
    const doc = fs.readFileSync(path.join(ROOT, "docs/performance.md"), "utf8");
    const m = /^host: (\d+) runs? per stack and way of loading, .*? (\d+) CPUs, load average ([\d.]+) at the end\.\n\n((?:\|.*\n?)+)/m.exec(doc);
    expect(m, "docs/performance.md: paste the host table of npm run bench").not.toBeNull();
    const [, runs, cpus, load, table] = m!;
    const ms = (s: string) => (s === "n/a" ? undefined : Math.round(Number(s.replace(/ s$/, "")) * 1000));
    const byLabel = new Map(Object.entries(HOST_LOADS).map(([k, v]) => [v.label as string, k as HostLoad]));
    const figures: HostFigure[] = table
      .trim()
      .split("\n")
      .slice(2)
      .map((row) => {
        const [stack, loaded, sdkReady, programLoad, programDone, exit, cpuProgramLoad, cpuProcess] = row.split("|").slice(1, -1).map((c) => c.trim());
        const [, median, minimum] = /^(\S+ s) \((\S+ s)\)$/.exec(programLoad)!;
        return {
          stack,
          load: byLabel.get(loaded)!,
          runs: Number(runs),
          sdkReady: ms(sdkReady)!,
          programLoad: ms(median)!,
          programLoadMin: ms(minimum)!,
          programDone: ms(programDone)!,
          exit: ms(exit)!,
          cpuProgramLoad: ms(cpuProgramLoad),
          cpuProcess: ms(cpuProcess),
        };
      });
    expect(renderHostTable({ runs: Number(runs), cpus: Number(cpus), load: Number(load) }, figures)).toBe(m![0].trimEnd());
    expect(figures.map((f) => `${f.stack} ${f.load}`)).toEqual(repoStacks().flatMap((s) => Object.keys(HOST_LOADS).map((l) => `${s} ${l}`)));
  });
});
