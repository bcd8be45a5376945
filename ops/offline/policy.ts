import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { loadPolicyConfig, policyConfigFile, PolicyConfigError, stacksWithPolicyConfig, type RuleSettings } from "../../policy/config";
import { PACK_NAME } from "../../policy/crossguard";
import { evaluateRules, type Evaluation, type LeveledViolation } from "../../policy/evaluate";
import { RULES } from "../../policy/rules";
import { viewFromWire } from "../../policy/view";
import { EXIT, UserError } from "../shared/errors";
import { evaluateProgram, type ProgramLoader } from "./offline-runtime";
import { loadStack, programFailure } from "./plan";
import { listStacks } from "./stack-files";

/**
 * The policy pack without the Pulumi CLI: evaluates the program for one stack
 * file offline and runs the pack's rules over every resource it registers,
 * with the same policy config file `pulumi preview --policy-pack-config` takes.
 *
 * It reads the register requests the way `buildPlan` records them, before the
 * plan masks them: a plan prints a secret env entry as "[secret]" whole, which
 * hides its name (REDIS_URL=...), and the rules need names and secrecy both.
 * No value is ever printed; messages name env vars and paths only.
 */

export interface PolicyRunOptions {
  root: string;
  stack?: string;
  stackFile?: string;
  /** A policy config file; default `policy/config.<stack>.json`. */
  policyConfig?: string;
  /** How to load the program; `require` by default (see `evaluateProgram`). */
  load?: ProgramLoader;
}

export interface PolicyReport extends Evaluation {
  pack: string;
  stack: string;
  stackFile: string;
  policyConfig: string;
  resources: number;
}

export const policyDir = (root: string) => path.join(root, "policy");

function configFor(root: string, stack: string, given?: string): { file: string; shown: string } {
  if (given) {
    const file = path.resolve(given);
    if (!fs.existsSync(file)) throw new UserError(`Policy config not found: ${given}`);
    return { file, shown: given };
  }
  const file = policyConfigFile(policyDir(root), stack);
  const shown = path.relative(root, file);
  if (!fs.existsSync(file)) {
    const known = stacksWithPolicyConfig(policyDir(root));
    throw new UserError(
      `No policy config for stack "${stack}": ${shown} does not exist.\n` +
        `Stacks with a policy config: ${known.length ? known.join(", ") : "(none)"}.\n` +
        `Check this stack file against one of them with --stack <name> --stack-file <file>, pass --policy-config <file>, ` +
        `or create ${shown} (e.g. { "all": "mandatory" }).`,
    );
  }
  return { file, shown };
}

function readSettings(file: string, shown: string): Map<string, RuleSettings> {
  try {
    return loadPolicyConfig(file, RULES, shown);
  } catch (err) {
    if (err instanceof PolicyConfigError) throw new UserError(err.message, EXIT.invalidConfig);
    throw err;
  }
}

/**
 * The Automation API options (PreviewOptions / UpOptions) that run the pack in
 * a real preview or update of `stack`, with the same config file the offline
 * run uses: `stack.preview({ ...policyPackOptions(root, name) })`.
 */
export function policyPackOptions(root: string, stack: string): { policyPacks: string[]; policyPackConfigs: string[] } {
  const { file } = configFor(root, stack);
  return { policyPacks: [policyDir(root)], policyPackConfigs: [file] };
}

/** Runs the pack over one stack, offline. */
export async function runPolicy(opts: PolicyRunOptions): Promise<PolicyReport> {
  const { project, sc } = loadStack(opts);
  const { file, shown } = configFor(opts.root, sc.stack, opts.policyConfig);
  // The policy config is checked before the program runs: a typo fails in a second, not after an evaluation.
  const settings = readSettings(file, shown);
  let evaluation;
  try {
    evaluation = await evaluateProgram(project, sc, path.join(opts.root, "index.ts"), { load: opts.load });
  } catch (err) {
    throw programFailure(err, sc);
  }
  const views = evaluation.resources.map(viewFromWire);
  return {
    pack: PACK_NAME,
    stack: sc.stack,
    stackFile: path.relative(opts.root, sc.file) || sc.file,
    policyConfig: shown,
    resources: views.length,
    ...evaluateRules(views, RULES, settings),
  };
}

export const mandatoryCount = (r: Pick<PolicyReport, "violations">) => r.violations.filter((v) => v.level === "mandatory").length;

/** The exit code a report stands for: a mandatory violation fails, advisories do not. */
export const exitCodeOf = (r: Pick<PolicyReport, "violations">) => (mandatoryCount(r) > 0 ? EXIT.policy : EXIT.ok);

function where(v: LeveledViolation): string {
  return v.resourceName ? `${v.resourceName} (${v.resourceType})` : "the stack";
}

export function renderPolicyText(r: PolicyReport): string {
  const lines = [
    `Policy pack ${r.pack} on stack "${r.stack}" (${r.stackFile}), config ${r.policyConfig}: ` +
      `${r.ran.length} rules over ${r.resources} resources${r.disabled.length ? `; disabled: ${r.disabled.join(", ")}` : ""}.`,
  ];
  if (r.violations.length === 0) {
    lines.push("No violations.");
    return lines.join("\n");
  }
  lines.push("");
  for (const v of r.violations) {
    lines.push(`${v.level.toUpperCase().padEnd(9)} ${v.rule}  ${where(v)}`);
    lines.push(`          ${v.message}`);
  }
  const mandatory = mandatoryCount(r);
  const advisory = r.violations.length - mandatory;
  const rules = [...new Set(r.violations.filter((v) => v.level === "mandatory").map((v) => v.rule))];
  lines.push(
    "",
    `${mandatory} mandatory, ${advisory} advisory violation${r.violations.length === 1 ? "" : "s"}.` +
      (mandatory ? ` Not ready to deploy: ${rules.join(", ")}.` : " Advisory only: the deploy may proceed."),
  );
  return lines.join("\n");
}

export function renderPolicyJson(r: PolicyReport): string {
  return JSON.stringify({ ...r, mandatory: mandatoryCount(r) }, null, 2);
}

/**
 * Every stack file in the repository, one process each (the mock runtime is
 * process-global), plus the check that policy configs and stack files match
 * one to one. For CI: exits non-zero if any stack is not ready.
 */
export function runPolicyAllStacks(root: string, runJs: string): number {
  const stacks = listStacks(root);
  const configs = stacksWithPolicyConfig(policyDir(root));
  const orphans = configs.filter((c) => !stacks.includes(c));
  const missing = stacks.filter((s) => !configs.includes(s));
  if (orphans.length || missing.length) {
    throw new UserError(
      [
        ...orphans.map((c) => `policy/config.${c}.json names stack "${c}", but there is no Pulumi.${c}.yaml (rename it to the stack it is for, or remove it).`),
        ...missing.map((s) => `Stack "${s}" has no policy config: create policy/config.${s}.json (e.g. { "all": "mandatory" }).`),
      ].join("\n"),
      EXIT.invalidConfig,
    );
  }
  let worst: number = EXIT.ok;
  for (const stack of stacks) {
    const child = spawnSync(process.execPath, [runJs, "policy", "--stack", stack], { cwd: root, stdio: "inherit" });
    const code = child.status ?? EXIT.programError;
    // A broken stack (config or program error) outranks a policy failure: it is what to fix first.
    if (code !== EXIT.ok && (worst === EXIT.ok || worst === EXIT.policy)) worst = code;
  }
  return worst;
}
