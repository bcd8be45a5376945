import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as rpc from "@pulumi/pulumi/runtime/rpc";
import { EXIT, UserError } from "../shared/errors";
import { SECRET, UNKNOWN } from "../shared/masks";
import { evaluateProgram, inspectOutput, type CustomTimeouts, type Evaluation, type MockOutputs, type RecordedResource } from "./offline-runtime";
import { digest, takeDigestKey, type DigestKey } from "./secret-digest";
import { readProject, readStackConfig, resolveStackFile, SECURE_PLACEHOLDER, type StackConfig } from "./stack-files";

// Kept here too: plan is where these are defined for everyone else. masks.ts
// holds them so that `diff` can use them without loading the Pulumi SDK.
export { SECRET, UNKNOWN };

export interface PlanResource {
  urn: string;
  type: string;
  name: string;
  parent: string;
  inputs: Record<string, unknown>;
  /** Paths (`envs[2]`, `healthcheck.tests`) whose values are secrets. */
  secretPaths: string[];
  /** Top-level input name -> URNs its value came from. */
  propertyDependencies: Record<string, string[]>;
  /**
   * Only when `diff` asked for them (a per-run key in the environment): a keyed
   * digest per secret path, so a changed secret shows as changed, never printed.
   */
  secretDigests?: Record<string, string>;
  options: {
    protect: boolean;
    retainOnDelete: boolean;
    deleteBeforeReplace: boolean;
    dependsOn: string[];
    replaceOnChanges: string[];
    ignoreChanges: string[];
    /** How long the engine waits on a create, update or delete (`"1800s"`); only those set. */
    customTimeouts: CustomTimeouts;
  };
}

export interface Plan {
  project: string;
  stack: string;
  resources: PlanResource[];
  outputs: Record<string, unknown>;
  /** Output paths whose values are secrets. */
  outputSecretPaths: string[];
  /** As `PlanResource.secretDigests`, for secret outputs. */
  outputSecretDigests?: Record<string, string>;
  /** As `PlanResource.secretDigests`, for each secure key of the stack file (digest of its ciphertext). */
  configSecretDigests?: Record<string, string>;
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

/**
 * Digests of every secret in a register request's inputs (Pulumi's wire
 * encoding), keyed by the same paths `maskValue` lists in `secretPaths`.
 */
function secretInputDigests(key: DigestKey, value: unknown, at = "", out: Record<string, string> = {}): Record<string, string> {
  if (Array.isArray(value)) {
    value.forEach((v, i) => secretInputDigests(key, v, `${at}[${i}]`, out));
  } else if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj[rpc.specialSigKey] === rpc.specialSecretSig) {
      out[at] = digest(key, obj.value);
    } else if (obj[rpc.specialSigKey] !== rpc.specialResourceSig) {
      for (const [k, v] of Object.entries(obj)) secretInputDigests(key, v, at ? `${at}.${k}` : k, out);
    }
  }
  return out;
}

export function toPlanResource(r: RecordedResource, digestKey?: DigestKey): PlanResource {
  const secretPaths: string[] = [];
  const inputs = maskValue(r.inputs, "", secretPaths) as Record<string, unknown>;
  return {
    urn: r.urn,
    type: r.type,
    name: r.name,
    parent: r.parent,
    inputs,
    secretPaths,
    propertyDependencies: r.propertyDependencies,
    ...(digestKey ? { secretDigests: secretInputDigests(digestKey, r.inputs) } : {}),
    options: {
      protect: r.options.protect,
      retainOnDelete: r.options.retainOnDelete,
      deleteBeforeReplace: r.options.deleteBeforeReplace,
      dependsOn: r.options.dependsOn,
      replaceOnChanges: r.options.replaceOnChanges,
      ignoreChanges: r.options.ignoreChanges,
      customTimeouts: r.options.customTimeouts,
    },
  };
}

/** Stack outputs with the same masking; an Output's secrecy and knownness come from the SDK. */
async function renderOutputs(value: unknown, at: string, secretPaths: string[], digests?: { key: DigestKey; out: Record<string, string> }): Promise<unknown> {
  if (pulumi.Output.isInstance(value)) {
    const { known, secret, value: inner } = await inspectOutput(value);
    if (secret) {
      secretPaths.push(at);
      if (digests) digests.out[at] = digest(digests.key, known ? await renderOutputs(inner, at, [], undefined) : UNKNOWN);
      return SECRET;
    }
    if (!known) return UNKNOWN;
    return renderOutputs(inner, at, secretPaths, digests);
  }
  if (Array.isArray(value)) return Promise.all(value.map((v, i) => renderOutputs(v, `${at}[${i}]`, secretPaths, digests)));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = await renderOutputs(v, at ? `${at}.${k}` : k, secretPaths, digests);
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
export function loadStack(opts: { root: string; stack?: string; stackFile?: string; digestKey?: DigestKey }): { project: string; sc: StackConfig } {
  const project = readProject(opts.root);
  const { stack, file } = resolveStackFile(opts.root, opts);
  const key = opts.digestKey;
  const securePlaceholder = key ? (ciphertext: string) => `${SECURE_PLACEHOLDER}-${digest(key, ciphertext).slice(0, 16)}` : undefined;
  return { project: project.name, sc: readStackConfig(file, stack, project.name, { securePlaceholder }) };
}

/** Evaluates the program for one stack, offline, and returns every resource it would register. */
export async function buildPlan(opts: PlanOptions): Promise<Plan> {
  const digestKey = takeDigestKey();
  const { project, sc } = loadStack({ ...opts, digestKey });
  let evaluation;
  try {
    evaluation = await evaluateProgram(project, sc, path.join(opts.root, "index.ts"), { mockOutputs: opts.mockOutputs });
  } catch (err) {
    throw programFailure(err, sc);
  }
  return planFromEvaluation(project, sc, evaluation, digestKey);
}

/** The masked Plan of an evaluation: what `plan` prints (with secret digests when `diff` passed a key). */
export async function planFromEvaluation(project: string, sc: StackConfig, evaluation: Evaluation, digestKey?: DigestKey): Promise<Plan> {
  const outputSecretPaths: string[] = [];
  const outputDigests = digestKey ? { key: digestKey, out: {} as Record<string, string> } : undefined;
  const outputs = (await renderOutputs({ ...evaluation.exports }, "", outputSecretPaths, outputDigests)) as Record<string, unknown>;
  return {
    project,
    stack: sc.stack,
    resources: evaluation.resources.map((r) => toPlanResource(r, digestKey)),
    outputs,
    outputSecretPaths,
    ...(digestKey
      ? {
          outputSecretDigests: outputDigests!.out,
          configSecretDigests: Object.fromEntries(sc.secretKeys.map((k) => [k, digest(digestKey, sc.config[k])])),
        }
      : {}),
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
