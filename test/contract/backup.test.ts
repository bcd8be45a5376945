import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKUP_DIR } from "../../components/backup-names";
import { checkJobExit } from "../../components/job";
import { restoreCommands, type RestoreTarget } from "../../ops/operations/restore";
import { containerEnv, evaluateStack, resource, type Declared } from "../helpers/declared-stack";
import { freePort, postgresBin, run, startPostgres, type PostgresServer } from "./servers";

/**
 * The dev stack's pre-deploy backup job and the restore command's pg_restore,
 * run for real against Debian's Postgres: the declared script and env (the
 * password with every URL-special character), with two host adaptations:
 * the server is 127.0.0.1:<free port> instead of postgres:5432, and the
 * backup volume is a temporary directory.
 */

let declared: Declared;
let pgEnv: Record<string, string>;
let jobEnv: Record<string, string>;
let command: string[];
let server: PostgresServer;
let port: number;
let volume: string;

const binDir = () => path.dirname(postgresBin("pg_dump"));

/** Runs the declared job command with the declared env, on the host. */
function runJob(over: Record<string, string> = {}) {
  const env = { ...jobEnv, PGHOST: "127.0.0.1", PGPORT: String(port), BACKUP_DIR: volume, PATH: `${binDir()}:${process.env.PATH}`, ...over };
  return run(command[0], command.slice(1), { env, timeoutMs: 30_000 });
}

async function query(sql: string): Promise<unknown[]> {
  const client = new pg.Client({ host: "127.0.0.1", port, user: pgEnv.POSTGRES_USER, password: pgEnv.POSTGRES_PASSWORD, database: pgEnv.POSTGRES_DB });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

const dumps = () => fs.readdirSync(volume).filter((f) => f.endsWith(".dump")).sort();

beforeAll(async () => {
  declared = await evaluateStack({ stack: "dev", values: "contract" });
  pgEnv = containerEnv(resource(declared, "postgres-server"));
  const job = resource(declared, "backup-dump-run");
  jobEnv = containerEnv(job);
  command = job.inputs.command as string[];
  port = await freePort();
  server = await startPostgres(pgEnv, port);
  volume = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-backups-"));
  await query("CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)");
  await query("INSERT INTO notes VALUES (1, 'before the deploy'), (2, 'also before')");
});

afterAll(async () => {
  await server?.destroy();
  if (volume) fs.rmSync(volume, { recursive: true, force: true });
});

describe("contract: the declared pre-deploy backup and the restore", () => {
  it("the job's declared env points at the stack's server, with the server's password", () => {
    expect(jobEnv).toMatchObject({ PGHOST: "postgres", PGPORT: "5432", PGUSER: pgEnv.POSTGRES_USER, PGDATABASE: pgEnv.POSTGRES_DB, BACKUP_DIR });
    expect(jobEnv.PGPASSWORD).toBe(pgEnv.POSTGRES_PASSWORD);
    expect(command.join(" ")).not.toContain(pgEnv.POSTGRES_PASSWORD);
  });

  it("writes one custom-format dump named <stack>_<release>_<UTC time>.dump", async () => {
    const r = await runJob();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^appstack backup: wrote .*\.dump \(\d+ bytes\)$/m);
    expect(dumps()).toEqual([expect.stringMatching(new RegExp(`^${jobEnv.BACKUP_PREFIX}_\\d{8}T\\d{6}Z\\.dump$`))]);
    const list = await run(postgresBin("pg_restore"), ["--list", path.join(volume, dumps()[0])]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain("TABLE public notes");
  });

  it("restore's exact pg_restore arguments bring the dumped rows back", async () => {
    await query("DELETE FROM notes WHERE id = 1");
    await query("UPDATE notes SET body = 'changed after the backup' WHERE id = 2");
    await query("CREATE TABLE added_later (x int)");
    const target: RestoreTarget = {
      stack: "dev",
      dockerHost: "unix:///var/run/docker.sock",
      image: "postgres:17.6-alpine",
      network: "appstack-dev",
      volume: "appstack-dev-backup-data",
      host: "postgres",
      port: 5432,
      user: pgEnv.POSTGRES_USER,
      database: pgEnv.POSTGRES_DB,
    };
    const docker = restoreCommands(target, dumps()[0]).restore;
    // Everything after the image is what runs inside the container; adapt host, port and the volume path.
    const inContainer = docker.slice(docker.indexOf(target.image) + 1).map((a) =>
      a === target.host ? "127.0.0.1" : a === String(target.port) ? String(port) : a.replace(`${BACKUP_DIR}/`, `${volume}/`),
    );
    expect(inContainer[0]).toBe("pg_restore");
    const r = await run(postgresBin(inContainer[0]), inContainer.slice(1), {
      env: { PATH: process.env.PATH, PGPASSWORD: pgEnv.POSTGRES_PASSWORD },
      timeoutMs: 30_000,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(await query("SELECT id, body FROM notes ORDER BY id")).toEqual([
      { id: 1, body: "before the deploy" },
      { id: 2, body: "also before" },
    ]);
    // --clean drops what the dump holds; objects created after the backup are not in it and stay.
    expect(await query("SELECT to_regclass('added_later')::text AS t")).toEqual([{ t: "added_later" }]);
  });

  it("keeps only the newest BACKUP_KEEP dumps", async () => {
    for (const release of ["r1", "r2", "r3"]) {
      const r = await runJob({ BACKUP_PREFIX: `dev_${release}`, BACKUP_KEEP: "2" });
      expect(r.code, r.stderr).toBe(0);
    }
    expect(dumps().map((f) => f.split("_")[1])).toEqual(["r2", "r3"]);
  });

  it("a failed dump exits non-zero, leaves no .dump behind, and the job gate turns it into a failed deploy", async () => {
    const before = dumps();
    const r = await runJob({ PGPASSWORD: "wrong", BACKUP_PREFIX: "dev_broken" });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/password authentication failed/);
    expect(dumps()).toEqual(before);
    const outcome = { description: "The pre-deploy database backup", exitCode: r.code ?? 1, logs: r.stderr, container: "backup-dump-run-0", secrets: [jobEnv.PGPASSWORD] };
    expect(() => checkJobExit(outcome)).toThrow(/The pre-deploy database backup failed with exit code \d+; the deploy stopped before any service was replaced/);
    expect(() => checkJobExit(outcome)).toThrow(/password authentication failed/);
  });
});
