// The example API: health endpoints that a container health check and a load
// balancer can trust, and a small job API that the frontend calls and the
// worker serves. No framework: node:http, pg and ioredis.
//
//   GET  /api/v1/health/live   200 while the process serves requests
//   GET  /api/v1/health/ready  200 when Postgres and Redis answer, else 503
//   GET  /api/v1/health        the same as ready (the seeds' path)
//   POST /api/v1/jobs          {"message": "...", "delayMs": 0} -> 202 {"id": ...}
//   GET  /api/v1/jobs/:id      the job's status and result
//
// Environment: DATABASE_URL, REDIS_URL (required); PORT (3000), CORS_ORIGIN
// (comma-separated origins allowed to call from a browser; none by default),
// APP_VERSION, NODE_ENV; SHUTDOWN_DRAIN_SECONDS (7), READINESS_TIMEOUT_MS (2000).
//
// SIGTERM is the zero-downtime contract with the edge proxy (docs/zero-downtime.md):
//   1. readiness answers 503 at once, so a proxy that still routes here stops
//      doing so at its next health checks;
//   2. for SHUTDOWN_DRAIN_SECONDS everything else is still served, each
//      response with `Connection: close`, so kept-alive connections end cleanly
//      after a response instead of being cut while a request is on its way;
//   3. then the listener closes, requests in flight finish, the pools close,
//      and the process exits 0 before Docker's stop timeout runs out.
import http from "node:http";
import Redis from "ioredis";
import pg from "pg";
import { intSetting, log, readEnv } from "../lib/env.js";
import { MAX_JOB_MS, QUEUE_KEY } from "../lib/jobs.js";

const SERVICE = "api";
const env = readEnv(SERVICE, {
  required: ["DATABASE_URL", "REDIS_URL"],
  optional: {
    PORT: "3000",
    CORS_ORIGIN: "",
    APP_VERSION: "dev",
    NODE_ENV: "production",
    SHUTDOWN_DRAIN_SECONDS: "7",
    READINESS_TIMEOUT_MS: "2000",
  },
});
const CHECK_TIMEOUT_MS = intSetting(SERVICE, "READINESS_TIMEOUT_MS", env.READINESS_TIMEOUT_MS, { min: 50, max: 60_000 });
const DRAIN_MS = intSetting(SERVICE, "SHUTDOWN_DRAIN_SECONDS", env.SHUTDOWN_DRAIN_SECONDS, { min: 0, max: 3600 }) * 1000;
const MAX_BODY_BYTES = 16 * 1024;
/** Set on SIGTERM: readiness fails and every response closes its connection. */
let stopping = false;

// A request waits for a database connection longer than a readiness check does: a slow moment is not a failed request.
const db = new pg.Pool({ connectionString: env.DATABASE_URL, max: 5, connectionTimeoutMillis: Math.max(CHECK_TIMEOUT_MS, 5000) });
db.on("error", (err) => log(SERVICE, "postgres connection error", { error: err.message }));
// No offline queue: while Redis is away, commands fail at once and readiness says so.
const redis = new Redis(env.REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
let redisError = "";
redis.on("error", (err) => {
  if (err.message !== redisError) log(SERVICE, "redis connection error", { error: err.message });
  redisError = err.message;
});
redis.on("ready", () => (redisError = ""));

/** Browser origins from CORS_ORIGIN, normalised the way browsers send Origin (no path, no trailing slash). */
const allowedOrigins = env.CORS_ORIGIN.split(",")
  .map((o) => o.trim())
  .filter(Boolean)
  .map((o) => {
    if (o === "*") return o;
    try {
      return new URL(o).origin;
    } catch {
      log(SERVICE, "ignoring CORS_ORIGIN entry that is not a URL", { entry: o });
      return "";
    }
  })
  .filter(Boolean);

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function readiness() {
  if (stopping) return { status: 503, body: { status: "draining", version: env.APP_VERSION } };
  const checks = {};
  const probe = async (name, fn) => {
    try {
      await withTimeout(fn(), name);
      checks[name] = "ok";
    } catch (err) {
      checks[name] = `unavailable: ${err.message}`;
    }
  };
  await Promise.all([
    probe("postgres", () => db.query("SELECT 1")),
    probe("redis", async () => {
      if ((await redis.ping()) !== "PONG") throw new Error("unexpected PING reply");
    }),
  ]);
  const ready = Object.values(checks).every((c) => c === "ok");
  return { status: ready ? 200 : 503, body: { status: ready ? "ready" : "unavailable", version: env.APP_VERSION, checks } };
}

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  res.end(text);
}

function applyCors(req, res) {
  const origin = req.headers.origin;
  if (!origin) return true;
  res.setHeader("vary", "Origin");
  if (allowedOrigins.includes("*")) res.setHeader("access-control-allow-origin", "*");
  else if (allowedOrigins.includes(origin)) res.setHeader("access-control-allow-origin", origin);
  else return false;
  return true;
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(Object.assign(new Error(`body larger than ${MAX_BODY_BYTES} bytes`), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}"));
      } catch {
        reject(Object.assign(new Error("body is not JSON"), { status: 400 }));
      }
    });
    req.on("error", reject);
  });
}

async function createJob(req, res) {
  const body = await readJson(req);
  const message = body?.message;
  const delayMs = body?.delayMs ?? 0;
  if (typeof message !== "string" || message.length === 0 || message.length > 500) {
    return send(res, 400, { error: "message must be a string of 1 to 500 characters" });
  }
  if (!Number.isInteger(delayMs) || delayMs < 0 || delayMs > MAX_JOB_MS) {
    return send(res, 400, { error: `delayMs must be an integer from 0 to ${MAX_JOB_MS}` });
  }
  const { rows } = await db.query("INSERT INTO jobs (payload) VALUES ($1) RETURNING id", [{ message, delayMs }]);
  const id = String(rows[0].id);
  await redis.lpush(QUEUE_KEY, id);
  send(res, 202, { id, status: "queued" });
}

async function getJob(res, id) {
  const { rows } = await db.query(
    "SELECT id, status, result, attempts, created_at, finished_at FROM jobs WHERE id = $1",
    [id],
  );
  if (rows.length === 0) return send(res, 404, { error: `no job ${id}` });
  const j = rows[0];
  send(res, 200, { id: String(j.id), status: j.status, result: j.result, attempts: j.attempts, createdAt: j.created_at, finishedAt: j.finished_at });
}

async function route(req, res) {
  const url = new URL(req.url ?? "/", "http://localhost");
  const corsOk = applyCors(req, res);
  if (req.method === "OPTIONS") {
    if (!corsOk) return send(res, 403, { error: "origin not allowed" });
    res.writeHead(204, {
      "access-control-allow-methods": "GET, POST, OPTIONS",
      "access-control-allow-headers": "content-type",
      "access-control-max-age": "600",
    });
    return res.end();
  }
  const p = url.pathname.replace(/\/+$/, "");
  if (req.method === "GET" && p === "/api/v1/health/live") return send(res, 200, { status: "ok", version: env.APP_VERSION });
  if (req.method === "GET" && (p === "/api/v1/health/ready" || p === "/api/v1/health")) {
    const { status, body } = await readiness();
    return send(res, status, body);
  }
  if (req.method === "POST" && p === "/api/v1/jobs") return createJob(req, res);
  const job = /^\/api\/v1\/jobs\/(\d{1,18})$/.exec(p);
  if (req.method === "GET" && job) return getJob(res, job[1]);
  send(res, 404, { error: `no route ${req.method} ${url.pathname}` });
}

const server = http.createServer((req, res) => {
  res.setHeader("x-content-type-options", "nosniff");
  // Draining: this response is the connection's last, so the client never reuses a socket we are about to close.
  if (stopping) res.setHeader("connection", "close");
  route(req, res).catch((err) => {
    const status = err.status ?? 500;
    if (status >= 500) log(SERVICE, "request failed", { path: req.url, error: err.message });
    if (!res.headersSent) send(res, status, { error: status >= 500 ? "internal error" : err.message });
    else res.end();
  });
});
server.keepAliveTimeout = 65_000; // longer than the edge proxy's idle timeout

server.listen(Number(env.PORT), () => log(SERVICE, "listening", { port: Number(env.PORT), version: env.APP_VERSION }));

// SIGTERM (docker stop): readiness 503 first, keep serving while the edge notices,
// then stop accepting, finish requests in flight, close the pools.
function stop(signal) {
  if (stopping) return;
  stopping = true;
  log(SERVICE, "draining", { signal, drainSeconds: DRAIN_MS / 1000 });
  setTimeout(() => {
    log(SERVICE, "closing", { signal });
    // A request that never ends must not outlive Docker's stop timeout silently.
    setTimeout(() => {
      log(SERVICE, "requests still in flight at the deadline; exiting", {});
      process.exit(1);
    }, 10_000).unref();
    server.close(async () => {
      await Promise.allSettled([db.end(), redis.quit()]);
      log(SERVICE, "stopped", {});
      process.exit(0);
    });
    server.closeIdleConnections();
  }, DRAIN_MS);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
