import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AppStack } from "../components/app-stack";
import { backupSchema, ConfigError, HEARTBEAT_ENV, imageReference, loadConfig, OFFSITE_BACKENDS, WIRED_ENV, type ConfigProblem } from "../config";
import { waitForRegistrations } from "../ops/offline/offline-runtime";
import { PROJECT_ROOT } from "./helpers/declared-stack";
import { parseFix, type ConfigCommand } from "./helpers/pulumi-config-cli";
import { mockStack } from "./helpers/pulumi";

/**
 * Config fuzzing: stack configs generated from the schema's rules, valid ones
 * and ones broken in one of the ways a person breaks them. Every broken config
 * must give the project's ConfigError, with a problem at the key that was
 * broken, and register nothing; every valid one must load. A failure prints
 * fast-check's seed and the shrunk config.
 */

const INVALID_RUNS = 1200;
/** The ways a config is broken below, each a `kind`; docs/verification.md quotes the count. */
const BROKEN_KINDS = 37;
const VALID_RUNS = 300;
const PROGRAM_SAMPLE = 15;

type Env = "dev" | "staging" | "production";
/** A stack's settings: keys without a namespace are `appstack:` keys. Secrets are secure keys. */
interface Case {
  config: Record<string, unknown>;
  secrets: Record<string, string>;
}
interface BrokenCase extends Case {
  kind: string;
  /** The key path (without `appstack:`) where a problem must be reported, or a full foreign key. */
  expect: string;
}

// --- valid configs ---------------------------------------------------------

const identifier = fc.stringMatching(/^[a-z_][a-z0-9_]{0,20}$/);
const secretName = fc.stringMatching(/^[a-z][A-Za-z0-9]{2,15}Url$/);
const pinnedImage = fc.oneof(
  fc.constantFrom("postgres:17.6-alpine", "redis:7.4.6-alpine", "ghcr.io/acme/db:v1.2.3", "registry.example.com:5000/team/cache:8.0"),
  fc.stringMatching(/^[0-9a-f]{64}$/).map((d) => `postgres@sha256:${d}`),
  fc.tuple(fc.nat(30), fc.nat(30)).map(([a, b]) => `redis:${a}.${b}`),
);
const cpus = fc.constantFrom("1", "0.5", "2", "4");

function containerCommon(env: Env) {
  return {
    cpus,
    healthTimeoutSeconds: fc.integer({ min: 5, max: 3600 }),
    hostPort: env === "dev" ? fc.integer({ min: 1, max: 65535 }) : fc.constant(undefined),
    protectVolume: env === "production" ? fc.constant(true) : fc.boolean(),
  };
}

function postgresSection(env: Env) {
  const container = fc.record(
    {
      mode: fc.constant("container"),
      image: pinnedImage,
      database: identifier,
      user: identifier,
      memoryMb: fc.integer({ min: 16, max: 65536 }),
      ...containerCommon(env),
    },
    { requiredKeys: ["mode"] },
  );
  const external = fc.record({ mode: fc.constant("external"), urlSecret: secretName }, { requiredKeys: ["mode"] });
  return fc.oneof(container, external);
}

function redisSection(env: Env) {
  // maxmemoryMb must stay below memoryMb, whose default is 512 (and maxmemoryMb's 256).
  const memory = fc.oneof(
    fc.record({ memoryMb: fc.integer({ min: 32, max: 8192 }) }).chain(({ memoryMb }) =>
      fc.record(
        { memoryMb: fc.constant(memoryMb), maxmemoryMb: fc.integer({ min: 1, max: memoryMb - 1 }) },
        { requiredKeys: memoryMb > 256 ? ["memoryMb"] : ["memoryMb", "maxmemoryMb"] },
      ),
    ),
    fc.record({ maxmemoryMb: fc.integer({ min: 1, max: 511 }) }, { requiredKeys: [] }),
  );
  const container = fc
    .tuple(
      fc.record(
        {
          mode: fc.constant("container"),
          image: pinnedImage,
          maxmemoryPolicy: fc.constantFrom("noeviction", "allkeys-lru", "volatile-ttl"),
          appendonly: fc.boolean(),
          ...containerCommon(env),
        },
        { requiredKeys: ["mode"] },
      ),
      memory,
    )
    .map(([section, mem]) => ({ ...section, ...mem }));
  const external = fc.record({ mode: fc.constant("external"), urlSecret: secretName }, { requiredKeys: ["mode"] });
  return fc.oneof(container, external);
}

/** Safe ssh options, as `-o`, `Key=Value` pairs. */
const sshOpts = fc
  .subarray(["StrictHostKeyChecking=yes", "ServerAliveInterval=30", "ConnectTimeout=10", "IdentitiesOnly=yes"])
  .map((opts) => opts.flatMap((o) => ["-o", o]));

/** How a stack reaches its engine: anything in dev; ssh, or tcp with TLS, elsewhere. */
function dockerSection(env: Env) {
  const ssh = fc.record({ host: fc.constant("ssh://deploy@host.example.com"), sshOpts }, { requiredKeys: ["host"] });
  const tls = fc.constant({ host: "tcp://10.0.0.5:2376", tls: true });
  if (env !== "dev") return fc.oneof(ssh, tls);
  return fc.oneof(fc.constant({}), fc.constant({ host: "unix:///var/run/docker.sock" }), fc.constant({ host: "tcp://127.0.0.1:2375" }), ssh, tls);
}

/** Drops keys whose generated value is undefined (an absent optional setting). */
function compact<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

const FLAGS = ["MEMORY_SYSTEM_ENABLED", "FEATURE_SEARCH", "LOG_LEVEL"];
const USER_SECRETS = ["OPENAI_API_KEY", "STRIPE_API_KEY"];
const GENERATED = ["JWT_SECRET", "SESSION_SECRET"];

const plainEnv = fc.dictionary(fc.constantFrom(...FLAGS), fc.oneof(fc.boolean(), fc.nat(10_000), fc.constantFrom("info", "debug")), { maxKeys: 3 });
const secretEnv = fc.subarray(USER_SECRETS);
const httpPath = fc.constantFrom("/api/v1/health", "/api/v1/health/live", "/healthz");

/** An image or (dev only) a local build of the example app. */
function imageSource(env: Env, build: { context: string; dockerfile?: string }) {
  return env === "dev" ? fc.oneof(pinnedImage.map((image) => ({ image })), fc.constant({ build })) : pinnedImage.map((image) => ({ image }));
}

function apiSection(env: Env) {
  return fc
    .tuple(
      imageSource(env, { context: "examples/app", dockerfile: "api/Dockerfile" }),
      fc.record(
        {
          port: fc.integer({ min: 1024, max: 65535 }),
          replicas: fc.integer({ min: 1, max: 3 }),
          memoryMb: fc.integer({ min: 64, max: 4096 }),
          health: fc.record({ path: httpPath, readyPath: httpPath, retries: fc.integer({ min: 1, max: 10 }) }, { requiredKeys: ["path"] }),
          domain: env === "dev" ? fc.constant(undefined) : fc.constantFrom("api.example.com", "api.staging.example.org"),
          hostPort: env === "dev" ? fc.integer({ min: 1, max: 65535 }) : fc.constant(undefined),
          env: plainEnv,
          secretEnv,
          migrations: fc.record({ command: fc.constant(["node", "api/migrate.js"]), timeoutSeconds: fc.integer({ min: 1, max: 3600 }) }, { requiredKeys: ["command"] }),
        },
        { requiredKeys: env === "dev" ? ["health"] : ["health", "domain"] },
      ),
    )
    .map(([image, rest]) => compact({ ...image, ...rest }));
}

function workerSection(env: Env, hasApi: boolean) {
  const image = hasApi ? fc.oneof(fc.constant({}), imageSource(env, { context: "examples/app", dockerfile: "worker/Dockerfile" })) : imageSource(env, { context: "examples/app", dockerfile: "worker/Dockerfile" });
  return fc
    .tuple(
      image,
      fc.record(
        {
          command: fc.constant(["node", "worker/worker.js"]),
          replicas: fc.integer({ min: 1, max: 3 }),
          concurrency: fc.integer({ min: 1, max: 100 }),
          health: fc.oneof(
            fc.record({ type: fc.constant("heartbeat"), file: fc.constantFrom("/tmp/hb", "/var/run/worker/hb"), maxAgeSeconds: fc.integer({ min: 1, max: 600 }) }, { requiredKeys: ["type"] }),
            fc.record({ type: fc.constant("process"), pattern: fc.constantFrom("node worker", "worker.js") }),
          ),
          stopGracePeriodSeconds: fc.integer({ min: 1, max: 600 }),
          env: plainEnv,
          secretEnv,
        },
        { requiredKeys: ["command"] },
      ),
    )
    .map(([img, rest]) => {
      // The root filesystem is read-only: a heartbeat outside /tmp needs its folder writable.
      const file = (rest.health as { file?: string } | undefined)?.file;
      const writable = file?.startsWith("/var/run/worker/") ? { writablePaths: ["/tmp", "/var/run/worker"] } : {};
      return compact({ ...img, ...rest, ...writable });
    });
}

function frontendSection(env: Env) {
  const domains = fc.array(fc.constantFrom("app.example.com", "www.example.org"), { maxLength: 2 });
  if (env === "dev") {
    return fc
      // A container frontend has no domains: it is served on localhost.
      .tuple(imageSource(env, { context: "examples/app/frontend" }), fc.record({ hostPort: fc.integer({ min: 1, max: 65535 }), env: plainEnv }, { requiredKeys: [] }))
      .map(([img, rest]) => compact({ ...img, ...rest }));
  }
  return fc.record(
    {
      domains,
      vercel: fc.record({ projectName: fc.constantFrom("web", "acme-web-staging"), gitRepository: fc.constant({ repo: "acme/web" }), outputDirectory: fc.constantFrom("build", "dist") }, { requiredKeys: ["projectName", "gitRepository"] }),
      secretEnv: fc.subarray(["SENTRY_AUTH_TOKEN"]),
    },
    { requiredKeys: ["vercel"] },
  );
}

const interval = (units: string, max: number) => fc.tuple(fc.integer({ min: 1, max }), fc.constantFrom(...units)).map(([n, u]) => `${n}${u}`);

/** Scheduled dumps, and (sometimes) off-host copies to one of the backends restic supports. */
function backupSection() {
  const offsite = fc.constantFrom<keyof typeof OFFSITE_BACKENDS>("s3", "b2", "sftp", "rest").chain((backend) =>
    fc.record(
      {
        secretEnv: fc.constant([...OFFSITE_BACKENDS[backend].env]),
        env: backend === "s3" ? fc.constant({ AWS_DEFAULT_REGION: "eu-west-1" }) : fc.constant(undefined),
        sshKeySecret: backend === "sftp" ? fc.constantFrom("resticSshKey", "backupKey") : fc.constant(undefined),
        knownHosts: backend === "sftp" ? fc.constant(["backup.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ2xZ7C2o3z0x1y2z3a4b5c6d7e8f9g0h1i2j3k4l5m6"]) : fc.constant(undefined),
        repositorySecret: fc.constantFrom("resticRepository", "offsiteRepo"),
        keepDaily: fc.integer({ min: 1, max: 60 }),
        keepWeekly: fc.integer({ min: 0, max: 52 }),
        keepMonthly: fc.integer({ min: 0, max: 120 }),
        pruneSchedule: interval("hd", 30),
        checkSchedule: interval("d", 90),
        checkReadDataPercent: fc.integer({ min: 0, max: 100 }),
      },
      { requiredKeys: backend === "sftp" ? ["secretEnv", "sshKeySecret", "knownHosts"] : ["secretEnv"] },
    ).map(compact),
  );
  return fc
    .record(
      {
        schedule: fc.oneof(interval("h", 720), interval("d", 30), fc.integer({ min: 5, max: 1440 }).map((m) => `${m}m`)),
        keep: fc.integer({ min: 1, max: 100 }),
        offsite,
        drill: fc.record({ checkQuery: fc.constantFrom("SELECT count(*) FROM jobs", "SELECT 1") }),
      },
      { requiredKeys: [] },
    )
    .map(compact);
}

/** A repository of the backend a generated offsite section is for. */
function repositoryFor(offsite: { secretEnv?: string[]; sshKeySecret?: string }): string {
  if (offsite.sshKeySecret) return "sftp:backup@backup.example.com:/srv/restic/app";
  if (offsite.secretEnv?.includes("AWS_ACCESS_KEY_ID")) return "s3:s3.amazonaws.com/acme-backups/app";
  if (offsite.secretEnv?.includes("B2_ACCOUNT_ID")) return "b2:acme-backups:app";
  return "rest:https://backup:pw@backup.example.com:8000/app";
}

/** The secure keys a generated config needs, each with a value. */
function neededSecrets(config: Record<string, unknown>): Record<string, string> {
  const secrets: Record<string, string> = {};
  if ((config.docker as { tls?: boolean } | undefined)?.tls) {
    for (const key of ["dockerTlsCa", "dockerTlsCert", "dockerTlsKey"]) secrets[key] = `-----BEGIN PEM-----\n${key}\n-----END PEM-----`;
  }
  const offsite = (config.backup as { offsite?: { secretEnv?: string[]; sshKeySecret?: string; repositorySecret?: string; passwordSecret?: string } } | undefined)?.offsite;
  if (offsite && (config.postgres as { mode?: string } | undefined)?.mode !== "external") {
    secrets[offsite.repositorySecret ?? "resticRepository"] = repositoryFor(offsite);
    secrets[offsite.passwordSecret ?? "resticPassword"] = "a-repository-password";
    for (const name of offsite.secretEnv ?? []) secrets[name] = "a-backend-credential";
    if (offsite.sshKeySecret) secrets[offsite.sshKeySecret] = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
  }
  for (const [section, fallback] of [["postgres", "postgresUrl"], ["redis", "redisUrl"]] as const) {
    const s = config[section] as { mode?: string; urlSecret?: string } | undefined;
    if (s?.mode === "external") secrets[s.urlSecret ?? fallback] = `${section}://u:p@${section}.example.com/0`;
  }
  for (const section of ["api", "worker", "frontend"]) {
    for (const name of (config[section] as { secretEnv?: string[] } | undefined)?.secretEnv ?? []) secrets[name] = "a-secret-value";
  }
  if ((config.frontend as { vercel?: unknown } | undefined)?.vercel) secrets.vercelApiToken = "a-vercel-token";
  return secrets;
}

const validCase: fc.Arbitrary<Case & { environment: Env }> = fc
  .constantFrom<Env>("dev", "staging", "production")
  .chain((environment) =>
    fc
      .record(
        {
          docker: dockerSection(environment),
          postgres: postgresSection(environment).map(compact),
          redis: redisSection(environment).map(compact),
          generatedSecrets: fc.subarray(GENERATED),
          api: apiSection(environment),
          frontend: frontendSection(environment),
        },
        // Outside dev the Docker host must be said: the default, the local socket, is for dev.
        { requiredKeys: environment === "dev" ? [] : ["docker"] },
      )
      .chain((settings) =>
        fc.tuple(
          fc.option(workerSection(environment, settings.api !== undefined), { nil: undefined }),
          // Backups are for a Postgres that appstack runs; with an external one the section is an error.
          (settings.postgres as { mode?: string } | undefined)?.mode === "external" ? fc.constant(undefined) : fc.option(backupSection(), { nil: undefined }),
        ).map(([worker, backup]) => {
          // Outside dev an API needs the edge proxy; in dev the edge is an error.
          const edge = settings.api && environment !== "dev" ? { acmeEmail: "ops@example.com" } : undefined;
          // Generated secrets go to the API and the worker; a stack with neither has no use for them.
          const generatedSecrets = settings.api || worker ? settings.generatedSecrets : undefined;
          return compact({ environment, ...settings, worker, edge, generatedSecrets, backup }) as Record<string, unknown>;
        }),
      )
      .chain((config) =>
        // A third of the stacks run in swarm mode: each data store in container mode on its labelled node.
        fc.record({ swarm: fc.integer({ min: 0, max: 2 }), owner: fc.option(fc.record({ uid: fc.nat(65534), gid: fc.nat(65534) }), { nil: undefined }) }).map(({ swarm, owner }) =>
          swarm === 0 ? toSwarm(config, environment, owner) : config,
        ),
      )
      .map((config) => ({ config, secrets: neededSecrets(config), environment })),
  );

/** A valid config in swarm mode: docker.mode swarm, each container-mode data store pinned (outside dev), no API host port. */
function toSwarm(config: Record<string, unknown>, environment: Env, owner?: { uid: number; gid: number }): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config, docker: { ...(config.docker as object), mode: "swarm" } };
  for (const store of ["postgres", "redis"]) {
    // An absent section is a container (its default).
    const s = (config[store] as { mode?: string } | undefined) ?? { mode: "container" };
    if (s.mode === "container" && environment !== "dev") out[store] = { ...s, node: "data-1" };
  }
  if (config.api) {
    const { hostPort: _drop, ...api } = config.api as Record<string, unknown>;
    out.api = owner ? { ...api, secretFiles: owner } : api;
  }
  return out;
}

// --- broken configs --------------------------------------------------------

const KNOWN_KEYS = new Set(["environment", "docker", "postgres", "redis", "host", "sshOpts", "mode", "image", "database", "user",
  "memoryMb", "cpus", "hostPort", "protectVolume", "healthTimeoutSeconds", "urlSecret", "maxmemoryMb", "maxmemoryPolicy", "appendonly",
  "node", "replicas", "secretFiles", "uid", "gid"]);

const unknownKeyName = fc
  .oneof(
    fc.constantFrom("__proto__", "constructor", "toString", "hasOwnProperty", "versoin", "imgae", "Image", "mode ", "port", "password", "a.b", ""),
    fc.string({ minLength: 1, maxLength: 12 }),
  )
  .filter((k) => !KNOWN_KEYS.has(k) && !k.includes(":"));

/** Settings that take more than one JSON type: cpus is a number or a numeric string. */
const ALSO_VALID: Record<string, string[]> = { cpus: ["number", "string"] };

/** A value of a different JSON type than `v` (and than any other type the setting takes). */
function wrongTypeFor(v: unknown, also: string[] = []): fc.Arbitrary<unknown> {
  const all: [string, fc.Arbitrary<unknown>][] = [
    ["string", fc.string({ maxLength: 8 })],
    ["number", fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }))],
    ["boolean", fc.boolean()],
    ["null", fc.constant(null)],
    ["array", fc.array(fc.integer(), { maxLength: 2 })],
    ["object", fc.dictionary(fc.constantFrom("x", "y"), fc.integer(), { maxKeys: 2 })],
  ];
  const kind = v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
  return fc.oneof(...all.filter(([k]) => k !== kind && !also.includes(k)).map(([, a]) => a));
}

/** Every settings path of a case, for the generic mutations. */
function paths(config: Record<string, unknown>): string[][] {
  const out: string[][] = [];
  const walk = (v: unknown, at: string[]) => {
    if (at.length > 0) out.push(at);
    if (v !== null && typeof v === "object" && !Array.isArray(v)) for (const [k, inner] of Object.entries(v)) walk(inner, [...at, k]);
  };
  walk(config, []);
  return out;
}

function setAt(config: Record<string, unknown>, path: string[], value: unknown): Record<string, unknown> {
  const copy = structuredClone(config);
  let cur = copy as Record<string, unknown>;
  for (const seg of path.slice(0, -1)) cur = cur[seg] as Record<string, unknown>;
  Object.defineProperty(cur, path[path.length - 1], { value, enumerable: true, writable: true, configurable: true });
  return copy;
}

const dotted = (path: string[]) => path.join(".");

/** Maps whose keys are the user's (env names, build args): not settings with a fixed set of keys and types. */
const FREE_FORM = new Set(["env", "args"]);
const inFreeForm = (p: string[]) => p.slice(0, -1).some((k) => FREE_FORM.has(k));

const wrongType = validCase.chain(({ config, secrets }) =>
  fc
    .constantFrom(...paths(config).filter((p) => !inFreeForm(p)))
    .chain((p) => {
      const current = p.reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], config);
      return wrongTypeFor(current, ALSO_VALID[p[p.length - 1]]).map((value) => ({ kind: "wrong type", config: setAt(config, p, value), secrets, expect: dotted(p) }));
    }),
);

const unknownKey = validCase.chain(({ config, secrets }) => {
  const objects = [[], ...paths(config).filter((p) => {
    const v = p.reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], config);
    return v !== null && typeof v === "object" && !Array.isArray(v) && !FREE_FORM.has(p[p.length - 1]) && !inFreeForm(p);
  })];
  return fc.tuple(fc.constantFrom(...objects), unknownKeyName, fc.jsonValue({ maxDepth: 1 })).map(([at, key, value]) => ({
    kind: "unknown key",
    config: setAt(config, [...at, key], value),
    secrets,
    expect: dotted([...at, key]),
  }));
}).filter((c) => !(c.expect in c.secrets));

/** Keys that name Object.prototype members: an unknown setting like any other, never a prototype swap. */
const prototypeKey = validCase.chain(({ config, secrets }) => {
  const objects = [[], ...["docker", "postgres", "redis", "api", "worker", "frontend"].filter((s) => config[s]).map((s) => [s])];
  return fc
    .tuple(fc.constantFrom(...objects), fc.constantFrom("__proto__", "constructor", "prototype", "toString", "valueOf"), fc.jsonValue({ maxDepth: 1 }))
    .map(([at, key, value]) => ({ kind: "prototype-named key", config: setAt(config, [...at, key], value), secrets, expect: dotted([...at, key]) }));
});

const missingKey = validCase.chain(({ config, secrets }) => {
  const required = [
    ["environment"],
    ...["postgres", "redis"].filter((s) => config[s]).map((s) => [s, "mode"]),
    ...(config.api ? [["api", "health"]] : []),
    ...(config.worker ? [["worker", "command"]] : []),
  ];
  return fc.constantFrom(...required).map((p) => {
    const copy = structuredClone(config);
    if (p.length === 1) delete copy[p[0]];
    else delete (copy[p[0]] as Record<string, unknown>)[p[1]];
    return { kind: "missing key", config: copy, secrets: p.length === 1 ? {} : secrets, expect: dotted(p) };
  });
});

const storeSection = fc.constantFrom("postgres", "redis");

/** A section forced into container mode with one setting overridden. */
function withContainerSetting(config: Record<string, unknown>, section: string, key: string, value: unknown) {
  const current = config[section] as { mode?: string } | undefined;
  const base = current?.mode === "container" ? { ...current } : { mode: "container" };
  return { ...config, [section]: { ...base, [key]: value } };
}

function secretsFor(config: Record<string, unknown>, secrets: Record<string, string>): Record<string, string> {
  // A section turned into container mode no longer uses its URL secret; the backups' secrets stay what they were.
  const used = new Set<string>(Object.keys(neededSecrets({ backup: config.backup, postgres: config.postgres })));
  for (const [section, fallback] of [["postgres", "postgresUrl"], ["redis", "redisUrl"]] as const) {
    const s = config[section] as { mode?: string; urlSecret?: string } | undefined;
    if (s?.mode === "external") used.add(s.urlSecret ?? fallback);
  }
  return Object.fromEntries(Object.entries(secrets).filter(([k]) => used.has(k)));
}

const outOfRange = fc
  .tuple(
    validCase,
    storeSection,
    fc.oneof(
      fc.record({ key: fc.constant("hostPort"), value: fc.oneof(fc.integer({ max: 0 }), fc.integer({ min: 65536 }), fc.constantFrom(1.5, 80.25)) }),
      fc.record({ key: fc.constant("memoryMb"), value: fc.integer({ min: -10, max: 15 }) }),
      fc.record({ key: fc.constant("healthTimeoutSeconds"), value: fc.oneof(fc.integer({ max: 4 }), fc.integer({ min: 3601 })) }),
    ),
  )
  .map(([{ config, secrets }, section, { key, value }]) => {
    const broken = withContainerSetting(config, section, key, value);
    return { kind: "out of range", config: broken, secrets: secretsFor(broken, secrets), expect: `${section}.${key}` };
  });

const badImage = fc
  .tuple(
    validCase,
    storeSection,
    fc.oneof(
      fc.constantFrom("", "Redis Latest!", "postgres:", ":17", "postgres@sha256:abc", "/postgres", "postgres::17", "UPPER/case:1.0", "a b"),
      fc.string({ maxLength: 20 }),
    ).filter((s) => !imageReference.safeParse(s).success),
  )
  .map(([{ config, secrets }, section, image]) => {
    const broken = withContainerSetting(config, section, "image", image);
    return { kind: "bad image", config: broken, secrets: secretsFor(broken, secrets), expect: `${section}.image` };
  });

const environmentRule = fc
  .tuple(validCase, storeSection, fc.constantFrom("unpinned image", "unprotected volume", "host port", "maxmemory"))
  .chain(([{ config, secrets, environment }, section, rule]): fc.Arbitrary<BrokenCase> => {
    const set = (env: Env, key: string, value: unknown, s = section) => {
      const broken = withContainerSetting({ ...config, environment: env }, s, key, value);
      return { config: broken, secrets: secretsFor(broken, secrets) };
    };
    switch (rule) {
      case "unpinned image":
        return fc.constantFrom("postgres", "postgres:latest", "redis:7", "ghcr.io/acme/db:alpine").map((img) => ({
          kind: rule, ...set("production", "image", img), expect: `${section}.image`,
        }));
      case "unprotected volume":
        return fc.constant({ kind: rule, ...set("production", "protectVolume", false), expect: `${section}.protectVolume` });
      case "host port":
        return fc.tuple(fc.constantFrom<Env>("staging", "production"), fc.integer({ min: 1, max: 65535 })).map(([env, port]) => ({
          kind: rule, ...set(env, "hostPort", port), expect: `${section}.hostPort`,
        }));
      default:
        return fc.integer({ min: 32, max: 4096 }).chain((memoryMb) =>
          fc.integer({ min: memoryMb, max: memoryMb * 2 }).map((maxmemoryMb) => {
            const withMem = withContainerSetting({ ...config, environment }, "redis", "memoryMb", memoryMb);
            const broken = withContainerSetting(withMem, "redis", "maxmemoryMb", maxmemoryMb);
            return { kind: rule, config: broken, secrets: secretsFor(broken, secrets), expect: "redis.maxmemoryMb" };
          }),
        );
    }
  });

const secretRule = fc
  .tuple(validCase, storeSection, secretName, fc.constantFrom("missing", "plain text", "unused", "settings as secret"))
  .map(([{ config, secrets }, section, name, rule]) => {
    const external = { ...config, [section]: { mode: "external", urlSecret: name } };
    const others = secretsFor(external, secrets);
    delete others[name];
    switch (rule) {
      case "missing":
        return { kind: "secret missing", config: external, secrets: others, expect: name };
      case "plain text":
        return { kind: "secret in plain text", config: { ...external, [name]: "postgresql://u:p@db/app" }, secrets: others, expect: name };
      case "unused":
        return { kind: "unused secret", config, secrets: { ...secrets, [`${name}Typo`]: "x" }, expect: `${name}Typo` };
      default:
        return { kind: "settings as secret", config: { ...config, [section]: undefined }, secrets: { ...secrets, [section]: '{"mode":"container"}' }, expect: section };
    }
  })
  .map((c) => ({ ...c, config: compact(c.config) }));

const foreignNamespace = fc
  .tuple(validCase, fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/).filter((ns) => ns !== "appstack" && ns !== "pulumi"), fc.constantFrom("host", "region", "token"))
  .map(([{ config, secrets }, ns, key]) => ({ kind: "foreign namespace", config: { ...config, [`${ns}:${key}`]: "x" }, secrets, expect: `${ns}:${key}` }));

/** The service rules: what issue 3 names as bad input, and the wiring rules. */
const serviceRule = fc
  .tuple(validCase, fc.constantFrom("worker without command", "api without health path", "secretEnv not set", "frontend domain not a hostname", "api domain with a scheme", "wired env name", "wired secretEnv name", "build outside dev", "unpinned api image"))
  .chain(([{ config, environment }, rule]): fc.Arbitrary<BrokenCase> => {
    const api = { image: "ghcr.io/acme/api:1.2.3", health: { path: "/health" }, ...(environment === "dev" ? {} : { domain: "api.example.com" }) };
    const base = { ...config, api, ...(environment === "dev" ? {} : { edge: { acmeEmail: "ops@example.com" } }) };
    const withSecrets = (kind: string, c: Record<string, unknown>, expect: string, omit?: string): BrokenCase => {
      const needed = neededSecrets(c);
      if (omit) delete needed[omit];
      return { kind, config: c, secrets: needed, expect };
    };
    const broken = (kind: string, c: Record<string, unknown>, expect: string, omit?: string) => fc.constant(withSecrets(kind, c, expect, omit));
    switch (rule) {
      case "worker without command":
        return broken(rule, { ...base, worker: { replicas: 1 } }, "worker.command");
      case "api without health path":
        return broken(rule, { ...base, api: { ...api, health: {} } }, "api.health.path");
      case "secretEnv not set":
        return broken(rule, { ...base, api: { ...api, secretEnv: ["OPENAI_API_KEY"] } }, "OPENAI_API_KEY", "OPENAI_API_KEY");
      case "frontend domain not a hostname":
        return fc.constantFrom("https://app.example.com", "app.example.com:443", "App.Example.com", "localhost", "a b.com").map((d) =>
          withSecrets(rule, {
            ...base,
            frontend: environment === "dev" ? { image: "web:1.0", domains: [d] } : { domains: [d], vercel: { projectName: "web", gitRepository: { repo: "acme/web" } } },
          }, "frontend.domains"),
        );
      case "api domain with a scheme":
        if (environment === "dev") return broken(rule, { ...base, api: { ...api, domain: "https://api.example.com" } }, "api.domain");
        return fc.constantFrom("https://api.example.com", "http://api.example.com/", "https://api.example.com:8443/v1").map((d) => withSecrets(rule, { ...base, api: { ...api, domain: d } }, "api.domain"));
      case "wired secretEnv name":
        return fc.constantFrom("DATABASE_URL", "REDIS_URL", "PORT", "APP_VERSION").map((name) =>
          withSecrets(rule, { ...base, api: { ...api, secretEnv: ["OPENAI_API_KEY", name] } }, "api.secretEnv[1]"),
        );
      case "wired env name":
        return fc.constantFrom("PORT", "DATABASE_URL", "REDIS_URL", "CORS_ORIGIN", "NODE_ENV").map((name) =>
          withSecrets(rule, { ...base, api: { ...api, env: { [name]: "x" } } }, `api.env.${name}`),
        );
      case "build outside dev":
        return broken(rule, { ...base, environment: "staging", edge: { acmeEmail: "ops@example.com" }, api: { ...api, image: undefined, domain: "api.example.com", build: { context: "examples/app" } } }, "api.build");
      default:
        return broken(rule, { ...base, environment: "production", edge: { acmeEmail: "ops@example.com" }, api: { ...api, image: "ghcr.io/acme/api:latest", domain: "api.example.com" } }, "api.image");
    }
  })
  .map((c) => ({ ...c, config: JSON.parse(JSON.stringify(c.config)) as Record<string, unknown> }));

/** A Docker transport that does not authenticate both ends: plain tcp:// or a local socket outside dev, an unsafe ssh option anywhere. */
const insecureTransport = fc
  .tuple(validCase, fc.constantFrom<Env>("staging", "production"))
  .chain(([{ config }, deployed]): fc.Arbitrary<BrokenCase> =>
    fc.oneof(
      fc.constantFrom("tcp://10.0.0.5:2375", "unix:///var/run/docker.sock").map((host) => ({ environment: deployed, docker: { host }, expect: "docker.host" })),
      fc
        .constantFrom(["-o", "StrictHostKeyChecking=no"], ["-o", "ProxyCommand=nc %h %p"], ["-o", "UserKnownHostsFile=/dev/null"], ["-oStrictHostKeyChecking=accept-new"], ["-v"])
        .chain((bad) => fc.constantFrom<Env>("dev", deployed).map((environment) => ({ environment, docker: { host: "ssh://deploy@host.example.com", sshOpts: bad }, expect: "docker.sshOpts" }))),
    ).map(({ environment, docker, expect }) => {
      const broken: Record<string, unknown> = compact({ ...config, environment, docker, edge: environment === "dev" ? undefined : config.api ? { acmeEmail: "ops@example.com" } : undefined });
      if (environment === "dev" && broken.api) delete (broken.api as Record<string, unknown>).domain;
      return { kind: "insecure Docker transport", config: broken, secrets: neededSecrets(broken), expect };
    }),
  );

/**
 * A name appstack wires, in the `env` or `secretEnv` of any service: the API's
 * wiring, the worker's concurrency variable and heartbeat file, the frontend's
 * API URL (its default name or one the stack chose). The user's value would
 * be dropped, so it must be an error at that very entry.
 */
const wiredNameInEnv = fc
  .tuple(
    validCase,
    fc.constantFrom("api", "worker", "frontend"),
    fc.constantFrom("env", "secretEnv"),
    fc.option(fc.constantFrom("JOBS_AT_ONCE", "PUBLIC_API_URL"), { nil: undefined }),
  )
  .chain(([{ config, environment }, service, where, chosen]) => {
    const api = { image: "ghcr.io/acme/api:1.2.3", health: { path: "/health" }, ...(environment === "dev" ? {} : { domain: "api.example.com" }) };
    const frontendBase = environment === "dev" ? { image: "ghcr.io/acme/web:1.0.0" } : { vercel: { projectName: "web", gitRepository: { repo: "acme/web" } } };
    const names: Record<string, string[]> = {
      api: [...WIRED_ENV],
      worker: [...WIRED_ENV, chosen === "JOBS_AT_ONCE" ? chosen : "WORKER_CONCURRENCY", HEARTBEAT_ENV],
      frontend: [chosen === "PUBLIC_API_URL" ? chosen : "VITE_API_URL"],
    };
    return fc.constantFrom(...names[service]).map((name): BrokenCase => {
      const entry = where === "env" ? { env: { [name]: "http://api.example.com" } } : { secretEnv: [name] };
      const sections: Record<string, Record<string, unknown>> = {
        api: { ...api, ...(service === "api" ? entry : {}) },
        // A heartbeat check, so HEARTBEAT_FILE is wired too.
        worker: {
          command: ["node", "worker.js"],
          health: { type: "heartbeat" },
          ...(chosen === "JOBS_AT_ONCE" ? { concurrencyEnv: chosen } : {}),
          ...(service === "worker" ? entry : {}),
        },
        frontend: { ...frontendBase, ...(chosen === "PUBLIC_API_URL" ? { apiUrlEnv: chosen } : {}), ...(service === "frontend" ? entry : {}) },
      };
      const broken = { ...config, ...sections, ...(environment === "dev" ? {} : { edge: { acmeEmail: "ops@example.com" } }) };
      return { kind: "wired name in a service's env", config: broken, secrets: neededSecrets(broken), expect: where === "env" ? `${service}.env.${name}` : `${service}.secretEnv[0]` };
    });
  });

/** Swarm mode's rules (config/swarm.ts): what issue 12 names as bad input. */
const notDev = validCase.filter((c) => c.environment !== "dev");
const swarmRule = fc
  .tuple(notDev, storeSection, fc.constantFrom("swarm setting in host mode", "data store without its node", "data store replicas", "api host port in swarm", "secret name Swarm rejects"))
  .chain(([{ config, environment }, section, rule]): fc.Arbitrary<BrokenCase> => {
    const api = { image: "ghcr.io/acme/api:1.2.3", health: { path: "/health" }, domain: "api.example.com" };
    // The store in container mode with a pinned image, and `over` on top (an undefined value removes a key).
    const store = (c: Record<string, unknown>, over: Record<string, unknown>) => {
      const base = withContainerSetting(c, section, "image", section === "postgres" ? "postgres:17.6" : "redis:7.4.6");
      return { ...base, [section]: { ...(base[section] as object), ...over } };
    };
    const host = { ...config, docker: { host: "unix:///var/run/docker.sock" } };
    const swarm = toSwarm({ ...config, docker: { host: "unix:///var/run/docker.sock" } }, environment);
    const make = (c: Record<string, unknown>, expect: string): BrokenCase => {
      const cleaned = JSON.parse(JSON.stringify(c)) as Record<string, unknown>;
      return { kind: rule, config: cleaned, secrets: neededSecrets(cleaned), expect };
    };
    switch (rule) {
      case "swarm setting in host mode":
        return fc.constantFrom("node", "secretFiles").map((key) =>
          key === "node" ? make(store(host, { node: "data-1" }), `${section}.node`) : make({ ...host, api: { ...api, secretFiles: { uid: 1000 } }, edge: { acmeEmail: "ops@example.com" } }, "api.secretFiles"),
        );
      case "data store without its node":
        return fc.constant(make(store(swarm, { node: undefined }), `${section}.node`));
      case "data store replicas":
        return fc.tuple(fc.integer({ min: 2, max: 9 }), fc.boolean()).map(([n, inSwarm]) => make(store(inSwarm ? swarm : host, { replicas: n }), `${section}.replicas`));
      case "api host port in swarm":
        return fc.integer({ min: 1, max: 65535 }).map((port) => make({ ...swarm, api: { ...api, hostPort: port }, edge: { acmeEmail: "ops@example.com" } }, "api.hostPort"));
      default:
        return fc.stringMatching(/^[A-Z][A-Z0-9_]{44,60}$/).map((name) =>
          make({ ...swarm, api: { ...api, secretEnv: ["OPENAI_API_KEY", name] }, edge: { acmeEmail: "ops@example.com" } }, "api.secretEnv[1]"),
        );
    }
  });


/**
 * What issue 13 names as bad input for the backups: an invalid schedule, a
 * retention of zero, a repository restic does not support (or a backend
 * without its credentials), a repository password in plain text, and backup
 * settings on an external Postgres.
 */
const backupRule = fc
  .tuple(validCase, fc.constantFrom("bad backup schedule", "backup retention of zero", "unsupported off-host repository", "off-host backend without its credentials", "repository password in plain text", "backup on an external Postgres"))
  .chain(([{ config }, kind]): fc.Arbitrary<BrokenCase> => {
    const container = { ...config, postgres: { mode: "container" } };
    const withBackup = (backup: Record<string, unknown>) => ({ ...container, backup });
    const cased = (c: Record<string, unknown>, expect: string, secrets = neededSecrets(c)): BrokenCase => ({ kind, config: c, secrets, expect });
    const s3 = { secretEnv: ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] };
    switch (kind) {
      case "bad backup schedule":
        return fc
          .oneof(fc.constantFrom("daily", "0h", "30s", "4m", "31d", "24H", "5 m", "1.5h", "0 3 * * *", "", "-1h"), fc.string({ maxLength: 6 }))
          .filter((v) => !backupSchema.shape.schedule.safeParse(v).success)
          .map((schedule) => cased(withBackup({ schedule }), "backup.schedule"));
      case "backup retention of zero":
        return fc.oneof(
          fc.integer({ min: -3, max: 0 }).map((keep) => cased(withBackup({ keep }), "backup.keep")),
          fc.integer({ min: -3, max: 0 }).map((keepDaily) => cased(withBackup({ offsite: { ...s3, keepDaily } }), "backup.offsite.keepDaily")),
        );
      case "unsupported off-host repository":
        return fc
          .constantFrom("/srv/backups/app", "local:/srv/backups", "ftp://backup.example.com/app", "rest:http://backup.example.com:8000/app", "azure:container:/app", "rclone:remote:app", "s3:", "b2:", "sftp:", "not a repository")
          .map((repo) => {
            const c = withBackup({ offsite: s3 });
            return cased(c, "resticRepository", { ...neededSecrets(c), resticRepository: repo });
          });
      case "off-host backend without its credentials":
        return fc.constantFrom<[string, string]>(
          ["s3:s3.amazonaws.com/acme/app", "backup.offsite.secretEnv"],
          ["b2:acme:app", "backup.offsite.secretEnv"],
          ["sftp:backup@backup.example.com:/srv/app", "backup.offsite.sshKeySecret"],
        ).map(([repo, expect]) => {
          const c = withBackup({ offsite: {} });
          return cased(c, expect, { ...neededSecrets(c), resticRepository: repo });
        });
      case "repository password in plain text": {
        const c = withBackup({ offsite: s3 });
        const secrets = neededSecrets(c);
        delete secrets.resticPassword;
        return fc.constant(cased({ ...c, resticPassword: "correct horse battery staple" }, "resticPassword", secrets));
      }
      default: {
        const c = { ...config, postgres: { mode: "external" }, backup: { schedule: "6h" } };
        return fc.constant(cased(c, "backup", { ...neededSecrets({ ...c, backup: undefined }), postgresUrl: "postgresql://u:p@db.example.com/app" }));
      }
    }
  })
  .map((c) => ({ ...c, config: JSON.parse(JSON.stringify(c.config)) as Record<string, unknown> }));

const brokenCase: fc.Arbitrary<BrokenCase> = fc.oneof(
  wrongType, unknownKey, prototypeKey, missingKey, outOfRange, badImage, environmentRule, secretRule, foreignNamespace, serviceRule, wiredNameInEnv, insecureTransport, backupRule, swarmRule,
);

// --- checks ----------------------------------------------------------------

/** The problem is reported at the broken key, or at the section that holds it, or below it. */
function reportedAt(problems: ConfigProblem[], expected: string): boolean {
  const full = expected.includes(":") ? expected : `appstack:${expected}`;
  return problems.some((p) => p.key === full || full.startsWith(`${p.key}.`) || p.key.startsWith(`${full}.`) || p.key.startsWith(`${full}[`));
}

async function loadBroken(c: BrokenCase, program: boolean): Promise<void> {
  const env = c.config.environment;
  const stack = (typeof env === "string" && /^[A-Za-z0-9_.-]+$/.test(env) && env) || "dev";
  const rt = await mockStack(stack, c.config, c.secrets);
  let error: unknown;
  try {
    const config = loadConfig(new pulumi.Config("appstack"));
    if (program) new AppStack("appstack", { config, root: PROJECT_ROOT });
  } catch (err) {
    error = err;
  }
  await waitForRegistrations();
  expect(rt.resources, `${c.kind}: registered resources`).toEqual([]);
  expect(ConfigError.isInstance(error), `${c.kind}: expected a ConfigError, got ${String(error)}`).toBe(true);
  const problems = (error as ConfigError).problems;
  const foreign = Object.keys(c.config).filter((k) => k.includes(":"));
  for (const p of problems) {
    expect(p.key.startsWith("appstack:") || foreign.includes(p.key), `${c.kind}: problem key ${p.key}`).toBe(true);
    expectPastableFix(c.kind, stack, p);
  }
  expect(reportedAt(problems, c.expect), `${c.kind}: no problem at ${c.expect}; got ${problems.map((p) => p.key).join(", ")}`).toBe(true);
}

/** A command's key in the problem list's spelling: `appstack:worker.command[0]`. */
function keyText(cmd: ConfigCommand): string {
  return `${cmd.namespace}:${cmd.path.map((seg, i) => (typeof seg === "number" ? `[${seg}]` : i === 0 ? seg : `.${seg}`)).join("")}`;
}

/**
 * A problem's fix, pasted: every command a valid `pulumi config set/rm` for
 * this stack (flags known, stack named, path syntax valid), and one of them
 * about the problem's key (or a key inside or around it). Only a key no
 * command can name (empty, or a `\"` inside) may be fixed by an edit.
 */
function expectPastableFix(kind: string, stack: string, p: ConfigProblem): void {
  const where = `${kind}: fix for ${p.key}: ${p.fix}`;
  if (p.fix.startsWith("edit ")) {
    expect(p.key === "appstack:" || /\\("|$)/.test(p.key), where).toBe(true);
    return;
  }
  let commands: ConfigCommand[] = [];
  expect(() => (commands = parseFix(p.fix)), where).not.toThrow();
  for (const cmd of commands) expect(cmd.stack, where).toBe(stack);
  const about = (k: string) => k === p.key || p.key.startsWith(`${k}.`) || p.key.startsWith(`${k}[`) || k.startsWith(`${p.key}.`) || k.startsWith(`${p.key}[`);
  expect(commands.some((cmd) => about(keyText(cmd))), `${where}: no command about ${p.key}`).toBe(true);
}

describe("config fuzzing (fast-check)", () => {
  it("docs/verification.md states this file's counts", () => {
    const doc = fs.readFileSync(path.join(PROJECT_ROOT, "docs", "verification.md"), "utf8").replace(/\s+/g, " ");
    expect(doc).toContain(`${INVALID_RUNS.toLocaleString("en-US")} broken configs per run in ${BROKEN_KINDS} kinds`);
    expect(doc).toContain(`${VALID_RUNS} valid ones load`);
  });

  it("a top-level key named __proto__ is an unknown setting, not silently dropped (found by this fuzzer)", async () => {
    for (const value of [{ environment: "production" }, 5]) {
      await loadBroken({ kind: "regression", config: { environment: "dev", ["__proto__"]: value }, secrets: {}, expect: "__proto__" }, true);
    }
  });


  it("a misspelt key whose value holds a key no command can name gets a fix that removes it, not an edit (found by this fuzzer)", async () => {
    const config = { environment: "dev", postgres: { mode: "container", Image: { "\\": null } } };
    await loadBroken({ kind: "regression", config, secrets: {}, expect: "appstack:postgres.Image" }, true);
  });

  it(`every generated broken config gives a ConfigError at the broken key and registers nothing`, async () => {
    const kinds = new Map<string, number>();
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(brokenCase, async (c) => {
        runs++;
        kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1);
        await loadBroken(c, false);
      }),
      { numRuns: INVALID_RUNS },
    );
    console.log(`config fuzz: ${runs} broken configs, each a ConfigError with its key, none registered a resource`);
    console.log(`config fuzz: by kind: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(", ")}`);
    expect(runs).toBeGreaterThanOrEqual(1000);
    expect(kinds.size).toBe(BROKEN_KINDS);
  });

  it("every generated valid config loads", async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(validCase, async ({ config, secrets, environment }) => {
        runs++;
        await mockStack(environment, config, secrets);
        const cfg = loadConfig(new pulumi.Config("appstack"));
        expect(cfg.environment).toBe(environment);
      }),
      { numRuns: VALID_RUNS },
    );
    console.log(`config fuzz: ${runs} valid configs loaded`);
  });

  it("the whole program, on a sample: broken configs register nothing, valid ones build the stack", async () => {
    await fc.assert(
      fc.asyncProperty(brokenCase, (c) => loadBroken(c, true)),
      { numRuns: PROGRAM_SAMPLE },
    );
    await fc.assert(
      fc.asyncProperty(validCase, async ({ config, secrets, environment }) => {
        const rt = await mockStack(environment, config, secrets);
        const app = new AppStack("appstack", { config: loadConfig(new pulumi.Config("appstack")), root: PROJECT_ROOT });
        await waitForRegistrations();
        expect(app.outputs.environment).toBe(environment);
        expect(rt.resources.map((r) => r.name)).toContain("appstack");
      }),
      { numRuns: PROGRAM_SAMPLE },
    );
    console.log(`config fuzz: the program evaluated for ${PROGRAM_SAMPLE} broken and ${PROGRAM_SAMPLE} valid configs`);
  });
});
