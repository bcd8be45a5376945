import { z } from "zod";
import { DOCKER_TLS_SECRETS, dockerScheme, sshOptionProblems, transportProblem } from "./docker-transport";

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

/** The tag of an image reference (or the start of its digest), for version labels. */
export function imageVersion(ref: string): string {
  const { tag, digest } = parseImageReference(ref);
  if (digest) return digest.slice(0, 19);
  return tag ?? "latest";
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
    /**
     * Extra ssh options for an `ssh://` host, as `-o`, `Key=Value` pairs, e.g.
     * `["-o", "StrictHostKeyChecking=yes"]`. Only known-safe options are
     * accepted (config/docker-transport.ts); never StrictHostKeyChecking=no.
     */
    sshOpts: z.array(z.string()).optional(),
    /**
     * A `tcp://` host with TLS: the CA, client certificate and key come from the
     * secure keys dockerTlsCa, dockerTlsCert and dockerTlsKey. Required for
     * `tcp://` outside dev.
     */
    tls: z.boolean().optional(),
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

const envName = z
  .string()
  .regex(/^[A-Z_][A-Z0-9_]*$/, { message: "expected an environment variable name (A-Z, 0-9, _)" });

/** Plain settings such as feature flags (`MEMORY_SYSTEM_ENABLED: true`). Never secrets: use `secretEnv`. */
const plainEnv = z.record(envName, z.union([z.string(), z.number(), z.boolean()]).transform(String)).default({});

/**
 * Names of secrets the service receives as env vars. Each is a top-level
 * secure key of the same name: `pulumi config set --secret OPENAI_API_KEY ...`.
 */
const secretEnv = z.array(envName).default([]);

export const hostname = z
  .string()
  .regex(/^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, {
    message: "expected a lower-case DNS host name such as api.example.com (no scheme, port or path)",
  });

const httpPath = z.string().regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/, { message: "expected a URL path starting with /" });
const seconds = (def: number) => z.number().int().min(1).max(86_400).default(def);

/** A local image build (dev): the Dockerfile's directory, relative to the project. */
const buildSchema = z.strictObject({
  context: z.string().min(1),
  dockerfile: z.string().optional(),
  args: z.record(z.string(), z.string()).optional(),
});

/**
 * How the edge proxy checks each API container (components/edge.ts): two
 * failed readiness checks in a row take a container out, so a blip shorter
 * than one interval never does.
 */
export const EDGE_HEALTH = { intervalSeconds: 2, timeoutSeconds: 2, fails: 2, passes: 1 } as const;
/** Worst case from a container's readiness turning 503 (SIGTERM) to the edge sending it nothing new. */
export const EDGE_NOTICE_SECONDS = EDGE_HEALTH.intervalSeconds * EDGE_HEALTH.fails + EDGE_HEALTH.timeoutSeconds;
/** The shortest `api.stopTimeoutSeconds` behind the edge: its notice time, then a few seconds for requests in flight. */
export const MIN_API_STOP_TIMEOUT_SECONDS = EDGE_NOTICE_SECONDS + 4;

const apiSchema = z.strictObject({
  /** The API image; production needs a digest or a version tag. Changing it replaces the containers, new before old. */
  image: imageReference.optional(),
  /** Build the image locally instead (dev only). */
  build: buildSchema.optional(),
  /** The port the API listens on inside the container (passed as PORT). @default 3000 */
  port: port.default(3000),
  /** Containers behind the edge proxy. @default 1 */
  replicas: z.number().int().min(1).max(20).default(1),
  memoryMb: memoryMb.default(512),
  cpus: cpus.default("1"),
  health: z.strictObject({
    /** Liveness path, probed inside the container (e.g. /api/v1/health). */
    path: httpPath,
    /** Readiness path for the edge proxy and smoke checks. @default the liveness path */
    readyPath: httpPath.optional(),
    intervalSeconds: seconds(10),
    timeoutSeconds: seconds(3),
    retries: z.number().int().min(1).max(100).default(3),
    startPeriodSeconds: seconds(20),
    /** Replaces the default probe (`node -e fetch(...)`) for images without Node. */
    command: z.array(z.string()).min(1).optional(),
  }),
  /** The API's public host name (staging, production): the edge proxy gets its certificate. */
  domain: hostname.optional(),
  /** Publish on 127.0.0.1:<hostPort> (dev only). @default the API port, in dev */
  hostPort: port.optional(),
  env: plainEnv,
  secretEnv,
  /** A one-shot job from the API image that must succeed before any API container is replaced. */
  migrations: z
    .strictObject({
      command: z.array(z.string()).min(1),
      timeoutSeconds: seconds(600),
    })
    .optional(),
  /**
   * Seconds between SIGTERM and SIGKILL. On SIGTERM the API must answer its
   * readiness path with 503 at once, keep serving for the edge's notice time
   * (6 s), then finish requests in flight and exit (docs/zero-downtime.md).
   * Outside dev at least 10. @default 30
   */
  stopTimeoutSeconds: seconds(30),
  /** How long `pulumi up` waits for a new API container to turn healthy. @default 180 */
  healthTimeoutSeconds: seconds(180),
});

const workerHealth = z.discriminatedUnion(
  "type",
  [
    z.strictObject({
      type: z.literal("heartbeat"),
      /** A file the worker touches while it is alive. */
      file: z.string().regex(/^\//, { message: "expected an absolute path" }).default("/tmp/worker-heartbeat"),
      maxAgeSeconds: seconds(60),
    }),
    z.strictObject({ type: z.literal("process"), pattern: z.string().min(1) }),
    z.strictObject({ type: z.literal("command"), command: z.array(z.string()).min(1) }),
  ],
  { error: () => ({ message: 'expected health.type "heartbeat", "process" or "command"' }) },
);

const workerSchema = z.strictObject({
  /** @default the API's image */
  image: imageReference.optional(),
  build: buildSchema.optional(),
  /** What the container runs, e.g. ["node", "dist/workers/memory-worker.js"]. */
  command: z.array(z.string()).min(1, { message: "the worker needs a command" }),
  replicas: z.number().int().min(1).max(50).default(1),
  memoryMb: memoryMb.default(512),
  cpus: cpus.default("1"),
  /** Jobs one container runs at once, passed as `concurrencyEnv`. @default 5 */
  concurrency: z.number().int().min(1).max(1000).default(5),
  concurrencyEnv: envName.default("WORKER_CONCURRENCY"),
  health: workerHealth.default({ type: "heartbeat", file: "/tmp/worker-heartbeat", maxAgeSeconds: 60 }),
  /** Seconds between SIGTERM and SIGKILL, for the current job to finish. @default 60 */
  stopGracePeriodSeconds: seconds(60),
  env: plainEnv,
  secretEnv,
});

const frontendSchema = z.strictObject({
  /** `vercel` (staging, production) or a local `container` (dev). @default container in dev, vercel elsewhere */
  mode: z.enum(["vercel", "container"]).optional(),
  /** Custom domains; the first is the public URL. */
  domains: z.array(hostname).default([]),
  /** The env var the build reads the API URL from. @default VITE_API_URL */
  apiUrlEnv: envName.default("VITE_API_URL"),
  env: plainEnv,
  /** Secrets the frontend build receives; created as sensitive Vercel variables of the production target only. */
  secretEnv,
  /**
   * Names from `secretEnv` that preview deployments get too. Vercel builds a
   * preview for every branch of the web repository, so a secret there is
   * readable by anyone who can push one: opt in per variable, knowingly.
   * @default none
   */
  previewSecretEnv: z.array(envName).default([]),
  vercel: z
    .strictObject({
      /** Changing it creates a new Vercel project (and deletes the old one). */
      projectName: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,99}$/, { message: "expected a Vercel project name (a-z, 0-9, . _ -)" }),
      teamId: z.string().optional(),
      framework: z.string().default("vite"),
      buildCommand: z.string().optional(),
      installCommand: z.string().optional(),
      /** Where the build writes its files. @default "build" */
      outputDirectory: z.string().default("build"),
      rootDirectory: z.string().optional(),
      gitRepository: z.strictObject({
        type: z.enum(["github", "gitlab", "bitbucket"]).default("github"),
        repo: z.string().regex(/^[\w.-]+\/[\w.-]+$/, { message: "expected owner/name" }),
        productionBranch: z.string().default("main"),
      }),
      /** The git ref each deploy builds. @default the production branch */
      ref: z.string().optional(),
    })
    .optional(),
  /** Container mode: the static server image, or a build. */
  image: imageReference.optional(),
  build: buildSchema.optional(),
  /** Container mode: publish on 127.0.0.1:<hostPort>. @default 8080 */
  hostPort: port.optional(),
});

const edgeSchema = z.strictObject({
  image: imageReference.default("caddy:2.10.2-alpine"),
  /** Contact for the ACME (Let's Encrypt) account that issues the API's certificate. */
  acmeEmail: z.email({ message: "expected an e-mail address for the certificate authority" }),
  memoryMb: memoryMb.default(256),
  cpus: cpus.default("0.5"),
});

/** Env names appstack sets itself; a service's env must not set them. */
export const WIRED_ENV = ["PORT", "DATABASE_URL", "REDIS_URL", "CORS_ORIGIN", "FRONTEND_URL", "NODE_ENV", "APP_VERSION"] as const;

export const appConfigSchema = z.strictObject({
  environment: z.enum(ENVIRONMENTS, { message: `expected one of ${ENVIRONMENTS.join(", ")}` }),
  docker: dockerSchema,
  postgres: postgresSchema,
  redis: redisSchema,
  /** The release name for labels and outputs. @default the API image tag */
  release: z.string().regex(/^[\w.+-]{1,64}$/, { message: "expected a release name such as 1.4.2 or 2025-10-18.1" }).optional(),
  /**
   * Env names of secrets appstack generates (64 random characters each) and
   * gives to the API and the worker, e.g. JWT_SECRET, SESSION_SECRET.
   */
  generatedSecrets: z.array(envName).default([]),
  api: apiSchema.optional(),
  worker: workerSchema.optional(),
  frontend: frontendSchema.optional(),
  edge: edgeSchema.optional(),
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

type ImageSource = { image?: string; build?: unknown };

function imageRules(
  service: string,
  src: ImageSource,
  env: Environment,
  addIssue: (issue: SchemaIssue) => void,
  opts: { required: boolean; example: string },
): void {
  if (src.image && src.build) {
    addIssue({
      code: "custom",
      path: [service, "build"],
      message: `set either ${service}.image or ${service}.build, not both`,
      params: { fix: `pulumi config rm --path ${service}.build` },
    });
  }
  if (src.build && env !== "dev") {
    addIssue({
      code: "custom",
      path: [service, "build"],
      message: `${env} deploys image references, never local builds`,
      params: { fix: `pulumi config rm --path ${service}.build, then pulumi config set --path ${service}.image ${opts.example}` },
    });
  }
  if (opts.required && !src.image && !src.build) {
    addIssue({
      code: "custom",
      path: [service, "image"],
      message: `is required: the ${service} needs an image${env === "dev" ? ` (or ${service}.build.context)` : ""}`,
      params: { fix: `pulumi config set --path ${service}.image ${opts.example}` },
    });
  }
  if (src.image && env === "production" && !isPinnedImage(src.image)) {
    addIssue({
      code: "custom",
      path: [service, "image"],
      message: "production needs an immutable image: a digest (@sha256:...) or a version tag with major.minor",
      params: { fix: `pulumi config set --path ${service}.image ${parseImageReference(src.image).repository}:<major.minor>` },
    });
  }
}

function envRules(service: string, svc: { env: Record<string, string>; secretEnv: string[] }, addIssue: (issue: SchemaIssue) => void): void {
  for (const name of [...Object.keys(svc.env), ...svc.secretEnv]) {
    if ((WIRED_ENV as readonly string[]).includes(name)) {
      const where = name in svc.env ? "env" : "secretEnv";
      addIssue({
        code: "custom",
        path: [service, where, ...(where === "env" ? [name] : [svc.secretEnv.indexOf(name)])],
        message: `${name} is wired by appstack (from the data stores, the frontend and the release); setting it here would override that`,
        params: { fix: `pulumi config rm --path ${service}.${where === "env" ? `env.${name}` : `secretEnv[${svc.secretEnv.indexOf(name)}]`}` },
      });
    }
  }
  for (const name of svc.secretEnv) {
    if (name in svc.env) {
      addIssue({
        code: "custom",
        path: [service, "env", name],
        message: `${name} is listed in ${service}.secretEnv too; a secret is never also a plain setting`,
        params: { fix: `pulumi config rm --path ${service}.env.${name}` },
      });
    }
  }
}

/** Where the frontend runs: its own setting, else a container in dev and Vercel elsewhere. */
export function frontendMode(cfg: Pick<ParsedAppConfig, "environment" | "frontend">): "vercel" | "container" {
  return cfg.frontend?.mode ?? (cfg.environment === "dev" ? "container" : "vercel");
}

function serviceRules(cfg: Sections, env: Environment, addIssue: (issue: SchemaIssue) => void): void {
  const { api, worker, frontend, edge } = cfg;
  (cfg.generatedSecrets ?? []).forEach((name, i) => {
    const clash = (WIRED_ENV as readonly string[]).includes(name)
      ? "is wired by appstack"
      : [api, worker].some((svc) => svc?.secretEnv.includes(name) || (svc && name in svc.env))
        ? "is also set by a service's env or secretEnv"
        : undefined;
    if (clash) {
      addIssue({
        code: "custom",
        path: ["generatedSecrets", i],
        message: `${name} ${clash}; a generated secret must have a name of its own`,
        params: { fix: `pulumi config rm --path generatedSecrets[${i}]` },
      });
    }
  });
  if (api) {
    imageRules("api", api, env, addIssue, { required: true, example: "ghcr.io/acme/api:1.0.0" });
    envRules("api", api, addIssue);
    if (env !== "dev") {
      if (!api.domain) {
        addIssue({
          code: "custom",
          path: ["api", "domain"],
          message: `is required in ${env}: the API is served over HTTPS on this host name by the edge proxy`,
          params: { fix: "pulumi config set --path api.domain api.example.com" },
        });
      }
      if (api.stopTimeoutSeconds < MIN_API_STOP_TIMEOUT_SECONDS) {
        addIssue({
          code: "custom",
          path: ["api", "stopTimeoutSeconds"],
          message:
            `is shorter than the ${MIN_API_STOP_TIMEOUT_SECONDS} s a replica needs behind the edge: the edge notices a draining replica ` +
            `within ${EDGE_NOTICE_SECONDS} s (readiness 503 on SIGTERM), then requests in flight must finish before SIGKILL`,
          params: { fix: `pulumi config set --path api.stopTimeoutSeconds ${MIN_API_STOP_TIMEOUT_SECONDS}` },
        });
      }
      if (api.hostPort !== undefined) {
        addIssue({
          code: "custom",
          path: ["api", "hostPort"],
          message: `only the edge proxy publishes ports in ${env}`,
          params: { fix: "pulumi config rm --path api.hostPort" },
        });
      }
      if (!edge) {
        addIssue({
          code: "custom",
          path: ["edge"],
          message: `is required in ${env}: the edge proxy terminates HTTPS for the API`,
          params: { fix: "pulumi config set --path edge.acmeEmail ops@example.com" },
        });
      }
    }
  }
  if (edge) {
    imageRules("edge", edge, env, addIssue, { required: false, example: "caddy:2.10.2-alpine" });
    if (env === "dev") {
      addIssue({
        code: "custom",
        path: ["edge"],
        message: "has no effect in dev: the API is published on 127.0.0.1 instead",
        params: { fix: "pulumi config rm edge" },
      });
    }
  }
  if (worker) {
    imageRules("worker", worker, env, addIssue, { required: !api, example: "ghcr.io/acme/worker:1.0.0" });
    envRules("worker", worker, addIssue);
  }
  if (frontend) {
    envRules("frontend", frontend, addIssue);
    frontend.previewSecretEnv.forEach((name, i) => {
      if (!frontend.secretEnv.includes(name)) {
        addIssue({
          code: "custom",
          path: ["frontend", "previewSecretEnv", i],
          message: `${name} is not in frontend.secretEnv: only a secret the frontend has can also go to preview deployments`,
          params: { fix: `pulumi config rm --path 'frontend.previewSecretEnv[${i}]'` },
        });
      }
    });
    const mode = frontendMode({ environment: env, frontend });
    if (mode === "container") {
      if (env !== "dev") {
        addIssue({
          code: "custom",
          path: ["frontend", "mode"],
          message: `a container frontend is for dev; ${env} serves the frontend from Vercel`,
          params: { fix: "pulumi config set --path frontend.mode vercel" },
        });
      }
      imageRules("frontend", frontend, env, addIssue, { required: true, example: "ghcr.io/acme/web:1.0.0" });
    } else if (!frontend.vercel) {
      addIssue({
        code: "custom",
        path: ["frontend", "vercel"],
        message: "is required for a Vercel frontend: the project name and its git repository",
        params: {
          fix: "pulumi config set --path frontend.vercel.projectName acme-web && pulumi config set --path frontend.vercel.gitRepository.repo acme/web",
        },
      });
    }
  }
}

/** How the stack reaches its Docker engine: authenticated both ways outside dev; only known-safe ssh options anywhere. */
function transportRules(docker: NonNullable<Sections["docker"]>, env: Environment, addIssue: (issue: SchemaIssue) => void): void {
  const scheme = dockerScheme(docker.host);
  const toSsh = "pulumi config set --path docker.host ssh://deploy@<host>";
  const problem = env === "dev" ? undefined : transportProblem(docker.host, docker.tls === true);
  if (problem) {
    addIssue({
      code: "custom",
      path: ["docker", "host"],
      message: `${problem} (this stack is ${env})`,
      params: {
        fix:
          scheme === "tcp"
            ? `${toSsh}  (or keep tcp:// with TLS: pulumi config set --path docker.tls true && ` +
              `pulumi config set --secret ${DOCKER_TLS_SECRETS.ca} < ca.pem && pulumi config set --secret ${DOCKER_TLS_SECRETS.cert} < cert.pem && ` +
              `pulumi config set --secret ${DOCKER_TLS_SECRETS.key} < key.pem)`
            : toSsh,
      },
    });
  }
  if (docker.tls !== undefined && scheme !== "tcp") {
    addIssue({
      code: "custom",
      path: ["docker", "tls"],
      message: "applies to tcp:// hosts only",
      params: { fix: "pulumi config rm --path docker.tls" },
    });
  }
  if (docker.sshOpts && scheme !== "ssh") {
    addIssue({
      code: "custom",
      path: ["docker", "sshOpts"],
      message: "applies to ssh:// hosts only",
      params: { fix: "pulumi config rm --path docker.sshOpts" },
    });
  }
  const problems = sshOptionProblems(docker.sshOpts ?? []);
  if (problems.length > 0) {
    const fix = `${rewriteSshOpts(safeSshOpts(docker.sshOpts ?? []))}; ssh settings this list does not allow belong in ~/.ssh/config, ` +
      "and the host's key, checked out of band, in ~/.ssh/known_hosts";
    for (const p of problems) addIssue({ code: "custom", path: ["docker", "sshOpts", p.index], message: p.message, params: { fix } });
  }
}

/** The allowed `-o` options of a list, StrictHostKeyChecking turned to yes, as `-o`, `Key=Value` pairs. */
function safeSshOpts(opts: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < opts.length; i++) {
    const option = opts[i] === "-o" ? opts[++i] : opts[i].startsWith("-o") ? opts[i].slice(2) : undefined;
    if (option === undefined) continue;
    const fixed = /^\s*StrictHostKeyChecking\b/i.test(option) ? "StrictHostKeyChecking=yes" : option;
    if (sshOptionProblems(["-o", fixed]).length === 0) out.push("-o", fixed);
  }
  return out;
}

/** A value as one shell word: as is when it is plain, else single-quoted. */
const shellWord = (v: string) => (/^[\w.,:=/@%+-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);

/** The commands that replace docker.sshOpts with `opts`. */
function rewriteSshOpts(opts: string[]): string {
  return [
    "pulumi config rm --path docker.sshOpts",
    ...opts.map((o, i) => `pulumi config set --path 'docker.sshOpts[${i}]' ${o.startsWith("-") ? "-- " : ""}${shellWord(o)}`),
  ].join(" && ");
}

function environmentRules(cfg: Sections, addIssue: (issue: SchemaIssue) => void): void {
  const env = cfg.environment;
  if (!env) return;
  if (cfg.docker) transportRules(cfg.docker, env, addIssue);
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
  serviceRules(cfg, env, addIssue);
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
  const users = new Map<string, string[]>();
  for (const service of ["api", "worker", "frontend"] as const) {
    for (const name of cfg[service]?.secretEnv ?? []) users.set(name, [...(users.get(name) ?? []), `${service}.secretEnv`]);
  }
  for (const [key, by] of users) keys.push({ key, usedBy: by.join(" and ") });
  if (cfg.frontend && cfg.environment && frontendMode({ environment: cfg.environment, frontend: cfg.frontend }) === "vercel") {
    keys.push({ key: "vercelApiToken", usedBy: "the Vercel frontend (a Vercel access token)" });
  }
  if (cfg.docker?.tls) {
    for (const [part, key] of Object.entries(DOCKER_TLS_SECRETS)) keys.push({ key, usedBy: `docker.tls (the ${part === "ca" ? "CA certificate" : part === "cert" ? "client certificate" : "client key"}, PEM)` });
  }
  if (cfg.postgres?.mode === "external") keys.push({ key: cfg.postgres.urlSecret, usedBy: "postgres (external mode)" });
  if (cfg.redis?.mode === "external") keys.push({ key: cfg.redis.urlSecret, usedBy: "redis (external mode)" });
  return keys;
}
