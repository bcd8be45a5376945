import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { DiffSides } from "./diff-render";
import { EXIT, UserError } from "../shared/errors";
import { loadOnUse } from "../shared/load-on-use";
import { repositoryRoot, resolveBaseRef, withWorktree } from "../shared/git";
import type { Plan } from "../offline/plan";
import { newDigestKey } from "../offline/secret-digest";
import { listStacks } from "../offline/stack-files";

export interface DiffOptions {
  /** The project root of this checkout (Pulumi.yaml, ops/run.js). */
  root: string;
  stack: string;
  /** A git ref: branch, tag, commit. */
  base: string;
  format: "markdown" | "json";
  allowDestructive: boolean;
  /** How each side is planned; `planProcess` by default. */
  planSide?: SidePlanner;
}

/** What planning one side gave: `npm run plan -- --format json`'s exit code, stdout and stderr. */
export interface PlanRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Plans `stack` in the checkout at `projectRoot`, with `env` (the digest key) added to the environment. */
export type SidePlanner = (projectRoot: string, stack: string, env: Record<string, string>) => { result: Promise<PlanRun>; kill(): void };

/** One offline plan in its own process (the mock runtime is per process), JSON on stdout. */
export const planProcess: SidePlanner = (projectRoot, stack, env) => {
  let kill = () => {};
  const result = new Promise<PlanRun>((resolve, reject) => {
    const child = spawn(process.execPath, [path.join("ops", "run.js"), "plan", "--stack", stack, "--format", "json"], {
      cwd: projectRoot,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", reject);
    child.on("close", (code, signal) =>
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8").trim() }),
    );
    kill = () => child.kill();
  });
  return { result, kill: () => kill() };
};

function hasStackFile(projectRoot: string, stack: string): boolean {
  return ["yaml", "yml"].some((ext) => fs.existsSync(path.join(projectRoot, `Pulumi.${stack}.${ext}`)));
}

function parsePlan(result: PlanRun, where: string, failureCode: number): Plan {
  try {
    const plan = JSON.parse(result.stdout) as Plan;
    if (!Array.isArray(plan?.resources)) throw new Error("no resources list");
    return plan;
  } catch (err) {
    throw new UserError(`The offline plan ${where} did not print a plan (${(err as Error).message}).`, failureCode);
  }
}

/** Both sides must have the stack file; a stack on one side only is its own error. */
function requireBothSides(opts: DiffOptions, baseRoot: string, inHead: boolean, at: string): void {
  const inBase = hasStackFile(baseRoot, opts.stack);
  if (!inBase && !inHead) {
    const known = listStacks(opts.root);
    throw new UserError(`Unknown stack "${opts.stack}": there is no Pulumi.${opts.stack}.yaml ${at} nor in the working tree.\nStacks in this project: ${known.join(", ") || "(none)"}.`);
  }
  if (!inBase || !inHead) {
    const where = inHead
      ? `is new: Pulumi.${opts.stack}.yaml is in the working tree but not ${at}`
      : `was removed: Pulumi.${opts.stack}.yaml is ${at} but not in the working tree`;
    throw new UserError(
      `Stack "${opts.stack}" ${where}, so there is nothing to compare it with.\n` +
        (inHead ? `To see everything it declares: npm run plan -- --stack ${opts.stack}` : "Removing a stack file does not destroy the stack: pulumi destroy does."),
      EXIT.stackOnOneSide,
    );
  }
  if (!fs.existsSync(path.join(baseRoot, "ops", "run.js"))) {
    throw new UserError(`The checkout ${at} has no offline plan (ops/run.js); compare against a newer base ref.`, EXIT.baseDoesNotEvaluate);
  }
}

/** The two plans, or the failing side's own message with the exit code that says which side failed. */
function plansOf(stack: string, at: string, baseRun: PlanRun, headRun: PlanRun): { base: Plan; head: Plan } {
  if (baseRun.code !== 0) {
    throw new UserError(
      `Stack "${stack}" does not evaluate ${at}, so there is no base to compare with:\n${baseRun.stderr || `(plan exited with ${baseRun.code})`}`,
      EXIT.baseDoesNotEvaluate,
    );
  }
  if (headRun.code !== 0) {
    const code = headRun.code === EXIT.invalidConfig ? EXIT.invalidConfig : EXIT.programError;
    throw new UserError(`Stack "${stack}" does not evaluate in the working tree:\n${headRun.stderr || `(plan exited with ${headRun.code})`}`, code);
  }
  return { base: parsePlan(baseRun, at, EXIT.baseDoesNotEvaluate), head: parsePlan(headRun, "in the working tree", EXIT.programError) };
}

/**
 * Plans the stack at the base ref (a temporary worktree) and in the working
 * tree, in parallel, and returns the rendered diff with the exit code the CLI
 * should end with.
 */
export async function runDiff(opts: DiffOptions): Promise<{ output: string; exitCode: number }> {
  if (!/^[A-Za-z0-9_.-]+$/.test(opts.stack)) throw new UserError(`"${opts.stack}" is not a valid stack name.`);
  const repoRoot = repositoryRoot(opts.root);
  const commit = resolveBaseRef(repoRoot, opts.base);
  const sides: DiffSides = { baseRef: opts.base, baseCommit: commit, head: "the working tree" };
  const at = `at ${opts.base} (${commit.slice(0, 12)})`;

  const { env } = newDigestKey();
  const inHead = hasStackFile(opts.root, opts.stack);
  // The working tree's plan starts now, while the base ref is being checked out.
  const planSide = opts.planSide ?? planProcess;
  const head = inHead ? planSide(opts.root, opts.stack, env) : undefined;
  try {
    return await withWorktree({ repoRoot, projectRoot: opts.root, commit }, async (wt) => {
      requireBothSides(opts, wt.projectRoot, inHead, at);
      const base = planSide(wt.projectRoot, opts.stack, env);
      // Loaded while the plans run, not at the top: the plans start as early as possible.
      const [{ compareStacks, destructiveChanges, relocate }, { renderDiffJson, renderDiffMarkdown }] = await Promise.all([
        loadOnUse<typeof import("./diff")>(path.join(__dirname, "diff")),
        loadOnUse<typeof import("./diff-render")>(path.join(__dirname, "diff-render")),
      ]);
      const [baseRun, headRun] = await Promise.all([base.result, head!.result]);
      const plans = plansOf(opts.stack, at, baseRun, headRun);
      const roots = (root: string) => [root, fs.realpathSync(root)];
      const diff = compareStacks(relocate(plans.base, roots(wt.projectRoot)), relocate(plans.head, roots(opts.root)));
      const output = opts.format === "json" ? renderDiffJson(diff, sides) : renderDiffMarkdown(diff, sides);
      const blocked = destructiveChanges(diff).length > 0 && !opts.allowDestructive;
      return { output, exitCode: blocked ? EXIT.destructive : EXIT.ok };
    });
  } finally {
    head?.kill();
  }
}
