import * as pulumi from "@pulumi/pulumi";
import { inspectOutput, installMockRuntime, waitForRegistrations, type MockOutputs, type MockRuntime, type RecordedResource } from "../../ops/offline/offline-runtime";
import { maskValue } from "../../ops/offline/plan";

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
