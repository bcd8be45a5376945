import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { OutputMap } from "@pulumi/pulumi/automation";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DRILL_SCRIPT, OFFSITE_FETCH_SCRIPT } from "../components/backup-scripts";
import { judgeBackups, renderBackupTable, type BackupAge, type BackupOutput } from "../ops/operations/backup-age";
import { deploy } from "../ops/operations/deploy";
import { drill, offsiteCommands, offsiteTarget, parseSnapshots, resticReason, restoreOffsite } from "../ops/operations/offsite";
import type { DockerCli } from "../ops/operations/restore";
import { status } from "../ops/operations/status";
import { EXIT, UserError } from "../ops/shared/errors";
import { FakeAutomation, testContext } from "./helpers/automation";
import { deployOptions } from "./helpers/deploy-options";
import { STAGING_STACK, tempProject } from "./helpers/project";

/**
 * `npm run restore -- --offsite` and `--drill`, `status` and the smoke check
 * on backups, against a docker CLI that answers like the real one and records
 * every call. What the containers run is tested for real in
 * test/runtime/backup-suite.ts.
 */

const PASSWORD = "p@ss:w/rd#1";
const SECRETS = { resticRepository: "s3:s3.amazonaws.com/acme-backups/staging", resticPassword: "restic-pw-7f3a", AWS_ACCESS_KEY_ID: "AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY: "aws-secret-9b2c" };
const STACK = `${STAGING_STACK}  appstack:backup:
    schedule: 6h
    offsite:
      secretEnv: [AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY]
      env:
        AWS_DEFAULT_REGION: eu-central-1
    drill:
      checkQuery: SELECT count(*) FROM jobs
`;
const OUTPUTS: OutputMap = {
  connections: { value: { databaseUrl: `postgresql://app:${encodeURIComponent(PASSWORD)}@postgres:5432/app` }, secret: true },
};
const SNAPSHOTS = [
  { id: "1a2b3c4d".padEnd(64, "0"), short_id: "1a2b3c4d", time: "2025-06-03T06:00:04Z", paths: ["/backups/scheduled/staging_scheduled_20250603T060000Z.dump"] },
  { id: "9f8e7d6c".padEnd(64, "0"), short_id: "9f8e7d6c", time: "2025-06-03T00:00:03Z", paths: ["/backups/scheduled/staging_scheduled_20250603T000000Z.dump"] },
];

/** A docker CLI that answers the calls of an off-host restore and a drill, and records each (its args, env and stdin). */
class FakeDocker implements DockerCli {
  readonly runs: { args: string[]; env: Record<string, string>; input?: string }[] = [];
  fail?: (args: string[]) => { code: number; stderr: string } | undefined;
  async run(args: string[], env: Record<string, string>, input?: string) {
    this.runs.push({ args, env, input });
    const failed = this.fail?.(args);
    if (failed) return { ...failed, stdout: "" };
    const last = args[args.length - 1];
    if (args[0] === "ps") return { code: 0, stdout: args.includes("label=appstack.service=api") ? "c0ffee01\n" : "beef0001\n", stderr: "" };
    if (args.includes(OFFSITE_FETCH_SCRIPT) && last === "snapshots") return { code: 0, stdout: JSON.stringify(SNAPSHOTS), stderr: "" };
    if (args.includes(OFFSITE_FETCH_SCRIPT)) return { code: 0, stdout: `/restore${SNAPSHOTS.find((s) => s.id === last)!.paths[0]}\n`, stderr: "restoring...\n" };
    if (args.includes(DRILL_SCRIPT)) {
      return { code: 0, stdout: `RESTORED\t3\nCHECK\t2\nROWS\tpublic.jobs\t1200\nROWS\tpublic.users\t45\nDROPPED\t${args[args.length - 2]}\n`, stderr: "" };
    }
    return { code: 0, stdout: "", stderr: "" };
  }
  verbs(): string[] {
    return this.runs.map((r) => {
      if (r.args[0] !== "run") return r.args.slice(0, 2).join(" ");
      if (r.args.includes(OFFSITE_FETCH_SCRIPT)) return `restic ${r.args[r.args.length - 1] === "snapshots" ? "snapshots" : "restore"}`;
      return r.args.includes(DRILL_SCRIPT) ? "drill" : "pg_restore";
    });
  }
}

function setup() {
  const root = tempProject({ "Pulumi.staging.yaml": STACK });
  const auto = new FakeAutomation(() => ({ outputs: OUTPUTS, config: SECRETS }));
  return { root, auto, ctx: testContext(root, auto), docker: new FakeDocker() };
}

/** Every secret of the test, to look for where it must not be. */
const SECRET_VALUES = [PASSWORD, ...Object.values(SECRETS)];

describe("off-host restore and drill: the docker invocations", () => {
  const t = offsiteTarget(tempProject({ "Pulumi.staging.yaml": STACK }), "staging");

  it("run the stack's restic image with the secrets on stdin into a tmpfs, nothing secret in argv", () => {
    const c = offsiteCommands(t);
    expect(c.snapshots).toEqual([
      "run", "--rm",
      "--label", "appstack.project=appstack", "--label", "appstack.stack=staging", "--label", "appstack.service=restore", "--label", "appstack.role=job",
      "-i", "--tmpfs", "/run/appstack/secrets:mode=0700",
      "-e", "SECRETS_DIR=/run/appstack/secrets", "-e", "OFFSITE_HOST=appstack-staging", "-e", "RESTORE_DIR=/restore",
      "-e", "AWS_DEFAULT_REGION=eu-central-1",
      "--entrypoint", "/bin/sh", "restic/restic:0.19.1", "-c", OFFSITE_FETCH_SCRIPT, "sh", "snapshots",
    ]);
    expect(c.fetch("1a2b3c4d", "scratch")).toContain("scratch:/restore");
    expect(c.drill("scratch", "/restore/x.dump", "appstack_drill_1")).toEqual(expect.arrayContaining(["--network", "appstack-staging", "scratch:/restore:ro", "-e", "PGPASSWORD", "postgres:17.6-alpine"]));
    expect(c.drill("scratch", "/restore/x.dump", "appstack_drill_1").slice(-3)).toEqual(["/restore/x.dump", "appstack_drill_1", "SELECT count(*) FROM jobs"]);
  });

  it("a stack without backup.offsite has no repository to restore from, and says what to use instead", () => {
    expect(() => offsiteTarget(tempProject({ "Pulumi.staging.yaml": STAGING_STACK }), "staging")).toThrow(/backup.offsite is not set[\s\S]*npm run restore -- --stack staging/);
  });

  it("restic's snapshot list, newest first, each with its dump's name", () => {
    expect(parseSnapshots(JSON.stringify([...SNAPSHOTS].reverse())).map((s) => `${s.shortId} ${s.file}`)).toEqual([
      "1a2b3c4d staging_scheduled_20250603T060000Z.dump",
      "9f8e7d6c staging_scheduled_20250603T000000Z.dump",
    ]);
    expect(parseSnapshots("null")).toEqual([]);
  });
});

describe("npm run restore -- --offsite", () => {
  it("without --snapshot: lists the snapshots and changes nothing", async () => {
    const { ctx, docker } = setup();
    const err = await restoreOffsite(ctx, docker, { stack: "staging", yes: false }).catch((e) => e);
    expect(err.exitCode).toBe(EXIT.usage);
    expect(err.message).toContain("Name the snapshot to restore: --snapshot <id> (or latest)");
    expect(err.message).toMatch(/ {2}1a2b3c4d {2}2025-06-03T06:00:04.000Z {2}\S+ .* ago {2}staging_scheduled_20250603T060000Z\.dump\n {2}9f8e7d6c/);
    expect(docker.verbs()).toEqual(["restic snapshots"]);
  });

  it("without --yes: says what it will overwrite, and only read", async () => {
    const { ctx, docker } = setup();
    const err = await restoreOffsite(ctx, docker, { stack: "staging", snapshot: "latest", yes: false }).catch((e) => e);
    expect(err.message).toContain("npm run restore -- --stack staging --offsite --snapshot 1a2b3c4d --yes");
    expect(ctx.lines.join("\n")).toContain('OVERWRITES database "app" on Postgres "postgres"');
    expect(docker.verbs()).toEqual(["restic snapshots", "ps -q", "ps -q"]);
  });

  it("with --yes: fetches into a scratch volume, stops the API and worker, restores in one transaction, starts them, removes the volume", async () => {
    const { ctx, docker } = setup();
    expect(await restoreOffsite(ctx, docker, { stack: "staging", snapshot: "9f8e7d6c", yes: true })).toBe(EXIT.ok);
    expect(docker.verbs()).toEqual([
      "restic snapshots", "ps -q", "ps -q", "volume create", "restic restore", "stop c0ffee01", "pg_restore", "start c0ffee01", "volume rm",
      // The restored data is dumped (and shipped) now, not a schedule later.
      "exec appstack-staging-backup-schedule", "restart appstack-staging-backup-schedule",
    ]);
    expect(docker.runs[9].args).toEqual(["exec", "appstack-staging-backup-schedule", "rm", "-f", "/backups/.appstack/last-dump"]);
    expect(ctx.lines.join("\n")).toContain("The scheduled dump runs again now (appstack-staging-backup-schedule restarted)");
    const volume = docker.runs[3].args.at(-1)!;
    expect(volume).toMatch(/^appstack-staging-restore-[0-9a-f]{8}$/);
    expect(docker.runs[8].args).toEqual(["volume", "rm", "-f", volume]);
    const pgRestore = docker.runs[6];
    expect(pgRestore.args).toEqual(expect.arrayContaining(["--single-transaction", `${volume}:/restore:ro`, "/restore/backups/scheduled/staging_scheduled_20250603T000000Z.dump"]));
    expect(pgRestore.env).toEqual({ DOCKER_HOST: "ssh://deploy@staging.example.com", PGPASSWORD: PASSWORD });
  });

  it("the repository's secrets travel on the restic container's stdin only, as the stack's config holds them", async () => {
    const { ctx, docker, auto } = setup();
    await restoreOffsite(ctx, docker, { stack: "staging", snapshot: "latest", yes: true });
    const restic = docker.runs.filter((r) => r.args.includes(OFFSITE_FETCH_SCRIPT));
    expect(restic).toHaveLength(2);
    const sent = Object.fromEntries(
      restic[0].input!.trim().split("\n").map((l) => [l.split(" ")[0], Buffer.from(l.split(" ")[1], "base64").toString("utf8")]),
    );
    expect(sent).toEqual({
      RESTIC_REPOSITORY: SECRETS.resticRepository,
      RESTIC_PASSWORD: SECRETS.resticPassword,
      "env/AWS_ACCESS_KEY_ID": SECRETS.AWS_ACCESS_KEY_ID,
      "env/AWS_SECRET_ACCESS_KEY": SECRETS.AWS_SECRET_ACCESS_KEY,
    });
    for (const r of docker.runs) {
      for (const secret of SECRET_VALUES) {
        expect(r.args.join(" ")).not.toContain(secret);
        if (!("PGPASSWORD" in r.env)) expect(JSON.stringify(r.env)).not.toContain(secret);
      }
    }
    expect(auto.calls.find((c) => c.op === "configValues")!.detail).toEqual(["resticRepository", "resticPassword", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]);
  });

  it("a failed pg_restore still starts the API and worker again and removes the scratch volume", async () => {
    const { ctx, docker } = setup();
    docker.fail = (args) => (args.includes("pg_restore") ? { code: 1, stderr: "pg_restore: error: could not execute query" } : undefined);
    const err = await restoreOffsite(ctx, docker, { stack: "staging", snapshot: "latest", yes: true }).catch((e) => e);
    expect(err.message).toContain("could not execute query");
    expect(docker.verbs().slice(-3)).toEqual(["pg_restore", "start c0ffee01", "volume rm"]);
  });

  it(`a wrong repository password is said plainly (exit ${EXIT.backup}), before anything is stopped`, async () => {
    const { ctx, docker } = setup();
    docker.fail = (args) => (args.includes(OFFSITE_FETCH_SCRIPT) ? { code: 1, stderr: "Fatal: wrong password or no key found\n" } : undefined);
    const err = await restoreOffsite(ctx, docker, { stack: "staging", snapshot: "latest", yes: true }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.exitCode).toBe(EXIT.backup);
    expect(err.message).toBe(
      'Listing the snapshots of stack "staging" in the off-host repository failed: Fatal: wrong password or no key found The repository password is wrong: check the secure key resticPassword (pulumi config get -s staging resticPassword).',
    );
    expect(docker.verbs()).toEqual(["restic snapshots"]);
  });

  it("restic's reason, as older restic prints it and as restic 0.18+ does with --json, without the repository's location", () => {
    expect(resticReason("Fatal: wrong password or no key found\n")).toBe("Fatal: wrong password or no key found");
    expect(resticReason('{"message_type":"exit_error","code":12,"message":"Fatal: wrong password or no key found"}\n')).toBe("Fatal: wrong password or no key found");
    const missing = '{"message_type":"exit_error","code":10,"message":"Fatal: repository does not exist: unable to open config file\\nIs there a repository at the following location?\\nrest:https://u:pw@backup.example.com/app"}';
    expect(resticReason(missing)).toBe("Fatal: repository does not exist: unable to open config file");
  });

  it("an unknown snapshot lists the ones there are", async () => {
    const { ctx, docker } = setup();
    const err = await restoreOffsite(ctx, docker, { stack: "staging", snapshot: "deadbeef", yes: true }).catch((e) => e);
    expect(err.message).toContain('No snapshot "deadbeef" of stack "staging"');
    expect(err.message).toContain("1a2b3c4d");
  });
});

describe("npm run restore -- --drill", () => {
  it("restores the newest snapshot into a throwaway database, reports the check and the rows, and never stops the app", async () => {
    const { ctx, docker } = setup();
    expect(await drill(ctx, docker, { stack: "staging" })).toBe(EXIT.ok);
    expect(docker.verbs()).toEqual(["restic snapshots", "volume create", "restic restore", "drill", "volume rm"]);
    const run = docker.runs[3];
    const db = run.args.at(-2)!;
    expect(db).toMatch(/^appstack_drill_[0-9a-f]{12}$/);
    expect(run.args.at(-3)).toBe("/restore/backups/scheduled/staging_scheduled_20250603T060000Z.dump");
    expect(run.env.PGPASSWORD).toBe(PASSWORD);
    const out = ctx.lines.join("\n");
    expect(out).toContain('Restore drill of stack "staging": the newest off-host copy, snapshot 1a2b3c4d (staging_scheduled_20250603T060000Z.dump, taken 2025-06-03T06:00:04.000Z, 2 h 59 min before the drill).');
    expect(out).toContain("  check query: 2   (SELECT count(*) FROM jobs)");
    expect(out).toContain("  rows: 1245 in 2 table(s): public.jobs 1200, public.users 45");
    expect(out).toContain(`  dropped the throwaway database; the live database "app" was never opened.`);
    expect(out).toContain("at most twice backup.schedule, 6h, before status fails");
  });

  it("a drill that fails still removes the scratch volume, and says the throwaway database is dropped on exit", async () => {
    const { ctx, docker } = setup();
    docker.fail = (args) => (args.includes(DRILL_SCRIPT) ? { code: 1, stderr: 'pg_restore: error: relation "jobs" already exists' } : undefined);
    const err = await drill(ctx, docker, { stack: "staging" }).catch((e) => e);
    expect(err.exitCode).toBe(EXIT.backup);
    expect(err.message).toMatch(/the throwaway database appstack_drill_[0-9a-f]{12} is dropped on exit:\npg_restore: error: relation "jobs" already exists/);
    expect(docker.verbs().at(-1)).toBe("volume rm");
  });
});

describe("status and the smoke check on backups", () => {
  const backup: BackupOutput = { schedule: "24h", maxAgeSeconds: 172_800, scheduleContainer: "appstack-staging-backup-schedule", offsiteContainer: "appstack-staging-backup-offsite" };
  const now = Date.parse("2025-06-03T09:00:00Z");
  const ago = (s: number) => Math.floor(now / 1000) - s;
  const fresh = judgeBackups(backup, { lastDump: `${ago(3600)} d.dump 10 1`, lastOffsite: `${ago(3500)} 1a2b3c4d d.dump 2` }, now);
  const stale = judgeBackups(backup, { lastDump: `${ago(3600)} d.dump 10 1`, lastOffsite: `${ago(172_801)} 1a2b3c4d c.dump 2` }, now);

  it("judges each backup against twice the schedule, and prints one row each", () => {
    expect(fresh.map((a) => a.ok)).toEqual([true, true]);
    expect(stale.map((a) => a.ok)).toEqual([true, false]);
    expect(renderBackupTable(stale, "24h").split("\n")).toEqual([
      "BACKUP         NEWEST                    AGE      LIMIT (2 x 24h)  DETAIL",
      "ok   local     2025-06-03T08:00:00.000Z  60 min   2 d 0 h          d.dump, 10 bytes in 1 s",
      "FAIL off-host  2025-06-01T08:59:59.000Z  2 d 0 h  2 d 0 h          c.dump as snapshot 1a2b3c4d",
    ]);
  });

  let server: http.Server;
  let healthUrl: string;
  beforeAll(async () => {
    server = http.createServer((_, res) => res.end("ok"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    healthUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** Outputs of a stack whose one service answers 200, with backups; and a reader that reports `ages`. */
  const deployed = (ages: BackupAge[]) => ({
    outputs: {
      version: { value: "1.5.0", secret: false },
      endpoints: { value: { api: { url: healthUrl, healthUrl } }, secret: false },
      backup: { value: backup, secret: false },
    } as OutputMap,
    backups: async () => ages,
  });

  it(`status fails (exit ${EXIT.unhealthy}) when a backup is overdue, even with every service healthy`, async () => {
    const root = tempProject({ "Pulumi.staging.yaml": STAGING_STACK });
    const { outputs, backups } = deployed(stale);
    const ctx = testContext(root, new FakeAutomation(() => ({ outputs })));
    expect(await status(ctx, { stack: "staging", timeoutMs: 2000, backups })).toBe(EXIT.unhealthy);
    const out = ctx.lines.join("\n");
    expect(out).toMatch(/^ok +api /m);
    expect(out).toMatch(/^FAIL off-host +2025-06-01/m);
    expect(out).toContain('Backups of stack "staging" overdue: off-host (older than twice backup.schedule, or none).');
    const ok = testContext(root, new FakeAutomation(() => ({ outputs: deployed(fresh).outputs })));
    expect(await status(ok, { stack: "staging", timeoutMs: 2000, backups: deployed(fresh).backups })).toBe(EXIT.ok);
  });

  it("status on backups it cannot read fails and says why", async () => {
    const root = tempProject({ "Pulumi.staging.yaml": STAGING_STACK });
    const { outputs } = deployed(fresh);
    const ctx = testContext(root, new FakeAutomation(() => ({ outputs })));
    const backups = async () => Promise.reject(new Error("there is no container appstack-staging-backup-schedule on ssh://deploy@staging.example.com"));
    expect(await status(ctx, { stack: "staging", timeoutMs: 2000, backups })).toBe(EXIT.unhealthy);
    expect(ctx.lines.join("\n")).toContain("could not be read: there is no container appstack-staging-backup-schedule");
  });

  it("a deploy whose services are healthy but whose backups are overdue fails, and is not rolled back: the release is not at fault", async () => {
    const root = tempProject({ "Pulumi.staging.yaml": STAGING_STACK });
    const { outputs, backups } = deployed(stale);
    const auto = new FakeAutomation(() => ({ up: () => ({ outputs, version: 12 }) }));
    const err = await deploy(testContext(root, auto), deployOptions(root, { backups, rollbackOnFailure: true })).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.exitCode).toBe(EXIT.unhealthy);
    expect(err.message).toContain('Deployed stack "staging" (version 12) and every service is healthy, but its backups are overdue: off-host (c.dump as snapshot 1a2b3c4d)');
    expect(err.message).toContain("Not rolled back");
    expect(auto.ops()).not.toContain("history");
  });

  it("a deploy with recent backups says so", async () => {
    const root = tempProject({ "Pulumi.staging.yaml": STAGING_STACK });
    const { outputs, backups } = deployed(fresh);
    const ctx = testContext(root, new FakeAutomation(() => ({ up: () => ({ outputs, version: 12 }) })));
    expect(await deploy(ctx, deployOptions(root, { backups }))).toBe(EXIT.ok);
    expect(ctx.lines.join("\n")).toContain('Deployed stack "staging" (version 12); every service is healthy, and its backups are recent.');
  });
});
