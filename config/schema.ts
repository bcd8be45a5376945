import { z } from "zod";
import { backupRules, interval, RESTIC_IMAGE } from "./backup";
import { HEALTH_INTERVAL_SECONDS } from "./docker-engine";
import { DOCKER_TLS_SECRETS, dockerScheme, sshOptionProblems, transportProblem } from "./docker-transport";
import { replaceListSteps, type FixStep } from "./fix";
import { SWARM_LABEL_VALUE, swarmRules } from "./swarm";
import { serviceWiredEnv, wiredNameRules, wiringRules, WIRED_ENV } from "./wiring";

export { HEARTBEAT_ENV, WIRED_ENV } from "./wiring";

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

/**
 * A fix travels with a custom issue as `params.fix`: the `pulumi config`
 * steps that fix it (see config/fix.ts), and a note for what a command cannot
 * say (an example value, a choice).
 */
export interface IssueParams {
  fix?: FixStep[];
  note?: string;
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

/** The tag of an image reference (else the start of its digest), for version labels: `repo:1.5.0@sha256:...` is release 1.5.0. */
export function imageVersion(ref: string): string {
  const { tag, digest } = parseImageReference(ref);
  if (tag) return tag;
  if (digest) return digest.slice(0, 19);
  return "latest";
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
/**
 * A CPU limit. A number or a string: `pulumi config set --path x.cpus 2`
 * stores an integer, and that must not be an error.
 */
const cpus = z
  .union([z.number().positive(), z.string().regex(/^\d+(\.\d+)?$/, { message: 'expected a number of CPUs, e.g. 2 or "0.5"' })], {
    error: () => ({ message: 'expected a number of CPUs, e.g. 2 or "0.5"' }),
  })
  .transform(String);

const dockerSchema = z
  .strictObject({
    /**
     * The Docker engine the stack's containers run on: `unix:///var/run/docker.sock`
     * locally (dev only), `ssh://deploy@host` for a remote engine (its host key must be in
     * `~/.ssh/known_hosts`; `deploy` checks it before anything changes), or
     * `tcp://host:2376` with `tls: true`. Outside dev it must be one of the last two:
     * every secret of the stack crosses this connection, and it is root on the host.
     */
    host: z
      .string()
      .regex(/^(unix|ssh|tcp|npipe):\/\/\S+$/, { message: "expected a Docker host URL: unix://, ssh:// or tcp://" })
      .default("unix:///var/run/docker.sock"),
    /**
     * Extra ssh options for an `ssh://` host, as `-o`, `Key=Value` pairs, e.g.
     * `["-o", "StrictHostKeyChecking=yes"]`. Only known-safe options are
     * accepted (config/docker-transport.ts), in every environment; never
     * StrictHostKeyChecking=no. An error with any other host.
     */
    sshOpts: z.array(z.string()).optional(),
    /**
     * A `tcp://` host with TLS: the CA, client certificate and key come from the
     * secure keys dockerTlsCa, dockerTlsCert and dockerTlsKey. Required for
     * `tcp://` outside dev.
     */
    tls: z.boolean().optional(),
    /**
     * `host`: every container runs on the one engine at `docker.host`.
     * `swarm`: `docker.host` is a Swarm manager; the API, the worker, Postgres,
     * Redis and the edge become Swarm services (rolling start-first updates,
     * automatic rollback, secrets as files), spread over the swarm's nodes.
     * Switching a stack with data: docs/swarm.md.
     */
    mode: z.enum(["host", "swarm"], { message: 'expected "host" or "swarm"' }).default("host"),
  })
  .default({ host: "unix:///var/run/docker.sock", mode: "host" });

/**
 * Swarm mode: the value of the node label `appstack.node` on the node that
 * holds a data store's volume (`docker node update --label-add
 * appstack.node=<value> <node>`). The store's service runs on that node
 * only, so it never starts where its data is not. Required outside dev; in
 * dev the store runs on a manager. An error in host mode.
 */
const dataNode = z.string().regex(SWARM_LABEL_VALUE, { message: "expected a node label value such as db-1 (letters, digits, . _ -)" }).optional();

/**
 * Swarm mode: the owner of the secret files in `/run/secrets/` (mode 0400):
 * the user the image runs as. An error in host mode.
 * @default uid 1000 and gid 1000, the `node` user of the official Node images
 */
const secretFiles = z
  .strictObject({
    /** The numeric user ID the files belong to. */
    uid: z.number().int().min(0).max(2_147_483_647).default(1000),
    /** The numeric group ID the files belong to. */
    gid: z.number().int().min(0).max(2_147_483_647).default(1000),
  })
  .optional();

/** What every data-store container shares. */
const containerCommon = {
  /** Memory limit of the container in MiB. */
  memoryMb: memoryMb.default(512),
  /** CPU limit of the container, e.g. 2 or "0.5". */
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
  /** Seconds `pulumi up` waits for the container to turn healthy. */
  healthTimeoutSeconds: z.number().int().min(5).max(3600).default(120),
  /** Swarm mode: the node label value that pins the store to the node with its data (see `docker.mode`). */
  node: dataNode,
  /** Always 1: two servers on one data volume corrupt it. For replicas, use a managed service (`mode: external`). */
  replicas: z.number().int().min(1).optional(),
};

const postgresContainer = z.strictObject({
  /** `container`: Postgres runs on the stack's Docker host, with a generated password and a data volume. */
  mode: z.literal("container"),
  /** The server image. Changing the major version needs a dump and restore: the data directory is not compatible. */
  image: imageReference.default("postgres:17.6-alpine"),
  /** The database the app uses. Changing it on a stack with data creates an empty database; the old one stays in the volume. */
  database: identifier.default("app"),
  /** The role the app connects as (its password is generated). */
  user: identifier.default("app"),
  ...containerCommon,
});

const postgresExternal = z.strictObject({
  /** `external`: a managed database (Supabase and the like); the stack runs no Postgres container. */
  mode: z.literal("external"),
  /** The secure key holding the managed database URL, which the API and worker get as `DATABASE_URL`. */
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
  /** `container`: Redis runs on the stack's Docker host, with a generated password and a data volume. */
  mode: z.literal("container"),
  /** The server image. */
  image: imageReference.default("redis:7.4.6-alpine"),
  /** Redis's own memory cap in MiB; must stay below the container's `memoryMb`. */
  maxmemoryMb: z.number().int().min(1).default(256),
  /**
   * What Redis does at `maxmemory`. A job queue must not lose jobs, so the
   * default refuses writes instead of evicting keys.
   */
  maxmemoryPolicy: z.enum(MAXMEMORY_POLICIES).default("noeviction"),
  /** Append-only file persistence, fsync every second. */
  appendonly: z.boolean().default(true),
  ...containerCommon,
});

const redisExternal = z.strictObject({
  /** `external`: a managed Redis (Redis Cloud and the like); the stack runs no Redis container. */
  mode: z.literal("external"),
  /** The secure key holding the managed Redis URL, which the API and worker get as `REDIS_URL`. */
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

/**
 * Plain settings such as feature flags (`MEMORY_SYSTEM_ENABLED: true`). Never secrets: use `secretEnv`.
 * A name appstack sets for the service (WIRED_ENV; the worker's `concurrencyEnv` and heartbeat file;
 * the frontend's `apiUrlEnv` when the stack has an API) is an error here: its value would be dropped.
 */
const plainEnv = z.record(envName, z.union([z.string(), z.number(), z.boolean()]).transform(String)).default({});

/**
 * Names of secrets the service receives as env vars. Each is a top-level
 * secure key of the same name: `pulumi config set --secret OPENAI_API_KEY`.
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
  /** The build context: a directory relative to the project, e.g. `examples/app`. */
  context: z.string().min(1),
  /** The Dockerfile, relative to the context. @default Dockerfile */
  dockerfile: z.string().optional(),
  /** Build arguments (`ARG`). */
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

/**
 * Paths the service writes that are not volumes. The root filesystem is
 * read-only; each of these is a tmpfs (in memory, counted against `memoryMb`,
 * empty at every start). Add the directories your image writes to, e.g. a
 * cache; a path outside them fails with "Read-only file system".
 */
const writablePaths = z
  .array(z.string().regex(/^\/[^\s:,]*$/, { message: "expected an absolute path (no spaces, colons or commas)" }))
  .min(1)
  .default(["/tmp"]);

const apiSchema = z.strictObject({
  /** The API image; production needs a digest or a version tag. Changing it replaces the containers, new before old. */
  image: imageReference.optional(),
  /** Build the image locally instead (dev only). */
  build: buildSchema.optional(),
  /** The port the API listens on inside the container (passed as `PORT`). */
  port: port.default(3000),
  /** Containers behind the edge proxy. */
  replicas: z.number().int().min(1).max(20).default(1),
  /** Memory limit of each container in MiB. */
  memoryMb: memoryMb.default(512),
  /** CPU limit of each container, e.g. 2 or "0.5". */
  cpus: cpus.default("1"),
  /** The container health check `pulumi up` waits for. */
  health: z.strictObject({
    /** Liveness path, probed inside the container (e.g. /api/v1/health). */
    path: httpPath,
    /** Readiness path for the edge proxy and smoke checks. @default the liveness path */
    readyPath: httpPath.optional(),
    /** Seconds between probes; the first runs one interval after the start (no health check sets startInterval, which Docker 20.10 lacks). */
    intervalSeconds: seconds(HEALTH_INTERVAL_SECONDS),
    /** Seconds one probe may take. */
    timeoutSeconds: seconds(3),
    /** Failed probes in a row before the container counts as unhealthy. */
    retries: z.number().int().min(1).max(100).default(3),
    /** Seconds after start during which failed probes do not count. */
    startPeriodSeconds: seconds(20),
    /**
     * Replaces the default probe (`node -e fetch(...)`, which needs Node in the
     * image) for images without Node, e.g. `["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:3000/health"]`.
     * `path` still is the readiness default.
     */
    command: z.array(z.string()).min(1).optional(),
  }),
  /** The API's public host name (staging, production): the edge proxy gets its certificate. An error in dev, which has no edge. */
  domain: hostname.optional(),
  /** Publish on 127.0.0.1:<hostPort> (dev only). @default the API port, in dev */
  hostPort: port.optional(),
  /** Plain settings such as feature flags (`MEMORY_SYSTEM_ENABLED: true`). Never secrets: use `secretEnv`. */
  env: plainEnv,
  /** Names of secrets the API gets as env vars; each is a top-level secure key of the same name. */
  secretEnv,
  /** A one-shot job from the API image that must succeed before any API container is replaced. */
  migrations: z
    .strictObject({
      /** What the job runs, e.g. `["npm", "run", "db:migrate"]`; a non-zero exit stops the deploy. */
      command: z.array(z.string()).min(1),
      /** Seconds the job may run before the deploy gives up. */
      timeoutSeconds: seconds(600),
    })
    .optional(),
  /**
   * Seconds between SIGTERM and SIGKILL. On SIGTERM the API must answer its
   * readiness path with 503 at once, keep serving for the edge's notice time
   * (6 s), then finish requests in flight and exit (docs/zero-downtime.md).
   * Outside dev at least 10.
   */
  stopTimeoutSeconds: seconds(30),
  /** Paths the API (and its migrations) write that are not volumes: tmpfs on the read-only root filesystem. */
  writablePaths,
  /** How long `pulumi up` waits for a new API container to turn healthy. */
  healthTimeoutSeconds: seconds(180),
  /** Swarm mode: the owner of the API's secret files (`/run/secrets/<NAME>`, mode 0400): the user the image runs as. */
  secretFiles,
});

/** The worker health check: one of three kinds, by `type` (see `worker.health`). */
const workerHealth = z.discriminatedUnion(
  "type",
  [
    z.strictObject({
      /** `process`: healthy while the worker's process runs (the default). */
      type: z.literal("process"),
      /** Text the process's command line contains. @default the worker's `command`, joined by spaces */
      pattern: z.string().min(1).optional(),
      /** Seconds a matching process must have run before the check passes. */
      upSeconds: z.number().int().min(0).max(3600).default(10),
    }),
    z.strictObject({
      /** `heartbeat`: healthy while the worker keeps touching a file (recommended: it also catches a hung worker). */
      type: z.literal("heartbeat"),
      /** The file the worker touches while it is alive; the worker gets its path as `HEARTBEAT_FILE` (which its `env` may then not set). */
      file: z.string().regex(/^\//, { message: "expected an absolute path" }).default("/tmp/worker-heartbeat"),
      /** The oldest the file may be, in seconds. */
      maxAgeSeconds: seconds(60),
    }),
    z.strictObject({
      /** `command`: healthy while the command exits 0. */
      type: z.literal("command"),
      /** Run in the container without a shell, e.g. `["/app/worker", "--health"]`. */
      command: z.array(z.string()).min(1),
    }),
  ],
  { error: () => ({ message: 'expected health.type "process", "heartbeat" or "command"' }) },
);

export type WorkerHealth = z.output<typeof workerHealth>;

const workerSchema = z.strictObject({
  /** The worker image; production needs a digest or a version tag. @default the API's image */
  image: imageReference.optional(),
  /** Build the image locally instead (dev only). */
  build: buildSchema.optional(),
  /** What the container runs, e.g. `["node", "dist/workers/memory-worker.js"]`. */
  command: z.array(z.string()).min(1, { message: "the worker needs a command" }),
  /** Worker containers. */
  replicas: z.number().int().min(1).max(50).default(1),
  /** Memory limit of each container in MiB. */
  memoryMb: memoryMb.default(512),
  /** CPU limit of each container, e.g. 2 or "0.5". */
  cpus: cpus.default("1"),
  /** Jobs one container runs at once, passed as `concurrencyEnv`. */
  concurrency: z.number().int().min(1).max(1000).default(5),
  /**
   * The env var that carries `concurrency`. appstack sets it, so the worker's `env` and `secretEnv`
   * may not name it, and it may not be a name appstack wires.
   */
  concurrencyEnv: envName.default("WORKER_CONCURRENCY"),
  /**
   * How Docker decides a worker container is healthy; `pulumi up` waits until
   * it is (`wait: true`).
   *
   * The default, `process`, asks nothing of the worker: it passes once a
   * process whose command line contains `pattern` (by default the worker's own
   * `command`) has run for `upSeconds`, so a worker that crashes at start, or
   * soon after, fails the deploy. It cannot see a worker that hangs with its
   * process alive; for that, opt in to `heartbeat` and have the worker touch
   * the file named by `$HEARTBEAT_FILE` at least every `maxAgeSeconds`. The
   * heartbeat is not the default because a worker that does not write one is
   * never healthy: every deploy of it would fail after the health timeout,
   * with the migrations run and the API already replaced.
   *
   * `process` and `heartbeat` run `node` inside the container (no shell, no
   * `pgrep`), as the API's default probe does. An image without Node sets
   * `{type: command, command: [...]}` with a program the image has.
   */
  health: workerHealth.default({ type: "process", upSeconds: 10 }),
  /**
   * How long `pulumi up` waits for a new worker container to turn healthy.
   * @default 150; with a heartbeat, `maxAgeSeconds` + 120
   */
  healthTimeoutSeconds: z.number().int().min(1).max(86_400).optional(),
  /** Seconds between SIGTERM and SIGKILL, for the current job to finish. */
  stopGracePeriodSeconds: seconds(60),
  /** Paths the worker writes that are not volumes (the heartbeat file's folder among them): tmpfs on the read-only root filesystem. */
  writablePaths,
  /** Plain settings such as feature flags. Never secrets: use `secretEnv`. */
  env: plainEnv,
  /**
   * Names of secrets the worker gets as env vars; each is a top-level secure
   * key. The worker does not inherit the API's: list here what it uses.
   */
  secretEnv,
  /** Swarm mode: the owner of the worker's secret files (`/run/secrets/<NAME>`, mode 0400): the user the image runs as. */
  secretFiles,
});

/**
 * Where a framework's build writes its files: the default of
 * `frontend.vercel.outputDirectory`. `null`: Vercel's own builder for that
 * framework decides, and appstack sets none. Any other framework needs
 * `outputDirectory` set.
 */
export const FRAMEWORK_OUTPUT_DIRECTORY: Readonly<Record<string, string | null>> = {
  vite: "dist",
  "create-react-app": "build",
  vue: "dist",
  astro: "dist",
  parcel: "dist",
  nextjs: null,
  nuxtjs: null,
  sveltekit: null,
  remix: null,
};

/** The output directory a Vercel project gets: the configured one, else the framework's. */
export function vercelOutputDirectory(vc: { framework: string; outputDirectory?: string }): string | undefined {
  return vc.outputDirectory ?? FRAMEWORK_OUTPUT_DIRECTORY[vc.framework] ?? undefined;
}

const frontendSchema = z.strictObject({
  /** `vercel` (staging, production) or a local `container` (dev). @default container in dev, vercel elsewhere */
  mode: z.enum(["vercel", "container"]).optional(),
  /**
   * Custom domains; the first is the public URL. Without one, the URL is https://<projectName>.vercel.app.
   * Vercel only: an error for a container frontend, which is served on localhost.
   */
  domains: z.array(hostname).default([]),
  /**
   * The env var the build reads the API URL from. When the stack has an `api`, appstack sets it, and
   * `env` and `secretEnv` may not name it; without one nothing is wired and `env` may set it.
   */
  apiUrlEnv: envName.default("VITE_API_URL"),
  /** Plain build variables, e.g. `VITE_FEATURE_X: true`. */
  env: plainEnv,
  /**
   * Vercel: secrets the frontend build receives, as sensitive variables of the production target only.
   * An error for a container frontend, whose image would keep them.
   */
  secretEnv,
  /**
   * Vercel: names from `secretEnv` that preview deployments get too. Vercel
   * builds a preview for every branch of the web repository, so a secret
   * there is readable by anyone who can push one: opt in per variable, knowingly.
   */
  previewSecretEnv: z.array(envName).default([]),
  /** The Vercel project (vercel mode); an error for a container frontend. */
  vercel: z
    .strictObject({
      /** Changing it creates a new Vercel project (and deletes the old one). */
      projectName: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,99}$/, { message: "expected a Vercel project name (a-z, 0-9, . _ -)" }),
      /** The Vercel team that owns the project. @default the token's personal account */
      teamId: z.string().optional(),
      /** Vercel's framework preset, e.g. `vite`, `nextjs`, `create-react-app`. */
      framework: z.string().default("vite"),
      /** The build command. @default the framework's (Vercel's preset) */
      buildCommand: z.string().optional(),
      /** The install command. @default Vercel's (by lock file) */
      installCommand: z.string().optional(),
      /**
       * Where the build writes its files. Required for a framework appstack
       * knows no default for.
       * @default the framework's: `dist` for vite, vue, astro and parcel, `build` for create-react-app; Vercel's builder decides for nextjs, nuxtjs, sveltekit and remix
       */
      outputDirectory: z.string().min(1).optional(),
      /** The app's directory in the repository, for a monorepo. @default the repository root */
      rootDirectory: z.string().optional(),
      /** The repository Vercel builds from. */
      gitRepository: z.strictObject({
        /** Where the repository is hosted. */
        type: z.enum(["github", "gitlab", "bitbucket"]).default("github"),
        /** `owner/name`. */
        repo: z.string().regex(/^[\w.-]+\/[\w.-]+$/, { message: "expected owner/name" }),
        /** The branch Vercel treats as production. */
        productionBranch: z.string().default("main"),
      }),
      /** The git ref each deploy builds. @default the production branch */
      ref: z.string().optional(),
    })
    .optional(),
  /**
   * Container mode: the static server image (or `build`: `frontend.env` and the API URL become build
   * args, over `build.args`). An error on Vercel.
   */
  image: imageReference.optional(),
  /** Container mode: build the image locally instead (dev only). */
  build: buildSchema.optional(),
  /** Container mode: publish on 127.0.0.1:<hostPort>; an error on Vercel. @default 8080 */
  hostPort: port.optional(),
});

const edgeSchema = z.strictObject({
  /** The Caddy image of the edge proxy. */
  image: imageReference.default("caddy:2.10.2-alpine"),
  /** Contact for the ACME (Let's Encrypt) account that issues the API's certificate. */
  acmeEmail: z.email({ message: "expected an e-mail address for the certificate authority" }),
  /** Memory limit of the proxy container in MiB. */
  memoryMb: memoryMb.default(256),
  /** CPU limit of the proxy container, e.g. 2 or "0.5". */
  cpus: cpus.default("0.5"),
});

/** The name of a top-level secure key (`pulumi config set --secret NAME`). */
const secretKeyName = z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, { message: "expected the name of a secure key: letters, digits and _" });

/** What the restore drill runs in the throwaway database by default: the number of tables. */
export const DEFAULT_DRILL_QUERY = "SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')";

const offsiteSchema = z.strictObject({
  /**
   * The restic image that ships each dump to the repository; production needs
   * a digest or a version tag.
   */
  image: imageReference.default(RESTIC_IMAGE),
  /**
   * The secure key that holds the restic repository: `s3:<host>/<bucket>/<path>`,
   * `b2:<bucket>:<path>`, `sftp:<user>@<host>:<path>` or `rest:https://...`.
   * A secret because a REST URL carries its credentials. `pulumi up` checks
   * that restic supports it; `validate` cannot (it never decrypts).
   */
  repositorySecret: secretKeyName.default("resticRepository"),
  /**
   * The secure key that holds the repository password. restic encrypts every
   * copy with it: without it the copies cannot be read, so keep it outside
   * this host too (a password manager).
   */
  passwordSecret: secretKeyName.default("resticPassword"),
  /**
   * Names of secrets the backend reads from the environment, each a top-level
   * secure key of the same name: `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`
   * for S3, `B2_ACCOUNT_ID` and `B2_ACCOUNT_KEY` for B2.
   */
  secretEnv,
  /** Plain settings for the backend, e.g. `AWS_DEFAULT_REGION: eu-west-1`. Never secrets: use `secretEnv`. */
  env: plainEnv,
  /** sftp: the secure key that holds the private ssh key the copy logs in with (a key for the backups only). */
  sshKeySecret: secretKeyName.optional(),
  /** sftp: the server's host keys as known_hosts lines (`ssh-keyscan -t ed25519 host`); no other server is accepted. */
  knownHosts: z.array(z.string().regex(/^\S+ (?:ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)|sk-\S+) [A-Za-z0-9+/]+=*(?: .*)?$/, { message: "expected a known_hosts line: host key-type base64-key" })).optional(),
  /** Daily snapshots `restic forget` keeps (the newest of each day). At least 1. */
  keepDaily: z.number().int().min(1).max(3650).default(7),
  /** Weekly snapshots kept besides the daily ones; 0 keeps none. */
  keepWeekly: z.number().int().min(0).max(520).default(4),
  /** Monthly snapshots kept besides those; 0 keeps none. */
  keepMonthly: z.number().int().min(0).max(1200).default(12),
  /** How often `restic forget --prune` applies the retention: an interval, 1h to 30d. */
  pruneSchedule: interval("1h", "30d").default("24h"),
  /** How often `restic check` verifies the repository, 1h to 90d; a check that finds errors turns the container unhealthy. */
  checkSchedule: interval("1h", "90d").default("7d"),
  /** Share of the repository's data `restic check` reads back each time (`--read-data-subset`), in percent; 0 checks the structure only. */
  checkReadDataPercent: z.number().int().min(0).max(100).default(5),
  /** Memory limit of the container in MiB. */
  memoryMb: memoryMb.default(256),
  /** CPU limit of the container, e.g. 2 or "0.5". */
  cpus: cpus.default("0.5"),
});

export const backupSchema = z.strictObject({
  /**
   * How often the scheduled dump runs: an interval from 5m to 30d, a whole
   * number and a unit (`30m`, `6h`, `24h`, `7d`; not cron syntax). The first
   * runs when the container starts without a dump younger than this. A
   * backup older than twice the schedule turns its container unhealthy and
   * fails `status` and the deploy's smoke check.
   */
  schedule: interval("5m", "30d").default("24h"),
  /** Scheduled dumps kept in the backup volume; older ones are deleted after each new dump. */
  keep: z.number().int().min(1).max(1000).default(7),
  /** Memory limit of the scheduled-dump container in MiB. */
  memoryMb: memoryMb.default(256),
  /** CPU limit of the scheduled-dump container, e.g. 2 or "0.5". */
  cpus: cpus.default("1"),
  /** Seconds `pulumi up` waits for the first scheduled dump (and its off-host copy) of a new container. */
  healthTimeoutSeconds: z.number().int().min(30).max(86_400).default(1800),
  /**
   * Encrypted copies of every dump off the host, with restic. Required in
   * production by the policy pack: a dump on the database's own disk dies
   * with it.
   */
  offsite: offsiteSchema.optional(),
  /** `npm run restore -- --drill`: what it checks in the restored copy. */
  drill: z
    .strictObject({
      /** A query whose one value the drill prints, run in the throwaway database (the default counts the tables). */
      checkQuery: z.string().min(1).default(DEFAULT_DRILL_QUERY),
    })
    .default({ checkQuery: DEFAULT_DRILL_QUERY }),
});

export type BackupConfig = z.output<typeof backupSchema>;
export type OffsiteConfig = z.output<typeof offsiteSchema>;

/** The backup settings of a stack whose Postgres runs in a container: its own, else the defaults. */
export const backupSettings = (cfg: Pick<ParsedAppConfig, "backup">): BackupConfig => cfg.backup ?? backupSchema.parse({});

export const appConfigSchema = z.strictObject({
  /** `dev`, `staging` or `production`: selects the environment rules (production pins images, protects volumes...). */
  environment: z.enum(ENVIRONMENTS, { message: `expected one of ${ENVIRONMENTS.join(", ")}` }),
  /** The Docker engine of the stack. */
  docker: dockerSchema,
  /** The database: a container on the stack's Docker host, or an external (managed) one. @default a container */
  postgres: postgresSchema,
  /** The cache and job queue: a container on the stack's Docker host, or an external (managed) one. @default a container */
  redis: redisSchema,
  /**
   * Scheduled dumps of a Postgres that runs in a container, and their
   * encrypted copies off the host. On by default (daily, 7 kept); an error
   * with an external Postgres, which its provider backs up.
   * @default daily dumps, 7 kept, no off-host copy
   */
  backup: backupSchema.optional(),
  /** The release name for labels and outputs. @default the API image tag */
  release: z.string().regex(/^[\w.+-]{1,64}$/, { message: "expected a release name such as 1.4.2 or 2025-10-18.1" }).optional(),
  /**
   * Env names of secrets appstack generates (64 random characters each) and
   * gives to the API and the worker, e.g. JWT_SECRET, SESSION_SECRET. An error
   * in a stack with neither.
   */
  generatedSecrets: z.array(envName).default([]),
  /** The HTTP API: containers behind the edge proxy, after the migrations. */
  api: apiSchema.optional(),
  /** The background worker: containers that start once the API is healthy. */
  worker: workerSchema.optional(),
  /** The web frontend: a Vercel project, or a local container in dev. */
  frontend: frontendSchema.optional(),
  /** The edge proxy (Caddy) in front of the API, with HTTPS (staging, production); an error in dev or without an `api`. */
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

export interface ParseOptions {
  /** The stack's name, for the fix commands of the rules that print one with `-s`. */
  stack?: string;
  /**
   * A secure key's value where the engine decrypted it, for the rules that
   * must read one (is the off-host repository one restic supports); undefined
   * offline, where nothing is decrypted.
   */
  secretValue?(key: string): string | undefined;
}

/** The key paths a schema issue is about (an unknown-keys issue is about each key). */
function issuePaths(issue: SchemaIssue): PropertyKey[][] {
  return issue.code === "unrecognized_keys" ? issue.keys.map((k) => [...issue.path, k]) : [issue.path];
}

const related = (a: PropertyKey[], b: PropertyKey[]) => {
  const n = Math.min(a.length, b.length);
  return a.slice(0, n).every((seg, i) => seg === b[i]);
};

/**
 * Parses raw `appstack:` settings. Each section is parsed on its own as well,
 * so environment rules and secret requirements are checked even when another
 * section is broken: the user sees every problem in one run. A rule is not
 * reported for a key the schema already reported (or one inside or around
 * it): a domain given as `https://api.x.dev` is one problem, not also
 * "api.domain is required".
 */
export function parseAppConfig(raw: Record<string, unknown>, opts: ParseOptions = {}): ParseResult {
  const sections: Sections = {};
  for (const [key, schema] of Object.entries(appConfigSchema.shape)) {
    const section = parseLeniently(schema as z.ZodType, raw[key]);
    if (section !== undefined) (sections as Record<string, unknown>)[key] = section;
  }
  const requiredSecrets = requiredSecretKeys(sections);
  const settings = Object.fromEntries(Object.entries(raw).filter(([k]) => !requiredSecrets.some((s) => s.key === k)));
  const whole = appConfigSchema.safeParse(settings);
  const issues: SchemaIssue[] = whole.success ? [] : [...whole.error.issues];
  const reported = issues.flatMap(issuePaths);
  // A section that is set but broken still counts as there: its own problems are reported, not its absence.
  const present = new Set(Object.keys(raw).filter((k) => raw[k] !== undefined));
  environmentRules(sections, present, { stack: opts.stack, secretValue: opts.secretValue ?? (() => undefined) }, (issue) => {
    if (!reported.some((p) => related(p, issue.path))) issues.push(issue);
  });
  return { data: whole.success && issues.length === 0 ? whole.data : undefined, issues, requiredSecrets };
}

/**
 * A section with its broken settings dropped (so defaults stand in), for the
 * cross-field rules to run on; the broken settings are reported by the strict
 * parse. A nested setting is dropped alone where that suffices (a bad
 * `backup.offsite.keepDaily` keeps the rest of `backup.offsite`, and the
 * secrets it names still count as used); else each broken top-level field.
 */
function parseLeniently(schema: z.ZodType, value: unknown): unknown {
  const first = schema.safeParse(value);
  if (first.success) return first.data;
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  let current: unknown = structuredClone(value);
  let issues = first.error.issues;
  for (let round = 0; round < 4; round++) {
    let removed = false;
    for (const i of issues) {
      for (const p of i.code === "unrecognized_keys" ? i.keys.map((k) => [...i.path, k]) : [i.path]) {
        // The discriminator stays (its problem is reported as it is); a bad list element drops the list.
        const at = typeof p[p.length - 1] === "number" ? p.slice(0, -1) : p;
        if (at.length === 0 || (at.length === 1 && at[0] === "mode")) continue;
        removed = deleteAt(current, at) || removed;
      }
    }
    if (!removed) break;
    const again = schema.safeParse(current);
    if (again.success) return again.data;
    issues = again.error.issues;
  }
  const broken = new Set(
    first.error.issues.flatMap((i) => (i.code === "unrecognized_keys" ? i.keys : [i.path[0]])).filter((k) => k !== "mode"),
  );
  const rest = Object.fromEntries(Object.entries(value).filter(([k]) => !broken.has(k)));
  const second = schema.safeParse(rest);
  return second.success ? second.data : undefined;
}

/** Deletes the value at `path` in a plain object tree; whether there was one. */
function deleteAt(root: unknown, path: PropertyKey[]): boolean {
  let cur = root;
  for (const seg of path.slice(0, -1)) {
    if (cur === null || typeof cur !== "object") return false;
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  const last = path[path.length - 1];
  if (cur === null || typeof cur !== "object" || !Object.prototype.hasOwnProperty.call(cur, last)) return false;
  delete (cur as Record<PropertyKey, unknown>)[last];
  return true;
}

type ImageSource = { image?: string; build?: unknown };
type AddIssue = (issue: SchemaIssue) => void;

/** A rule's issue: where, what, and the fix. */
function issue(path: PropertyKey[], message: string, fix: FixStep[], note?: string): SchemaIssue {
  return { code: "custom", path, message, params: { fix, note } };
}

function imageRules(
  service: string,
  src: ImageSource,
  env: Environment,
  addIssue: AddIssue,
  opts: { required: boolean; example: string },
): void {
  const askImage = `Pulumi asks for the image reference, e.g. ${opts.example}`;
  if (src.image && src.build) {
    addIssue(issue([service, "build"], `set either ${service}.image or ${service}.build, not both`, [{ rm: [service, "build"] }], `or remove ${service}.image instead`));
  }
  if (src.build && env !== "dev") {
    addIssue(issue([service, "build"], `${env} deploys image references, never local builds`, [{ rm: [service, "build"] }, { set: [service, "image"] }], askImage));
  }
  if (opts.required && !src.image && !src.build) {
    addIssue(
      issue(
        [service, "image"],
        `is required: the ${service} needs an image${env === "dev" ? ` (or ${service}.build.context)` : ""}`,
        [{ set: [service, "image"] }],
        askImage,
      ),
    );
  }
  if (src.image && env === "production" && !isPinnedImage(src.image)) {
    addIssue(
      issue(
        [service, "image"],
        "production needs an immutable image: a digest (@sha256:...) or a version tag with major.minor",
        [{ set: [service, "image"] }],
        `Pulumi asks for the pinned reference, e.g. ${parseImageReference(src.image).repository}:1.4.2`,
      ),
    );
  }
}

/** Which data store wires each connection URL, for a message that says how to point it elsewhere. */
const STORE_URL: Record<string, "postgres" | "redis"> = { DATABASE_URL: "postgres", REDIS_URL: "redis" };

function envRules(
  service: "api" | "worker" | "frontend",
  svc: { env: Record<string, string>; secretEnv: string[] },
  cfg: Sections,
  present: ReadonlySet<string>,
  addIssue: AddIssue,
): void {
  // Besides WIRED_ENV (below): the worker's concurrency variable and heartbeat file, the frontend's API URL variable.
  const extras = serviceWiredEnv(service, cfg, present);
  wiredNameRules(service, svc, extras, addIssue);
  const wired = (name: string) => (WIRED_ENV as readonly string[]).includes(name);
  const keptSecretEnv = svc.secretEnv.filter((n) => !wired(n) && !extras.has(n));
  for (const name of [...Object.keys(svc.env), ...svc.secretEnv]) {
    if (!wired(name)) continue;
    const inEnv = name in svc.env;
    const path = inEnv ? [service, "env", name] : [service, "secretEnv", svc.secretEnv.indexOf(name)];
    const unset: FixStep[] = inEnv ? [{ rm: [service, "env", name] }] : replaceListSteps([service, "secretEnv"], keptSecretEnv);
    const store = STORE_URL[name];
    if (!store) {
      addIssue(issue(path, `${name} is wired by appstack (from the data stores, the frontend and the release); setting it here would override that`, unset));
      continue;
    }
    const current = cfg[store];
    if (current?.mode === "external") {
      addIssue(issue(path, `${name} is wired by appstack: ${store} is external, so ${name} already comes from the secret ${current.urlSecret}`, unset));
      continue;
    }
    const what = store === "postgres" ? "a managed database (Supabase and the like)" : "a managed Redis (Redis Cloud and the like)";
    const secretKey = store === "postgres" ? "postgresUrl" : "redisUrl";
    addIssue(
      issue(
        path,
        `${name} is wired by appstack from ${store}. For ${what}, set ${store}.mode to external and put its URL in the secret that ${store}.urlSecret names (${secretKey})`,
        [...unset, { rm: [store] }, { set: [store, "mode"], value: "external" }, { set: [secretKey], secret: true }],
        `Pulumi asks for the URL and stores it encrypted; the API and the worker then get it as ${name}`,
      ),
    );
  }
  for (const name of svc.secretEnv) {
    if (name in svc.env) {
      addIssue(issue([service, "env", name], `${name} is listed in ${service}.secretEnv too; a secret is never also a plain setting`, [{ rm: [service, "env", name] }]));
    }
  }
}

/** Where the frontend runs: its own setting, else a container in dev and Vercel elsewhere. */
export function frontendMode(cfg: Pick<ParsedAppConfig, "environment" | "frontend">): "vercel" | "container" {
  return cfg.frontend?.mode ?? (cfg.environment === "dev" ? "container" : "vercel");
}

function serviceRules(cfg: Sections, env: Environment, present: ReadonlySet<string>, addIssue: AddIssue): void {
  const { api, worker, frontend, edge } = cfg;
  const mode = frontend ? frontendMode({ environment: env, frontend }) : undefined;
  const generated = cfg.generatedSecrets ?? [];
  const workerWired = serviceWiredEnv("worker", cfg, present);
  const clashes = (name: string) =>
    (WIRED_ENV as readonly string[]).includes(name) || workerWired.has(name)
      ? "is wired by appstack"
      : [api, worker].some((svc) => svc?.secretEnv.includes(name) || (svc && name in svc.env))
        ? "is also set by a service's env or secretEnv"
        : undefined;
  const kept = generated.filter((n) => !clashes(n));
  generated.forEach((name, i) => {
    const clash = clashes(name);
    if (clash) {
      addIssue(issue(["generatedSecrets", i], `${name} ${clash}; a generated secret must have a name of its own`, replaceListSteps(["generatedSecrets"], kept)));
    }
  });
  if (api) {
    imageRules("api", api, env, addIssue, { required: true, example: "ghcr.io/acme/api:1.0.0" });
    envRules("api", api, cfg, present, addIssue);
    if (env !== "dev") {
      if (!api.domain) {
        addIssue(
          issue(
            ["api", "domain"],
            `is required in ${env}: the API is served over HTTPS on this host name by the edge proxy`,
            [{ set: ["api", "domain"] }],
            "Pulumi asks for the host name, e.g. api.example.com (no scheme)",
          ),
        );
      }
      if (api.stopTimeoutSeconds < MIN_API_STOP_TIMEOUT_SECONDS) {
        addIssue(
          issue(
            ["api", "stopTimeoutSeconds"],
            `is shorter than the ${MIN_API_STOP_TIMEOUT_SECONDS} s a replica needs behind the edge: the edge notices a draining replica ` +
              `within ${EDGE_NOTICE_SECONDS} s (readiness 503 on SIGTERM), then requests in flight must finish before SIGKILL`,
            [{ set: ["api", "stopTimeoutSeconds"], value: MIN_API_STOP_TIMEOUT_SECONDS }],
          ),
        );
      }
      if (api.hostPort !== undefined) {
        addIssue(issue(["api", "hostPort"], `only the edge proxy publishes ports in ${env}`, [{ rm: ["api", "hostPort"] }]));
      }
      if (!edge) {
        addIssue(
          issue(["edge"], `is required in ${env}: the edge proxy terminates HTTPS for the API`, [{ set: ["edge", "acmeEmail"] }], "Pulumi asks for the e-mail address of the certificate account"),
        );
      }
    }
  }
  if (edge) {
    imageRules("edge", edge, env, addIssue, { required: false, example: "caddy:2.10.2-alpine" });
    if (env === "dev") {
      addIssue(issue(["edge"], "has no effect in dev: the API is published on 127.0.0.1 instead", [{ rm: ["edge"] }]));
    }
  }
  if (worker) {
    imageRules("worker", worker, env, addIssue, { required: !api, example: "ghcr.io/acme/worker:1.0.0" });
    envRules("worker", worker, cfg, present, addIssue);
    const h = worker.health;
    // The root filesystem is read-only: the heartbeat must be written to one of the tmpfs paths.
    if (h.type === "heartbeat" && !worker.writablePaths.some((p) => h.file.startsWith(`${p.replace(/\/+$/, "")}/`))) {
      const dir = h.file.slice(0, h.file.lastIndexOf("/")) || "/";
      addIssue(
        issue(
          ["worker", "health", "file"],
          `${h.file} is not under a writable path (worker.writablePaths: ${worker.writablePaths.join(", ")}); the read-only root filesystem would refuse the heartbeat`,
          [{ set: ["worker", "health", "file"], value: `${worker.writablePaths[0].replace(/\/+$/, "")}/${h.file.slice(h.file.lastIndexOf("/") + 1) || "heartbeat"}` }],
          `or keep the file and make its folder writable: add ${dir} to worker.writablePaths`,
        ),
      );
    }
  }
  if (frontend) {
    envRules("frontend", frontend, cfg, present, addIssue);
    frontend.previewSecretEnv.forEach((name, i) => {
      if (!frontend.secretEnv.includes(name)) {
        addIssue(
          issue(
            ["frontend", "previewSecretEnv", i],
            `${name} is not in frontend.secretEnv: only a secret the frontend has can also go to preview deployments`,
            replaceListSteps(["frontend", "previewSecretEnv"], frontend.previewSecretEnv.filter((n) => frontend.secretEnv.includes(n))),
          ),
        );
      }
    });
    if (mode === "container") {
      if (env !== "dev") {
        addIssue(issue(["frontend", "mode"], `a container frontend is for dev; ${env} serves the frontend from Vercel`, [{ set: ["frontend", "mode"], value: "vercel" }]));
      }
      imageRules("frontend", frontend, env, addIssue, { required: true, example: "ghcr.io/acme/web:1.0.0" });
    } else if (!frontend.vercel) {
      addIssue(
        issue(
          ["frontend", "vercel"],
          "is required for a Vercel frontend: the project name and its git repository",
          [{ set: ["frontend", "vercel", "projectName"] }, { set: ["frontend", "vercel", "gitRepository", "repo"] }],
          "Pulumi asks for each: the project name (e.g. acme-web), then the repository as owner/name",
        ),
      );
    } else if (vercelOutputDirectory(frontend.vercel) === undefined && FRAMEWORK_OUTPUT_DIRECTORY[frontend.vercel.framework] !== null) {
      addIssue(
        issue(
          ["frontend", "vercel", "outputDirectory"],
          `is required: appstack knows no output directory for framework "${frontend.vercel.framework}" (it does for ${Object.keys(FRAMEWORK_OUTPUT_DIRECTORY).join(", ")})`,
          [{ set: ["frontend", "vercel", "outputDirectory"] }],
          "Pulumi asks for the directory the build writes, e.g. dist",
        ),
      );
    }
  }
  wiringRules(cfg, env, present, mode, addIssue);
}

/** How the stack reaches its Docker engine: authenticated both ways outside dev; only known-safe ssh options anywhere. */
function transportRules(docker: NonNullable<Sections["docker"]>, env: Environment, addIssue: AddIssue): void {
  const scheme = dockerScheme(docker.host);
  const problem = env === "dev" ? undefined : transportProblem(docker.host, docker.tls === true);
  if (problem) {
    addIssue(
      issue(
        ["docker", "host"],
        `${problem} (this stack is ${env})`,
        [{ set: ["docker", "host"] }],
        scheme === "tcp"
          ? "Pulumi asks for the host, e.g. ssh://deploy@prod.example.com; or keep tcp:// with TLS: " +
              `pulumi config set --path docker.tls true, then set ${DOCKER_TLS_SECRETS.ca}, ${DOCKER_TLS_SECRETS.cert} and ${DOCKER_TLS_SECRETS.key} ` +
              "with pulumi config set --secret <key> < <file>.pem"
          : "Pulumi asks for the host, e.g. ssh://deploy@prod.example.com",
      ),
    );
  }
  const problems = sshOptionProblems(docker.sshOpts ?? []);
  if (problems.length > 0) {
    const fix = replaceListSteps(["docker", "sshOpts"], safeSshOpts(docker.sshOpts ?? []));
    const note = "ssh settings this list does not allow belong in ~/.ssh/config, and the host's key, checked out of band, in ~/.ssh/known_hosts";
    for (const p of problems) addIssue(issue(["docker", "sshOpts", p.index], p.message, fix, note));
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

function environmentRules(
  cfg: Sections,
  present: ReadonlySet<string>,
  { stack, secretValue }: { stack: string | undefined; secretValue: (key: string) => string | undefined },
  addIssue: AddIssue,
): void {
  const env = cfg.environment;
  if (!env) return;
  if (cfg.docker) transportRules(cfg.docker, env, addIssue);
  backupRules(cfg, present, secretValue, addIssue);
  const offsiteImage = cfg.postgres?.mode === "container" ? cfg.backup?.offsite?.image : undefined;
  if (offsiteImage && env === "production" && !isPinnedImage(offsiteImage)) {
    addIssue(
      issue(
        ["backup", "offsite", "image"],
        "production needs an immutable image: a digest (@sha256:...) or a version tag with major.minor",
        [{ set: ["backup", "offsite", "image"], value: RESTIC_IMAGE }],
      ),
    );
  }
  for (const [service, store] of [
    ["postgres", cfg.postgres],
    ["redis", cfg.redis],
  ] as const) {
    if (store?.mode !== "container") continue;
    if (env === "production" && !isPinnedImage(store.image)) {
      const repo = parseImageReference(store.image).repository;
      addIssue(
        issue(
          [service, "image"],
          "production needs an immutable image: a digest (@sha256:...) or a version tag with major.minor",
          [{ set: [service, "image"] }],
          `Pulumi asks for the pinned reference, e.g. ${repo}:${service === "postgres" ? "17.6" : "7.4.6"}; keep the major version the data was created with`,
        ),
      );
    }
    if (env === "production" && store.protectVolume === false) {
      addIssue(issue([service, "protectVolume"], "production data volumes are always protected", [{ rm: [service, "protectVolume"] }]));
    }
    if (env !== "dev" && store.hostPort !== undefined) {
      addIssue(issue([service, "hostPort"], `data stores publish no host port outside dev (this stack is ${env})`, [{ rm: [service, "hostPort"] }]));
    }
  }
  serviceRules(cfg, env, present, addIssue);
  swarmRules(cfg, env, stack, addIssue);
  const redis = cfg.redis;
  if (redis?.mode === "container" && redis.maxmemoryMb >= redis.memoryMb) {
    addIssue(
      issue(
        ["redis", "maxmemoryMb"],
        `Redis maxmemory (${redis.maxmemoryMb} MiB) must be below the container limit memoryMb (${redis.memoryMb} MiB), or the kernel kills Redis before it evicts`,
        [{ set: ["redis", "maxmemoryMb"], value: Math.max(1, Math.floor(redis.memoryMb * 0.75)) }],
      ),
    );
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
  const offsite = cfg.postgres?.mode === "container" ? cfg.backup?.offsite : undefined;
  for (const service of ["api", "worker", "frontend"] as const) {
    // A wired name (DATABASE_URL) in secretEnv is an error of its own; asking for its secret too would mislead.
    for (const name of cfg[service]?.secretEnv ?? []) {
      if (!(WIRED_ENV as readonly string[]).includes(name)) users.set(name, [...(users.get(name) ?? []), `${service}.secretEnv`]);
    }
  }
  for (const name of offsite?.secretEnv ?? []) users.set(name, [...(users.get(name) ?? []), "backup.offsite.secretEnv"]);
  for (const [key, by] of users) keys.push({ key, usedBy: by.join(" and ") });
  if (cfg.frontend && cfg.environment && frontendMode({ environment: cfg.environment, frontend: cfg.frontend }) === "vercel") {
    keys.push({ key: "vercelApiToken", usedBy: "the Vercel frontend (a Vercel access token)" });
  }
  if (cfg.docker?.tls) {
    for (const [part, key] of Object.entries(DOCKER_TLS_SECRETS)) keys.push({ key, usedBy: `docker.tls (the ${part === "ca" ? "CA certificate" : part === "cert" ? "client certificate" : "client key"}, PEM)` });
  }
  if (offsite) {
    keys.push({ key: offsite.repositorySecret, usedBy: "backup.offsite (the restic repository)" });
    keys.push({ key: offsite.passwordSecret, usedBy: "backup.offsite (the restic repository's password)" });
    if (offsite.sshKeySecret) keys.push({ key: offsite.sshKeySecret, usedBy: "backup.offsite (the sftp login's private key)" });
  }
  if (cfg.postgres?.mode === "external") keys.push({ key: cfg.postgres.urlSecret, usedBy: "postgres (external mode)" });
  if (cfg.redis?.mode === "external") keys.push({ key: cfg.redis.urlSecret, usedBy: "redis (external mode)" });
  return keys;
}
