import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { GENERATED_SECRET_LENGTH } from "../components/app-stack";
import { DEFAULT_BACKUP_KEEP, OFFSITE_RETRY_SECONDS, retrySeconds, SHIP_POLL_SECONDS } from "../components/backup";
import { JOB_LOG_LINES } from "../components/job";
import { appConfigSchema, backupSchema, backupSettings, intervalSeconds, MIN_DOCKER_ENGINE } from "../config";
import { BENCH_COMMANDS, benchFigures, renderBenchTable, type BenchCommand, type BenchFigure } from "../ops/cli/bench";
import { DEFAULT_LOCK_TIMEOUT_SECONDS } from "../ops/cli/cli";
import { DEFAULT_SMOKE } from "../ops/operations/deploy";
import { LOCK_RETRY_MS } from "../ops/operations/lock-wait";
import { STATE_BACKUP_MODE } from "../ops/operations/state-backup";
import { EXIT, renderExitCodes } from "../ops/shared/errors";
import { repoStacks, ROOT } from "./helpers/cli";

/**
 * The figures and exit codes the README and docs/ state come from the code:
 * tables rendered from its definitions, phrases built from its constants. A
 * change on either side fails here, and says which sentence to fix.
 */

const read = (file: string) => fs.readFileSync(path.join(ROOT, file), "utf8");
/** Line breaks in a paragraph are spaces. */
const flat = (text: string) => text.replace(/\s+/g, " ");
/** The README and docs/, but docs/configuration.md: `npm run docs` renders it from the schema, and a test holds it there. */
const DOCS = ["README.md", ...fs.readdirSync(path.join(ROOT, "docs")).filter((f) => f.endsWith(".md") && f !== "configuration.md").map((f) => `docs/${f}`)];

/**
 * Every sentence of the docs that states an ops command's exit code, written
 * with the code's own constant: it must appear in its file as rendered here.
 */
const EXIT_CODE_SENTENCES: Record<string, string[]> = {
  "README.md": [
    `\`validate\` exits ${EXIT.ok}, or ${EXIT.invalidConfig} with every problem listed`,
    `that download needs internet access (without it: exit ${EXIT.prerequisite} and the manual install command`,
  ],
  "docs/operations.md": [
    `Where the download fails (no internet), they stop with exit code ${EXIT.prerequisite}, say so, and give the manual command`,
    `or one no update has succeeded for, is exit ${EXIT.notDeployed} with the command that deploys it)`,
    `runs the deploy's Docker preflight on \`docker.host\` (exit ${EXIT.dockerHost} with what to do, ssh included)`,
    `A service the stack does not run is exit ${EXIT.usage}, with why`,
    `What fails before the command runs has its own code: ${EXIT.usage} (unknown service or replica, a one-shot job as the service, no command), ${EXIT.dockerHost} (Docker host), ${EXIT.notDeployed} (never deployed, no running replica of the deployed image), and ${EXIT.oneOffFailed} when the engine cannot create or start the container`,
    `exit ${EXIT.unhealthy} if a service is unhealthy or a backup overdue`,
    `exit ${EXIT.drift} when resources changed outside Pulumi`,
    `then stop with exit code ${EXIT.locked} and the way out`,
    `$ echo $? ${EXIT.unhealthy}`,
    `also rolls back when \`pulumi up\` itself fails (exit ${EXIT.updateFailed})`,
    `stops with exit code ${EXIT.prerequisite} until one of the two variables is set`,
    `A failure stops the deploy with exit code ${EXIT.dockerHost} and what to do`,
    `an older one stops the deploy with exit code ${EXIT.engineTooOld}, the version found`,
    `A failure stops the deploy with exit code ${EXIT.swarm} and the command that fixes it`,
  ],
  "docs/docker-engine.md": [
    `stops the deploy with exit code ${EXIT.engineTooOld}, and nothing was changed`,
    `An engine that does not answer at all is exit code ${EXIT.dockerHost}`,
  ],
  "docs/releases.md": [
    `if the schema refuses it (production needs a digest or a version tag), the file is put back as it was and the command exits ${EXIT.invalidConfig}.`,
    `Where no registry answers, it says so, changes nothing and exits ${EXIT.registry}:`,
  ],
  "docs/backups.md": [
    `fail \`status\` (exit ${EXIT.unhealthy})`,
    `with restic's own reason (exit ${EXIT.backup})`,
    `Exit ${EXIT.ok}, or ${EXIT.backup} with the reason`,
  ],
  "docs/readiness.md": [
    `# exit ${EXIT.ok} ready, ${EXIT.policy} not ready`,
    `(\`No policy config for stack "x"\`, exit ${EXIT.usage})`,
    `an unknown or mistyped setting is exit ${EXIT.invalidConfig} with every problem listed`,
    `(exit code ${EXIT.policy})`,
  ],
};

/** Exit statuses in the docs that are not an ops command's: a job's or a process's own. */
const OTHER_EXIT_STATUSES: Record<string, string[]> = {
  "README.md": ["must exit 0 before any API container is replaced", "finishes the ones in hand, exits 0"],
  // exec's record of a one-off command: the command's own exit status.
  "docs/operations.md": ["api exit 0 by pulumi:alice"],
  "docs/readiness.md": ["the migration's own success (exit 0)", "the migrations job connecting (exit 0)"],
  "docs/verification.md": ["(exit 1, `probe: blocked`)"],
  "docs/docker-engine.md": ["every job exits 0", "exit 0 after"],
  "docs/swarm.md": ["exit 0 after"],
  // restic's own exit statuses, by version.
  "docs/backups.md": ["from 0.17, a missing repository exits 10 and (0.17.1) a wrong password 12, where 0.14 exits 1"],
};

/** A text without its example blocks: `npm run docs` writes them from real runs, and the tests that run those commands compare them. */
const withoutExamples = (text: string) => text.replace(/<!-- example: [\s\S]*?<!-- end example -->/g, "");

/** "exit 4", "exits 0, or 1", "exit code 7", "$ echo $? 4": a number said to be an exit status. */
const EXIT_MENTION = /\b(?:exits?|exit code|echo \$\?) `?\d+/g;

describe("exit codes in the README and docs/", () => {
  it("docs/operations.md has the table of every code, rendered from EXIT_CODES", () => {
    expect(read("docs/operations.md"), "docs/operations.md: paste renderExitCodes()").toContain(renderExitCodes());
  });

  it("docs/pull-requests.md has the codes diff ends with, rendered from EXIT_CODES", () => {
    const diffCodes = ["ok", "invalidConfig", "usage", "programError", "destructive", "badBaseRef", "baseDoesNotEvaluate", "stackOnOneSide"] as const;
    expect(read("docs/pull-requests.md")).toContain(renderExitCodes(diffCodes));
  });

  it("docs/releases.md has the codes release ends with, rendered from EXIT_CODES", () => {
    expect(read("docs/releases.md")).toContain(renderExitCodes(["ok", "invalidConfig", "usage", "destructive", "registry"]));
  });

  it("every sentence that names an exit code says the code's current value", () => {
    for (const [file, sentences] of Object.entries(EXIT_CODE_SENTENCES)) {
      for (const sentence of sentences) expect(flat(read(file)), `${file} should say: ${sentence}`).toContain(sentence);
    }
  });

  it("no exit code is stated anywhere else: each is in a rendered table or a checked sentence", () => {
    const unchecked: string[] = [];
    for (const file of DOCS) {
      let text = flat(withoutExamples(read(file))).replace(flat(renderExitCodes()), "");
      for (const sentence of [...(EXIT_CODE_SENTENCES[file] ?? []), ...(OTHER_EXIT_STATUSES[file] ?? [])]) text = text.split(sentence).join("");
      // Table rows of a rendered exit-code table: "| `11` | `diff`: ..."
      text = text.replace(/\| `\d+` \| [^|]+ \|/g, "");
      for (const m of text.matchAll(EXIT_MENTION)) unchecked.push(`${file}: "...${text.slice(Math.max(0, m.index - 40), m.index + m[0].length + 20)}..."`);
    }
    expect(unchecked, "state an exit code only in a sentence listed in EXIT_CODE_SENTENCES").toEqual([]);
  });
});

/** The benchmark's figures for the random-filler database, as docs/backups.md quotes `npm run bench:backup`. */
function backupBench() {
  const block = read("docs/backups.md").split("--filler random -->")[1];
  const db = /: a (\d+) MB database/.exec(block)![1];
  const seconds = (step: string) => Number(new RegExp(`^\\| ${step} \\| .+ \\| (\\d+\\.\\d) s`, "m").exec(block)![1]);
  const dump = /\| dump \|.*\(a (\d+) MB dump\)/.exec(block)![1];
  const drill = Number(/; ([\d.]+) s in all\./.exec(block)![1]);
  return { db, dump, dumpSeconds: seconds("dump"), shipSeconds: seconds("ship"), drill };
}

/** The total of the timed `.ci/run` in docs/verification.md's cost table, in minutes as the table states it. */
function ciMinutes(): string {
  return /^\| \*\*total\*\* \| \*\*[\d,]+ s \(([\d.]+) min\)\*\* \|$/m.exec(read("docs/verification.md"))![1];
}

/** Figures stated in prose, each built from the constant or the rendered config it comes from. */
function figureSentences(): Record<string, string[]> {
  const bench = backupBench();
  const backup = backupSettings({});
  const offsite = backupSchema.shape.offsite.unwrap().parse({});
  const workerSchema = appConfigSchema.shape.worker.unwrap();
  const byDefault = workerSchema.parse({ command: ["node", "worker.js"] }).health;
  const heartbeat = workerSchema.parse({ command: ["node", "worker.js"], health: { type: "heartbeat" } }).health;
  const engines = (JSON.parse(read("package.json")) as { engines: { node: string } }).engines.node;
  const oldestNode = /^\^(\d+\.\d+)\.0\b/.exec(engines)![1];
  const nodeMajor = read(".nvmrc").trim().split(".")[0];
  const deps = (JSON.parse(read("package.json")) as { dependencies: Record<string, string> }).dependencies;
  const minor = (version: string) => version.split(".").slice(0, 2).join(".");
  return {
    "README.md": [
      `exit fails the deploy with the migration's last ${JOB_LOG_LINES} log lines`,
      `heartbeat file (\`HEARTBEAT_FILE\`) younger than ${heartbeat.type === "heartbeat" ? heartbeat.maxAgeSeconds : NaN} s`,
      `waits until the worker's own command has been running for ${byDefault.type === "process" ? byDefault.upSeconds : NaN} s (\`worker.health: {type: process}\`)`,
      `Every npm script runs the project's own Node ${nodeMajor}`,
      `Node.js ${oldestNode} or later with npm`,
      `Docker Engine ${MIN_DOCKER_ENGINE.version} or newer`,
      `which must then be ${oldestNode} or later`,
      `measured by the drill here for a ${bench.db} MB database (a ${bench.dump} MB dump): about ${Math.round(bench.drill)} s`,
      `is what CI runs on a clean clone: ${Math.round(Number(ciMinutes()))} min on 2 CPUs with empty build caches`,
    ],
    "docs/backups.md": [
      `24 h plus, for the database below, ${Math.round(bench.dumpSeconds)} s of dump, up to ${SHIP_POLL_SECONDS} s until the shipper looks and ${Math.round(bench.shipSeconds)} s of copy`,
      `about ${Math.round(bench.drill)} s for that database, a ${bench.db} MB one whose dump is ${bench.dump} MB`,
      `each new dump (pre-deploy or scheduled) within ${SHIP_POLL_SECONDS} s`,
      `(\`wait: true\`, \`backup.healthTimeoutSeconds\`, default ${backup.healthTimeoutSeconds.toLocaleString("en-US")} s)`,
      `a tenth of the schedule (${retrySeconds(0)} s to ${retrySeconds(Infinity) / 60} min)`,
      `the newest \`backup.keep\` scheduled dumps (default ${backup.keep}) and the newest ${DEFAULT_BACKUP_KEEP} pre-deploy dumps`,
      `(${offsite.keepDaily}, ${offsite.keepWeekly} and ${offsite.keepMonthly} by default)`,
      `\`checkReadDataPercent\` of the data (default ${offsite.checkReadDataPercent} %)`,
      `retries every ${OFFSITE_RETRY_SECONDS / 60} minutes`,
      `(default ${intervalSeconds(offsite.checkSchedule) / 86_400} days)`,
    ],
    "docs/operations.md": [
      `retried every ${DEFAULT_SMOKE.intervalMs / 1000} s for up to \`--smoke-timeout\` (default ${DEFAULT_SMOKE.budgetMs / 1000} s)`,
      `wait and retry every ${LOCK_RETRY_MS / 1000} s, printing who holds the lock, for up to \`--lock-timeout\` seconds (default ${DEFAULT_LOCK_TIMEOUT_SECONDS})`,
      `keeping the newest ${DEFAULT_BACKUP_KEEP}.`,
      `mode ${STATE_BACKUP_MODE.toString(8).padStart(4, "0")}, git-ignored`,
    ],
    "docs/security.md": [`\`@pulumi/random\` (\`appstack-secret-<name>\`, ${GENERATED_SECRET_LENGTH} characters)`],
    "docs/readiness.md": [`(\`@pulumi/policy\` ${deps["@pulumi/policy"]} next to \`@pulumi/pulumi\` ${minor(deps["@pulumi/pulumi"])})`],
    "docs/verification.md": [`the npm packages (Node ${nodeMajor} included)`],
  };
}

/**
 * Numbers in the README's prose that are not figures of appstack's: protocol
 * ports and addresses, upstream issue numbers, example versions. Anything
 * else must be a checked figure (or come from a table a test renders).
 */
const README_NOT_FIGURES = [
  /\b127\.0\.0\.1\b/g,
  /\b80 and 443\b/g,
  /\bHTTP\/[\d.]+/g, // protocol versions
  /#\d+/g,
  /\b\d+\.\d+(?:\.\d+)?(?:-alpine)?\b/g, // versions in examples
  /`[^`]*`/g, // code: keys, commands, file names, example values
  /\]\([^)]*\)/g, // link targets
];

describe("figures in the README and docs/", () => {
  it("each sentence with a figure states the code's current value", () => {
    for (const [file, sentences] of Object.entries(figureSentences())) {
      for (const sentence of sentences) expect(flat(read(file)), `${file} should say: ${sentence}`).toContain(sentence);
    }
  });

  it("the README's prose has no other number: a new figure needs a check", () => {
    let text = withoutExamples(read("README.md"))
      .replace(/```[\s\S]*?```/g, "") // commands and their output
      .split("\n")
      .filter((line) => !line.startsWith("|")) // tables: the config reference (the schema's) and the wait chains (test/stacks.test.ts)
      .map((line) => line.replace(/^\s*\d+\. /, "")) // numbered steps
      .join("\n");
    for (const sentence of figureSentences()["README.md"]) text = flat(text).split(sentence).join("");
    for (const sentence of EXIT_CODE_SENTENCES["README.md"]) text = text.split(sentence).join("");
    for (const pattern of README_NOT_FIGURES) text = text.replace(pattern, "");
    expect(text.match(/.{0,40}\b\d[\d,]*\b.{0,20}/g) ?? [], "README numbers with no check").toEqual([]);
  });

  it("bench's figures are each command's min, median and median CPU time", () => {
    const samples = (walls: number[]) => walls.map((wall) => ({ wall, cpu: wall / 2 }));
    const [plan, policy, diff] = benchFigures([{ stack: "dev", samples: { plan: samples([3, 1, 2]), policy: samples([5, 4]), diff: [{ wall: 9 }] } }]);
    expect(plan).toEqual({ stack: "dev", command: "plan", minMs: 1, medianMs: 2, cpuMs: 1 });
    expect(policy).toMatchObject({ minMs: 4, medianMs: 4.5, cpuMs: 2.25 });
    expect(diff.cpuMs).toBeUndefined();
  });

  it("docs/performance.md quotes `npm run bench` as it prints, for every stack and command", () => {
    const doc = read("docs/performance.md");
    const m = /^(\d+) runs? per command, each a fresh process; diff against (\S+)\. (\d+) CPUs, load average ([\d.]+) at the end\.\n\n((?:\|.*\n?)+)/m.exec(doc);
    expect(m, "docs/performance.md: paste the output of npm run bench").not.toBeNull();
    const [, runs, base, cpus, load, table] = m!;
    const ms = (s: string) => (s === "n/a" ? undefined : Math.round(Number(s.replace(/ s$/, "")) * 1000));
    const figures: BenchFigure[] = table
      .trim()
      .split("\n")
      .slice(2)
      .map((row) => {
        const [stack, command, min, median, cpu] = row.split("|").slice(1, -1).map((c) => c.trim());
        return { stack, command: command as BenchCommand, minMs: ms(min)!, medianMs: ms(median)!, cpuMs: ms(cpu) };
      });
    expect(renderBenchTable({ runs: Number(runs), base, cpus: Number(cpus), load: Number(load) }, figures)).toBe(m![0].trimEnd());
    expect(figures.map((f) => `${f.stack} ${f.command}`)).toEqual(repoStacks().flatMap((s) => BENCH_COMMANDS.map((c) => `${s} ${c}`)));
  });

  it("docs/performance.md quotes `npm run bench:test-cpu` as it prints: its rows add up, and the prose counts what the table counts", () => {
    const doc = read("docs/performance.md");
    const m = /^npm test, one run: the CPU of each Node process it started, by kind\. \d+ CPUs\.\n\n((?:\|.*\n?)+)/m.exec(doc);
    expect(m, "docs/performance.md: paste the output of npm run bench:test-cpu").not.toBeNull();
    const rows = m![1].trim().split("\n").slice(2).map((row) => row.split("|").slice(1, -1).map((c) => c.trim()));
    const kinds = rows.slice(0, -2);
    const [all, whole] = rows.slice(-2);
    const seconds = (cell: string) => Number(cell.replace(/ s$/, ""));
    expect([all[1], whole[1]]).toEqual(["all of the above", "the whole run, as the kernel counts it"]);
    expect(kinds.reduce((n, r) => n + Number(r[0]), 0)).toBe(Number(all[0]));
    // Each row is rounded to 0.1 s.
    expect(Math.abs(kinds.reduce((t, r) => t + seconds(r[2]), 0) - seconds(all[2]))).toBeLessThanOrEqual(0.05 * kinds.length + 1e-9);
    const ops = kinds.find((r) => r[1].startsWith("ops commands"))!;
    expect(flat(doc)).toContain(`The ${ops[0]} ops commands are tests of a process`);
  });
});
