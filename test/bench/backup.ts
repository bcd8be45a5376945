/**
 * `npm run bench:backup [-- --scale N --filler blank|random --restic debian|pinned]`: dump, ship and
 * restore times for a database that pgbench generates (`pgbench -i -s N`;
 * scale 7 is about 100 MB; `--filler random` replaces its blank padding
 * with random text, so the dump is as large as real data's), with what the stack declares, run the way the
 * runtime tests run it (test/runtime/backup-harness.ts): the scheduled-dump
 * and shipper scripts under busybox, Debian's Postgres, restic to an sftp
 * repository on a throwaway sshd of 127.0.0.1, then the drill's and the
 * off-host restore's in-container commands. It prints a Markdown block that
 * docs/backups.md quotes as printed; nothing here asserts a budget.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { SHIP_POLL_SECONDS } from "../../components/backup";
import { duration } from "../../ops/operations/backup-age";
import { parseDrillOutput, renderDrillReport, type Snapshot } from "../../ops/operations/offsite";
import { postgresBin, run } from "../contract/servers";
import { BackupHarness, debianRestic, pinnedRestic } from "../runtime/backup-harness";

export interface BenchStep {
  step: string;
  what: string;
  seconds: number;
  note?: string;
}

export interface BackupBench {
  scale: number;
  /** pgbench's blank filler, or random text in its place. */
  filler: "blank" | "random";
  databaseBytes: number;
  rows: number;
  restic: string;
  postgres: string;
  cpus: number;
  load: number;
  steps: BenchStep[];
  drill: string;
}

const mb = (bytes: number) => (bytes < 1e6 ? `${(bytes / 1e3).toFixed(0)} kB` : `${(bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0)} MB`);

/** The block docs/backups.md quotes. */
export function renderBackupBench(b: BackupBench): string {
  return [
    `pgbench -i -s ${b.scale}${b.filler === "random" ? ", its filler column random text" : ""}: a ${mb(b.databaseBytes)} database (${b.rows.toLocaleString("en-US")} rows); ${b.restic}, PostgreSQL ${b.postgres}, sftp on 127.0.0.1. ${b.cpus} CPUs, load average ${b.load.toFixed(1)} at the end.`,
    "",
    "| step | what runs | time |",
    "| --- | --- | --- |",
    ...b.steps.map((s) => `| ${s.step} | ${s.what} | ${s.seconds.toFixed(1)} s${s.note ? ` (${s.note})` : ""} |`),
    "",
    "```",
    b.drill,
    "```",
  ].join("\n");
}

/** The steps every bench block has, in order. */
export const BENCH_STEPS = ["dump", "ship", "list", "fetch", "drill", "restore"] as const;

async function timed<T>(op: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const started = performance.now();
  const value = await op();
  return { value, seconds: (performance.now() - started) / 1000 };
}

/** Runs the benchmark with the command line's options (test/bench/run-backup.js). */
export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { scale: { type: "string", default: "7" }, restic: { type: "string", default: "debian" }, filler: { type: "string", default: "blank" } },
  });
  if (values.filler !== "blank" && values.filler !== "random") throw new Error(`--filler is blank (pgbench's own) or random, got ${values.filler}`);
  const scale = Number(values.scale);
  if (!Number.isInteger(scale) || scale < 1) throw new Error(`--scale must be a whole number of at least 1, got ${values.scale}`);
  const restic = values.restic === "pinned" ? pinnedRestic() : debianRestic();
  const h = new BackupHarness(restic);
  await h.setUp();
  try {
    const steps: BenchStep[] = [];
    const env = { PATH: process.env.PATH ?? "", PGPASSWORD: h.pgEnv.POSTGRES_PASSWORD };
    const init = await run(postgresBin("pgbench"), ["-i", "-s", String(scale), "-q", "-h", "127.0.0.1", "-p", String(h.port), "-U", h.pgEnv.POSTGRES_USER, h.pgEnv.POSTGRES_DB], { env, timeoutMs: 1_800_000 });
    if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
    if (values.filler === "random") {
      // pgbench's filler column is blank padding, which compresses to almost nothing; random text makes a dump as large as real data's.
      await h.query("UPDATE pgbench_accounts SET filler = md5(random()::text) || md5(random()::text) || left(md5(random()::text), 20)");
      await h.query("VACUUM FULL pgbench_accounts");
    }
    const [{ bytes }] = (await h.query("SELECT pg_database_size(current_database())::bigint AS bytes")) as { bytes: string }[];
    const counts = (await h.query("SELECT (SELECT count(*) FROM pgbench_accounts) + (SELECT count(*) FROM pgbench_branches) + (SELECT count(*) FROM pgbench_tellers) AS n")) as { n: string }[];
    const [{ server_version: version }] = (await h.query("SHOW server_version")) as { server_version: string }[];

    // The shipper first, so the repository exists and the ship step times the copy, not `restic init`.
    const shipper = h.start(h.offsite, { SHIP_POLL_SECONDS: "1" });
    await h.waitForOutput(shipper, /appstack offsite: repository initialised/, "the repository", 120_000);
    const dumper = h.start(h.schedule);
    const dumped = await timed(() => h.waitForOutput(dumper, /appstack backup: wrote /, "the dump", 1_800_000));
    await h.stop(dumper);
    const [, dumpFile, dumpBytes] = fs.readFileSync(h.stateFile("last-dump"), "utf8").trim().split(" ");
    steps.push({ step: "dump", what: "pg_dump --format=custom, the scheduled-dump script", seconds: dumped.seconds, note: `a ${mb(Number(dumpBytes))} dump` });
    const shipped = await timed(() => h.waitForOutput(shipper, /appstack offsite: shipped /, "the copy", 1_800_000));
    await h.stop(shipper);
    steps.push({ step: "ship", what: `restic backup to the repository, the shipper (it looks for new dumps every second here, every ${SHIP_POLL_SECONDS} s deployed)`, seconds: shipped.seconds });

    const listed = await timed(() => h.snapshots());
    const snapshot: Snapshot = listed.value.list[0];
    if (!snapshot || snapshot.file !== dumpFile) throw new Error(`the newest snapshot is not the dump: ${JSON.stringify(listed.value.list)}`);
    steps.push({ step: "list", what: "restic snapshots, as `restore --offsite` and `--drill` start", seconds: listed.seconds });
    const fetched = await timed(() => h.fetch(snapshot.id, path.join(h.work, "scratch")));
    steps.push({ step: "fetch", what: "restic restore of the snapshot into the scratch volume", seconds: fetched.seconds });
    const drilled = await timed(() => h.drill(fetched.value, "appstack_drill_bench"));
    if (drilled.value.code !== 0) throw new Error(`the drill failed: ${drilled.value.stderr}`);
    steps.push({ step: "drill", what: "the drill's database side: pg_restore into a throwaway database, check query, exact row counts, drop", seconds: drilled.seconds });

    // The host is gone: a new, empty server, and the dump from the repository alone.
    await h.newServer();
    const restored = await timed(() => h.pgRestore(fetched.value));
    if (restored.value.code !== 0) throw new Error(`pg_restore failed: ${restored.value.stderr}`);
    const [{ n: back }] = (await h.query("SELECT count(*)::bigint AS n FROM pgbench_accounts")) as { n: string }[];
    if (Number(back) !== scale * 100_000) throw new Error(`the restored server has ${back} pgbench_accounts rows, expected ${scale * 100_000}`);
    steps.push({ step: "restore", what: "`restore --offsite`'s pg_restore --single-transaction into a new, empty server", seconds: restored.seconds, note: `${Number(back).toLocaleString("en-US")} accounts back` });

    const drill = renderDrillReport({
      stack: "offsite",
      snapshot,
      database: "appstack_drill_bench",
      at: Date.now(),
      fetchSeconds: fetched.seconds,
      restoreSeconds: drilled.seconds,
      checkQuery: h.target.checkQuery,
      result: parseDrillOutput(drilled.value.stdout),
      schedule: h.target.schedule,
      liveDatabase: h.target.database,
    });
    const resticVersion = (await run(restic.bin, ["version"], { env: { PATH: process.env.PATH ?? "" } })).stdout.split(" ").slice(0, 2).join(" ");
    console.log(
      renderBackupBench({
        scale,
        filler: values.filler,
        databaseBytes: Number(bytes),
        rows: Number(counts[0].n),
        restic: resticVersion,
        postgres: version,
        cpus: os.cpus().length,
        load: os.loadavg()[0],
        steps,
        drill,
      }),
    );
    console.error(`bench:backup: ${duration(steps.reduce((n, s) => n + s.seconds, 0))} of measured steps`);
  } finally {
    await h.tearDown();
  }
}
