import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { vi } from "vitest";
import { inspectOutput, installMockRuntime, waitForRegistrations, type RecordedResource } from "../../ops/offline/offline-runtime";
import { loadStack } from "../../ops/offline/plan";
import type { Rule, ResourceRule, StackRule } from "../../policy/rule";
import { ROOT } from "./cli";
import { TYPES, type ResourceView } from "../../policy/view";

/** Hand-made resources in the shape the appstack components register, for rule tests. */

const urnOf = (type: string, name: string) => `urn:pulumi:production::appstack::${type}::${name}`;

export function resource(type: string, name: string, props: Record<string, unknown>, more: Partial<ResourceView> = {}): ResourceView {
  return {
    urn: urnOf(type, name),
    type,
    name,
    parent: "",
    props,
    protect: false,
    additionalSecretOutputs: [],
    dependencies: [],
    ...more,
  };
}

export function labels(service: string, role: "service" | "job" | undefined, image?: string): { label: string; value: string }[] {
  return [
    { label: "appstack.project", value: "appstack" },
    { label: "appstack.stack", value: "production" },
    { label: "appstack.service", value: service },
    { label: "appstack.version", value: "1.4.2" },
    ...(role ? [{ label: "appstack.role", value: role }] : []),
    ...(image ? [{ label: "appstack.image", value: image }] : []),
  ];
}

/**
 * A container as the components declare a ready one. `env` entries listed in
 * `secretEnv` are secret inputs (their paths in secretPaths), as in the offline run.
 */
export function container(
  name: string,
  service: string,
  role: "service" | "job" | undefined,
  opts: { props?: Record<string, unknown>; env?: Record<string, string>; secretEnv?: Record<string, string>; image?: string } & Partial<ResourceView> = {},
): ResourceView {
  const { props = {}, env = {}, secretEnv = {}, image, ...more } = opts;
  const envs = [...Object.entries(env), ...Object.entries(secretEnv)].map(([k, v]) => `${k}=${v}`);
  const secretPaths = new Set(Object.keys(secretEnv).map((_, i) => `envs[${Object.keys(env).length + i}]`));
  const base: Record<string, unknown> =
    role === "job"
      ? { restart: "no", mustRun: false, attach: true, memory: 256, cpus: "1", logDriver: "json-file", logOpts: { "max-size": "10m", "max-file": "5" } }
      : {
          healthcheck: { tests: ["CMD-SHELL", "true"], interval: "10s" },
          wait: true,
          restart: "unless-stopped",
          memory: 512,
          cpus: "1",
          logDriver: "json-file",
          logOpts: { "max-size": "10m", "max-file": "5" },
        };
  return resource(
    TYPES.container,
    name,
    { image: "sha256:0123456789abcdef", labels: labels(service, role, image ?? "ghcr.io/acme/api:1.4.2"), ...base, ...(envs.length ? { envs } : {}), ...props },
    { additionalSecretOutputs: envs.length ? ["envs"] : [], secretPaths, ...more },
  );
}

/** The API container as appstack wires it in production. */
export function readyApi(over: { env?: Record<string, string>; secretEnv?: Record<string, string>; props?: Record<string, unknown> } & Partial<ResourceView> = {}): ResourceView {
  const { env, secretEnv, ...rest } = over;
  return container("api-1", "api", "service", {
    env: {
      PORT: "3000",
      NODE_ENV: "production",
      APP_VERSION: "1.4.2",
      CORS_ORIGIN: "https://app.example.com",
      FRONTEND_URL: "https://app.example.com",
      ...env,
    },
    secretEnv: { DATABASE_URL: "postgresql://app:pw@postgres:5432/app", REDIS_URL: "redis://default:pw@redis:6379/0", ...secretEnv },
    ...rest,
    props: { stopSignal: "SIGTERM", stopTimeout: 30, destroyGraceSeconds: 30, ...rest.props },
  });
}

/** The messages a resource rule reports for one resource (config: the rule's settings before defaults). */
export function check(rule: Rule, r: ResourceView, config: Record<string, unknown> = {}): string[] {
  const messages: string[] = [];
  (rule as ResourceRule<Record<string, unknown>>).check(r, {
    config: (rule.config?.parse(config) ?? {}) as Record<string, unknown>,
    report: (m) => messages.push(m),
  });
  return messages;
}

/** The violations a stack rule reports over a set of resources. */
export function checkStack(rule: Rule, resources: ResourceView[]): { urn?: string; message: string }[] {
  const out: { urn?: string; message: string }[] = [];
  (rule as StackRule<Record<string, unknown>>).check(resources, { config: (rule.config?.parse({}) ?? {}) as Record<string, unknown>, report: (message, urn) => out.push({ urn, message }) });
  return out;
}

/**
 * A stack's resources as the engine would receive them: the program (index.ts)
 * evaluated under the mock runtime in this process, fresh for each call.
 */
export async function stackResources(stack: string, stackFile?: string): Promise<RecordedResource[]> {
  const { project, sc } = loadStack({ root: ROOT, stack, stackFile });
  const rt = await installMockRuntime(project, sc);
  vi.resetModules();
  // A computed specifier: vitest loads the program anew each time, as the language host would.
  const exports = (await import(path.join(ROOT, "index.ts"))) as Record<string, unknown>;
  for (const v of Object.values(exports)) if (pulumi.Output.isInstance(v)) await inspectOutput(v);
  await waitForRegistrations();
  return rt.resources;
}
