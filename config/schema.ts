import { z } from "zod";

/**
 * The one definition of every setting under `appstack:` in `Pulumi.<stack>.yaml`.
 *
 * Objects are strict: an unknown key (a typo such as `postgres.versoin`) is an
 * error, never a silently ignored setting. Rules that depend on the environment
 * (production pins images, protects volumes, publishes no data-store port)
 * live in `environmentRules` below, so they are checked with everything else
 * and reported in the same list.
 *
 * Secrets are not part of this schema: each one is a top-level secure key
 * (`pulumi config set --secret NAME value`) that the loader reads only through
 * the secret APIs. The schema names which secret keys a stack needs.
 */

export const ENVIRONMENTS = ["dev", "staging", "production"] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

/** A fix suggestion travels with a custom issue as `params.fix`. */
export interface IssueParams {
  fix?: string;
  expected?: string;
}

const IMAGE_REFERENCE =
  /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

/** Splits `repo[:tag][@digest]`; the registry port is not a tag. */
export function parseImageReference(ref: string): { repository: string; tag?: string; digest?: string } {
  const [nameAndTag, digest] = ref.split("@");
  const slash = nameAndTag.lastIndexOf("/");
  const colon = nameAndTag.lastIndexOf(":");
  if (colon > slash) {
    return { repository: nameAndTag.slice(0, colon), tag: nameAndTag.slice(colon + 1), digest };
  }
  return { repository: nameAndTag, digest };
}

/**
 * Immutable enough to deploy to production: a digest, or a tag with at least
 * `major.minor` (`17.6`, `v1.4.2`, `17.6-alpine`). `latest`, no tag, or a bare
 * major (`17`, which moves on every minor release) are not.
 */
export function isPinnedImage(ref: string): boolean {
  const { tag, digest } = parseImageReference(ref);
  if (digest) return true;
  return tag !== undefined && /^v?\d+\.\d+/.test(tag);
}

export const imageReference = z
  .string()
  .regex(IMAGE_REFERENCE, { message: "not a Docker image reference (expected name[:tag][@sha256:digest])" });

export const port = z.number().int().min(1).max(65535);

const identifier = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, { message: "expected a lower-case SQL identifier (letters, digits, _; at most 63)" });

/** Docker memory limits in MiB; the provider's `memory` input takes MiB. */
const memoryMb = z.number().int().min(16).max(1024 * 1024);
const cpus = z.string().regex(/^\d+(\.\d+)?$/, { message: "expected a number of CPUs as a string, e.g. \"0.5\"" });

const dockerSchema = z
  .strictObject({
    /** `unix:///var/run/docker.sock` locally; `ssh://deploy@host` for a remote engine. */
    host: z
      .string()
      .regex(/^(unix|ssh|tcp|npipe):\/\/\S+$/, { message: "expected a Docker host URL: unix://, ssh:// or tcp://" })
      .default("unix:///var/run/docker.sock"),
    /** Extra ssh options for an `ssh://` host, e.g. `["-o", "StrictHostKeyChecking=yes"]`. */
    sshOpts: z.array(z.string()).optional(),
  })
  .default({ host: "unix:///var/run/docker.sock" });

/** What every data-store container shares. */
const containerCommon = {
  /** Memory limit of the container in MiB. */
  memoryMb: memoryMb.default(512),
  /** CPU limit, e.g. "1" or "0.5". */
  cpus: cpus.default("1"),
  /**
   * Publish the server on 127.0.0.1:<hostPort> of the Docker host, for local
   * tools. Allowed in `dev` only: elsewhere data stores publish no port.
   */
  hostPort: port.optional(),
  /**
   * Protect the data volume: `pulumi destroy` refuses, and a deleted stack
   * keeps it. Always on in production.
   * @default true in production, false elsewhere
   */
  protectVolume: z.boolean().optional(),
  /** Seconds `pulumi up` waits for the container to turn healthy. @default 120 */
  healthTimeoutSeconds: z.number().int().min(5).max(3600).default(120),
};

const postgresContainer = z.strictObject({
  mode: z.literal("container"),
  /** Changing the major version needs a dump and restore: the data directory is not compatible. */
  image: imageReference.default("postgres:17.6-alpine"),
  /** Changing it on a stack with data creates an empty database; the old one stays in the volume. */
  database: identifier.default("app"),
  user: identifier.default("app"),
  ...containerCommon,
});

const postgresExternal = z.strictObject({
  mode: z.literal("external"),
  /** The secure key holding the managed database URL (Supabase and the like). */
  urlSecret: z.string().default("postgresUrl"),
});

export const postgresSchema = z
  .discriminatedUnion("mode", [postgresContainer, postgresExternal], {
    error: () => ({ message: 'expected mode "container" or "external"' }),
  })
  .default(() => postgresContainer.parse({ mode: "container" }));

const MAXMEMORY_POLICIES = [
  "noeviction",
  "allkeys-lru",
  "allkeys-lfu",
  "allkeys-random",
  "volatile-lru",
  "volatile-lfu",
  "volatile-random",
  "volatile-ttl",
] as const;

const redisContainer = z.strictObject({
  mode: z.literal("container"),
  image: imageReference.default("redis:7.4.6-alpine"),
  /** Redis's own memory cap in MiB; must leave room under the container's `memoryMb`. */
  maxmemoryMb: z.number().int().min(1).default(256),
  /**
   * What Redis does at `maxmemory`. A job queue must not lose jobs, so the
   * default refuses writes instead of evicting keys.
   * @default "noeviction"
   */
  maxmemoryPolicy: z.enum(MAXMEMORY_POLICIES).default("noeviction"),
  /** Append-only file persistence, fsync every second. @default true */
  appendonly: z.boolean().default(true),
  ...containerCommon,
});

const redisExternal = z.strictObject({
  mode: z.literal("external"),
  /** The secure key holding the managed Redis URL (Redis Cloud and the like). */
  urlSecret: z.string().default("redisUrl"),
});

export const redisSchema = z
  .discriminatedUnion("mode", [redisContainer, redisExternal], {
    error: () => ({ message: 'expected mode "container" or "external"' }),
  })
  .default(() => redisContainer.parse({ mode: "container" }));

export const appConfigSchema = z.strictObject({
  environment: z.enum(ENVIRONMENTS, { message: `expected one of ${ENVIRONMENTS.join(", ")}` }),
  docker: dockerSchema,
  postgres: postgresSchema,
  redis: redisSchema,
});

export type ParsedAppConfig = z.output<typeof appConfigSchema>;
type Sections = Partial<ParsedAppConfig>;

/** A problem found by the schema or an environment rule, in zod's issue shape. */
export type SchemaIssue = z.core.$ZodIssue | { code: "custom"; path: PropertyKey[]; message: string; params?: IssueParams; input?: unknown };

export interface ParseResult {
  /** The typed config, when there is no issue. */
  data?: ParsedAppConfig;
  issues: SchemaIssue[];
  /** Secure top-level keys the valid sections need, and who needs them. */
  requiredSecrets: { key: string; usedBy: string }[];
}

/**
 * Parses raw `appstack:` settings. Each section is parsed on its own as well,
 * so environment rules and secret requirements are checked even when another
 * section is broken: the user sees every problem in one run.
 */
export function parseAppConfig(raw: Record<string, unknown>): ParseResult {
  const sections: Sections = {};
  for (const [key, schema] of Object.entries(appConfigSchema.shape)) {
    const section = parseLeniently(schema as z.ZodType, raw[key]);
    if (section !== undefined) (sections as Record<string, unknown>)[key] = section;
  }
  const requiredSecrets = requiredSecretKeys(sections);
  const settings = Object.fromEntries(Object.entries(raw).filter(([k]) => !requiredSecrets.some((s) => s.key === k)));
  const whole = appConfigSchema.safeParse(settings);
  const issues: SchemaIssue[] = whole.success ? [] : [...whole.error.issues];
  environmentRules(sections, (issue) => issues.push(issue));
  return { data: whole.success && issues.length === 0 ? whole.data : undefined, issues, requiredSecrets };
}

/**
 * A section with its broken fields dropped (so defaults stand in), for the
 * cross-field rules to run on; the broken fields are reported by the strict parse.
 */
function parseLeniently(schema: z.ZodType, value: unknown): unknown {
  const first = schema.safeParse(value);
  if (first.success) return first.data;
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const broken = new Set(
    first.error.issues.flatMap((i) => (i.code === "unrecognized_keys" ? i.keys : [i.path[0]])).filter((k) => k !== "mode"),
  );
  const rest = Object.fromEntries(Object.entries(value).filter(([k]) => !broken.has(k)));
  const second = schema.safeParse(rest);
  return second.success ? second.data : undefined;
}

function environmentRules(cfg: Sections, addIssue: (issue: SchemaIssue) => void): void {
  const env = cfg.environment;
  if (!env) return;
  for (const [service, store] of [
    ["postgres", cfg.postgres],
    ["redis", cfg.redis],
  ] as const) {
    if (store?.mode !== "container") continue;
    if (env === "production" && !isPinnedImage(store.image)) {
      const repo = parseImageReference(store.image).repository;
      addIssue({
        code: "custom",
        path: [service, "image"],
        message: "production needs an immutable image: a digest (@sha256:...) or a version tag with major.minor",
        params: { fix: `pulumi config set --path ${service}.image ${repo}:<major.minor>` },
      });
    }
    if (env === "production" && store.protectVolume === false) {
      addIssue({
        code: "custom",
        path: [service, "protectVolume"],
        message: "production data volumes are always protected",
        params: { fix: `pulumi config rm --path ${service}.protectVolume` },
      });
    }
    if (env !== "dev" && store.hostPort !== undefined) {
      addIssue({
        code: "custom",
        path: [service, "hostPort"],
        message: `data stores publish no host port outside dev (this stack is ${env})`,
        params: { fix: `pulumi config rm --path ${service}.hostPort` },
      });
    }
  }
  const redis = cfg.redis;
  if (redis?.mode === "container" && redis.maxmemoryMb >= redis.memoryMb) {
    addIssue({
      code: "custom",
      path: ["redis", "maxmemoryMb"],
      message: `Redis maxmemory (${redis.maxmemoryMb} MiB) must be below the container limit memoryMb (${redis.memoryMb} MiB), or the kernel kills Redis before it evicts`,
      params: { fix: `pulumi config set --path redis.maxmemoryMb ${Math.floor(redis.memoryMb * 0.75)}` },
    });
  }
}

export type AppConfigInput = z.input<typeof appConfigSchema>;
export type PostgresConfig = ParsedAppConfig["postgres"];
export type RedisConfig = ParsedAppConfig["redis"];
export type DockerConfig = ParsedAppConfig["docker"];

/** The secure top-level keys a parsed config needs. */
export function requiredSecretKeys(cfg: Sections): { key: string; usedBy: string }[] {
  const keys: { key: string; usedBy: string }[] = [];
  if (cfg.postgres?.mode === "external") keys.push({ key: cfg.postgres.urlSecret, usedBy: "postgres (external mode)" });
  if (cfg.redis?.mode === "external") keys.push({ key: cfg.redis.urlSecret, usedBy: "redis (external mode)" });
  return keys;
}
