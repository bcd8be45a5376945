// The example worker: takes job ids from a Redis list, does the job, records
// the result in Postgres, and proves it is alive by touching a heartbeat file
// (its container health check is the file's age: worker/healthcheck.js).
//
// SIGTERM (docker stop) stops taking jobs and finishes the ones in hand before
// exiting 0; the stack's stop grace period must exceed the longest job.
//
// Environment: DATABASE_URL, REDIS_URL (required); WORKER_CONCURRENCY (1),
// HEARTBEAT_FILE (/tmp/appstack-worker-heartbeat), POLL_SECONDS (2),
// SHUTDOWN_TIMEOUT_SECONDS (25).
import * as fs from "node:fs";
import * as os from "node:os";
import Redis from "ioredis";
import pg from "pg";
import { intSetting, log, readEnv } from "../lib/env.js";
import { MAX_JOB_MS, processingKey, QUEUE_KEY } from "../lib/jobs.js";

const SERVICE = "worker";
const env = readEnv(SERVICE, {
  required: ["DATABASE_URL", "REDIS_URL"],
  optional: {
    WORKER_CONCURRENCY: "1",
    HEARTBEAT_FILE: "/tmp/appstack-worker-heartbeat",
    POLL_SECONDS: "2",
    SHUTDOWN_TIMEOUT_SECONDS: "25",
  },
});
const concurrency = intSetting(SERVICE, "WORKER_CONCURRENCY", env.WORKER_CONCURRENCY, { max: 64 });
const pollSeconds = intSetting(SERVICE, "POLL_SECONDS", env.POLL_SECONDS, { max: 60 });
const shutdownSeconds = intSetting(SERVICE, "SHUTDOWN_TIMEOUT_SECONDS", env.SHUTDOWN_TIMEOUT_SECONDS, { max: 3600 });
// The container's hostname is its id: a restarted container finds its own unfinished jobs.
const processing = processingKey(os.hostname());

const db = new pg.Pool({ connectionString: env.DATABASE_URL, max: concurrency + 1, connectionTimeoutMillis: 5000 });
db.on("error", (err) => log(SERVICE, "postgres connection error", { error: err.message }));
const redis = new Redis(env.REDIS_URL, { maxRetriesPerRequest: 3 });
redis.on("error", (err) => log(SERVICE, "redis connection error", { error: err.message }));

let stopping = false;
let inHand = 0;

/** Written atomically (write then rename), so the health check never reads a half-written file. */
function heartbeat() {
  const tmp = `${env.HEARTBEAT_FILE}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${new Date().toISOString()} pid=${process.pid} inHand=${inHand}\n`);
  fs.renameSync(tmp, env.HEARTBEAT_FILE);
}

async function runJob(id) {
  const started = await db.query(
    "UPDATE jobs SET status = 'processing', started_at = now(), attempts = attempts + 1 WHERE id = $1 AND status IN ('queued', 'processing') RETURNING payload",
    [id],
  );
  if (started.rows.length === 0) return log(SERVICE, "skipped unknown or finished job", { id });
  const { message, delayMs } = started.rows[0].payload;
  try {
    await new Promise((r) => setTimeout(r, Math.min(Number(delayMs) || 0, MAX_JOB_MS)));
    const result = String(message).toUpperCase();
    await db.query("UPDATE jobs SET status = 'done', result = $2, finished_at = now() WHERE id = $1", [id, result]);
    log(SERVICE, "job done", { id });
  } catch (err) {
    await db.query("UPDATE jobs SET status = 'failed', result = $2, finished_at = now() WHERE id = $1", [id, err.message]);
    log(SERVICE, "job failed", { id, error: err.message });
  }
}

/** One slot: its own connection, because BLMOVE blocks the connection it runs on. */
async function slot(n) {
  const conn = redis.duplicate();
  conn.on("error", () => {}); // reported once by the main connection
  try {
    while (!stopping) {
      // Bounded wait, so a stop request is seen within POLL_SECONDS and no id is ever in flight at exit.
      const id = await conn.blmove(QUEUE_KEY, processing, "RIGHT", "LEFT", pollSeconds).catch((err) => {
        log(SERVICE, "taking a job failed", { slot: n, error: err.message });
        return new Promise((r) => setTimeout(() => r(null), 1000));
      });
      if (id === null) {
        if (redis.status === "ready") heartbeat();
        continue;
      }
      inHand++;
      heartbeat();
      try {
        await runJob(id);
        await redis.lrem(processing, 1, id);
      } finally {
        inHand--;
      }
      heartbeat();
    }
  } finally {
    conn.disconnect();
  }
}

/** Jobs a previous run of this container took but never finished go back on the queue. */
async function requeueUnfinished() {
  let moved = 0;
  while (moved < 10_000 && (await redis.lmove(processing, QUEUE_KEY, "RIGHT", "RIGHT")) !== null) moved++;
  if (moved > 0) log(SERVICE, "requeued unfinished jobs", { count: moved });
}

function stop(signal) {
  if (stopping) return;
  stopping = true;
  log(SERVICE, "stopping: finishing the jobs in hand", { signal, inHand });
  setTimeout(() => {
    log(SERVICE, "jobs did not finish in time; exiting", { inHand });
    process.exit(1);
  }, shutdownSeconds * 1000).unref();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

try {
  await requeueUnfinished();
  heartbeat();
  log(SERVICE, "started", { concurrency, queue: QUEUE_KEY });
  await Promise.all(Array.from({ length: concurrency }, (_, i) => slot(i)));
  await Promise.allSettled([db.end(), redis.quit()]);
  log(SERVICE, "stopped");
  process.exit(0);
} catch (err) {
  log(SERVICE, "worker failed", { error: err.message });
  process.exit(1);
}
