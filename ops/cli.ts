import * as path from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { EXIT, UserError } from "./errors";
import { buildPlan, renderPlanJson, renderPlanMarkdown } from "./plan";
import { exitCodeOf, renderPolicyJson, renderPolicyText, runPolicy, runPolicyAllStacks } from "./policy";
import { validateStack } from "./validate";

// The operations commands load on use (require, which the loader in run.js resolves
// to the .ts files), so plan and validate start no slower for them.
/* eslint-disable @typescript-eslint/no-require-imports */
const ops = {
  context: async () => require("./context") as typeof import("./context"),
  deploy: async () => require("./deploy") as typeof import("./deploy"),
  rollback: async () => require("./rollback") as typeof import("./rollback"),
  status: async () => require("./status") as typeof import("./status"),
  drift: async () => require("./drift") as typeof import("./drift"),
  restore: async () => require("./restore") as typeof import("./restore"),
};
/* eslint-enable @typescript-eslint/no-require-imports */

/** The checkout this CLI belongs to: Pulumi.yaml and index.ts sit one level up. */
export const PROJECT_ROOT = path.resolve(__dirname, "..");

type Values = Record<string, string | boolean | undefined>;

interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig["options"]>;
  run(values: Values): Promise<number>;
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

async function runDeploy(values: Values, dev: boolean): Promise<number> {
  const stack = dev ? "dev" : requireStack(values);
  const lockTimeoutSeconds = intOption(values, "lock-timeout", 300, 0, 86_400)!;
  const smokeSeconds = intOption(values, "smoke-timeout", 60, 0, 3600)!;
  const [{ defaultContext }, { DEFAULT_SMOKE, deploy }] = await Promise.all([ops.context(), ops.deploy()]);
  return deploy(defaultContext(PROJECT_ROOT), {
    stack,
    init: dev || values.init === true,
    localBackend: dev,
    yes: dev || values.yes === true,
    rollbackOnFailure: values["rollback-on-failure"] === true,
    lockTimeoutSeconds,
    smoke: { ...DEFAULT_SMOKE, budgetMs: smokeSeconds * 1000 },
    validate: () => validateStack({ root: PROJECT_ROOT, stack }),
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
      console.log(await validateStack({ root: PROJECT_ROOT, stack: values.stack as string, stackFile: values["stack-file"] as string }));
      return EXIT.ok;
    },
  },
  plan: {
    summary: "evaluate the program offline and print every resource (secrets masked)",
    usage: "plan --stack <name> [--stack-file <path>] [--format json|markdown]",
    options: { ...stackOptions, format: { type: "string" } },
    async run(values) {
      const format = formatOption(values, ["json", "markdown"]);
      const plan = await buildPlan({ root: PROJECT_ROOT, stack: values.stack as string, stackFile: values["stack-file"] as string });
      console.log(format === "json" ? renderPlanJson(plan) : renderPlanMarkdown(plan));
      return EXIT.ok;
    },
  },
  policy: {
    summary: "run the appstack-readiness policy pack over a stack offline (exit 5 on a mandatory violation)",
    usage: "policy --stack <name> [--stack-file <path>] [--policy-config <file>] [--format text|json] | --all",
    options: { ...stackOptions, "policy-config": { type: "string" }, format: { type: "string" }, all: { type: "boolean" } },
    async run(values) {
      const format = formatOption(values, ["text", "json"]);
      if (values.all) {
        if (values.stack || values["stack-file"] || values["policy-config"] || format !== "text") {
          throw new UserError("--all checks every stack file with its own policy config and prints text; it takes no --stack, --stack-file, --policy-config or --format json.");
        }
        return runPolicyAllStacks(PROJECT_ROOT, path.join(__dirname, "run.js"));
      }
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
        lockTimeoutSeconds: intOption(values, "lock-timeout", 300, 0, 86_400)!,
      };
      return (await ops.rollback()).rollback((await ops.context()).defaultContext(PROJECT_ROOT), opts);
    },
  },
  status: {
    summary: "probe every service's health URL and print one row per service",
    usage: "status --stack <name> [--timeout <ms>]",
    options: { stack: deployOptions.stack, timeout: { type: "string" } },
    async run(values) {
      const opts = { stack: requireStack(values), timeoutMs: intOption(values, "timeout", 5000, 1, 600_000)! };
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
    summary: "restore a pre-deploy Postgres backup (shows what it overwrites; needs --yes)",
    usage: "restore --stack <name> [--backup <name>] [--yes]",
    options: { stack: deployOptions.stack, backup: { type: "string" }, yes: deployOptions.yes },
    async run(values) {
      const opts = { stack: requireStack(values), backup: values.backup as string | undefined, yes: values.yes === true };
      const { localDocker, restore } = await ops.restore();
      return restore((await ops.context()).defaultContext(PROJECT_ROOT), localDocker, opts);
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
  try {
    ({ values } = parseArgs({ args: rest, options: { ...command.options, help: { type: "boolean", short: "h" } }, strict: true, allowPositionals: false }) as { values: Values });
  } catch (err) {
    throw new UserError(`${(err as Error).message}\nUsage: npm run ${command.usage.split(" ")[0]} -- ${command.usage.split(" ").slice(1).join(" ")}`);
  }
  if (values.help) {
    console.log(`npm run ${name} -- ${command.usage.split(" ").slice(1).join(" ")}\n${command.summary}`);
    return EXIT.ok;
  }
  return command.run(values);
}

/** Prints a user error as its message alone and exits with its code; a bug shows its trace only with APPSTACK_DEBUG. */
export function main(argv: string[]): void {
  runCli(argv).then(
    (code) => process.exit(code),
    (err: unknown) => {
      if (err instanceof UserError) {
        console.error(err.message);
        process.exit(err.exitCode);
      }
      console.error(`appstack: unexpected error: ${(err as Error)?.message ?? String(err)}`);
      if (process.env.APPSTACK_DEBUG) console.error((err as Error)?.stack);
      process.exit(EXIT.programError);
    },
  );
}
