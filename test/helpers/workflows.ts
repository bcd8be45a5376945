import * as fs from "node:fs";
import * as path from "node:path";
import { validateAction, validateWorkflow, type ValidationError } from "@action-validator/core";
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
  needs?: string | string[];
  "runs-on"?: string;
  uses?: string;
  environment?: string | { name: string; url?: string };
  permissions?: Permissions;
  strategy?: { matrix?: Record<string, unknown> };
  steps?: Step[];
}

export interface Workflow {
  file: string;
  name?: string;
  /** `on:` as written: a string, a list, or a map of events. */
  on: unknown;
  permissions?: Permissions;
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
