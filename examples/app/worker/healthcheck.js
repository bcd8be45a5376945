// The worker's container health check: healthy while the heartbeat file is
// younger than HEARTBEAT_MAX_AGE_SECONDS (30). The worker touches it after
// every poll of the queue and every job, so a stale file means a stuck loop or
// a lost Redis connection. Exit 0 healthy, 1 unhealthy (Docker's convention).
import * as fs from "node:fs";

const file = process.env.HEARTBEAT_FILE || "/tmp/appstack-worker-heartbeat";
const maxAge = Number(process.env.HEARTBEAT_MAX_AGE_SECONDS || 30);

try {
  const ageSeconds = (Date.now() - fs.statSync(file).mtimeMs) / 1000;
  if (ageSeconds > maxAge) {
    console.error(`unhealthy: heartbeat ${file} is ${ageSeconds.toFixed(0)} s old (limit ${maxAge} s)`);
    process.exit(1);
  }
} catch (err) {
  console.error(`unhealthy: no heartbeat at ${file} (${err.code ?? err.message})`);
  process.exit(1);
}
