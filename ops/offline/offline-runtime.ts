import { createHash } from "node:crypto";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as rpc from "@pulumi/pulumi/runtime/rpc";
import * as settings from "@pulumi/pulumi/runtime/settings";
import type { StackConfig } from "./stack-files";

/**
 * Evaluates the Pulumi program with the SDK's official mock runtime
 * (`pulumi.runtime.setMocks`): no CLI, no engine, no credentials. It records
 * every register request exactly as the engine would receive it, options
 * included, which `MockResourceArgs` alone does not carry.
 */

/** One register request as the engine would see it. Inputs keep Pulumi's wire encoding (secret signatures, unknowns). */
export interface RecordedResource {
  urn: string;
  type: string;
  name: string;
  parent: string;
  custom: boolean;
  provider: string;
  inputs: Record<string, unknown>;
  /** Top-level input name -> URNs of the resources its value came from (the engine's per-property dependencies). */
  propertyDependencies: Record<string, string[]>;
  options: {
    protect: boolean;
    retainOnDelete: boolean;
    deleteBeforeReplace: boolean;
    dependsOn: string[];
    additionalSecretOutputs: string[];
    replaceOnChanges: string[];
    ignoreChanges: string[];
    /** `customTimeouts` as the engine gets them (`"1800s"`), only those set. */
    customTimeouts: CustomTimeouts;
  };
}

export interface CustomTimeouts {
  create?: string;
  update?: string;
  delete?: string;
}

export interface Evaluation {
  resources: RecordedResource[];
  /** The program's exports, still as Outputs. */
  exports: Record<string, unknown>;
}

/**
 * Values the mock returns for outputs a real deploy computes. Only what the
 * program needs as known values; everything else stays unknown in preview,
 * as it would for a new stack.
 */
export type MockOutputs = (type: string, name: string, inputs: Record<string, unknown>) => Record<string, unknown>;

export const defaultMockOutputs: MockOutputs = (type, name) => {
  // A generated secret already exists on a deployed stack; the plan shows it as [secret], never its value.
  if (type === "random:index/randomPassword:RandomPassword") return { result: `mock-${name}-password`, bcryptHash: "mock" };
  return {};
};

/**
 * The provider names an unnamed Docker container `<resource name>-<7 hex>`
 * when it checks the inputs, so the name is known in a preview. Here the
 * suffix is a digest of the resource name: the same on every evaluation, so
 * plans compare.
 */
export function autoName(resourceName: string): string {
  return `${resourceName}-${createHash("sha256").update(resourceName).digest("hex").slice(0, 7)}`;
}

const AUTONAMED_TYPES = new Set(["docker:index/container:Container"]);

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom(): boolean;
  getProvider(): string;
  getProtect(): boolean | undefined;
  getRetainondelete(): boolean | undefined;
  getDeletebeforereplace(): boolean;
  getDependenciesList(): string[];
  getAdditionalsecretoutputsList(): string[];
  getReplaceonchangesList(): string[];
  getIgnorechangesList(): string[];
  getCustomtimeouts(): { getCreate(): string; getUpdate(): string; getDelete(): string } | undefined;
  getPropertydependenciesMap(): { forEach(cb: (deps: { getUrnsList(): string[] }, key: string) => void): void };
  getObject(): { toJavaScript(): Record<string, unknown> } | undefined;
}

function wrapSecret(value: unknown): unknown {
  return { [rpc.specialSigKey]: rpc.specialSecretSig, value };
}

/** What the mock runtime recorded so far. */
export interface MockRuntime {
  resources: RecordedResource[];
}

/**
 * Sets the stack's config and the SDK's mocks, and records every register
 * request. Unit tests construct components after this; `evaluateProgram`
 * loads the whole program.
 */
export async function installMockRuntime(
  project: string,
  sc: Pick<StackConfig, "stack" | "config" | "secretKeys">,
  opts: { preview?: boolean; mockOutputs?: MockOutputs } = {},
): Promise<MockRuntime> {
  const mockOutputs = opts.mockOutputs ?? defaultMockOutputs;
  const resources: RecordedResource[] = [];
  const secretOutputsByResource = new Map<string, string[]>();

  // A previous program's late registrations (component outputs) must not land on the new monitor.
  if (settings.hasMonitor()) await waitForRegistrations();
  pulumi.runtime.setAllConfig(sc.config, sc.secretKeys);
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const computed = mockOutputs(args.type, args.name, args.inputs);
        const state: Record<string, unknown> = { ...args.inputs, ...computed };
        if (AUTONAMED_TYPES.has(args.type) && state.name === undefined) state.name = autoName(args.name);
        // The real engine applies additionalSecretOutputs; the mock monitor does not.
        for (const key of secretOutputsByResource.get(`${args.type}::${args.name}`) ?? []) {
          if (key in state) state[key] = wrapSecret(state[key]);
        }
        return { id: opts.preview === false ? `${args.name}-id` : undefined, state };
      },
      call(args) {
        return args.inputs;
      },
    },
    project,
    sc.stack,
    opts.preview ?? true,
  );

  const monitor = settings.getMonitor() as unknown as {
    registerResource(req: RegisterRequest, cb: (err: unknown, resp: unknown) => void): void;
    newUrn(parent: string, type: string, name: string): string;
  };
  const original = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) => {
    const type = req.getType();
    const name = req.getName();
    secretOutputsByResource.set(`${type}::${name}`, req.getAdditionalsecretoutputsList());
    const propertyDependencies: Record<string, string[]> = {};
    req.getPropertydependenciesMap().forEach((deps, key) => {
      propertyDependencies[key] = deps.getUrnsList();
    });
    resources.push({
      urn: monitor.newUrn(req.getParent(), type, name),
      type,
      name,
      parent: req.getParent(),
      custom: req.getCustom(),
      provider: req.getProvider(),
      inputs: req.getObject()?.toJavaScript() ?? {},
      propertyDependencies,
      options: {
        protect: req.getProtect() ?? false,
        retainOnDelete: req.getRetainondelete() ?? false,
        deleteBeforeReplace: req.getDeletebeforereplace(),
        dependsOn: req.getDependenciesList(),
        additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
        replaceOnChanges: req.getReplaceonchangesList(),
        ignoreChanges: req.getIgnorechangesList(),
        customTimeouts: customTimeoutsOf(req),
      },
    });
    return original(req, cb);
  };
  return { resources };
}

function customTimeoutsOf(req: RegisterRequest): CustomTimeouts {
  const t = req.getCustomtimeouts();
  const set = Object.entries({ create: t?.getCreate(), update: t?.getUpdate(), delete: t?.getDelete() }).filter(([, v]) => v);
  return Object.fromEntries(set);
}

/** Waits until every register request sent so far has been answered. */
export function waitForRegistrations(): Promise<void> {
  return (settings as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs();
}

/**
 * Sets the config and mocks, loads the program the way the language host does
 * (`require` through the ts-node that `ops/run.js` registered), and waits until
 * every registration and every export has settled.
 */
export async function evaluateProgram(
  project: string,
  sc: StackConfig,
  programPath: string,
  opts: { preview?: boolean; mockOutputs?: MockOutputs } = {},
): Promise<Evaluation> {
  const { resources } = await installMockRuntime(project, sc, opts);
  let asyncFailure: unknown;
  const onRejection = (err: unknown) => {
    asyncFailure ??= err;
  };
  process.on("unhandledRejection", onRejection);
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const exports = require(path.resolve(programPath)) as Record<string, unknown>;
    await settleDeep(exports);
    await waitForRegistrations();
    if (asyncFailure) throw asyncFailure;
    return { resources, exports };
  } finally {
    process.off("unhandledRejection", onRejection);
  }
}

/** Waits for every Output in a value, at any depth. */
async function settleDeep(value: unknown): Promise<void> {
  if (pulumi.Output.isInstance(value)) {
    await settleDeep((await inspectOutput(value)).value);
    return;
  }
  if (Array.isArray(value)) {
    await Promise.all(value.map(settleDeep));
  } else if (value !== null && typeof value === "object") {
    await Promise.all(Object.values(value).map(settleDeep));
  }
}

/** An Output's value with what the engine knows about it. */
export async function inspectOutput(o: pulumi.Output<unknown>): Promise<{ known: boolean; secret: boolean; value: unknown }> {
  const impl = o as unknown as { isKnown: Promise<boolean>; isSecret: Promise<boolean>; promise(): Promise<unknown> };
  const [known, secret, value] = await Promise.all([impl.isKnown, impl.isSecret, impl.promise()]);
  return { known, secret, value };
}
