import type { Plan, PlanResource } from "../../ops/offline/plan";

/**
 * Plans shaped exactly like `npm run plan -- --format json` prints them (with
 * the digests `diff` asks for), built small enough to read in a test.
 */

const STACK = "staging";
const PREFIX = `urn:pulumi:${STACK}::appstack::`;

export const TYPES = {
  container: "docker:index/container:Container",
  volume: "docker:index/volume:Volume",
  network: "docker:index/network:Network",
  image: "docker:index/remoteImage:RemoteImage",
  password: "random:index/randomPassword:RandomPassword",
  project: "vercel:index/project:Project",
  envVar: "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable",
  deployment: "vercel:index/deployment:Deployment",
  domain: "vercel:index/projectDomain:ProjectDomain",
  postgres: "appstack:components:Postgres",
  redis: "appstack:components:Redis",
  api: "appstack:components:Api",
} as const;

export interface FixtureOptions {
  parent?: PlanResource;
  secretPaths?: string[];
  secretDigests?: Record<string, string>;
  propertyDependencies?: Record<string, string[]>;
  protect?: boolean;
  retainOnDelete?: boolean;
  deleteBeforeReplace?: boolean;
  replaceOnChanges?: string[];
  ignoreChanges?: string[];
  /** Explicit dependencies, besides those of `propertyDependencies`. */
  dependsOn?: string[];
  customTimeouts?: { create?: string; update?: string; delete?: string };
}

/** One plan resource; its URN carries the parent's type chain as the engine builds it. */
export function resource(type: string, name: string, inputs: Record<string, unknown> = {}, o: FixtureOptions = {}): PlanResource {
  const chain = o.parent ? `${o.parent.urn.slice(PREFIX.length, o.parent.urn.lastIndexOf("::"))}$${type}` : type;
  return {
    urn: `${PREFIX}${chain}::${name}`,
    type,
    name,
    parent: o.parent?.urn ?? "",
    inputs,
    secretPaths: o.secretPaths ?? [],
    propertyDependencies: o.propertyDependencies ?? {},
    secretDigests: o.secretDigests ?? {},
    options: {
      protect: o.protect ?? false,
      retainOnDelete: o.retainOnDelete ?? false,
      deleteBeforeReplace: o.deleteBeforeReplace ?? false,
      dependsOn: [...(o.dependsOn ?? []), ...Object.values(o.propertyDependencies ?? {}).flat()],
      replaceOnChanges: o.replaceOnChanges ?? [],
      ignoreChanges: o.ignoreChanges ?? [],
      customTimeouts: o.customTimeouts ?? {},
    },
  };
}

export function plan(resources: PlanResource[], extra: Partial<Plan> = {}): Plan {
  return {
    project: "appstack",
    stack: STACK,
    resources,
    outputs: {},
    outputSecretPaths: [],
    outputSecretDigests: {},
    configSecretDigests: {},
    ...extra,
  };
}

export const labels = (service: string, version = "1") => [
  { label: "appstack.project", value: "appstack" },
  { label: "appstack.stack", value: STACK },
  { label: "appstack.service", value: service },
  { label: "appstack.version", value: version },
];

/**
 * The Postgres part of a stack: component, image, password, volume and the
 * server container that uses all three, as the real program declares them.
 */
export function postgresStack(v: { image?: string; passwordLength?: number; volumeName?: string; memory?: number; cpus?: string; restart?: string; passwordDigest?: string } = {}) {
  const component = resource(TYPES.postgres, "postgres");
  const image = resource(TYPES.image, "postgres-image", { name: v.image ?? "postgres:17.6-alpine", keepLocally: true }, { parent: component });
  const password = resource(TYPES.password, "postgres-password", { length: v.passwordLength ?? 32, special: true }, { parent: component });
  const volume = resource(TYPES.volume, "postgres-data", { name: v.volumeName ?? "appstack-staging-postgres-data", labels: labels("postgres", "data") }, { parent: component, protect: false });
  const tag = (v.image ?? "postgres:17.6-alpine").split(":")[1];
  const server = resource(
    TYPES.container,
    "postgres-server",
    {
      name: "appstack-staging-postgres",
      image: "[unknown]",
      envs: ["POSTGRES_USER=app", "POSTGRES_DB=app", "[secret]"],
      volumes: [{ volumeName: v.volumeName ?? "appstack-staging-postgres-data", containerPath: "/var/lib/postgresql/data" }],
      labels: labels("postgres", tag),
      memory: v.memory ?? 1024,
      cpus: v.cpus ?? "1",
      restart: v.restart ?? "unless-stopped",
    },
    {
      parent: component,
      deleteBeforeReplace: true,
      secretPaths: ["envs[2]"],
      secretDigests: { "envs[2]": v.passwordDigest ?? "digest-of-password-1" },
      propertyDependencies: { image: [image.urn], envs: [password.urn], volumes: [volume.urn] },
    },
  );
  return { component, image, password, volume, server, all: [component, image, password, volume, server] };
}
