import * as fs from "node:fs";
import http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import Redis from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { containerEnv, evaluateStack, PROJECT_ROOT, resource, type Declared } from "../helpers/declared-stack";
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
 * The example API and worker (examples/app) against the dev stack's declared
 * Postgres and Redis, run for real. Each process gets the env its container
 * would get, with the stack's service hosts rewritten to 127.0.0.1 and their
 * ports to the throwaway servers'.
 *
 * Until the Api and Worker components land (issue 3), their env follows the
 * conventions they will declare (PORT, DATABASE_URL and REDIS_URL from the
 * stack's connection outputs, CORS_ORIGIN, FRONTEND_URL, NODE_ENV,
 * APP_VERSION), and the health checks are the images' own (their Dockerfiles'
 * HEALTHCHECK).
 */

const APP = path.join(PROJECT_ROOT, "examples", "app");
const FRONTEND_URL = "http://localhost:5173";

let declared: Declared;
let pgServer: PostgresServer;
let redisServer: RedisServer;
let api: ServiceProcess | undefined;
let worker: ServiceProcess | undefined;
let apiPort: number;
let apiEnv: Record<string, string>;
let workerEnv: Record<string, string>;
let heartbeatDir: string;

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

beforeAll(async () => {
  declared = await evaluateStack({ stack: "dev", values: "contract" });
  const [pgPort, redisPort] = [await freePort(), await freePort()];
  pgServer = await startPostgres(containerEnv(resource(declared, "postgres-server")), pgPort);
  const redisContainer = resource(declared, "redis-server");
  const [sh, c, script] = redisContainer.inputs.command as string[];
  redisServer = await startRedis([sh, c, `${script} --port ${redisPort} --bind 127.0.0.1`], containerEnv(redisContainer), redisPort);

  const connections = declared.outputs.connections as { databaseUrl: string; redisUrl: string };
  const local = { postgres: pgPort, redis: redisPort };
  apiPort = await freePort();
  apiEnv = {
    PORT: String(apiPort),
    DATABASE_URL: toLocal(connections.databaseUrl, local),
    REDIS_URL: toLocal(connections.redisUrl, local),
    CORS_ORIGIN: FRONTEND_URL,
    FRONTEND_URL,
    NODE_ENV: "production",
    APP_VERSION: "contract-test",
  };
  heartbeatDir = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-worker-"));
  workerEnv = {
    DATABASE_URL: apiEnv.DATABASE_URL,
    REDIS_URL: apiEnv.REDIS_URL,
    NODE_ENV: "production",
    HEARTBEAT_FILE: path.join(heartbeatDir, "heartbeat"),
    POLL_SECONDS: "1",
  };

  // The stack's order: data stores healthy -> migrations -> API -> worker.
  const migrate = await run(process.execPath, ["api/migrate.js"], { cwd: APP, env: { ...apiEnv, PATH: process.env.PATH } });
  expect(migrate.code, migrate.stdout + migrate.stderr).toBe(0);
  api = startNodeService("api/server.js", apiEnv, APP);
  await waitUntil("the API to listen", async () => (await get(apiPort, "/api/v1/health/live").catch(() => ({ status: 0 }))).status === 200);
});

afterAll(async () => {
  await Promise.allSettled([api?.stop("SIGKILL"), worker?.stop("SIGKILL")]);
  await Promise.allSettled([pgServer?.destroy(), redisServer?.destroy()]);
  if (heartbeatDir) fs.rmSync(heartbeatDir, { recursive: true, force: true });
});

describe("contract: the example API with the stack's env", () => {
  it("is live and ready: Postgres and Redis both answer through the declared URLs", async () => {
    const ready = await get(apiPort, "/api/v1/health/ready");
    expect(ready.status, JSON.stringify(ready.body)).toBe(200);
    expect(ready.body).toMatchObject({ status: "ready", version: "contract-test", checks: { postgres: "ok", redis: "ok" } });
  });

  it("allows the frontend's origin (CORS_ORIGIN) and no other", async () => {
    const ok = await get(apiPort, "/api/v1/health/live", { origin: FRONTEND_URL });
    expect(ok.headers.get("access-control-allow-origin")).toBe(FRONTEND_URL);
    const other = await get(apiPort, "/api/v1/health/live", { origin: "https://evil.example.com" });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("the image's health check passes against it", async () => {
    const tests = dockerfileHealthcheck(path.join(APP, "api", "Dockerfile"));
    expect(tests.join(" ")).not.toMatch(/\b(curl|wget)\b/);
    const result = await runHealthcheck(tests, apiEnv, undefined, APP);
    expect(result.code, result.stderr).toBe(0);
  });

  it("the health check fails against a server answering 503, and against nothing", async () => {
    const tests = dockerfileHealthcheck(path.join(APP, "api", "Dockerfile"));
    const down = await answering503();
    try {
      const r503 = await runHealthcheck(tests, { ...apiEnv, PORT: String(down.port) }, undefined, APP);
      expect(r503.code).not.toBe(0);
    } finally {
      await down.close();
    }
    const nothing = await runHealthcheck(tests, { ...apiEnv, PORT: String(await freePort()) }, undefined, APP);
    expect(nothing.code).not.toBe(0);
  });
});

describe("contract: the example worker with the stack's env", () => {
  const heartbeatAge = () => (Date.now() - fs.statSync(workerEnv.HEARTBEAT_FILE).mtimeMs) / 1000;
  const healthcheck = () => runHealthcheck(dockerfileHealthcheck(path.join(APP, "worker", "Dockerfile")), workerEnv, undefined, APP);

  it("starts, writes a fresh heartbeat, and its health check passes", async () => {
    worker = startNodeService("worker/worker.js", workerEnv, APP);
    await waitUntil("the worker's heartbeat", () => fs.existsSync(workerEnv.HEARTBEAT_FILE));
    expect(heartbeatAge()).toBeLessThan(5);
    const result = await healthcheck();
    expect(result.code, result.stderr).toBe(0);
  });

  it("takes a job the API queued and records its result", async () => {
    const id = await postJob("hello from the contract test");
    await waitUntil(`job ${id} to finish`, async () => (await jobStatus(id)) === "done");
    expect((await get(apiPort, `/api/v1/jobs/${id}`)).body).toMatchObject({ status: "done", result: "HELLO FROM THE CONTRACT TEST", attempts: 1 });
  });

  it("on SIGTERM finishes the job in hand, leaves the rest queued, and exits 0", async () => {
    const slow = await postJob("slow", 1500);
    await waitUntil(`job ${slow} to start`, async () => (await jobStatus(slow)) === "processing");
    const next = await postJob("after the stop");
    const code = await worker!.stop("SIGTERM");
    expect(code, worker!.output()).toBe(0);
    expect(await jobStatus(slow)).toBe("done");
    expect(await jobStatus(next)).toBe("queued");
    const redis = new Redis(apiEnv.REDIS_URL, { maxRetriesPerRequest: 0 });
    try {
      expect(await redis.lrange("appstack:jobs", 0, -1)).toEqual([next]);
      expect(await redis.keys("appstack:jobs:processing:*").then((keys) => Promise.all(keys.map((k) => redis.llen(k))))).not.toContain(1);
    } finally {
      redis.disconnect();
    }
  });

  it("its health check fails once the heartbeat is stale", async () => {
    const old = new Date(Date.now() - 120_000);
    fs.utimesSync(workerEnv.HEARTBEAT_FILE, old, old);
    const result = await healthcheck();
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/heartbeat .* old/);
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
