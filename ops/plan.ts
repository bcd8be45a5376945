import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as rpc from "@pulumi/pulumi/runtime/rpc";
import { EXIT, UserError } from "./errors";
import { evaluateProgram, inspectOutput, type Evaluation, type MockOutputs, type RecordedResource } from "./offline-runtime";
import { readProject, readStackConfig, resolveStackFile, type StackConfig } from "./stack-files";

/** How a secret prints in every plan, diff and log. */
export const SECRET = "[secret]";
/** How a value prints that only a real deploy knows. */
export const UNKNOWN = "[unknown]";

export interface PlanResource {
  urn: string;
  type: string;
  name: string;
  parent: string;
  inputs: Record<string, unknown>;
  /** Paths (`envs[2]`, `healthcheck.tests`) whose values are secrets. */
  secretPaths: string[];
  options: {
    protect: boolean;
    retainOnDelete: boolean;
    deleteBeforeReplace: boolean;
    dependsOn: string[];
  };
}

export interface Plan {
  project: string;
  stack: string;
  resources: PlanResource[];
  outputs: Record<string, unknown>;
  /** Output paths whose values are secrets. */
  outputSecretPaths: string[];
}

/** Renders Pulumi's wire encoding for people: secrets and unknowns masked, secret paths listed. */
export function maskValue(value: unknown, at: string, secretPaths: string[]): unknown {
  if (value === rpc.unknownValue) return UNKNOWN;
  if (Array.isArray(value)) return value.map((v, i) => maskValue(v, `${at}[${i}]`, secretPaths));
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    const sig = obj[rpc.specialSigKey];
    if (sig === rpc.specialSecretSig) {
      secretPaths.push(at);
      return SECRET;
    }
    if (sig === rpc.specialResourceSig) return obj.urn;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) out[k] = maskValue(v, at ? `${at}.${k}` : k, secretPaths);
    return out;
  }
  return value;
}

export function toPlanResource(r: RecordedResource): PlanResource {
  const secretPaths: string[] = [];
  const inputs = maskValue(r.inputs, "", secretPaths) as Record<string, unknown>;
  return {
    urn: r.urn,
    type: r.type,
    name: r.name,
    parent: r.parent,
    inputs,
    secretPaths,
    options: {
      protect: r.options.protect,
      retainOnDelete: r.options.retainOnDelete,
      deleteBeforeReplace: r.options.deleteBeforeReplace,
      dependsOn: r.options.dependsOn,
    },
  };
}

/** Stack outputs with the same masking; an Output's secrecy and knownness come from the SDK. */
async function renderOutputs(value: unknown, at: string, secretPaths: string[]): Promise<unknown> {
  if (pulumi.Output.isInstance(value)) {
    const { known, secret, value: inner } = await inspectOutput(value);
    if (secret) {
      secretPaths.push(at);
      return SECRET;
    }
    if (!known) return UNKNOWN;
    return renderOutputs(inner, at, secretPaths);
  }
  if (Array.isArray(value)) return Promise.all(value.map((v, i) => renderOutputs(v, `${at}[${i}]`, secretPaths)));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = await renderOutputs(v, at ? `${at}.${k}` : k, secretPaths);
    return out;
  }
  return value;
}

export interface PlanOptions {
  root: string;
  stack?: string;
  stackFile?: string;
  mockOutputs?: MockOutputs;
}

/** Loads the stack file and project for a command; shared by plan and validate. */
export function loadStack(opts: { root: string; stack?: string; stackFile?: string }): { project: string; sc: StackConfig } {
  const project = readProject(opts.root);
  const { stack, file } = resolveStackFile(opts.root, opts);
  return { project: project.name, sc: readStackConfig(file, stack, project.name) };
}

/** Evaluates the program for one stack, offline, and returns every resource it would register. */
export async function buildPlan(opts: PlanOptions): Promise<Plan> {
  const { project, sc } = loadStack(opts);
  let evaluation;
  try {
    evaluation = await evaluateProgram(project, sc, path.join(opts.root, "index.ts"), { mockOutputs: opts.mockOutputs });
  } catch (err) {
    throw programFailure(err, sc);
  }
  return planFromEvaluation(project, sc, evaluation);
}

/** The masked Plan of an evaluation: what `plan` prints. */
export async function planFromEvaluation(project: string, sc: StackConfig, evaluation: Evaluation): Promise<Plan> {
  const outputSecretPaths: string[] = [];
  const outputs = (await renderOutputs({ ...evaluation.exports }, "", outputSecretPaths)) as Record<string, unknown>;
  return {
    project,
    stack: sc.stack,
    resources: evaluation.resources.map(toPlanResource),
    outputs,
    outputSecretPaths,
  };
}

/** Config errors and RunErrors are the user's to read; anything else is a program bug. */
export function programFailure(err: unknown, sc: StackConfig): UserError {
  const e = err as { name?: string; message?: string; problems?: unknown };
  if (e?.name === "ConfigError") return new UserError(String(e.message), EXIT.invalidConfig);
  if (pulumi.RunError.isInstance(err as Error)) return new UserError(`Stack "${sc.stack}": ${e.message}`, EXIT.programError);
  return new UserError(
    `The program failed while evaluating stack "${sc.stack}": ${e?.message ?? String(err)}\n` +
      "This is a bug in appstack, not in your configuration; set APPSTACK_DEBUG=1 for the stack trace.",
    EXIT.programError,
  );
}

export function renderPlanJson(plan: Plan): string {
  return JSON.stringify(plan, null, 2);
}

function shortUrnName(urn: string): string {
  return urn ? urn.slice(urn.lastIndexOf("::") + 2) : "";
}

export function renderPlanMarkdown(plan: Plan): string {
  const lines: string[] = [];
  lines.push(`# Plan: ${plan.project} / ${plan.stack}`, "");
  lines.push(`${plan.resources.length} resources. Secrets print as \`${SECRET}\`; values a deploy computes as \`${UNKNOWN}\`.`, "");
  lines.push("| # | resource | type | parent | protect | depends on |", "| --- | --- | --- | --- | --- | --- |");
  plan.resources.forEach((r, i) => {
    const deps = r.options.dependsOn.map(shortUrnName).join(", ");
    const protect = r.options.protect ? (r.options.retainOnDelete ? "yes, retained" : "yes") : "";
    lines.push(`| ${i + 1} | \`${r.name}\` | \`${r.type}\` | ${shortUrnName(r.parent)} | ${protect} | ${deps} |`);
  });
  lines.push("", "## Inputs", "");
  for (const r of plan.resources) {
    if (Object.keys(r.inputs).length === 0) continue;
    lines.push(`<details><summary><code>${r.name}</code> (${r.type})</summary>`, "", "```json", JSON.stringify(r.inputs, null, 2), "```", "</details>", "");
  }
  lines.push("## Outputs", "", "```json", JSON.stringify(plan.outputs, null, 2), "```");
  return lines.join("\n");
}
