// Where `npm test`'s CPU goes, process by process (docs/performance.md, "npm test").
//
//   npm run bench:test-cpu
//
// runs the suite once with this file preloaded into every Node process it
// starts (NODE_OPTIONS=--require): vitest, its workers, every ops command a
// test runs, the policy pack, each `node -e`. Each process appends its own
// CPU time (process.cpuUsage: user + system, all its threads) to a log when it
// exits or is sent SIGTERM or SIGINT, and the report groups them by what they
// are. Its last line is the whole run as the kernel counts it (/proc, the
// CPU of every process the run waited for): the difference is what no Node
// process can count for itself (starting up before the preload, tearing down
// after its exit handlers) and the few other programs the suite runs (git,
// sh, Postgres).
"use strict";
const fs = require("node:fs");

const LOG = process.env.APPSTACK_PROCESS_CPU_LOG;

if (require.main !== module) {
  // Preloaded into a process of the suite: record it when it ends.
  let recorded = false;
  const record = () => {
    if (recorded || !LOG) return;
    recorded = true;
    const { user, system } = process.cpuUsage();
    fs.appendFileSync(LOG, `${JSON.stringify({ cpuMs: (user + system) / 1000, argv: process.argv.slice(1) })}\n`);
  };
  process.on("exit", record);
  for (const signal of ["SIGTERM", "SIGINT"]) {
    process.once(signal, () => {
      record();
      process.kill(process.pid, signal);
    });
  }
} else {
  main();
}

/** What a process of the suite is, from its argv. */
function kindOf(argv) {
  const args = argv.join(" ");
  if (/vitest[\\/]dist[\\/]workers|[\\/]forks\.js/.test(args)) return "vitest workers: the in-process tests, and loading vitest, the SDK and the program";
  if (/[\\/]vitest(\.mjs)?( |$)/.test(args)) return "vitest's main process";
  if (/run-policy-pack/.test(args)) return "the policy pack under the SDK's pack runner (test/policy-pack.test.ts)";
  if (/ops[\\/]run\.js/.test(args)) return "ops commands run as a user runs them, and the plans a diff starts";
  if (/slow-reader/.test(args)) return "the slow pipe reader (test/cli-output.test.ts)";
  if (argv.length === 0 || argv[0] === "-e") return "`node -e` probes (test/offline-load.test.ts, test/host-run.test.ts, …)";
  return "other";
}

function main() {
  const { spawnSync } = require("node:child_process");
  const os = require("node:os");
  const path = require("node:path");
  const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "appstack-process-cpu-")), "processes.jsonl");
  const root = path.resolve(__dirname, "../..");
  const before = childrenCpuMs();
  const vitest = spawnSync(process.execPath, [path.join(root, "node_modules/vitest/vitest.mjs"), "run"], {
    cwd: root,
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, APPSTACK_PROCESS_CPU_LOG: log, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --require ${__filename}`.trim() },
  });
  const whole = childrenCpuMs() - before;
  const rows = fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l)) : [];
  fs.rmSync(path.dirname(log), { recursive: true, force: true });
  if (vitest.status !== 0) {
    console.error(`npm test failed (exit ${vitest.status}): fix the suite before measuring it.`);
    process.exit(1);
  }
  const kinds = new Map();
  for (const r of rows) {
    const k = kinds.get(kindOf(r.argv)) ?? { processes: 0, cpuMs: 0 };
    k.processes += 1;
    k.cpuMs += r.cpuMs;
    kinds.set(kindOf(r.argv), k);
  }
  const total = rows.reduce((sum, r) => sum + r.cpuMs, 0);
  const s = (ms) => `${(ms / 1000).toFixed(1)} s`;
  console.log(`npm test, one run: the CPU of each Node process it started, by kind. ${os.availableParallelism()} CPUs.`);
  console.log("");
  console.log("| processes | kind | CPU |");
  console.log("| --- | --- | --- |");
  for (const [kind, k] of [...kinds].sort((a, b) => b[1].cpuMs - a[1].cpuMs)) console.log(`| ${k.processes} | ${kind} | ${s(k.cpuMs)} |`);
  console.log(`| ${rows.length} | all of the above | ${s(total)} |`);
  console.log(`| | the whole run, as the kernel counts it | ${s(whole)} |`);
}

/** User and system CPU of this process's waited-for children and theirs (/proc/self/stat: cutime, cstime). */
function childrenCpuMs() {
  const stat = fs.readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 16 and 17 of stat(5), counted from the state (field 3) here; clock ticks are 100 a second on Linux.
  return (Number(fields[13]) + Number(fields[14])) * 10;
}
