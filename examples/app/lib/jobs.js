// The job queue the API and the worker share: job rows in Postgres (the
// record), job ids in a Redis list (the hand-off).

/** Redis list the API pushes job ids onto and workers take them from. */
export const QUEUE_KEY = "appstack:jobs";

/** Per-worker list holding the ids a worker has taken and not finished (BLMOVE's target). */
export function processingKey(worker) {
  return `appstack:jobs:processing:${worker}`;
}

/** Longest simulated job, so a stop never waits on an unbounded job. */
export const MAX_JOB_MS = 10_000;

export const MIGRATIONS = [
  `CREATE TABLE IF NOT EXISTS jobs (
     id          bigserial PRIMARY KEY,
     payload     jsonb       NOT NULL,
     status      text        NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'processing', 'done', 'failed')),
     result      text,
     attempts    integer     NOT NULL DEFAULT 0,
     created_at  timestamptz NOT NULL DEFAULT now(),
     started_at  timestamptz,
     finished_at timestamptz
   )`,
];
