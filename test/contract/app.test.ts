import * as fs from "node:fs";
import http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import Redis from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { containerEnv, evaluateStack, PROJECT_ROOT, resource, SETUP_TIMEOUT_MS, type Declared } from "../helpers/declared-stack";
import {
  dockerfileHealthcheck,
  freePort,
  run,
  runHealthcheck,
  startNodeService,
  startPostgres,
  startRedis,
  waitUntil,
  type PostgresServer,
  type RedisServer,
  type ServiceProcess,
} from "./servers";

/**
 * The example app (examples/app) as the dev stack declares it, run for real:
 * the API, its migrations job, the worker and the frontend server each get the
 * env of their container (api-migrate-run, api-1, worker-1, frontend-server),
 * against Postgres and Redis started from the stack's declared containers, and
 * each declared health check runs as Docker would run it.
 *
 * Host adaptations, and nothing else: service hosts (postgres, redis) become
 * 127.0.0.1 and their ports the throwaway servers'; each container port
 * (PORT, and the same number in its health check) becomes a free port; the
 * worker's heartbeat path becomes a file in a temporary directory (in the env
 * and in the health check alike).
 */

const APP = path.join(PROJECT_ROOT, "examples", "app");
const FRONTEND = path.join(APP, "frontend");

let declared: Declared;
let pgServer: PostgresServer;
let redisServer: RedisServer;
let api: ServiceProcess | undefined;
let worker: ServiceProcess | undefined;
let frontend: ServiceProcess | undefined;
let apiPort: number;
let apiEnv: Record<string, string>;
let apiHealth: string[];
let workerEnv: Record<string, string>;
let workerHealth: string[];
let tmp: string;

/** The declared health check of a container, as Docker's `tests`. */
const healthOf = (name: string) => (resource(declared, name).inputs.healthcheck as { tests: string[] }).tests;

/** Replaces `from` by `to` in a health check; it must occur exactly once. */
function rewriteOnce(tests: string[], from: string, to: string): string[] {
  const count = tests.map((t) => t.split(from).length - 1).reduce((a, b) => a + b, 0);
  if (count !== 1) throw new Error(`expected "${from}" exactly once in ${JSON.stringify(tests)}`);
  return tests.map((t) => t.replace(from, to));
}

/** A URL that names a stack service (postgres:5432) points at the local server instead. */
function toLocal(url: string, ports: Record<string, number>): string {
  const u = new URL(url);
  const port = ports[u.hostname];
  if (port === undefined) throw new Error(`no local server for host ${u.hostname}`);
  u.hostname = "127.0.0.1";
  u.port = String(port);
  return u.toString();
}

async function get(port: number, p: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(`http://127.0.0.1:${port}${p}`, { headers });
  return { status: res.status, headers: res.headers, body: await res.json().catch(() => undefined) };
}

async function postJob(message: string, delayMs = 0): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${apiPort}/api/v1/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ message, delayMs }),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

async function jobStatus(id: string): Promise<string> {
  return (await get(apiPort, `/api/v1/jobs/${id}`)).body.status;
}

/** A server that answers every request with 503, as an API whose dependencies are down. */
async function answering503(): Promise<{ port: number; close(): Promise<void> }> {
  const srv = http.createServer((_req, res) => {
    res.writeHead(503, { "content-type": "application/json" });
    res.end('{"status":"unavailable"}');
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return { port: (srv.address() as { port: number }).port, close: () => new Promise((r) => srv.close(() => r())) };
}

/** A container's declared env with its service URLs pointed at the local servers. */
function localEnv(name: string, ports: Record<string, number>): Record<string, string> {
  const env = containerEnv(resource(declared, name));
  for (const key of ["DATABASE_URL", "REDIS_URL"]) if (env[key]) env[key] = toLocal(env[key], ports);
  return env;
}

beforeAll(async () => {
  declared = await evaluateStack({ stack: "dev", values: "contract" });
  const [pgPort, redisPort] = [await freePort(), await freePort()];
  pgServer = await startPostgres(containerEnv(resource(declared, "postgres-server")), pgPort);
  const redisContainer = resource(declared, "redis-server");
  const [sh, c, script] = redisContainer.inputs.command as string[];
  redisServer = await startRedis([sh, c, `${script} --port ${redisPort} --bind 127.0.0.1`], containerEnv(redisContainer), redisPort);
  const local = { postgres: pgPort, redis: redisPort };
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-app-"));

  apiEnv = localEnv("api-1", local);
  const declaredPort = apiEnv.PORT;
  apiPort = await freePort();
  apiEnv.PORT = String(apiPort);
  apiHealth = rewriteOnce(healthOf("api-1"), `:${declaredPort}/`, `:${apiPort}/`);

  workerEnv = localEnv("worker-1", local);
  const heartbeat = path.join(tmp, "heartbeat");
  workerHealth = rewriteOnce(healthOf("worker-1"), JSON.stringify(workerEnv.HEARTBEAT_FILE), JSON.stringify(heartbeat));
  workerEnv.HEARTBEAT_FILE = heartbeat;

  // The stack's order: data stores healthy -> migrations -> API -> worker -> frontend.
  const migrateContainer = resource(declared, "api-migrate-run");
  const [program, ...args] = migrateContainer.inputs.command as string[];
  expect(program).toBe("node");
  const migrate = await run(process.execPath, args, { cwd: APP, env: { ...localEnv("api-migrate-run", local), PATH: process.env.PATH } });
  expect(migrate.code, migrate.stdout + migrate.stderr).toBe(0);
  api = startNodeService("api/server.js", apiEnv, APP);
  await waitUntil("the API to listen", async () => (await get(apiPort, "/api/v1/health/live").catch(() => ({ status: 0 }))).status === 200);
}, SETUP_TIMEOUT_MS);

afterAll(async () => {
  await Promise.allSettled([api?.stop("SIGKILL"), worker?.stop("SIGKILL"), frontend?.stop("SIGKILL")]);
  await Promise.allSettled([pgServer?.destroy(), redisServer?.destroy()]);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe("contract: the example API with the stack's env", () => {
  it("is live and ready: Postgres and Redis both answer through the declared URLs", async () => {
    const ready = await get(apiPort, "/api/v1/health/ready");
    expect(ready.status, JSON.stringify(ready.body)).toBe(200);
    expect(ready.body).toMatchObject({ status: "ready", version: apiEnv.APP_VERSION, checks: { postgres: "ok", redis: "ok" } });
  });

  it("allows the frontend's origin (the declared CORS_ORIGIN) and no other", async () => {
    const frontendUrl = (declared.outputs.endpoints as { frontend: { url: string } }).frontend.url;
    expect(apiEnv.CORS_ORIGIN).toBe(frontendUrl);
    const ok = await get(apiPort, "/api/v1/health/live", { origin: frontendUrl });
    expect(ok.headers.get("access-control-allow-origin")).toBe(frontendUrl);
    const other = await get(apiPort, "/api/v1/health/live", { origin: "https://evil.example.com" });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("the declared health check passes against it, without curl", async () => {
    expect(apiHealth.join(" ")).not.toMatch(/\b(curl|wget)\b/);
    const result = await runHealthcheck(apiHealth, apiEnv, undefined, APP);
    expect(result.code, result.stderr).toBe(0);
  });

  it("the declared health check fails against a server answering 503, and against nothing", async () => {
    const down = await answering503();
    try {
      const r503 = await runHealthcheck(rewriteOnce(apiHealth, `:${apiPort}/`, `:${down.port}/`), apiEnv, undefined, APP);
      expect(r503.code).not.toBe(0);
    } finally {
      await down.close();
    }
    const nothing = await runHealthcheck(rewriteOnce(apiHealth, `:${apiPort}/`, `:${await freePort()}/`), apiEnv, undefined, APP);
    expect(nothing.code).not.toBe(0);
  });

  it("the image's own HEALTHCHECK (for a plain docker run) passes too", async () => {
    const tests = dockerfileHealthcheck(path.join(APP, "api", "Dockerfile"));
    expect(tests.join(" ")).not.toMatch(/\b(curl|wget)\b/);
    const result = await runHealthcheck(tests, apiEnv, undefined, APP);
    expect(result.code, result.stderr).toBe(0);
  });
});

describe("contract: the example worker with the stack's env", () => {
  const heartbeatAge = () => (Date.now() - fs.statSync(workerEnv.HEARTBEAT_FILE).mtimeMs) / 1000;
  const healthcheck = () => runHealthcheck(workerHealth, workerEnv, undefined, APP);
  const imageHealthcheck = () => runHealthcheck(dockerfileHealthcheck(path.join(APP, "worker", "Dockerfile")), workerEnv, undefined, APP);

  it("starts with the declared command, writes a fresh heartbeat, and its declared health check passes", async () => {
    const [program, script, ...rest] = resource(declared, "worker-1").inputs.command as string[];
    expect([program, rest]).toEqual(["node", []]);
    worker = startNodeService(script, workerEnv, APP);
    await waitUntil("the worker's heartbeat", () => fs.existsSync(workerEnv.HEARTBEAT_FILE));
    expect(heartbeatAge()).toBeLessThan(5);
    const result = await healthcheck();
    expect(result.code, result.stderr).toBe(0);
    const own = await imageHealthcheck();
    expect(own.code, own.stderr).toBe(0);
  });

  it("takes a job the API queued and records its result", async () => {
    const id = await postJob("hello from the contract test");
    await waitUntil(`job ${id} to finish`, async () => (await jobStatus(id)) === "done");
    expect((await get(apiPort, `/api/v1/jobs/${id}`)).body).toMatchObject({ status: "done", result: "HELLO FROM THE CONTRACT TEST", attempts: 1 });
  });

  it("on SIGTERM finishes the jobs in hand, leaves the rest queued, and exits 0", async () => {
    // One slow job per slot (the declared concurrency), so every slot has a job in hand at the stop.
    const slots = Number(workerEnv.WORKER_CONCURRENCY);
    expect(slots).toBeGreaterThanOrEqual(1);
    const slow = await Promise.all(Array.from({ length: slots }, (_, i) => postJob(`slow ${i}`, 1500)));
    await waitUntil("every slot to take a job", async () => (await Promise.all(slow.map(jobStatus))).every((s) => s === "processing"));
    const stopped = worker!.stop("SIGTERM");
    const next = await postJob("after the stop");
    expect(await stopped, worker!.output()).toBe(0);
    for (const id of slow) expect(await jobStatus(id)).toBe("done");
    expect(await jobStatus(next)).toBe("queued");
    const redis = new Redis(apiEnv.REDIS_URL, { maxRetriesPerRequest: 0 });
    try {
      expect(await redis.lrange("appstack:jobs", 0, -1)).toEqual([next]);
      const inFlight = await redis.keys("appstack:jobs:processing:*").then((keys) => Promise.all(keys.map((k) => redis.llen(k))));
      expect(inFlight.every((n) => n === 0)).toBe(true);
    } finally {
      redis.disconnect();
    }
  });

  it("its health check fails once the heartbeat is stale", async () => {
    const old = new Date(Date.now() - 120_000);
    fs.utimesSync(workerEnv.HEARTBEAT_FILE, old, old);
    expect((await healthcheck()).code).not.toBe(0);
    const own = await imageHealthcheck();
    expect(own.code).not.toBe(0);
    expect(own.stderr).toMatch(/heartbeat .* old/);
    fs.rmSync(workerEnv.HEARTBEAT_FILE);
    expect((await healthcheck()).code).not.toBe(0);
  });

  it("the API reports not ready (503) when Redis is down", async () => {
    await redisServer.stop();
    await waitUntil("readiness to notice", async () => (await get(apiPort, "/api/v1/health/ready")).status === 503);
    const ready = await get(apiPort, "/api/v1/health/ready");
    expect(ready.body.checks.postgres).toBe("ok");
    expect(ready.body.checks.redis).toMatch(/unavailable/);
    expect(JSON.stringify(ready.body)).not.toContain(new URL(apiEnv.REDIS_URL).password);
  });
});

describe("contract: the example frontend with the stack's build args and env", () => {
  let port: number;

  it("builds with the declared VITE_API_URL, serves it, and its declared health check passes", async () => {
    const build = resource(declared, "frontend-build").inputs.build as { context: string; args: Record<string, string> };
    expect(build.context).toBe(FRONTEND);
    const apiUrl = (declared.outputs.endpoints as { api: { url: string } }).api.url;
    expect(build.args.VITE_API_URL).toBe(apiUrl);
    const built = await run(process.execPath, ["build.js"], { cwd: FRONTEND, env: { ...build.args, PATH: process.env.PATH } });
    expect(built.code, built.stderr).toBe(0);

    const env = containerEnv(resource(declared, "frontend-server"));
    expect(env.VITE_API_URL).toBe(apiUrl);
    port = await freePort();
    const health = rewriteOnce(healthOf("frontend-server"), `:${env.PORT}/`, `:${port}/`);
    frontend = startNodeService("serve.js", { ...env, PORT: String(port) }, FRONTEND);
    await waitUntil("the frontend to listen", async () => (await get(port, "/healthz").catch(() => ({ status: 0 }))).status === 200);

    const result = await runHealthcheck(health, env, undefined, FRONTEND);
    expect(result.code, result.stderr).toBe(0);
    const config = await fetch(`http://127.0.0.1:${port}/config.js`);
    expect(await config.text()).toBe(`window.APPSTACK_CONFIG = ${JSON.stringify({ apiUrl })};\n`);
    const page = await fetch(`http://127.0.0.1:${port}/`);
    expect(page.headers.get("x-frame-options")).toBe("DENY");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    expect(page.headers.get("content-security-policy")).toContain(`connect-src 'self' ${new URL(apiUrl).origin}`);
  });
});
