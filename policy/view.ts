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

/** The Caddyfile a container carries: the applied edge config, else its own. */
export function caddyfileOf(r: ResourceView): string | undefined {
  return uploaded(r, APPLIED_CADDYFILE) ?? uploaded(r, CADDYFILE);
}
