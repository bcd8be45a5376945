import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import * as os from "node:os";
import { validateAction, validateWorkflow, type ValidationError } from "@action-validator/core";
import { data, Evaluator, Lexer, Parser } from "@actions/expressions";
import { parse } from "yaml";
import { ROOT } from "./cli";

/**
 * GitHub Actions workflows as data, for tests: every file in
 * .github/workflows, checked against the published workflow schema (the one
 * @action-validator/core ships, so no network), and parsed for assertions on
 * jobs, steps and permissions. Any workflow added later is covered by the
 * generic tests in test/workflows.test.ts without touching them.
 */

export const WORKFLOWS_DIR = path.join(ROOT, ".github", "workflows");
export const ACTIONS_DIR = path.join(ROOT, ".github", "actions");

export interface Step {
  name?: string;
  shell?: string;
  id?: string;
  if?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
  "continue-on-error"?: boolean | string;
}

export type Permissions = "read-all" | "write-all" | Record<string, "read" | "write" | "none">;

export interface Job {
  name?: string;
  if?: string;
  env?: Record<string, string>;
  needs?: string | string[];
  "runs-on"?: string;
  uses?: string;
  environment?: string | { name: string; url?: string };
  permissions?: Permissions;
  strategy?: { matrix?: Record<string, unknown> };
  steps?: Step[];
}

/** A local composite action (`.github/actions/<name>/action.yml`). */
export interface CompositeAction {
  file: string;
  inputs?: Record<string, unknown>;
  runs: { using: string; steps: Step[] };
}

export interface Workflow {
  file: string;
  name?: string;
  /** `on:` as written: a string, a list, or a map of events. */
  on: unknown;
  permissions?: Permissions;
  env?: Record<string, string>;
  jobs: Record<string, Job>;
}

/** Every workflow file, by name (`ci.yml`). */
export function workflowFiles(): string[] {
  if (!fs.existsSync(WORKFLOWS_DIR)) return [];
  return fs
    .readdirSync(WORKFLOWS_DIR)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort();
}

/** Every local composite action (`.github/actions/<name>/action.yml`). */
export function actionFiles(): string[] {
  if (!fs.existsSync(ACTIONS_DIR)) return [];
  return fs
    .readdirSync(ACTIONS_DIR)
    .flatMap((d) => ["action.yml", "action.yaml"].map((f) => path.join(d, f)))
    .filter((f) => fs.existsSync(path.join(ACTIONS_DIR, f)))
    .sort();
}

/** The validator's nested errors as one readable line each: "/jobs/x: Additional property 'runs_on' is not allowed". */
function flatten(errors: ValidationError[], out: string[] = []): string[] {
  for (const e of errors) {
    const nested = "states" in e ? e.states : undefined;
    if (nested?.length) {
      // oneOf: report the alternative that came closest (fewest errors).
      const best = [...nested].sort((a, b) => a.errors.length - b.errors.length)[0];
      flatten(best.errors, out);
    } else {
      const where = "path" in e && e.path ? e.path : "location" in e && e.location ? `line ${e.location.line}` : "/";
      out.push(`${where}: ${e.detail ?? e.title}`);
    }
  }
  return out;
}

/** Schema problems of a workflow file's text; empty when it is valid. */
export function workflowSchemaErrors(text: string): string[] {
  return flatten(validateWorkflow(text).errors);
}

/** Schema problems of a composite action's action.yml. */
export function actionSchemaErrors(text: string): string[] {
  return flatten(validateAction(text).errors);
}

export function readWorkflow(file: string): string {
  return fs.readFileSync(path.join(WORKFLOWS_DIR, file), "utf8");
}

export function loadWorkflow(file: string): Workflow {
  return { file, ...(parse(readWorkflow(file)) as Omit<Workflow, "file">) };
}

/** The events a workflow runs on. */
export function events(wf: Workflow): string[] {
  if (typeof wf.on === "string") return [wf.on];
  if (Array.isArray(wf.on)) return wf.on as string[];
  return Object.keys((wf.on ?? {}) as object);
}

/** A job's permissions as GitHub applies them: its own block, else the workflow's; `{}` when neither says. */
export function effectivePermissions(wf: Workflow, job: Job): Record<string, string> {
  const p = job.permissions ?? wf.permissions;
  if (p === undefined) return {};
  if (p === "read-all" || p === "write-all") return { "*": p === "read-all" ? "read" : "write" };
  return p;
}

/** Steps of a job that use an action (`owner/repo`, any version). */
export function stepsUsing(job: Job, action: string): Step[] {
  return (job.steps ?? []).filter((s) => s.uses?.split("@")[0] === action);
}

/** One `uses:` line as written: the action, the ref, and the comment after it. */
export interface Pin {
  action: string;
  ref: string;
  /** The comment on the line, e.g. `v6.0.2` for `# v6.0.2`; "" when none. */
  comment: string;
  line: string;
}

/** Every remote action reference in a workflow or action file's text, comments included (YAML parsing drops them). */
export function pinsIn(text: string): Pin[] {
  return text
    .split("\n")
    .map((line) => /^\s*(?:-\s+)?uses:\s*([^\s@#]+)@(\S+)\s*(?:#\s*(.*))?$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null && !m[1].startsWith("./") && !m[1].startsWith("docker://"))
    .map((m) => ({ action: m[1], ref: m[2], comment: (m[3] ?? "").trim(), line: m[0].trim() }));
}

/** The text of every workflow and composite action file, by path relative to the repository. */
export function actionAndWorkflowTexts(): { file: string; text: string }[] {
  return [
    ...workflowFiles().map((f) => ({ file: `.github/workflows/${f}`, text: readWorkflow(f) })),
    ...actionFiles().map((f) => ({ file: `.github/actions/${f}`, text: fs.readFileSync(path.join(ACTIONS_DIR, f), "utf8") })),
  ];
}

/** `owner/repo@ref` -> ref. */
export function actionRef(step: Step): string {
  return step.uses?.split("@")[1] ?? "";
}

/**
 * Whether a job posts to a pull request: a sticky-comment step, a
 * github-script step, or pulumi/actions with `comment-on-pr`.
 */
export function commentsOnPullRequest(job: Job): boolean {
  return (job.steps ?? []).some(
    (s) =>
      s.uses?.startsWith("marocchino/sticky-pull-request-comment@") ||
      s.uses?.startsWith("actions/github-script@") ||
      s.uses?.startsWith("peter-evans/create-or-update-comment@") ||
      (s.uses?.startsWith("pulumi/actions@") && String(s.with?.["comment-on-pr"]) === "true"),
  );
}

/** The values of a matrix dimension, e.g. the stacks a job runs for. */
export function matrixValues(job: Job, key: string): unknown[] {
  const v = job.strategy?.matrix?.[key];
  return Array.isArray(v) ? v : [];
}

export function loadAction(file: string): CompositeAction {
  return { file, ...(parse(fs.readFileSync(path.join(ACTIONS_DIR, file), "utf8")) as Omit<CompositeAction, "file">) };
}

/** Every job of every workflow, with where it came from. */
export function allJobs(): { wf: Workflow; id: string; job: Job }[] {
  return workflowFiles().flatMap((f) => {
    const wf = loadWorkflow(f);
    return Object.entries(wf.jobs ?? {}).map(([id, job]) => ({ wf, id, job }));
  });
}

/** Names of the secrets a string reads (`${{ secrets.NAME }}`, also inside larger expressions). */
export function secretNames(text: unknown): string[] {
  if (typeof text !== "string") return [];
  return [...text.matchAll(/secrets\.([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]);
}

/** Whether a value hands a secret's text to the step: `${{ secrets.X }}`, not a test such as `${{ secrets.X != '' }}`. */
export function passesSecretValue(text: unknown): boolean {
  return typeof text === "string" && /\$\{\{\s*secrets\.[A-Za-z_][A-Za-z0-9_]*\s*\}\}/.test(text);
}

/** The secrets whose values a step receives, through `env:` or `with:`. */
export function secretsPassedTo(step: Step): string[] {
  const values = [...Object.values(step.env ?? {}), ...Object.values(step.with ?? {})];
  return values.filter(passesSecretValue).flatMap(secretNames);
}

/**
 * The GitHub environments a job can run in, with `${{ matrix.* }}` and
 * `${{ inputs.* }}` resolved from the matrix and the workflow_dispatch choices.
 */
export function environmentsOf(wf: Workflow, job: Job): string[] {
  const raw = typeof job.environment === "string" ? job.environment : job.environment?.name;
  if (!raw) return [];
  const matrix = job.strategy?.matrix ?? {};
  const rows: Record<string, unknown>[] = Array.isArray(matrix.include)
    ? (matrix.include as Record<string, unknown>[])
    : Object.entries(matrix)
        .filter(([, v]) => Array.isArray(v))
        .flatMap(([k, v]) => (v as unknown[]).map((x) => ({ [k]: x })));
  const inputs = ((wf.on as { workflow_dispatch?: { inputs?: Record<string, { options?: string[] }> } })?.workflow_dispatch?.inputs ?? {}) as Record<
    string,
    { options?: string[] }
  >;
  const out = new Set<string>();
  for (const row of rows.length ? rows : [{}]) {
    let names = [raw.replace(/\$\{\{\s*matrix\.(\w+)\s*\}\}/g, (_, k: string) => String(row[k]))];
    names = names.flatMap((n) => {
      const m = /\$\{\{\s*inputs\.([\w-]+)\s*\}\}/.exec(n);
      return m ? (inputs[m[1]]?.options ?? []).map((o) => n.replace(m[0], o)) : [n];
    });
    names.forEach((n) => out.add(n));
  }
  return [...out].sort();
}

/** Runner status functions, for `if:` conditions that use them: a run in which nothing failed. */
const STATUS_FUNCTIONS = new Map(
  (["success", "always", "failure", "cancelled"] as const).map((name) => [
    name,
    { name, minArgs: 0, maxArgs: 0, call: () => new data.BooleanData(name === "success" || name === "always") },
  ]),
);

/**
 * Evaluates an `if:` condition with GitHub's own expression engine
 * (@actions/expressions), against the contexts given as plain JSON:
 * `{ github: { event_name: "push", ref: "refs/tags/v1.2.3" }, inputs: {...} }`.
 */
export function evaluateCondition(condition: string | undefined, contexts: Record<string, unknown>): boolean {
  if (condition === undefined) return true;
  const text = condition.trim().replace(/^\$\{\{([\s\S]*)\}\}$/, "$1");
  const lexed = new Lexer(text).lex();
  const expr = new Parser(lexed.tokens, Object.keys(contexts), [...STATUS_FUNCTIONS.values()]).parse();
  const ctx = JSON.parse(JSON.stringify(contexts), data.reviver) as data.Dictionary;
  const result = new Evaluator(expr, ctx, STATUS_FUNCTIONS).evaluate();
  return result.kind === data.Kind.Boolean ? (result as data.BooleanData).value : result.coerceString() !== "" && result.coerceString() !== "false";
}

export interface StepRun {
  code: number | null;
  stdout: string;
  /** Lines written to $GITHUB_OUTPUT, as a map. */
  outputs: Record<string, string>;
  summary: string;
  /** What the script wrote to comment.md in its working directory. */
  comment: string;
  /** The arguments the stand-in `npm` was called with, if any. */
  npmArgs: string;
}

/**
 * Runs a step's `run:` script with bash, as the runner does (`bash -e -o
 * pipefail`), in `cwd` (a fresh directory by default) with
 * GITHUB_OUTPUT/GITHUB_STEP_SUMMARY files, and optionally an `npm` on PATH
 * that prints what the test says and exits with the test's code.
 */
export function runStep(
  s: Step,
  env: Record<string, string>,
  opts: { npm?: { stdout?: string; stderr?: string; code: number }; cwd?: string } = {},
): StepRun {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-step-"));
  try {
    const bin = path.join(dir, "bin");
    fs.mkdirSync(bin);
    const { npm } = opts;
    if (npm) {
      fs.writeFileSync(path.join(dir, "npm.out"), npm.stdout ?? "");
      fs.writeFileSync(path.join(dir, "npm.err"), npm.stderr ?? "");
      fs.writeFileSync(
        path.join(bin, "npm"),
        `#!/bin/sh\nprintf '%s\\n' "$*" > "${dir}/npm.args"\ncat "${dir}/npm.out"\ncat "${dir}/npm.err" >&2\nexit ${npm.code}\n`,
        { mode: 0o755 },
      );
    }
    const [output, summary] = [path.join(dir, "output"), path.join(dir, "summary")];
    fs.writeFileSync(output, "");
    fs.writeFileSync(summary, "");
    const cwd = opts.cwd ?? dir;
    const r = spawnSync("bash", ["--noprofile", "--norc", "-e", "-o", "pipefail", "-c", s.run ?? ""], {
      cwd,
      encoding: "utf8",
      env: { PATH: `${bin}:${process.env.PATH}`, HOME: dir, GITHUB_OUTPUT: output, GITHUB_STEP_SUMMARY: summary, ...env },
    });
    const read = (d: string, f: string) => (fs.existsSync(path.join(d, f)) ? fs.readFileSync(path.join(d, f), "utf8") : "");
    return {
      code: r.status,
      stdout: r.stdout,
      outputs: Object.fromEntries(read(dir, "output").split("\n").filter(Boolean).map((l) => l.split("=", 2) as [string, string])),
      summary: read(dir, "summary"),
      comment: read(cwd, "comment.md"),
      npmArgs: read(dir, "npm.args").trim(),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
