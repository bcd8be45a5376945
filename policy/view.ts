import * as rpc from "@pulumi/pulumi/runtime/rpc";

/**
 * What a rule sees of one resource, the same whether it came from the Pulumi
 * engine during `pulumi preview --policy-pack` (CrossGuard) or from the
 * offline evaluation of a stack file. Values are plain JSON; secrets are
 * unwrapped (as CrossGuard hands them to policies) and values that only a
 * deploy knows are the UNKNOWN marker.
 */
export interface ResourceView {
  urn: string;
  type: string;
  name: string;
  /** Parent URN, or "" at the top. */
  parent: string;
  props: Record<string, unknown>;
  /** `protect` as the engine receives it. */
  protect: boolean;
  /**
   * `retainOnDelete`, or undefined where the source does not expose it:
   * @pulumi/policy's PolicyResourceOptions has no such field.
   */
  retainOnDelete?: boolean;
  /** The resource option `additionalSecretOutputs`. */
  additionalSecretOutputs: string[];
  /** URNs this resource depends on (stack rules only; empty for a single-resource check). */
  dependencies: string[];
  /**
   * Paths (`envs[2]`, `value`) whose inputs are secrets; undefined when the
   * source cannot tell. CrossGuard gives policies every secret as plain text
   * with no mark (pulumi/pulumi-policy#241), so only the offline run knows.
   */
  secretPaths?: ReadonlySet<string>;
}

/** A value only a deploy knows (an image ID, a generated password on a new stack). */
export const UNKNOWN: unique symbol = Symbol.for("appstack.policy.unknown");
export type Unknown = typeof UNKNOWN;

export const isKnown = <T>(v: T | Unknown): v is T => v !== UNKNOWN;

/** `a.b[2].c`, the path spelling of the offline plan's `secretPaths`. */
export function joinPath(at: string, key: string | number): string {
  return typeof key === "number" ? `${at}[${key}]` : at ? `${at}.${key}` : key;
}

/**
 * Decodes Pulumi's wire encoding of resource inputs (what the engine sends a
 * policy pack, and what the offline runtime records): secrets are unwrapped
 * and their paths listed, unknown sentinels become UNKNOWN, resource
 * references become their URN.
 */
export function decodeWire(value: unknown, at = "", secretPaths: Set<string> = new Set()): { value: unknown; secretPaths: Set<string> } {
  const decode = (v: unknown, path: string): unknown => {
    if (v === rpc.unknownValue) return UNKNOWN;
    if (Array.isArray(v)) return v.map((e, i) => decode(e, joinPath(path, i)));
    if (v !== null && typeof v === "object") {
      const obj = v as Record<string, unknown>;
      const sig = obj[rpc.specialSigKey];
      if (sig === rpc.specialSecretSig) {
        secretPaths.add(path);
        return decode(obj.value, path);
      }
      if (sig === rpc.specialResourceSig) return obj.urn;
      if (sig === rpc.specialOutputValueSig) {
        if (obj.secret === true) secretPaths.add(path);
        return "value" in obj ? decode(obj.value, path) : UNKNOWN;
      }
      const out: Record<string, unknown> = {};
      for (const [k, inner] of Object.entries(obj)) out[k] = decode(inner, joinPath(path, k));
      return out;
    }
    return v;
  };
  return { value: decode(value, at), secretPaths };
}

/** The register request fields the offline runtime records (ops/offline/offline-runtime.ts RecordedResource). */
export interface WireResource {
  urn: string;
  type: string;
  name: string;
  parent: string;
  inputs: Record<string, unknown>;
  options: { protect: boolean; retainOnDelete: boolean; dependsOn: string[]; additionalSecretOutputs: string[] };
}

/** A resource from the offline evaluation: everything the engine would receive, secrecy included. */
export function viewFromWire(r: WireResource): ResourceView {
  const { value, secretPaths } = decodeWire(r.inputs);
  return {
    urn: r.urn,
    type: r.type,
    name: r.name,
    parent: r.parent,
    props: value as Record<string, unknown>,
    protect: r.options.protect,
    retainOnDelete: r.options.retainOnDelete,
    additionalSecretOutputs: r.options.additionalSecretOutputs,
    dependencies: r.options.dependsOn,
    secretPaths,
  };
}

// ---- reading the appstack conventions off a view -------------------------------------------

export const TYPES = {
  container: "docker:index/container:Container",
  service: "docker:index/service:Service",
  serviceConfig: "docker:index/serviceConfig:ServiceConfig",
  secret: "docker:index/secret:Secret",
  volume: "docker:index/volume:Volume",
  remoteImage: "docker:index/remoteImage:RemoteImage",
  randomPassword: "random:index/randomPassword:RandomPassword",
  randomString: "random:index/randomString:RandomString",
  vercelEnv: "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable",
  vercelEnvs: "vercel:index/projectEnvironmentVariables:ProjectEnvironmentVariables",
  vercelProject: "vercel:index/project:Project",
  vercelDomain: "vercel:index/projectDomain:ProjectDomain",
} as const;

/** A Docker label's value, or undefined when absent or not known yet. */
export function label(r: ResourceView, name: string): string | undefined {
  const labels = r.props.labels;
  if (!Array.isArray(labels)) return undefined;
  for (const l of labels) {
    if (l && typeof l === "object" && (l as { label?: unknown }).label === name) {
      const v = (l as { value?: unknown }).value;
      return typeof v === "string" ? v : undefined;
    }
  }
  return undefined;
}

/** `appstack.role`: service (long-running) or job (one-shot). */
export const roleOf = (r: ResourceView): string | undefined => label(r, "appstack.role");
/** `appstack.service`: postgres, redis, api, worker, migrate, backup, edge, frontend. */
export const serviceOf = (r: ResourceView): string | undefined => label(r, "appstack.service");

export const isContainer = (r: ResourceView): boolean => r.type === TYPES.container;
/** A container this project declares (it carries the appstack labels). */
export const isAppstackContainer = (r: ResourceView): boolean => isContainer(r) && label(r, "appstack.project") === "appstack";
/** A Swarm service this project declares (swarm mode). */
export const isAppstackService = (r: ResourceView): boolean => r.type === TYPES.service && label(r, "appstack.project") === "appstack";
/** What runs a process of the stack: a container (host mode, and every one-shot job) or a Swarm service. */
export const isAppstackWorkload = (r: ResourceView): boolean => isAppstackContainer(r) || isAppstackService(r);

/** A known object at a path of the props, or undefined; UNKNOWN when a part of the path is not known yet. */
export function at(r: ResourceView, path: string[]): unknown {
  let cur: unknown = r.props;
  for (const key of path) {
    if (cur === UNKNOWN) return UNKNOWN;
    if (cur === null || typeof cur !== "object" || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/** Go durations as the provider takes them (`30s`, `1m30s`, `500ms`), in seconds; undefined when not one. */
export function durationSeconds(value: unknown): number | undefined {
  if (typeof value !== "string") return undefined;
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, ns: 1e-9 };
  let total = 0;
  let rest = value;
  while (rest) {
    const m = /^(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)/.exec(rest);
    if (!m) return undefined;
    total += Number(m[1]) * units[m[2]];
    rest = rest.slice(m[0].length);
  }
  return value === "" ? undefined : total;
}

/**
 * What the rules judge of a container or a Swarm service, in one shape:
 * each field is the declared value (UNKNOWN when a deploy decides it), and
 * `field` names where it lives, for messages.
 */
export interface Workload {
  kind: "container" | "service";
  healthcheck: unknown;
  /** A container's `wait`; a service's `convergeConfig` (a global service has none: the provider cannot converge one). */
  waits: unknown;
  restart: unknown;
  /** MiB. */
  memory: unknown;
  cpus: unknown;
  logDriver: unknown;
  logOpts: unknown;
  /** Seconds between SIGTERM and SIGKILL. */
  stopSeconds: unknown;
  stopSignal: unknown;
  /** Host ports it publishes, as `{ external, internal, ip }`. */
  ports: unknown;
  field: { restart: string; memory: string; cpus: string; stop: string; ports: string };
}

const known = <T>(v: unknown, f: (x: unknown) => T): T | Unknown => (v === UNKNOWN ? UNKNOWN : f(v));

export function workload(r: ResourceView): Workload | undefined {
  if (isAppstackContainer(r)) {
    return {
      kind: "container",
      healthcheck: r.props.healthcheck,
      waits: r.props.wait,
      restart: r.props.restart,
      memory: r.props.memory,
      cpus: known(r.props.cpus, (c) => (c === undefined ? undefined : Number(c))),
      logDriver: r.props.logDriver,
      logOpts: r.props.logOpts,
      stopSeconds: r.props.stopTimeout,
      stopSignal: r.props.stopSignal,
      ports: r.props.ports,
      field: { restart: "restart", memory: "memory", cpus: "cpus", stop: "stopTimeout", ports: "ports" },
    };
  }
  if (!isAppstackService(r)) return undefined;
  const spec = ["taskSpec", "containerSpec"];
  const limits = ["taskSpec", "resources", "limits"];
  const log = at(r, ["taskSpec", "logDriver"]);
  const ports = at(r, ["endpointSpec", "ports"]);
  return {
    kind: "service",
    healthcheck: at(r, [...spec, "healthcheck"]),
    waits: at(r, ["mode", "global"]) === true ? "global" : known(r.props.convergeConfig, (c) => c !== undefined),
    restart: at(r, ["taskSpec", "restartPolicy", "condition"]),
    memory: known(at(r, [...limits, "memoryBytes"]), (b) => (typeof b === "number" ? b / 1024 / 1024 : undefined)),
    cpus: known(at(r, [...limits, "nanoCpus"]), (n) => (typeof n === "number" ? n / 1e9 : undefined)),
    logDriver: known(log, (l) => (l as { name?: unknown } | undefined)?.name),
    logOpts: known(log, (l) => (l as { options?: unknown } | undefined)?.options),
    stopSeconds: known(at(r, [...spec, "stopGracePeriod"]), (d) => durationSeconds(d)),
    stopSignal: at(r, [...spec, "stopSignal"]),
    ports: known(ports, (list) =>
      Array.isArray(list) ? list.map((p) => ({ external: (p as { publishedPort?: unknown }).publishedPort, internal: (p as { targetPort?: unknown }).targetPort })) : list,
    ),
    field: {
      restart: "taskSpec.restartPolicy.condition",
      memory: "taskSpec.resources.limits.memoryBytes",
      cpus: "taskSpec.resources.limits.nanoCpus",
      stop: "taskSpec.containerSpec.stopGracePeriod",
      ports: "endpointSpec.ports",
    },
  };
}

export const DATA_STORES = new Set(["postgres", "redis"]);

/** One `NAME=value` entry of a container's `envs`. */
export interface EnvEntry {
  name: string;
  /** The value, or UNKNOWN. Never print it: it may be a secret. */
  value: string | Unknown;
  /** Path in the resource's inputs (`envs[3]`). */
  path: string;
  /** True or false when the source knows; undefined otherwise (CrossGuard). */
  secret?: boolean;
}

/**
 * A container's env entries whose names are known. An entry that is wholly
 * unknown (a secret built from a password generated on this deploy) has no
 * readable name and is left out; `unreadable` counts those.
 */
export function envEntries(r: ResourceView): { entries: EnvEntry[]; unreadable: number } {
  if (r.type === TYPES.service) return serviceEnvEntries(r);
  const envs = r.props.envs;
  const entries: EnvEntry[] = [];
  let unreadable = 0;
  if (!Array.isArray(envs)) return { entries, unreadable: envs === UNKNOWN ? 1 : 0 };
  envs.forEach((e, i) => {
    const path = joinPath("envs", i);
    if (typeof e !== "string" || !e.includes("=")) {
      unreadable++;
      return;
    }
    const eq = e.indexOf("=");
    entries.push({ name: e.slice(0, eq), value: e.slice(eq + 1), path, secret: r.secretPaths ? r.secretPaths.has(path) : undefined });
  });
  return { entries, unreadable };
}

/** A Swarm service's env: a map under `taskSpec.containerSpec.env`. */
function serviceEnvEntries(r: ResourceView): { entries: EnvEntry[]; unreadable: number } {
  const envMap = at(r, ["taskSpec", "containerSpec", "env"]);
  if (envMap === UNKNOWN) return { entries: [], unreadable: 1 };
  if (envMap === null || typeof envMap !== "object") return { entries: [], unreadable: 0 };
  const entries = Object.entries(envMap as Record<string, unknown>).map(([name, value]): EnvEntry => {
    const path = `taskSpec.containerSpec.env.${name}`;
    return { name, value: value === UNKNOWN ? UNKNOWN : String(value), path, secret: r.secretPaths ? r.secretPaths.has(path) : undefined };
  });
  return { entries, unreadable: 0 };
}

export function env(r: ResourceView, name: string): EnvEntry | undefined {
  return envEntries(r).entries.find((e) => e.name === name);
}

/** The text of a file a container uploads (the edge's Caddyfiles), if known. */
export function uploaded(r: ResourceView, file: string): string | undefined {
  const uploads = r.props.uploads;
  if (!Array.isArray(uploads)) return undefined;
  const u = uploads.find((x) => (x as { file?: unknown })?.file === file) as { content?: unknown } | undefined;
  return typeof u?.content === "string" ? u.content : undefined;
}

/** The edge proxy's bootstrap Caddyfile (components/edge.ts EDGE_BOOTSTRAP_CADDYFILE). */
export const CADDYFILE = "/etc/caddy/Caddyfile";
/** The config the edge-config job applies to the running edge proxy (the proxy itself uploads only its bootstrap). */
export const APPLIED_CADDYFILE = "/etc/caddy/Caddyfile.applied";

/** The Caddyfile a resource carries: the applied edge config, else a container's own, or the edge's Swarm config (swarm mode). */
export function caddyfileOf(r: ResourceView): string | undefined {
  if (r.type === TYPES.serviceConfig) return label(r, "appstack.service") === "edge" && typeof r.props.dataRaw === "string" ? r.props.dataRaw : undefined;
  return uploaded(r, APPLIED_CADDYFILE) ?? uploaded(r, CADDYFILE);
}
