import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { AppStack } from "../components/app-stack";
import { caddyfile } from "../components/edge";
import { checkJobExit } from "../components/job";
import { SECURITY_HEADERS } from "../components/security-headers";
import { workerHealthTest } from "../components/worker";
import { ConfigError, loadConfig, parseAppConfig, type ConfigProblem } from "../config";
import { defaultMockOutputs, waitForRegistrations, type MockOutputs, type MockRuntime, type RecordedResource } from "../ops/offline/offline-runtime";
import { validateStack } from "../ops/offline/validate";
import { EXIT, UserError } from "../ops/shared/errors";
import { decodeWire } from "../policy/view";
import { tempProject } from "./helpers/project";
import { isSecret, logicalName, masked, mockStack, promise } from "./helpers/pulumi";

const API = { image: "ghcr.io/acme/api:1.4.2", health: { path: "/api/v1/health/live", readyPath: "/api/v1/health/ready" } };
const VERCEL = { projectName: "acme-web", gitRepository: { repo: "acme/web" } };
const PLACEHOLDER = "v1:cGxhY2Vob2xkZXI=:cGxhY2Vob2xkZXI=";

function productionConfig(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    environment: "production",
    docker: { host: "ssh://deploy@prod.example.com" },
    postgres: { mode: "container", image: "postgres:17.6-alpine" },
    redis: { mode: "container", image: "redis:7.4.6-alpine" },
    generatedSecrets: ["JWT_SECRET"],
    api: { ...API, replicas: 2, domain: "api.example.com", migrations: { command: ["npm", "run", "db:migrate"] }, secretEnv: ["OPENAI_API_KEY"], env: { MEMORY_SYSTEM_ENABLED: true } },
    worker: { command: ["node", "worker.js"], concurrencyEnv: "MEMORY_WORKER_MAX_CONCURRENT_JOBS", secretEnv: ["OPENAI_API_KEY"] },
    edge: { image: "caddy:2.10.2-alpine", acmeEmail: "ops@example.com" },
    frontend: { domains: ["app.example.com"], vercel: VERCEL, secretEnv: ["SENTRY_AUTH_TOKEN"], env: { VITE_FEATURE_X: "on" } },
    ...over,
  };
}
const productionSecrets = { OPENAI_API_KEY: "sk-test-openai-value", vercelApiToken: "vercel-token-value", SENTRY_AUTH_TOKEN: "sentry-token-value" };

/**
 * Rejections the program raises on purpose (a failed job fails every
 * registration that waits on it) are collected here, not left to the runner.
 */
let rejections: unknown[] = [];
const onRejection = (e: unknown) => rejections.push(e);
beforeAll(() => process.on("unhandledRejection", onRejection));
afterAll(() => process.off("unhandledRejection", onRejection));
beforeEach(() => {
  rejections = [];
});

/** Waits (at most 5 s) until the program has reported a rejection. */
async function firstRejection(): Promise<unknown> {
  for (let i = 0; i < 100 && rejections.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  return rejections[0];
}

async function evaluate(
  stack: string,
  config: Record<string, unknown>,
  secrets: Record<string, string> = {},
  mockOutputs?: MockOutputs,
): Promise<{ rt: MockRuntime; app: AppStack; get: (name: string) => RecordedResource }> {
  const rt = await mockStack(stack, config, secrets, mockOutputs);
  const app = new AppStack("appstack", { config: loadConfig(new pulumi.Config("appstack")), root: process.cwd() });
  await waitForRegistrations().catch(() => undefined);
  const get = (name: string) => {
    const found = rt.resources.find((r) => r.name === name || logicalName(r.name) === name);
    if (!found) throw new Error(`${name} not registered: ${rt.resources.map((r) => r.name).join(", ")}`);
    return found;
  };
  return { rt, app, get };
}

/**
 * The production stack as configured above, evaluated once for the tests that
 * only read it; a test about evaluating again (the same slot for the same
 * settings) evaluates anew.
 */
let production: ReturnType<typeof evaluate> | undefined;
const productionStack = () => (production ??= evaluate("production", productionConfig(), productionSecrets));

const envOf = (r: RecordedResource) => masked(r).inputs.envs as string[];
const envValue = (r: RecordedResource, key: string) => envOf(r).find((e) => e.startsWith(`${key}=`))?.slice(key.length + 1);
const urnOf = (rt: MockRuntime, name: string) => rt.resources.find((r) => r.name === name || logicalName(r.name) === name)!.urn;

describe("API", () => {
  it("waits until ready on an in-container HTTP probe of the readiness path that needs no curl", async () => {
    const { get } = await productionStack();
    const { inputs } = masked(get("api-1"));
    const tests = (inputs.healthcheck as { tests: string[] }).tests;
    expect(tests.slice(0, 3)).toEqual(["CMD", "node", "-e"]);
    expect(tests[3]).toContain('fetch("http://127.0.0.1:3000/api/v1/health/ready"');
    expect(inputs).toMatchObject({ wait: true, waitTimeout: 180, restart: "unless-stopped", memory: 512, stopSignal: "SIGTERM", stopTimeout: 30 });
  });

  it("is stopped gracefully when removed: SIGTERM, then the stop timeout, then removal (destroyGraceSeconds)", async () => {
    const { get } = await evaluate("production", productionConfig({ api: { ...(productionConfig().api as object), stopTimeoutSeconds: 45 } }), productionSecrets);
    for (const name of ["api-1", "api-2"]) expect(masked(get(name)).inputs).toMatchObject({ stopSignal: "SIGTERM", stopTimeout: 45, destroyGraceSeconds: 45 });
  });

  it("outside dev names its containers by release slot, so a new release starts beside the old one instead of replacing it", async () => {
    const a = await productionStack();
    const names = (rt: MockRuntime) => rt.resources.filter((r) => /^api-[0-9a-f]{8}-\d+$/.test(r.name)).map((r) => r.name).sort();
    const first = names(a.rt);
    expect(first).toHaveLength(2);
    expect(first[0].replace(/-1$/, "")).toBe(first[1].replace(/-2$/, ""));
    for (const name of first) {
      const r = a.get(name);
      expect(r.inputs.name).toBeUndefined();
      expect(r.inputs.ports).toBeUndefined();
      expect(r.options.deleteBeforeReplace).toBe(false);
    }
    expect(masked(a.get("api-2")).inputs.networksAdvanced).toEqual([{ name: "appstack-production", aliases: ["api"] }, { name: "appstack-production-edge" }]);
    // The same settings give the same slot; a new image, a new one; one more replica joins the slot.
    expect(names((await evaluate("production", productionConfig(), productionSecrets)).rt)).toEqual(first);
    const newImage = names((await evaluate("production", productionConfig({ api: { ...(productionConfig().api as object), image: "ghcr.io/acme/api:1.5.0" } }), productionSecrets)).rt);
    expect(newImage.filter((n) => first.includes(n))).toEqual([]);
    const threeReplicas = names((await evaluate("production", productionConfig({ api: { ...(productionConfig().api as object), replicas: 3 } }), productionSecrets)).rt);
    expect(threeReplicas.slice(0, 2)).toEqual(first);
  });

  it("in dev publishes on 127.0.0.1 only, and then replaces delete-first", async () => {
    const { get } = await evaluate("dev", { environment: "dev", api: { image: "acme/api:dev", health: { path: "/health" }, hostPort: 13000 } });
    const r = get("api-1");
    expect(masked(r).inputs.ports).toEqual([{ internal: 3000, external: 13000, ip: "127.0.0.1" }]);
    expect(r.options.deleteBeforeReplace).toBe(true);
  });

  it("CORS origin is the frontend's URL and the frontend's API URL is the API's, from one place", async () => {
    const { get, app } = await productionStack();
    const api = get("api-1");
    expect(envValue(api, "CORS_ORIGIN")).toBe("https://app.example.com");
    expect(envValue(api, "FRONTEND_URL")).toBe("https://app.example.com");
    const apiUrlVar = get("frontend-env-VITE_API_URL");
    expect(apiUrlVar.inputs.key).toBe("VITE_API_URL");
    expect(app.outputs.endpoints.api!.url).toBe("https://api.example.com");
    expect(app.outputs.endpoints.frontend!.url).toBe(envValue(api, "CORS_ORIGIN"));
    // The provider keeps every variable's value secret in state; ours is the API URL.
    expect(JSON.stringify(apiUrlVar.inputs.value)).toContain("https://api.example.com");
  });

  it("gets every credential as a secret: database, Redis, generated and configured secrets", async () => {
    const { get, app } = await productionStack();
    const api = get("api-1");
    const { inputs, secretPaths } = masked(api);
    const envs = inputs.envs as string[];
    expect(envs.filter((e) => e === "[secret]")).toHaveLength(4); // DATABASE_URL, JWT_SECRET, OPENAI_API_KEY, REDIS_URL
    expect(secretPaths).toHaveLength(4);
    expect(JSON.stringify(inputs)).not.toMatch(/sk-test-openai-value|mock-[a-z-]+-password/);
    expect(envValue(api, "MEMORY_SYSTEM_ENABLED")).toBe("true");
    expect(await isSecret(app.outputs.connections.databaseUrl)).toBe(true);
  });

  it("a generated JWT secret is 64 random characters from @pulumi/random", async () => {
    const { get } = await productionStack();
    const r = get("appstack-secret-jwt-secret");
    expect(r.type).toBe("random:index/randomPassword:RandomPassword");
    expect(r.inputs.length).toBe(64);
  });
});

describe("migrations gate", () => {
  const withExit = (exitCode: number): MockOutputs => (type, name, inputs) =>
    name === "api-migrate-run" ? { exitCode, containerLogs: "applying 0007_users\nERROR: column \"email\" already exists" } : defaultMockOutputs(type, name, inputs);
  /** A migration job that exits 0, evaluated once for the two tests that read it. */
  let migrated: ReturnType<typeof evaluate> | undefined;
  const productionMigrated = () => (migrated ??= evaluate("production", productionConfig(), productionSecrets, withExit(0)));

  it("runs after the data stores are healthy and before any API container", async () => {
    const { rt, get } = await productionMigrated();
    const job = get("api-migrate-run");
    expect(job.options.dependsOn).toEqual(expect.arrayContaining([urnOf(rt, "postgres-server"), urnOf(rt, "redis-server")]));
    expect(get("api-1").options.dependsOn).toContain(job.urn);
    expect(masked(job).inputs).toMatchObject({ restart: "no", mustRun: false, attach: true, logs: true, command: ["npm", "run", "db:migrate"] });
    expect(masked(job).inputs.labels).toContainEqual({ label: "appstack.role", value: "job" });
    expect(rejections).toEqual([]);
  });

  it("exit code 0 lets the API roll out", async () => {
    const { app, get } = await productionMigrated();
    expect(await promise(app.api!.migrations!.completed.apply((c) => c.urn))).toBe(get("api-migrate-run").urn);
    expect(get("api-2").type).toBe("docker:index/container:Container");
  });

  it("a non-zero exit fails the deploy with the migration's logs, before any API container is touched", async () => {
    const { rt, app } = await evaluate("production", productionConfig(), productionSecrets, withExit(1));
    await expect(promise(app.api!.migrations!.completed)).rejects.toThrow(/Database migrations failed with exit code 1/);
    const names = rt.resources.map((r) => logicalName(r.name));
    expect(names).toContain("api-migrate-run");
    // The proxy container does not depend on the API; the config that would route to a new API does.
    expect(names.filter((n) => /^(api|worker)-\d$|^edge-config-run$|^frontend-deployment$/.test(n))).toEqual([]);
    expect(String(await firstRejection())).toContain('ERROR: column "email" already exists');
  });

  it("the message keeps the last 40 log lines and names the command that shows the whole log", () => {
    const logs = Array.from({ length: 100 }, (_, i) => `line ${i + 1}`).join("\n");
    const outcome = { description: "Backup", logs, container: "backup-dump-run-1a2b3c4", secrets: [] };
    expect(() => checkJobExit({ ...outcome, exitCode: 2 })).toThrow(/last 40 log lines, secrets masked ---\nline 61\n[\s\S]*line 100$/);
    expect(() => checkJobExit({ ...outcome, exitCode: 2 })).toThrow("docker logs backup-dump-run-1a2b3c4");
    expect(() => checkJobExit({ ...outcome, exitCode: 0 })).not.toThrow();
    expect(() => checkJobExit({ ...outcome, exitCode: undefined, logs: undefined })).not.toThrow();
  });

  it("a secret too short to mask reliably: no log in the message, only the command that shows it", () => {
    const outcome = { description: "Database migrations", exitCode: 1, logs: "token=abc123 rejected", container: "api-migrate-run-9f8e7d6", secrets: ["abc123"] };
    const message = failureMessage(() => checkJobExit(outcome));
    expect(message).not.toContain("abc123");
    expect(message).toContain("The log is not shown");
    expect(message).toContain("docker logs api-migrate-run-9f8e7d6");
  });
});

function failureMessage(fn: () => void): string {
  try {
    fn();
  } catch (err) {
    return String((err as Error).message);
  }
  throw new Error("expected a failure");
}

/**
 * The job-log canary. A failed job's message goes to `pulumi up`'s output and
 * into CI logs, where nothing masks the generated passwords. Here each job
 * really runs, as a local process with exactly the env its container
 * declares, a command that prints every variable it has and its connection
 * URLs the ways ORMs do (whole, the password decoded, in JSON), plus a
 * credentialed URL that is no secret of ours; then exits non-zero. The
 * deploy error must hold none of those values.
 */
describe("job-log canary: a failed job's error holds none of its secrets", () => {
  const CANARY = [
    "for (const [k, v] of Object.entries(process.env)) console.log(`${k}=${v}`);",
    "const db = new URL(process.env.DATABASE_URL ?? process.env.PGPASSWORD_URL ?? 'postgresql://x:y@h/d');",
    "console.error(`error: connect ECONNREFUSED ${process.env.DATABASE_URL ?? ''}`);",
    "console.error(`password authentication failed: ${decodeURIComponent(db.password)} / ${process.env.PGPASSWORD ?? ''}`);",
    "console.error(JSON.stringify({ redis: process.env.REDIS_URL, key: process.env.OPENAI_API_KEY }));",
    // Built at run time, so no line of this file is a credentialed URL.
    "console.error('fetching https://' + ['deploy', 'hunter2-not-ours'].join(':') + '@registry.example.com/v2/');",
    "process.exit(3);",
  ].join("\n");
  // Generated values as strong as the real ones, URL-special characters included, so every spelling differs.
  const generated = (name: string) =>
    name === "postgres-password" ? "Ab3#%&*()-_=+[]{}:?@/xYz9!pQ7rS2" : `${name.replace(/\W/g, "")}-${"k".repeat(24)}-Zq81`;
  const runJobs = (jobs: Record<string, number>, command?: (name: string, declared: string[]) => string[]): MockOutputs => {
    return (type, name, inputs) => {
      if (type === "random:index/randomPassword:RandomPassword") return { result: generated(name), bcryptHash: "mock" };
      if (!(name in jobs)) return {};
      const env = Object.fromEntries((decodeWire(inputs.envs).value as string[]).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
      const [cmd, ...args] = command ? command(name, inputs.command as string[]) : (inputs.command as string[]);
      const r = spawnSync(cmd, args, { env: { ...env, PATH: process.env.PATH }, encoding: "utf8", timeout: 20_000 });
      logsOf.set(name, `${r.stdout}${r.stderr}`);
      return { exitCode: jobs[name] === 0 ? 0 : r.status, containerLogs: `${r.stdout}${r.stderr}` };
    };
  };
  const logsOf = new Map<string, string>();
  const canaryConfig = () =>
    productionConfig({ api: { ...(productionConfig().api as object), migrations: { command: [process.execPath, "-e", CANARY] } } });

  function secretsOfStack(): string[] {
    const pgPassword = generated("postgres-password");
    return [
      pgPassword,
      encodeURIComponent(pgPassword),
      `postgresql://app:${encodeURIComponent(pgPassword)}@postgres:5432/app`,
      generated("redis-password"),
      `redis://default:${generated("redis-password")}@redis:6379/0`,
      generated("appstack-secret-jwt-secret"),
      productionSecrets.OPENAI_API_KEY,
      "hunter2-not-ours",
    ];
  }

  it("migrations that print their whole env and connection URLs, then fail", async () => {
    const { app } = await evaluate("production", canaryConfig(), productionSecrets, runJobs({ "backup-dump-run": 0, "api-migrate-run": 3 }, (n, c) => (n === "backup-dump-run" ? ["true"] : c)));
    const message = String(await promise(app.api!.migrations!.completed).then(() => "no failure", (e: Error) => e.message));
    const logs = logsOf.get("api-migrate-run") ?? "";
    const secrets = secretsOfStack();
    // The canary is not vacuous: the job really printed every one of them.
    for (const s of secrets) expect(logs, s).toContain(s);
    expect(message).toContain("Database migrations failed with exit code 3");
    expect(message).toMatch(/docker logs api-migrate-run-\w+/);
    for (const s of secrets) expect(message, `the message holds ${s}`).not.toContain(s);
    expect(message).toContain("DATABASE_URL=[secret]");
    expect(message).toContain("https://[secret]@registry.example.com/v2/");
    // What helps stays: the plain settings and the shape of the error.
    expect(message).toContain("MEMORY_SYSTEM_ENABLED=true");
    expect(message).toContain("error: connect ECONNREFUSED [secret]");
    // Every registration that waited on the migrations fails with the same, masked, message.
    expect(String(await firstRejection())).toContain("Database migrations failed with exit code 3");
    for (const r of rejections) for (const s of secrets) expect(String(r)).not.toContain(s);
  });

  it("a pre-deploy backup that prints its whole env, then fails", async () => {
    const { app, get } = await evaluate("production", canaryConfig(), productionSecrets, runJobs({ "backup-dump-run": 4 }, () => [process.execPath, "-e", CANARY]));
    const message = String(await promise(app.backup!.completed!).then(() => "no failure", (e: Error) => e.message));
    const logs = logsOf.get("backup-dump-run") ?? "";
    const pgPassword = generated("postgres-password");
    expect(logs).toContain(`PGPASSWORD=${pgPassword}`);
    expect(message).toContain("The pre-deploy database backup failed with exit code 3");
    // (The canary's own source, with its stranger's URL, is in this job's env as the migrations trigger: plain text, not a secret.)
    for (const s of [pgPassword, encodeURIComponent(pgPassword)]) expect(message, s).not.toContain(s);
    expect(message).toContain("PGPASSWORD=[secret]");
    expect(get("backup-dump-run").type).toBe("docker:index/container:Container");
    expect(String(await firstRejection())).toContain("The pre-deploy database backup failed");
    for (const r of rejections) expect(String(r)).not.toContain(pgPassword);
  });
});

describe("worker", () => {
  it("runs its command after the API, with concurrency, a process health check and a SIGTERM grace period", async () => {
    const { rt, get } = await productionStack();
    const w = get("worker-1");
    const { inputs } = masked(w);
    expect(inputs).toMatchObject({ command: ["node", "worker.js"], stopSignal: "SIGTERM", stopTimeout: 60, wait: true, waitTimeout: 150, restart: "unless-stopped" });
    expect(envValue(w, "MEMORY_WORKER_MAX_CONCURRENT_JOBS")).toBe("5");
    // The default check asks nothing of the worker: no heartbeat file to write.
    expect(envValue(w, "HEARTBEAT_FILE")).toBeUndefined();
    const tests = (inputs.healthcheck as { tests: string[] }).tests;
    expect(tests.slice(0, 3)).toEqual(["CMD", "node", "-e"]);
    expect(tests[3]).toContain('pattern="node worker.js",up=10');
    expect(envValue(w, "PORT")).toBeUndefined();
    expect(w.options.dependsOn).toEqual(expect.arrayContaining([urnOf(rt, "api-1"), urnOf(rt, "api-2")]));
    // Same image as the API unless configured.
    expect(inputs.labels).toContainEqual({ label: "appstack.image", value: "ghcr.io/acme/api:1.4.2" });
  });

  it("gets the API's wiring and generated secrets, and its own env and secretEnv, but not the API's", async () => {
    const api = { ...(productionConfig().api as object), secretEnv: ["OPENAI_API_KEY", "STRIPE_API_KEY"], env: { API_ONLY_FLAG: "1" } };
    const worker = { command: ["node", "worker.js"], secretEnv: ["OPENAI_API_KEY"], env: { WORKER_FLAG: "on" } };
    const { get } = await evaluate("production", productionConfig({ api, worker }), { ...productionSecrets, STRIPE_API_KEY: "sk-stripe-value" });
    const names = (r: RecordedResource) => (r.inputs.envs as unknown[]).map((e) => JSON.stringify(e).match(/"?([A-Z_]+)=/)?.[1]).sort();
    expect(names(get("worker-1"))).toEqual(["APP_VERSION", "DATABASE_URL", "JWT_SECRET", "NODE_ENV", "OPENAI_API_KEY", "REDIS_URL", "WORKER_CONCURRENCY", "WORKER_FLAG"]);
    expect(names(get("api-1"))).toEqual(expect.arrayContaining(["API_ONLY_FLAG", "OPENAI_API_KEY", "STRIPE_API_KEY"]));
  });

  it("a heartbeat is opt-in: the file path goes to the worker as HEARTBEAT_FILE, and the wait covers its age", async () => {
    const worker = { command: ["node", "worker.js"], health: { type: "heartbeat", maxAgeSeconds: 45 } };
    const { get } = await evaluate("production", productionConfig({ worker }), productionSecrets);
    const w = get("worker-1");
    expect(envValue(w, "HEARTBEAT_FILE")).toBe("/tmp/worker-heartbeat");
    expect(masked(w).inputs).toMatchObject({ waitTimeout: 165 });
    expect((masked(w).inputs.healthcheck as { tests: string[] }).tests[3]).toContain('file="/tmp/worker-heartbeat",max=45');
  });

  it("the heartbeat health check passes on a fresh file and fails on a stale or missing one, saying why", () => {
    const cfg = parseAppConfig({ environment: "dev", worker: { image: "w:1", command: ["w"], health: { type: "heartbeat", file: "/tmp/x", maxAgeSeconds: 2 } } }).data!.worker!;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hb-"));
    const file = path.join(dir, "beat");
    const run = () => {
      const [, bin, ...args] = workerHealthTest({ ...cfg, health: { ...cfg.health, file } } as typeof cfg);
      const r = spawnSync(bin === "node" ? process.execPath : bin, args, { timeout: 10_000, encoding: "utf8" });
      return { code: r.status, out: r.stdout };
    };
    expect(run()).toEqual({ code: 1, out: `no heartbeat file ${file}: the worker must touch $HEARTBEAT_FILE at least every 2 s\n` });
    fs.writeFileSync(file, "");
    expect(run().code).toBe(0);
    const old = new Date(Date.now() - 10_000);
    fs.utimesSync(file, old, old);
    expect(run()).toEqual({ code: 1, out: `heartbeat ${file} is 10 s old (limit 2 s)\n` });
    fs.rmSync(dir, { recursive: true });
  });

  it("the process check runs without a shell; its pattern defaults to the worker's command", () => {
    const parse = (health?: unknown) => parseAppConfig({ environment: "dev", worker: { image: "w:1", command: ["node", "dist/worker.js"], health } }).data!.worker!;
    const byDefault = workerHealthTest(parse());
    expect(byDefault.slice(0, 3)).toEqual(["CMD", "node", "-e"]);
    expect(byDefault[3]).toContain('pattern="node dist/worker.js",up=10');
    expect(workerHealthTest(parse({ type: "process", pattern: "it's \"quoted\"", upSeconds: 0 }))[3]).toContain('pattern="it\'s \\"quoted\\"",up=0');
    expect(workerHealthTest(parse({ type: "command", command: ["/app/worker", "--health"] }))).toEqual(["CMD", "/app/worker", "--health"]);
  });
});

describe("edge proxy", () => {
  it("is the only container publishing ports outside dev, and keeps its certificates on a protected volume", async () => {
    const { rt, get } = await productionStack();
    const publishing = rt.resources.filter((r) => r.type === "docker:index/container:Container" && (r.inputs.ports as unknown[] | undefined)?.length);
    expect(publishing.map((r) => r.name)).toEqual(["edge-proxy"]);
    expect(get("edge-proxy").options.deleteBeforeReplace).toBe(true);
    expect(get("edge-data").options).toMatchObject({ protect: true, retainOnDelete: true });
    expect(masked(get("edge-proxy")).inputs.healthcheck).toMatchObject({ tests: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8081/healthz"] });
  });

  it("routes the API domain to each container by name, with active readiness checks, retries and no passive checks", () => {
    const file = caddyfile({ domain: "api.example.com", acmeEmail: "ops@example.com", upstreams: ["api-a-1-x:3000", "api-a-2-y:3000"], readyPath: "/ready" });
    expect(file).toContain("api.example.com {");
    expect(file).toContain("email ops@example.com");
    expect(file).toContain("admin unix//config/admin.sock");
    expect(file).toContain("reverse_proxy api-a-1-x:3000 api-a-2-y:3000 {");
    expect(file).toContain("health_uri /ready");
    expect(file).toContain("health_fails 2");
    expect(file).toMatch(/lb_try_duration 10s/);
    expect(file).not.toMatch(/lb_retries|fail_duration|unhealthy_status|max_fails/);
    expect(file).toMatch(/handle_errors \{\n\t\timport security_headers/);
    expect(file).toContain('Strict-Transport-Security "max-age=31536000; includeSubDomains"');
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) expect(file).toContain(`${k} "${v}"`);
  });

  it("a new API release changes only the config its job applies; the proxy container, which holds the ports, stays", async () => {
    const a = await productionStack();
    const b = await evaluate("production", productionConfig({ api: { ...(productionConfig().api as object), image: "ghcr.io/acme/api:1.5.0" } }), productionSecrets);
    expect(JSON.stringify(b.get("edge-proxy").inputs)).toBe(JSON.stringify(a.get("edge-proxy").inputs));
    const applied = (r: RecordedResource) => (masked(r).inputs.uploads as { content: string }[])[0].content;
    const upstreamsOf = (rt: MockRuntime) =>
      rt.resources.filter((r) => /^api-[0-9a-f]{8}-\d+$/.test(r.name)).map((r) => `${r.name}-${/-([0-9a-f]{7})$/.exec(applied(a.get("edge-config-run")))?.[1] ?? ""}`);
    expect(upstreamsOf(a.rt)).toHaveLength(2);
    expect(applied(a.get("edge-config-run"))).not.toBe(applied(b.get("edge-config-run")));
    for (const run of [a, b]) {
      const names = run.rt.resources.filter((r) => /^api-[0-9a-f]{8}-\d+$/.test(r.name)).map((r) => r.name);
      for (const n of names) expect(applied(run.get("edge-config-run"))).toMatch(new RegExp(`${n}-[0-9a-f]{7}:3000`));
      // The job waits for every container it names, and the frontend for the job.
      for (const n of names) expect(run.get("edge-config-run").options.dependsOn).toContain(urnOf(run.rt, n));
      expect(run.get("frontend-deployment").options.dependsOn).toContain(urnOf(run.rt, "edge-config-run"));
    }
  });
});

describe("frontend on Vercel", () => {
  it("declares project, variables, headers route, deployment and domains", async () => {
    const { rt, get } = await productionStack();
    expect(masked(get("frontend-project")).inputs).toMatchObject({ name: "acme-web", framework: "vite", outputDirectory: "dist" });
    expect(get("frontend-project").options.protect).toBe(true);
    expect(get("frontend-domain-1").inputs.domain).toBe("app.example.com");
    const route = masked(get("frontend-security-headers")).inputs.route as { src: string; headers: Record<string, string> };
    expect(route).toEqual({ src: "/(.*)", headers: SECURITY_HEADERS });
    const deployment = get("frontend-deployment");
    for (const name of ["frontend-env-VITE_API_URL", "frontend-env-VITE_FEATURE_X", "frontend-env-SENTRY_AUTH_TOKEN", "frontend-security-headers", "api-1", "worker-1", "edge-config-run"]) {
      expect(deployment.options.dependsOn).toContain(urnOf(rt, name));
    }
  });

  it("replaces an env var delete-first, so Vercel never sees two with one key (ENV_ALREADY_EXISTS)", async () => {
    const { rt } = await productionStack();
    const vars = rt.resources.filter((r) => r.type === "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable");
    expect(vars.map((v) => v.inputs.key).sort()).toEqual(["SENTRY_AUTH_TOKEN", "VITE_API_URL", "VITE_FEATURE_X"]);
    for (const v of vars) expect(v.options.deleteBeforeReplace).toBe(true);
  });

  it("user secrets are sensitive variables; plain settings are not", async () => {
    const { get } = await productionStack();
    const secret = masked(get("frontend-env-SENTRY_AUTH_TOKEN"));
    expect(secret.inputs).toMatchObject({ sensitive: true, value: "[secret]" });
    expect(secret.secretPaths).toContain("value");
    expect(masked(get("frontend-env-VITE_FEATURE_X")).inputs.sensitive).toBe(false);
    expect(masked(get("frontend-vercel")).inputs.apiToken).toBe("[secret]");
  });

  it("secret variables go to production deployments only; plain ones to preview as well", async () => {
    const { get } = await evaluate("production", productionConfig(), productionSecrets);
    expect(get("frontend-env-SENTRY_AUTH_TOKEN").inputs.targets).toEqual(["production"]);
    expect(get("frontend-env-VITE_FEATURE_X").inputs.targets).toEqual(["production", "preview"]);
    expect(get("frontend-env-VITE_API_URL").inputs.targets).toEqual(["production", "preview"]);
  });

  it("a stack opts a secret into preview deployments by name, one variable at a time", async () => {
    const frontend = { domains: ["app.example.com"], vercel: VERCEL, secretEnv: ["SENTRY_AUTH_TOKEN", "POSTHOG_KEY"], previewSecretEnv: ["POSTHOG_KEY"] };
    const { get } = await evaluate("production", productionConfig({ frontend }), { ...productionSecrets, POSTHOG_KEY: "phc-test-value" });
    expect(get("frontend-env-POSTHOG_KEY").inputs.targets).toEqual(["production", "preview"]);
    expect(get("frontend-env-SENTRY_AUTH_TOKEN").inputs.targets).toEqual(["production"]);
  });

});

describe("frontend in dev", () => {
  it("is a local container running the frontend image, on 127.0.0.1, told the API's URL", async () => {
    const { get } = await evaluate("dev", {
      environment: "dev",
      api: { image: "acme/api:dev", health: { path: "/health" } },
      frontend: { image: "acme/web:dev" },
    });
    const c = masked(get("frontend-server")).inputs;
    expect(c.ports).toEqual([{ internal: 8080, external: 8080, ip: "127.0.0.1" }]);
    expect(c.envs).toContain("VITE_API_URL=http://localhost:3000");
    expect(envValue(get("api-1"), "CORS_ORIGIN")).toBe("http://localhost:8080");
    expect(c.envs).toContain("PORT=8080");
    expect((c.healthcheck as { tests: string[] }).tests[3]).toContain('fetch("http://127.0.0.1:8080/"');
  });
});

describe("config errors for the services name the key and register nothing", () => {
  async function problems(config: Record<string, unknown>, secrets: Record<string, string> = {}): Promise<ConfigProblem[]> {
    const rt = await mockStack(String(config.environment), config, secrets);
    try {
      new AppStack("appstack", { config: loadConfig(new pulumi.Config("appstack")), root: process.cwd() });
    } catch (err) {
      expect(ConfigError.isInstance(err)).toBe(true);
      expect(rt.resources).toEqual([]);
      return (err as ConfigError).problems;
    }
    throw new Error("expected a ConfigError");
  }

  it("a worker with no command", async () => {
    const ps = await problems({ environment: "dev", api: { image: "a:1", health: { path: "/h" } }, worker: { replicas: 1 } });
    expect(ps.map((p) => p.key)).toEqual(["appstack:worker.command"]);
  });

  it("an API without a health path", async () => {
    const ps = await problems({ environment: "dev", api: { image: "a:1" } });
    expect(ps.map((p) => p.key)).toEqual(["appstack:api.health"]);
    expect(ps[0].fix).toContain("pulumi config set -s dev --path api.health");
  });

  it("a secret env name that is not set in config", async () => {
    const ps = await problems({ environment: "dev", api: { image: "a:1", health: { path: "/h" }, secretEnv: ["OPENAI_API_KEY"] } });
    expect(ps).toEqual([
      {
        key: "appstack:OPENAI_API_KEY",
        problem: "is not set; api.secretEnv needs this secret",
        fix: "pulumi config set -s dev --secret OPENAI_API_KEY",
        note: "Pulumi asks for the value without echoing it, and stores it encrypted",
      },
    ]);
  });

  it("a frontend domain that is not a host name", async () => {
    const ps = await problems(productionConfig({ frontend: { domains: ["https://app.example.com/"], vercel: VERCEL, secretEnv: ["SENTRY_AUTH_TOKEN"] } }), productionSecrets);
    expect(ps.map((p) => p.key)).toEqual(["appstack:frontend.domains[0]"]);
    expect(ps[0].value).toBe('"https://app.example.com/"');
  });

  it("production needs pinned service images, a domain and the edge", async () => {
    const ps = await problems(
      productionConfig({ api: { image: "ghcr.io/acme/api:latest", health: { path: "/h" } }, edge: undefined, worker: { image: "acme/worker", command: ["w"] } }),
      { vercelApiToken: PLACEHOLDER, SENTRY_AUTH_TOKEN: PLACEHOLDER },
    );
    expect(ps.map((p) => p.key).sort()).toEqual(["appstack:api.domain", "appstack:api.image", "appstack:edge", "appstack:worker.image"]);
  });

  it("a local build outside dev, a wired env name, and a Vercel frontend without its project", async () => {
    const ps = await problems({
      environment: "staging",
      docker: { host: "ssh://deploy@staging.example.com" },
      api: { build: { context: "examples/app/api" }, health: { path: "/h" }, domain: "api.example.com", env: { DATABASE_URL: "postgres://x" } },
      edge: { acmeEmail: "ops@example.com" },
      frontend: {},
    }, { vercelApiToken: PLACEHOLDER });
    expect(ps.map((p) => p.key).sort()).toEqual(["appstack:api.build", "appstack:api.env.DATABASE_URL", "appstack:frontend.vercel"]);
  });

  it("a Vercel secret opted into preview deployments that the frontend does not have is a config error", async () => {
    const frontend = { domains: ["app.example.com"], vercel: VERCEL, secretEnv: ["SENTRY_AUTH_TOKEN"], previewSecretEnv: ["SENTRY_AUTH_TOKN"] };
    const ps = await problems(productionConfig({ frontend }), productionSecrets);
    expect(ps.map((p) => [p.key, p.fix])).toEqual([["appstack:frontend.previewSecretEnv[0]", "pulumi config rm -s production --path frontend.previewSecretEnv"]]);
  });
});

describe("a setting appstack would override or ignore is an error, never dropped without a word", () => {
  async function problems(config: Record<string, unknown>, secrets: Record<string, string> = {}): Promise<ConfigProblem[]> {
    const rt = await mockStack(String(config.environment), config, secrets);
    try {
      loadConfig(new pulumi.Config("appstack"));
    } catch (err) {
      expect(ConfigError.isInstance(err)).toBe(true);
      expect(rt.resources).toEqual([]);
      return (err as ConfigError).problems;
    }
    throw new Error("expected a ConfigError");
  }
  const frontend = productionConfig().frontend as Record<string, unknown>;

  it("the frontend's API URL variable in frontend.env (found by outside testing: an http:// URL that was silently replaced)", async () => {
    const ps = await problems(productionConfig({ frontend: { ...frontend, env: { VITE_API_URL: "http://api.example.com" } } }), productionSecrets);
    expect(ps).toEqual([
      {
        key: "appstack:frontend.env.VITE_API_URL",
        value: '"http://api.example.com"',
        problem: "VITE_API_URL is wired by appstack (set to the API's public URL (its name is frontend.apiUrlEnv)); a value here would be dropped",
        fix: "pulumi config rm -s production --path frontend.env.VITE_API_URL",
      },
    ]);
  });

  it("validate refuses a stack file that sets it: exit code 1, the key and the fix", async () => {
    const production = fs.readFileSync(path.join(__dirname, "..", "Pulumi.production.yaml"), "utf8");
    const withUrl = production.replace("  appstack:frontend:\n", "  appstack:frontend:\n    env:\n      VITE_API_URL: http://api.example.com\n");
    expect(withUrl).not.toBe(production);
    const err = await validateStack({ root: tempProject({ "Pulumi.production.yaml": withUrl }), stack: "production" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(EXIT.invalidConfig);
    expect((err as UserError).message).toContain('appstack:frontend.env.VITE_API_URL = "http://api.example.com"');
    expect((err as UserError).message).toContain("fix:     pulumi config rm -s production --path frontend.env.VITE_API_URL");
  });

  it("the same for a chosen frontend.apiUrlEnv, in env or in secretEnv", async () => {
    const chosen = { ...frontend, apiUrlEnv: "PUBLIC_API_URL", env: { PUBLIC_API_URL: "https://api.example.com" }, secretEnv: ["SENTRY_AUTH_TOKEN", "PUBLIC_API_URL"] };
    const ps = await problems(productionConfig({ frontend: chosen }), { ...productionSecrets, PUBLIC_API_URL: "x" });
    expect(ps.map((p) => [p.key, p.fix])).toEqual([
      ["appstack:frontend.env.PUBLIC_API_URL", "pulumi config rm -s production --path frontend.env.PUBLIC_API_URL"],
      // The list is written again without it, so indices stay right whatever else is fixed.
      ["appstack:frontend.secretEnv[1]", "pulumi config rm -s production --path frontend.secretEnv && pulumi config set -s production --path 'frontend.secretEnv[0]' SENTRY_AUTH_TOKEN"],
      // Listed in both: the existing rule that a secret is never also a plain setting.
      ["appstack:frontend.env.PUBLIC_API_URL", "pulumi config rm -s production --path frontend.env.PUBLIC_API_URL"],
    ]);
  });

  it("without an API nothing is wired, so the frontend's env may set the variable itself", async () => {
    const { get } = await evaluate("dev", { environment: "dev", frontend: { image: "ghcr.io/acme/web:1.0.0", env: { VITE_API_URL: "https://api.elsewhere.example" } } });
    expect(envValue(get("frontend-server"), "VITE_API_URL")).toBe("https://api.elsewhere.example");
  });

  it("the worker's concurrency variable and heartbeat file in its env, and a concurrency variable that names a wired one", async () => {
    const worker = { command: ["node", "worker.js"], health: { type: "heartbeat" }, concurrencyEnv: "JOBS_AT_ONCE", env: { JOBS_AT_ONCE: 3, HEARTBEAT_FILE: "/tmp/x" } };
    const ps = await problems(productionConfig({ worker }), productionSecrets);
    expect(ps.map((p) => p.key)).toEqual(["appstack:worker.env.JOBS_AT_ONCE", "appstack:worker.env.HEARTBEAT_FILE"]);
    expect(ps[0].problem).toContain("set from worker.concurrency");
    const clash = await problems(productionConfig({ worker: { command: ["w"], concurrencyEnv: "NODE_ENV" } }), productionSecrets);
    expect(clash.map((p) => [p.key, p.fix])).toEqual([["appstack:worker.concurrencyEnv", "pulumi config rm -s production --path worker.concurrencyEnv"]]);
  });

  it("a generated secret named like the worker's concurrency variable", async () => {
    const ps = await problems(productionConfig({ generatedSecrets: ["MEMORY_WORKER_MAX_CONCURRENT_JOBS"] }), productionSecrets);
    expect(ps.map((p) => p.key)).toEqual(["appstack:generatedSecrets[0]"]);
  });

  it("a frontend build arg that frontend.env or the API URL replaces", async () => {
    const dev = { environment: "dev", api: { image: "a:1", health: { path: "/h" } } };
    const build = { context: "examples/app/frontend", args: { VITE_API_URL: "x", VITE_FLAG: "a", OTHER: "b" } };
    const ps = await problems({ ...dev, frontend: { build, env: { VITE_FLAG: "on" } } });
    expect(ps.map((p) => p.key)).toEqual(["appstack:frontend.build.args.VITE_API_URL", "appstack:frontend.build.args.VITE_FLAG"]);
  });

  it("settings for a part the stack does not have in this environment or mode", async () => {
    const dev = await problems({
      environment: "dev",
      docker: { host: "unix:///var/run/docker.sock", sshOpts: ["-o", "StrictHostKeyChecking=yes"] },
      api: { image: "a:1", health: { path: "/h" }, domain: "api.example.com" },
      frontend: { image: "web:1.0", domains: ["app.example.com"], vercel: VERCEL, secretEnv: ["SENTRY_AUTH_TOKEN"] },
    }, { SENTRY_AUTH_TOKEN: "x" });
    expect(dev.map((p) => p.key).sort()).toEqual([
      "appstack:api.domain", "appstack:docker.sshOpts", "appstack:frontend.domains", "appstack:frontend.secretEnv", "appstack:frontend.vercel",
    ]);
    for (const p of dev) expect(p.fix).toBe(`pulumi config rm -s dev --path ${p.key.slice("appstack:".length)}`);
    const vercel = await problems(productionConfig({ frontend: { ...frontend, image: "web:1.0", hostPort: 8080 } }), productionSecrets);
    expect(vercel.map((p) => p.key)).toEqual(["appstack:frontend.image", "appstack:frontend.hostPort"]);
    const noServices = await problems({ environment: "staging", docker: { host: "ssh://deploy@staging.example.com" }, generatedSecrets: ["JWT_SECRET"], edge: { acmeEmail: "ops@example.com" } });
    expect(noServices.map((p) => p.key)).toEqual(["appstack:edge", "appstack:generatedSecrets"]);
  });

  it("a broken api section is reported as broken, not as missing: no noise about what it would have served", async () => {
    const ps = await problems({
      environment: "staging",
      docker: { host: "ssh://deploy@staging.example.com" },
      generatedSecrets: ["JWT_SECRET"],
      api: { image: "ghcr.io/acme/api:1.0.0", domain: "api.example.com" },
      edge: { acmeEmail: "ops@example.com" },
    });
    expect(ps.map((p) => p.key)).toEqual(["appstack:api.health"]);
  });
});

describe("swarm mode", () => {
  const swarmConfig = (over: Record<string, unknown> = {}) =>
    productionConfig({
      docker: { host: "ssh://deploy@manager.example.com", mode: "swarm" },
      postgres: { mode: "container", image: "postgres:17.6-alpine", node: "data-1" },
      redis: { mode: "container", image: "redis:7.4.6-alpine", node: "data-1" },
      ...over,
    });
  // The job's error waits for every secret it masks: the generated passwords keep their default mock outputs.
  const migrationFails: MockOutputs = (type, name, inputs) =>
    name === "api-migrate-run" ? { exitCode: 1, containerLogs: "ERROR: relation \"jobs\" already exists" } : defaultMockOutputs(type, name, inputs);

  it("a failed migration stops the rollout before any service is created or updated: no API, worker or edge service, no frontend deployment", async () => {
    const { rt, app } = await evaluate("production", swarmConfig(), productionSecrets, migrationFails);
    await expect(promise(app.api!.migrations!.completed)).rejects.toThrow(/Database migrations failed with exit code 1/);
    const names = rt.resources.map((r) => r.name);
    expect(names).toEqual(expect.arrayContaining(["postgres-service", "redis-service", "api-migrate-run"]));
    expect(names.filter((n) => ["api-service", "worker-service", "edge-service", "frontend-deployment"].includes(n))).toEqual([]);
    expect(String(await firstRejection())).toContain('ERROR: relation "jobs" already exists');
  });

  it("an external Postgres stays external: no Postgres service, its URL a Swarm secret like the rest", async () => {
    const { rt, get } = await evaluate(
      "production",
      swarmConfig({ postgres: { mode: "external" } }),
      { ...productionSecrets, postgresUrl: "postgresql://app:pw@db.example.com:5432/app" },
    );
    expect(rt.resources.map((r) => r.name)).not.toContain("postgres-service");
    expect(rt.resources.map((r) => r.name)).not.toContain("backup-dump-run");
    const secret = masked(get("appstack-swarm-secret-database-url"));
    expect(secret.secretPaths).toContain("data");
    expect((masked(get("api-service")).inputs.taskSpec as { containerSpec: { env: Record<string, string> } }).containerSpec.env.DATABASE_URL_FILE).toBe("/run/secrets/DATABASE_URL");
  });

  it("a dev swarm: the API publishes its port on the node and updates stop-first, the data stores run on a manager, the frontend container joins the overlay", async () => {
    const { get } = await evaluate("dev", {
      environment: "dev",
      docker: { mode: "swarm" },
      api: { image: "acme/api:dev", health: { path: "/health" } },
      frontend: { image: "acme/web:dev" },
    });
    const api = masked(get("api-service")).inputs as { endpointSpec: unknown; updateConfig: { order: string } };
    expect(api.endpointSpec).toEqual({ mode: "dnsrr", ports: [{ targetPort: 3000, publishedPort: 3000, publishMode: "host" }] });
    expect(api.updateConfig.order).toBe("stop-first");
    expect((masked(get("postgres-service")).inputs.taskSpec as { placement: unknown }).placement).toEqual({ constraints: ["node.role==manager"] });
    expect(masked(get("frontend-server")).inputs.networksAdvanced).toEqual([{ name: "appstack-dev-overlay" }]);
  });
});

describe("container privileges in the production plan", () => {
  it("every container drops all capabilities, gains no privileges, runs in its service's slice, read-only unless given files", async () => {
    const { rt } = await evaluate("production", productionConfig(), productionSecrets);
    const containers = rt.resources.filter((r) => r.type === "docker:index/container:Container");
    expect(containers.map((c) => logicalName(c.name)).sort()).toEqual(
      ["api-1", "api-2", "api-migrate-run", "backup-dump-run", "backup-schedule", "edge-config-run", "edge-proxy", "postgres-server", "redis-server", "worker-1"].sort(),
    );
    for (const c of containers) {
      const { inputs } = masked(c);
      const service = (inputs.labels as { label: string; value: string }[]).find((l) => l.label === "appstack.service")!.value;
      expect(inputs.capabilities, c.name).toEqual({ drops: ["ALL"], adds: c.name === "edge-proxy" ? ["NET_BIND_SERVICE"] : [] });
      expect(inputs.securityOpts, c.name).toEqual(["no-new-privileges:true"]);
      const given = ((inputs.uploads as unknown[] | undefined) ?? []).length > 0;
      expect(inputs.readOnly, c.name).toBe(!given);
      if (!given) expect(Object.keys(inputs.tmpfs as object).length, c.name).toBeGreaterThan(0);
      expect(inputs.cgroupParent, c.name).toBe(`appstack-production-${service}.slice`);
    }
  });

  it("Postgres and Redis run as their images' non-root users, with tmpfs only where they write", async () => {
    const { get } = await evaluate("production", productionConfig(), productionSecrets);
    expect(masked(get("postgres-server")).inputs).toMatchObject({
      user: "postgres",
      tmpfs: { "/var/run/postgresql": "rw,nosuid,nodev,noexec,mode=1777,size=1m", "/tmp": "rw,nosuid,nodev,noexec,mode=1777,size=64m" },
    });
    expect(masked(get("redis-server")).inputs).toMatchObject({ user: "redis", tmpfs: { "/tmp": "rw,nosuid,nodev,noexec,mode=1777,size=1m" } });
  });

  it("the edge has a network of its own, shared with the API only; its config job has none; the data stores are not on it", async () => {
    const { get } = await evaluate("production", productionConfig(), productionSecrets);
    const nets = (name: string) => ((masked(get(name)).inputs.networksAdvanced as { name: string }[] | undefined) ?? []).map((n) => n.name);
    expect(nets("edge-proxy")).toEqual(["appstack-production-edge"]);
    expect(nets("api-1")).toEqual(["appstack-production", "appstack-production-edge"]);
    for (const name of ["postgres-server", "redis-server", "worker-1", "api-migrate-run", "backup-dump-run"]) expect(nets(name), name).toEqual(["appstack-production"]);
    expect(nets("edge-config-run")).toEqual([]);
    expect(masked(get("edge-config-run")).inputs.networkMode).toBe("none");
    expect(get("appstack-edge-network").inputs.name).toBe("appstack-production-edge");
  });

  it("only the containers given files (the edge's Caddyfiles, the scheduled dump's password, through the provider's upload) keep a writable root filesystem", async () => {
    const { rt } = await evaluate("production", productionConfig(), productionSecrets);
    const writable = rt.resources.filter((r) => r.type === "docker:index/container:Container" && masked(r).inputs.readOnly !== true).map((r) => r.name).sort();
    expect(writable).toEqual(["backup-schedule", "edge-config-run", "edge-proxy"]);
    for (const name of writable) expect((masked(rt.resources.find((r) => r.name === name)!).inputs.uploads as unknown[]).length, name).toBeGreaterThan(0);
  });

  it("api.writablePaths and worker.writablePaths become tmpfs mounts; a heartbeat outside them is a config error", async () => {
    const api = { ...(productionConfig().api as object), writablePaths: ["/tmp", "/app/.cache"] };
    const { get } = await evaluate("production", productionConfig({ api }), productionSecrets);
    expect(Object.keys(masked(get("api-1")).inputs.tmpfs as object).sort()).toEqual(["/app/.cache", "/tmp"]);
    expect(Object.keys(masked(get("api-migrate-run")).inputs.tmpfs as object).sort()).toEqual(["/app/.cache", "/tmp"]);
    const worker = { command: ["node", "worker.js"], health: { type: "heartbeat", file: "/var/lib/worker/beat" } };
    const rt = await mockStack("production", productionConfig({ worker }), productionSecrets);
    let problems: ConfigProblem[] = [];
    try {
      loadConfig(new pulumi.Config("appstack"));
    } catch (err) {
      problems = (err as ConfigError).problems;
    }
    expect(rt.resources).toEqual([]);
    expect(problems.map((p) => [p.key, p.fix])).toEqual([["appstack:worker.health.file", "pulumi config set -s production --path worker.health.file /tmp/beat"]]);
    expect(problems[0].note).toBe("or keep the file and make its folder writable: add /var/lib/worker to worker.writablePaths");
  });
});
