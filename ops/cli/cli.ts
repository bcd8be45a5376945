import * as path from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { EXIT, UserError } from "../shared/errors";
import { loadOnUse } from "../shared/load-on-use";

/**
 * Loads a command's module on first use: `diff` and `bench` only spawn plans,
 * and loading the Pulumi SDK and the policy pack for them (or compiling every
 * command's TypeScript) costs a second of start-up for every command.
 */
const load = <T>(specifier: string): Promise<T> => loadOnUse<T>(path.join(__dirname, specifier));
const plan = () => load<typeof import("../offline/plan")>("../offline/plan");
const validate = () => load<typeof import("../offline/validate")>("../offline/validate");
const policy = () => load<typeof import("../offline/policy")>("../offline/policy");
const diffCommand = () => load<typeof import("../diff/diff-command")>("../diff/diff-command");
const bench = () => load<typeof import("./bench")>("./bench");
const benchHost = () => load<typeof import("./bench-host")>("./bench-host");
const benchTests = () => load<typeof import("./bench-tests")>("./bench-tests");
const docs = () => load<typeof import("./docs")>("./docs");
const releaseCommand = () => load<typeof import("./release")>("./release");

// The operations commands load on use too, so plan and validate start no slower for them.
const ops = {
  context: () => load<typeof import("../operations/context")>("../operations/context"),
  deploy: () => load<typeof import("../operations/deploy")>("../operations/deploy"),
  preflight: () => load<typeof import("../operations/preflight")>("../operations/preflight"),
  unhealthy: () => load<typeof import("../operations/unhealthy")>("../operations/unhealthy"),
  swarm: () => load<typeof import("../operations/swarm")>("../operations/swarm"),
  rollback: () => load<typeof import("../operations/rollback")>("../operations/rollback"),
  status: () => load<typeof import("../operations/status")>("../operations/status"),
  drift: () => load<typeof import("../operations/drift")>("../operations/drift"),
  restore: () => load<typeof import("../operations/restore")>("../operations/restore"),
  offsite: () => load<typeof import("../operations/offsite")>("../operations/offsite"),
  backupAge: () => load<typeof import("../operations/backup-age")>("../operations/backup-age"),
  logs: () => load<typeof import("../operations/logs")>("../operations/logs"),
  exec: () => load<typeof import("../operations/exec")>("../operations/exec"),
};

/** Reads a stack's backup ages on its Docker host, for status and the smoke check. */
async function backupReader(stack: string) {
  const [{ readBackupAges }, { stackDockerTarget }] = await Promise.all([ops.backupAge(), ops.preflight()]);
  return (backup: Parameters<typeof readBackupAges>[1]) => readBackupAges(stackDockerTarget(PROJECT_ROOT, stack), backup, Date.now());
}

/** The checkout this CLI belongs to: Pulumi.yaml and index.ts sit one level up. */
export const PROJECT_ROOT = path.resolve(__dirname, "../..");

type Values = Record<string, string | boolean | string[] | undefined>;

interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig["options"]>;
  /** Takes arguments after the options (`exec`'s command, after `--`). */
  positionals?: boolean;
  run(values: Values, positionals: string[]): Promise<number>;
}

/** An AbortSignal that Ctrl-C sets: a followed log stream ends, a one-off command is stopped. */
function interruptSignal(): AbortSignal {
  const controller = new AbortController();
  process.once("SIGINT", () => controller.abort());
  return controller.signal;
}

const stackOptions = {
  stack: { type: "string", short: "s" },
  "stack-file": { type: "string" },
} as const;

/** A whole-number option within bounds, or the default when absent. */
function intOption(values: Values, name: string, fallback: number | undefined, min: number, max: number): number | undefined {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (typeof raw !== "string" || !/^\d+$/.test(raw) || n < min || n > max) {
    throw new UserError(`--${name} must be a whole number from ${min} to ${max} (got "${String(raw)}").`);
  }
  return n;
}

function requireStack(values: Values): string {
  if (typeof values.stack !== "string") throw new UserError("Name a stack: --stack <name>.");
  return values.stack;
}

const deployOptions = {
  stack: { type: "string", short: "s" },
  "rollback-on-failure": { type: "boolean" },
  "lock-timeout": { type: "string" },
  "smoke-timeout": { type: "string" },
  yes: { type: "boolean", short: "y" },
} as const;

/** How long deploy and rollback wait for another update's lock before they give up (`--lock-timeout`). */
export const DEFAULT_LOCK_TIMEOUT_SECONDS = 300;

async function runDeploy(values: Values, dev: boolean): Promise<number> {
  const stack = dev ? "dev" : requireStack(values);
  const lockTimeoutSeconds = intOption(values, "lock-timeout", DEFAULT_LOCK_TIMEOUT_SECONDS, 0, 86_400)!;
  const [{ defaultContext }, { DEFAULT_SMOKE, deploy }, { validateStack }, { deployPreflight, stackDockerTarget, stackSecretNames, stackSwarmSettings }, { diagnoseUnhealthy }, { diagnoseSwarm }] =
    await Promise.all([ops.context(), ops.deploy(), validate(), ops.preflight(), ops.unhealthy(), ops.swarm()]);
  const smokeSeconds = intOption(values, "smoke-timeout", DEFAULT_SMOKE.budgetMs / 1000, 0, 3600)!;
  return deploy(defaultContext(PROJECT_ROOT), {
    stack,
    init: dev || values.init === true,
    localBackend: dev,
    yes: dev || values.yes === true,
    rollbackOnFailure: values["rollback-on-failure"] === true,
    lockTimeoutSeconds,
    smoke: { ...DEFAULT_SMOKE, budgetMs: smokeSeconds * 1000 },
    validate: () => validateStack({ root: PROJECT_ROOT, stack }),
    preflight: () => deployPreflight(PROJECT_ROOT, stack),
    // Swarm mode: Swarm's own words for the tasks that did not run; host mode: the containers' health logs.
    diagnose: () =>
      stackSwarmSettings(PROJECT_ROOT, stack)
        ? diagnoseSwarm(stackDockerTarget(PROJECT_ROOT, stack), stack)
        : diagnoseUnhealthy(stackDockerTarget(PROJECT_ROOT, stack), stack, stackSecretNames(PROJECT_ROOT, stack)),
    backups: await backupReader(stack),
  });
}

function formatOption(values: Values, allowed: string[]): string {
  const format = (values.format as string | undefined) ?? allowed[0];
  if (!allowed.includes(format)) throw new UserError(`--format must be one of: ${allowed.join(", ")} (got "${format}").`);
  return format;
}

export const COMMANDS: Record<string, Command> = {
  validate: {
    summary: "check a stack file's configuration against the schema",
    usage: "validate --stack <name> | --stack-file <path>",
    options: stackOptions,
    async run(values) {
      console.log(await (await validate()).validateStack({ root: PROJECT_ROOT, stack: values.stack as string, stackFile: values["stack-file"] as string }));
      return EXIT.ok;
    },
  },
  plan: {
    summary: "evaluate the program offline and print every resource (secrets masked)",
    usage: "plan --stack <name> [--stack-file <path>] [--format json|markdown]",
    options: { ...stackOptions, format: { type: "string" } },
    async run(values) {
      const format = formatOption(values, ["json", "markdown"]);
      const { buildPlan, renderPlanJson, renderPlanMarkdown } = await plan();
      const result = await buildPlan({ root: PROJECT_ROOT, stack: values.stack as string, stackFile: values["stack-file"] as string });
      console.log(format === "json" ? renderPlanJson(result) : renderPlanMarkdown(result));
      return EXIT.ok;
    },
  },
  diff: {
    summary: `compare a stack's desired state at a git ref with the working tree (offline; exit ${EXIT.destructive} on destructive changes)`,
    usage: "diff --stack <name> --base <git-ref> [--format markdown|json] [--allow-destructive]",
    options: { stack: { type: "string", short: "s" }, base: { type: "string" }, format: { type: "string" }, "allow-destructive": { type: "boolean" } },
    async run(values) {
      const format = formatOption(values, ["markdown", "json"]) as "markdown" | "json";
      if (!values.stack || !values.base) throw new UserError(`Name a stack and a base ref: npm run diff -- --stack <name> --base <git-ref>`);
      const { output, exitCode } = await (await diffCommand()).runDiff({
        root: PROJECT_ROOT,
        stack: values.stack as string,
        base: values.base as string,
        format,
        allowDestructive: values["allow-destructive"] === true,
      });
      console.log(output);
      return exitCode;
    },
  },
  bench: {
    summary: "time plan, policy and diff per stack, the program's load the way pulumi up loads it (host), and npm test; print min/median",
    usage: "bench [--runs 5] [--stack <name>]... [--base HEAD] [--host-only | --tests-only]",
    options: {
      runs: { type: "string" },
      stack: { type: "string", multiple: true },
      base: { type: "string" },
      "host-only": { type: "boolean" },
      "tests-only": { type: "boolean" },
    },
    async run(values) {
      const opts = { runs: Number(values.runs ?? 5), base: (values.base as string | undefined) ?? "HEAD" };
      const stacks = values.stack as string[] | undefined;
      if (values["host-only"] && values["tests-only"]) throw new UserError("--host-only and --tests-only each print one table; give one of them.");
      const all = !values["host-only"] && !values["tests-only"];
      if (all) {
        const { runBench, renderBench } = await bench();
        const rows = runBench({ root: PROJECT_ROOT, stacks, ...opts }, (line) => console.error(line));
        console.log(renderBench(rows, opts) + "\n");
      }
      if (all || values["host-only"]) {
        const { runHostBench, renderHostBench } = await benchHost();
        const figures = await runHostBench({ root: PROJECT_ROOT, stacks, runs: opts.runs }, (line) => console.error(line));
        console.log(renderHostBench(figures, opts.runs) + (all ? "\n" : ""));
      }
      if (all || values["tests-only"]) {
        const { runTestsBench, testsFigure, renderTestsTable } = await benchTests();
        const { heading, samples } = runTestsBench(PROJECT_ROOT, undefined, (line) => console.error(line));
        console.log(renderTestsTable(heading, testsFigure(samples)));
      }
      return EXIT.ok;
    },
  },
  docs: {
    summary: "regenerate docs/configuration.md from the schema and the docs' example outputs from real runs",
    usage: "docs",
    options: {},
    async run() {
      const changed = await (await docs()).writeDocs(PROJECT_ROOT, runCli);
      console.log(changed.length ? `Updated: ${changed.join(", ")}` : "The generated docs are up to date.");
      return EXIT.ok;
    },
  },
  policy: {
    summary: `run the appstack-readiness policy pack over a stack offline (exit ${EXIT.policy} on a mandatory violation)`,
    usage: "policy --stack <name> [--stack-file <path>] [--policy-config <file>] [--format text|json] | --all",
    options: { ...stackOptions, "policy-config": { type: "string" }, format: { type: "string" }, all: { type: "boolean" } },
    async run(values) {
      const format = formatOption(values, ["text", "json"]);
      if (values.all) {
        if (values.stack || values["stack-file"] || values["policy-config"] || format !== "text") {
          throw new UserError("--all checks every stack file with its own policy config and prints text; it takes no --stack, --stack-file, --policy-config or --format json.");
        }
        return (await policy()).runPolicyAllStacks(PROJECT_ROOT, path.join(__dirname, "..", "run.js"));
      }
      const { runPolicy, renderPolicyJson, renderPolicyText, exitCodeOf } = await policy();
      const report = await runPolicy({
        root: PROJECT_ROOT,
        stack: values.stack as string,
        stackFile: values["stack-file"] as string,
        policyConfig: values["policy-config"] as string,
      });
      console.log(format === "json" ? renderPolicyJson(report) : renderPolicyText(report));
      return exitCodeOf(report);
    },
  },
  deploy: {
    summary: "validate, back up the state, pulumi up (streamed), smoke-check the services",
    usage: "deploy --stack <name> [--rollback-on-failure] [--lock-timeout <seconds>] [--smoke-timeout <seconds>] [--init] [--yes]",
    options: { ...deployOptions, init: { type: "boolean" } },
    run: (values) => runDeploy(values, false),
  },
  "up:dev": {
    summary: "create or select the dev stack on the local file backend and deploy it",
    usage: "up:dev [--rollback-on-failure] [--lock-timeout <seconds>] [--smoke-timeout <seconds>]",
    options: { "rollback-on-failure": deployOptions["rollback-on-failure"], "lock-timeout": deployOptions["lock-timeout"], "smoke-timeout": deployOptions["smoke-timeout"] },
    run: (values) => runDeploy(values, true),
  },
  rollback: {
    summary: "redeploy the program and config of an earlier successful update",
    usage: "rollback --stack <name> [--to <version>] [--preview] [--lock-timeout <seconds>] [--yes]",
    options: {
      stack: deployOptions.stack,
      to: { type: "string" },
      preview: { type: "boolean" },
      "lock-timeout": deployOptions["lock-timeout"],
      yes: deployOptions.yes,
    },
    async run(values) {
      const opts = {
        stack: requireStack(values),
        to: intOption(values, "to", undefined, 1, Number.MAX_SAFE_INTEGER),
        previewOnly: values.preview === true,
        yes: values.yes === true,
        lockTimeoutSeconds: intOption(values, "lock-timeout", DEFAULT_LOCK_TIMEOUT_SECONDS, 0, 86_400)!,
      };
      return (await ops.rollback()).rollback((await ops.context()).defaultContext(PROJECT_ROOT), opts);
    },
  },
  status: {
    summary: "probe every service's health URL, and the age of the newest local and off-host backup",
    usage: "status --stack <name> [--timeout <ms>]",
    options: { stack: deployOptions.stack, timeout: { type: "string" } },
    async run(values) {
      const stack = requireStack(values);
      const opts = { stack, timeoutMs: intOption(values, "timeout", 5000, 1, 600_000)!, backups: await backupReader(stack) };
      return (await ops.status()).status((await ops.context()).defaultContext(PROJECT_ROOT), opts);
    },
  },
  drift: {
    summary: "refresh --preview-only: fail when resources changed outside Pulumi",
    usage: "drift --stack <name>",
    options: { stack: deployOptions.stack },
    async run(values) {
      const opts = { stack: requireStack(values), summaryFile: process.env.GITHUB_STEP_SUMMARY || undefined };
      return (await ops.drift()).drift((await ops.context()).defaultContext(PROJECT_ROOT), opts);
    },
  },
  restore: {
    summary: "restore a Postgres dump from the backup volume or the off-host repository (shows what it overwrites; needs --yes), or run the restore drill",
    usage: "restore --stack <name> [--backup <name> | --offsite [--snapshot <id>|latest] | --drill] [--yes]",
    options: {
      stack: deployOptions.stack,
      backup: { type: "string" },
      offsite: { type: "boolean" },
      snapshot: { type: "string" },
      drill: { type: "boolean" },
      yes: deployOptions.yes,
    },
    async run(values) {
      const stack = requireStack(values);
      const chosen = (["backup", "offsite", "drill"] as const).filter((k) => values[k] !== undefined);
      if (chosen.length > 1) throw new UserError(`Choose one of --backup, --offsite and --drill (got --${chosen.join(" and --")}).`);
      if (values.snapshot !== undefined && values.offsite !== true) throw new UserError("--snapshot names an off-host snapshot: use it with --offsite.");
      const [{ localDocker, restore }, { defaultContext }] = await Promise.all([ops.restore(), ops.context()]);
      const ctx = defaultContext(PROJECT_ROOT);
      if (values.drill === true) return (await ops.offsite()).drill(ctx, localDocker, { stack });
      if (values.offsite === true) {
        return (await ops.offsite()).restoreOffsite(ctx, localDocker, { stack, snapshot: values.snapshot as string | undefined, yes: values.yes === true });
      }
      return restore(ctx, localDocker, { stack, backup: values.backup as string | undefined, yes: values.yes === true });
    },
  },
  release: {
    summary: "set a service's image in Pulumi.<stack>.yaml (that line only), check it, and show the offline diff against HEAD",
    usage: "release --stack <name> --service api|worker --image <repo@sha256:digest | repo:tag> | --image <repo> --tag <tag> [--no-diff]",
    options: { stack: deployOptions.stack, service: { type: "string" }, image: { type: "string" }, tag: { type: "string" }, "no-diff": { type: "boolean" } },
    async run(values) {
      const stack = requireStack(values);
      if (typeof values.service !== "string" || typeof values.image !== "string") {
        throw new UserError(`Name the service and the image: npm run release -- --stack ${stack} --service api --image ghcr.io/acme/api@sha256:<digest>`);
      }
      return (await releaseCommand()).release({
        root: PROJECT_ROOT,
        stack,
        service: values.service,
        image: values.image,
        tag: values.tag as string | undefined,
        diff: values["no-diff"] !== true,
        registry: { username: process.env.REGISTRY_USERNAME || undefined, password: process.env.REGISTRY_PASSWORD || undefined },
      });
    },
  },
  logs: {
    summary: "print (or follow) the logs of a stack's containers from its Docker host, one prefix per container, secrets masked",
    usage: "logs --stack <name> [--service api|worker|edge|postgres|redis|migrate|backup|frontend] [--follow] [--since 10m] [--tail <lines>]",
    options: { stack: deployOptions.stack, service: { type: "string" }, follow: { type: "boolean", short: "f" }, since: { type: "string" }, tail: { type: "string" } },
    async run(values) {
      const opts = {
        stack: requireStack(values),
        service: values.service as string | undefined,
        follow: values.follow === true,
        since: values.since as string | undefined,
        tail: intOption(values, "tail", undefined, 0, 1_000_000),
        signal: interruptSignal(),
      };
      return (await ops.logs()).logs((await ops.context()).defaultContext(PROJECT_ROOT), opts);
    },
  },
  exec: {
    summary: "run a one-off command in a new container made like a service's replica; exits with its code (production: --yes); --history lists past runs",
    usage: "exec --stack <name> --service <api|worker|...> [--replica <n>] [--yes] -- <command...> | --stack <name> --history",
    options: { stack: deployOptions.stack, service: { type: "string" }, replica: { type: "string" }, yes: deployOptions.yes, history: { type: "boolean" } },
    positionals: true,
    async run(values, command) {
      const stack = requireStack(values);
      const { exec, execHistory } = await ops.exec();
      const ctx = (await ops.context()).defaultContext(PROJECT_ROOT);
      if (values.history) {
        if (command.length) throw new UserError("--history lists the recorded runs; it takes no command.");
        return execHistory(ctx, { stack });
      }
      if (typeof values.service !== "string") throw new UserError(`Name the service: npm run exec -- --stack ${stack} --service api -- <command...>`);
      return exec(ctx, {
        stack,
        service: values.service,
        replica: intOption(values, "replica", undefined, 1, 50),
        command,
        yes: values.yes === true,
        signal: interruptSignal(),
      });
    },
  },
};

function usage(): string {
  const rows = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}\n             npm run ${c.usage.split(" ")[0]} -- ${c.usage.split(" ").slice(1).join(" ")}`);
  return `appstack ops commands:\n${rows.join("\n")}`;
}

export async function runCli(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h") {
    console.log(usage());
    return name ? EXIT.ok : EXIT.usage;
  }
  const command = COMMANDS[name];
  if (!command) throw new UserError(`Unknown command "${name}".\n${usage()}`);
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: rest,
      options: { ...command.options, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: command.positionals === true,
    }) as { values: Values; positionals: string[] });
  } catch (err) {
    throw new UserError(`${(err as Error).message}\nUsage: npm run ${command.usage.split(" ")[0]} -- ${command.usage.split(" ").slice(1).join(" ")}`);
  }
  if (values.help) {
    console.log(`npm run ${name} -- ${command.usage.split(" ").slice(1).join(" ")}\n${command.summary}`);
    return EXIT.ok;
  }
  return command.run(values, positionals);
}

/**
 * Resolves once everything written to `stream` so far has been handed to the
 * OS. A pipe takes 64 KiB; past that, Node queues the rest and writes it as
 * the reader makes room, so `process.exit` before this would cut the output
 * short for any reader slower than the writer (`| jq`, a CI step). Writes
 * complete in order, so the callback of an empty write comes after all of them.
 */
function flushed(stream: NodeJS.WritableStream & { destroyed?: boolean }): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) return resolve();
    stream.write("", () => resolve());
  });
}

/** Exits with `code` once stdout and stderr have been written out, whatever they are (file, TTY, pipe). */
async function exitWhenWritten(code: number): Promise<never> {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}

/**
 * A reader that went away (`npm run plan | head`) is not a failure of the
 * command: its output has nowhere to go, so it is dropped rather than thrown.
 */
function ignoreClosedReader(stream: NodeJS.WriteStream): void {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE") throw err;
  });
}

/** Runs a command to its exit code: a user error prints as its message alone; a bug shows its trace only with APPSTACK_DEBUG. */
export async function runCliOutcome(argv: string[]): Promise<number> {
  try {
    return await runCli(argv);
  } catch (err) {
    if (err instanceof UserError) {
      console.error(err.message);
      return err.exitCode;
    }
    console.error(`appstack: unexpected error: ${(err as Error)?.message ?? String(err)}`);
    if (process.env.APPSTACK_DEBUG) console.error((err as Error)?.stack);
    return EXIT.programError;
  }
}

/** The entry point of ops/run.js: the command's outcome, then the exit once its output is written. */
export function main(argv: string[]): void {
  ignoreClosedReader(process.stdout);
  ignoreClosedReader(process.stderr);
  void runCliOutcome(argv).then(exitWhenWritten);
}
