// The migrations step: run once per deploy, before the new API starts (the
// stack's one-shot migrate container runs `node api/migrate.js` from the API
// image). Idempotent; an advisory lock keeps two runs from racing.
import pg from "pg";
import { log, readEnv } from "../lib/env.js";
import { MIGRATIONS } from "../lib/jobs.js";

const SERVICE = "migrate";
const env = readEnv(SERVICE, { required: ["DATABASE_URL"] });
const LOCK_ID = 7_421_001;

const client = new pg.Client({ connectionString: env.DATABASE_URL, connectionTimeoutMillis: 10_000 });
try {
  await client.connect();
  await client.query("SELECT pg_advisory_lock($1)", [LOCK_ID]);
  for (const [i, sql] of MIGRATIONS.entries()) {
    await client.query(sql);
    log(SERVICE, "applied", { step: i + 1, of: MIGRATIONS.length });
  }
  await client.query("SELECT pg_advisory_unlock($1)", [LOCK_ID]);
  log(SERVICE, "database is up to date");
} catch (err) {
  log(SERVICE, "migration failed", { error: err.message });
  process.exitCode = 1;
} finally {
  await client.end().catch(() => {});
}
