import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import {
  inspectOutput,
  installMockRuntime,
  waitForRegistrations,
  type MockOutputs,
  type MockRuntime,
  type RecordedResource,
} from "../../ops/offline/offline-runtime";
import { captureCli } from "../../ops/cli/docs";
import type { SidePlanner } from "../../ops/diff/diff-command";
import { buildPlan, maskValue, renderPlanJson, type Plan } from "../../ops/offline/plan";
import { EXIT } from "../../ops/shared/errors";
import type { CliResult } from "./cli";

/** Resolves an Output for an assertion. Always await it: an expect inside apply can never fail. */
export async function promise<T>(o: pulumi.Output<T>): Promise<T> {
  return (await inspectOutput(o as pulumi.Output<unknown>)).value as T;
}

/** Whether the SDK marks an Output as secret. */
export async function isSecret(o: pulumi.Output<unknown>): Promise<boolean> {
  return (await inspectOutput(o)).secret;
}

/**
 * Installs the mock runtime with a stack's config, as the offline plan does.
 * `config` keys without a namespace go under `appstack:`; objects are JSON-encoded.
 */
export async function mockStack(
  stack: string,
  config: Record<string, unknown> = {},
  secrets: Record<string, string> = {},
  mockOutputs?: MockOutputs,
): Promise<MockRuntime> {
  const flat: Record<string, string> = {};
  const full = (k: string) => (k.includes(":") ? k : `appstack:${k}`);
  for (const [k, v] of Object.entries(config)) flat[full(k)] = typeof v === "string" ? v : JSON.stringify(v);
  for (const [k, v] of Object.entries(secrets)) flat[full(k)] = v;
  return installMockRuntime("appstack", { stack, config: flat, secretKeys: Object.keys(secrets).map(full) }, { mockOutputs });
}

/** Waits for registrations, then finds one recorded resource by name. */
export async function registered(rt: MockRuntime, name: string): Promise<RecordedResource> {
  await waitForRegistrations();
  const found = rt.resources.filter((r) => r.name === name);
  if (found.length !== 1) throw new Error(`expected one resource named ${name}, found ${found.length}: ${rt.resources.map((r) => r.name).join(", ")}`);
  return found[0];
}

/** A recorded resource's inputs as a plan prints them, with its secret paths. */
export function masked(r: RecordedResource): { inputs: Record<string, unknown>; secretPaths: string[] } {
  const secretPaths: string[] = [];
  return { inputs: maskValue(r.inputs, "", secretPaths) as Record<string, unknown>, secretPaths };
}

/**
 * A resource's name with the API's release slot taken out (`api-<slot>-2` ->
 * `api-2`), so a test can name a replica without computing the slot; the
 * slot itself is tested on its own.
 */
export const logicalName = (name: string): string => name.replace(/^api-[0-9a-f]{8}-(\d+)$/, "api-$1");

/**
 * Loads the program (`index.ts`) anew with vitest's loader, for
 * `evaluateProgram`'s `load`: the file is evaluated again each time (its own
 * module id per evaluation), as in the language host's fresh process. The
 * modules it imports (components, config) hold no state between evaluations
 * and are shared, as the rest of the test process shares them.
 */
export async function importProgram(programPath: string): Promise<Record<string, unknown>> {
  const counter = globalThis as { [key: symbol]: number | undefined };
  const n = (counter[EVALUATIONS] = (counter[EVALUATIONS] ?? 0) + 1);
  return (await import(`${programPath}?evaluation=${n}`)) as Record<string, unknown>;
}
const EVALUATIONS = Symbol.for("appstack.programImports");

/** Kept on globalThis, like the SDK's runtime it guards: one per worker process. */
const evaluations = globalThis as { [key: symbol]: Promise<unknown> | undefined };
const QUEUE = Symbol.for("appstack.programEvaluations");

/**
 * Runs one evaluation of the program at a time in this process: the mock
 * runtime is the process's, so two evaluations at once would record each
 * other's resources.
 */
export function exclusiveEvaluation<T>(evaluate: () => Promise<T>): Promise<T> {
  const run = (evaluations[QUEUE] ?? Promise.resolve()).then(evaluate, evaluate);
  evaluations[QUEUE] = run.catch(() => undefined);
  return run;
}

/**
 * `npm run plan -- <stack> --format json` in this process: what the command
 * prints and its exit code (`buildPlan`, then `renderPlanJson`, as the plan
 * command runs them; a refusal as `main` prints it), with the program loaded
 * by `importProgram`. For tests about what a stack declares; the command's
 * own process is tested in test/stacks.test.ts. `root`: another checkout.
 */
export function planInProcess(opts: { root?: string; stack?: string; stackFile?: string; env?: Record<string, string> }): Promise<CliResult> {
  const root = opts.root ?? path.resolve(__dirname, "..", "..");
  return exclusiveEvaluation(() =>
    captureCli([], async () => {
      // The plan takes what it needs from the environment (diff's digest key) and removes it.
      Object.assign(process.env, opts.env);
      console.log(renderPlanJson(await buildPlan({ root, stack: opts.stack, stackFile: opts.stackFile, load: importProgram })));
      return EXIT.ok;
    }),
  );
}

/** `diff`'s side planner in this process (`planInProcess`): the two sides one after the other. */
export const planSideInProcess: SidePlanner = (root, stack, env) => ({ result: planInProcess({ root, stack, env }), kill: () => undefined });

/** The plan of a stack file of this project (see `planInProcess`); a refusal is an error. */
export async function evaluatePlan(opts: { stack?: string; stackFile?: string }): Promise<Plan> {
  const r = await planInProcess(opts);
  if (r.code !== EXIT.ok) throw new Error(`plan exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Plan;
}
