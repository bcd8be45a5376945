import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SECRETS_DIR } from "../../components/backup-scripts";
import { RESTIC_IMAGE } from "../../config";
import { offsiteCommands, offsiteStdin, offsiteTarget, parseDrillOutput, parseSnapshots, type OffsiteTarget } from "../../ops/operations/offsite";
import { REPOSITORY_PLACEHOLDER } from "../../ops/offline/stack-files";
import {
  alpineUserland,
  freePort,
  postgresBin,
  programOnPath,
  run,
  startPostgres,
  startProgram,
  startSftpServer,
  waitUntil,
  type PostgresServer,
  type RunResult,
  type ServiceProcess,
  type SftpServer,
} from "../contract/servers";
import { containerEnv, evaluateStack, PROJECT_ROOT, resource, SETUP_TIMEOUT_MS, type Declared, type DeclaredResource } from "../helpers/declared-stack";
import { tempProject } from "../helpers/project";

/** A restic binary the suite runs: Debian's, or the one built at the shipper's image's version. */
export interface Restic {
  label: string;
  bin: string;
}

/** Debian's restic, as .ci/run installs it. */
export const debianRestic = (): Restic => ({ label: "Debian's restic", bin: programOnPath("restic", "Install it with: apt-get install restic (as .ci/run does).") });

/** restic at the shipper image's version, built by test/runtime/setup/restic.sh. */
export function pinnedRestic(): Restic {
  const bin = path.join(PROJECT_ROOT, ".cache", "bin", "restic-pinned");
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run bash test/runtime/setup/restic.sh (npm run test:runtime does)`);
  return { label: `restic at the image's version (${RESTIC_IMAGE})`, bin };
}

/**
 * The scheduled dump, the off-host shipper, the restore from the off-host
 * repository and the drill, run for real: what the stack declares (scripts,
 * env, secret files, health checks) against Debian's Postgres and restic, an
 * sftp repository on a throwaway sshd of 127.0.0.1, under busybox as in the
 * Alpine-based images. Host adaptations, each named where it is made: the
 * server is 127.0.0.1:<free port> instead of postgres:5432, the backup volume,
 * the secret files and the restore's scratch volume are temporary
 * directories, and where a test would otherwise wait a day, an interval is
 * shortened (BACKUP_INTERVAL_SECONDS and the like).
 */

/** The whole suite, against one restic binary: the declared scripts do not change with it. */
export function backupSuite(restic: Restic): void {
  describe(`backups with ${restic.label}`, () => {
    let sftp: SftpServer;
    let userland: ReturnType<typeof alpineUserland>;
    let declared: Declared;
    let schedule: DeclaredResource;
    let offsite: DeclaredResource;
    let target: OffsiteTarget;
    let secrets: Record<string, string>;
    let pgEnv: Record<string, string>;
    let server: PostgresServer;
    let port: number;
    let work: string;
    let volume: string;
    let secretsDir: string;
    const running: ServiceProcess[] = [];

    const repository = () => `sftp://${sftp.user}@127.0.0.1:${sftp.port}/${sftp.root}/repo`;

    /** The dev stack with off-host copies to the test's sftp server: the repository, password and key as secure keys. */
    function offsiteStackFile(): string {
      const dev = fs.readFileSync(path.join(PROJECT_ROOT, "Pulumi.dev.yaml"), "utf8");
      return (
        dev +
        [
          "  appstack:backup:",
          "    offsite:",
          "      sshKeySecret: resticSshKey",
          `      knownHosts: [${JSON.stringify(sftp.knownHostsLine)}]`,
          ...["resticRepository", "resticPassword", "resticSshKey"].flatMap((k) => [`  appstack:${k}:`, `    secure: ${REPOSITORY_PLACEHOLDER}`]),
          "",
        ].join("\n")
      );
    }

    /** The secret files the provider would upload, written where SECRETS_DIR points in the test. */
    function writeUploads(r: DeclaredResource, dir: string): void {
      for (const upload of (r.inputs.uploads as { file: string; content: string; permissions?: string }[]) ?? []) {
        expect(upload.file.startsWith(`${SECRETS_DIR}/`), upload.file).toBe(true);
        const file = path.join(dir, upload.file.slice(SECRETS_DIR.length + 1));
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, upload.content, { mode: Number.parseInt(upload.permissions ?? "0644", 8) });
      }
    }

    /** The container's process as the image runs it: entrypoint + command, `sh` being busybox's. */
    function containerArgv(r: DeclaredResource): string[] {
      const argv = [...((r.inputs.entrypoints as string[] | undefined) ?? []), ...(r.inputs.command as string[])];
      return argv.map((a, i) => (i === 0 && (a === "sh" || a === "/bin/sh") ? path.join(userland.dir, "sh") : a));
    }

    function envFor(r: DeclaredResource, over: Record<string, string> = {}): Record<string, string> {
      return {
        ...containerEnv(r),
        PGHOST: "127.0.0.1",
        PGPORT: String(port),
        BACKUP_DIR: volume,
        SECRETS_DIR: secretsDir,
        TMPDIR: work,
        HOME: work,
        PATH: userland.path,
        ...over,
      };
    }

    /** Starts a declared backup container's process on the host. */
    function start(r: DeclaredResource, over: Record<string, string> = {}): ServiceProcess {
      const p = startProgram(containerArgv(r), envFor(r, over));
      running.push(p);
      return p;
    }

    async function stop(p: ServiceProcess): Promise<number | null> {
      const code = await p.stop("SIGTERM", 5000);
      running.splice(running.indexOf(p), 1);
      return code;
    }

    async function waitForOutput(p: ServiceProcess, pattern: RegExp, what: string, timeoutMs = 60_000): Promise<void> {
      await waitUntil(`${what} (output so far: ${p.output().slice(-600)})`, () => {
        if (p.child.exitCode !== null) throw new Error(`exited ${p.child.exitCode} before ${what}:\n${p.output()}`);
        return pattern.test(p.output());
      }, timeoutMs);
    }

    /** A declared health check, run as Docker runs it in the container (busybox sh), against the test's volume. */
    function health(r: DeclaredResource, volumeDir = volume): Promise<RunResult> {
      const tests = (r.inputs.healthcheck as { tests: string[] }).tests;
      expect(tests[0]).toBe("CMD");
      const script = tests[3];
      expect(script.split("/backups").length - 1, "the check names the volume once").toBe(1);
      return run(path.join(userland.dir, "sh"), ["-c", script.replace("/backups", volumeDir)], { env: { PATH: userland.path }, timeoutMs: 10_000 });
    }

    /** The part of a `docker run` that runs inside the container: its env (-e) and its argv (entrypoint, then what follows the image). */
    function inContainer(args: string[], image: string, hostEnv: Record<string, string> = {}): { argv: string[]; env: Record<string, string> } {
      const at = args.indexOf(image);
      expect(at, `${image} in ${args.join(" ")}`).toBeGreaterThan(0);
      const env: Record<string, string> = {};
      let entrypoint: string | undefined;
      for (let i = 0; i < at; i++) {
        if (args[i] === "-e") {
          const [k, ...v] = args[++i].split("=");
          env[k] = v.length ? v.join("=") : hostEnv[k];
        } else if (args[i] === "--entrypoint") entrypoint = args[++i];
      }
      const argv = [...(entrypoint ? [entrypoint] : []), ...args.slice(at + 1)];
      return { argv: argv.map((a, i) => (i === 0 && (a === "sh" || a === "/bin/sh") ? path.join(userland.dir, "sh") : a)), env };
    }

    /** Runs what a restore's `docker run` runs in its container, with the host adaptations. */
    function runInContainer(args: string[], image: string, opts: { env?: Record<string, string>; hostEnv?: Record<string, string>; input?: string; rewrite?: (a: string) => string } = {}) {
      const c = inContainer(args, image, opts.hostEnv);
      const rewrite = opts.rewrite ?? ((a: string) => a);
      return run(c.argv[0], c.argv.slice(1).map(rewrite), {
        env: { ...c.env, TMPDIR: work, HOME: work, PATH: userland.path, ...opts.env },
        input: opts.input,
        timeoutMs: 120_000,
      });
    }

    async function query(sql: string, database = pgEnv.POSTGRES_DB): Promise<Record<string, unknown>[]> {
      const client = new pg.Client({ host: "127.0.0.1", port, user: pgEnv.POSTGRES_USER, password: pgEnv.POSTGRES_PASSWORD, database });
      await client.connect();
      try {
        return (await client.query(sql)).rows;
      } finally {
        await client.end();
      }
    }

    const stateFile = (name: string, dir = volume) => path.join(dir, ".appstack", name);
    const scheduledDumps = (dir = volume) => (fs.existsSync(path.join(dir, "scheduled")) ? fs.readdirSync(path.join(dir, "scheduled")).sort() : []);
    const sha256 = (file: string) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");

    /** The restore's secrets on stdin, as `npm run restore` sends them, from the values the stack's config holds. */
    const stdin = (values = secrets) => offsiteStdin(target, values);

    async function snapshots(values = secrets) {
      const r = await runInContainer(offsiteCommands(target).snapshots, target.resticImage, { env: { SECRETS_DIR: path.join(work, "fetch-secrets") }, input: stdin(values) });
      return { r, list: r.code === 0 ? parseSnapshots(r.stdout) : [] };
    }

    beforeAll(async () => {
      sftp = await startSftpServer();
      userland = alpineUserland({
        pg_dump: postgresBin("pg_dump"),
        pg_restore: postgresBin("pg_restore"),
        psql: postgresBin("psql"),
        restic: restic.bin,
        ssh: programOnPath("ssh", "Install it with: apt-get install openssh-client."),
      });
      secrets = {
        resticRepository: repository(),
        resticPassword: crypto.randomBytes(24).toString("base64"),
        resticSshKey: sftp.clientKey,
      };
      const root = tempProject({ "Pulumi.offsite.yaml": offsiteStackFile() });
      declared = await evaluateStack({
        stackFile: path.join(root, "Pulumi.offsite.yaml"),
        values: "contract",
        secure: Object.fromEntries(Object.entries(secrets).map(([k, v]) => [`appstack:${k}`, v])),
      });
      target = offsiteTarget(root, "offsite");
      schedule = resource(declared, "backup-schedule");
      offsite = resource(declared, "backup-offsite");
      pgEnv = containerEnv(resource(declared, "postgres-server"));
      port = await freePort();
      server = await startPostgres(pgEnv, port);
      work = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-backups-"));
      volume = path.join(work, "volume");
      secretsDir = path.join(work, "secrets");
      fs.mkdirSync(volume);
      writeUploads(schedule, secretsDir);
      writeUploads(offsite, secretsDir);
      await query("CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)");
      await query("INSERT INTO notes SELECT i, 'note ' || i FROM generate_series(1, 500) i");
    }, SETUP_TIMEOUT_MS);

    afterAll(async () => {
      for (const p of [...running]) await p.stop("SIGKILL", 2000);
      await server?.destroy();
      await sftp?.destroy();
      userland?.destroy();
      if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    describe("what the backup containers are given", () => {
      it("secrets only as mode-0400 files: none in env, command, health check or labels", () => {
        for (const r of [schedule, offsite]) {
          const visible = JSON.stringify({ envs: r.inputs.envs, command: r.inputs.command, entrypoints: r.inputs.entrypoints, healthcheck: r.inputs.healthcheck, labels: r.inputs.labels });
          for (const s of declared.secrets) expect(visible, `${r.name} shows ${s.source}`).not.toContain(s.value);
          const uploads = r.inputs.uploads as { file: string; permissions: string }[];
          const secretFiles = uploads.map((u, i) => ({ u, i })).filter(({ u }) => !u.file.endsWith("known_hosts"));
          expect(secretFiles.length).toBeGreaterThan(0);
          for (const { u, i } of secretFiles) {
            expect(u.permissions).toBe("0400");
            expect(r.secretPaths).toContain(`uploads[${i}].content`);
          }
        }
        expect((offsite.inputs.uploads as { file: string }[]).map((u) => u.file).sort()).toEqual(
          ["RESTIC_PASSWORD", "RESTIC_REPOSITORY", "known_hosts", "ssh-key"].map((f) => `${SECRETS_DIR}/${f}`).sort(),
        );
      });
    });

    describe("the scheduled dump (the declared script, busybox sh, Debian's pg_dump)", () => {
      it("dumps at once, records time, size and duration, keeps BACKUP_KEEP, stops at once on SIGTERM", async () => {
        // Shortened: a 2 s schedule and 2 kept, so three dumps and a prune take seconds.
        const p = start(schedule, { BACKUP_INTERVAL_SECONDS: "2", BACKUP_KEEP: "2" });
        await waitUntil("three dumps", () => (p.output().match(/appstack backup: wrote /g) ?? []).length >= 3, 30_000);
        const stopped = Date.now();
        expect(await stop(p)).toBe(0);
        expect(Date.now() - stopped, "SIGTERM ends the loop during its sleep").toBeLessThan(3000);
        expect(p.output()).toMatch(/appstack backup: pruned offsite_scheduled_\d{8}T\d{6}Z\.dump/);
        const dumps = scheduledDumps();
        expect(dumps).toHaveLength(2);
        for (const d of dumps) expect(d).toMatch(/^offsite_scheduled_\d{8}T\d{6}Z\.dump$/);
        const [epoch, name, bytes, seconds] = fs.readFileSync(stateFile("last-dump"), "utf8").trim().split(" ");
        expect(name).toBe(dumps[1]);
        expect(Number(bytes)).toBe(fs.statSync(path.join(volume, "scheduled", name)).size);
        expect(Math.abs(Number(epoch) - Date.now() / 1000)).toBeLessThan(30);
        expect(Number(seconds)).toBeGreaterThanOrEqual(0);
        const list = await run(postgresBin("pg_restore"), ["--list", path.join(volume, "scheduled", name)]);
        expect(list.stdout).toContain("TABLE public notes");
      });

      it("is healthy while the newest dump is younger than twice the schedule, unhealthy after", async () => {
        const ok = await health(schedule);
        expect(ok.code, ok.stdout).toBe(0);
        expect(ok.stdout).toMatch(/^newest dump offsite_scheduled_\S+\.dump: \d+ bytes in \d+ s, \d+ s ago \(at most 172800\)/);
        const file = stateFile("last-dump");
        const original = fs.readFileSync(file, "utf8");
        const [, ...rest] = original.trim().split(" ");
        fs.writeFileSync(file, `${Math.floor(Date.now() / 1000) - 172_801} ${rest.join(" ")}\n`);
        const stale = await health(schedule);
        expect(stale.code).not.toBe(0);
        expect(stale.stdout).toMatch(/17280\d s ago \(at most 172800\)/);
        fs.rmSync(file);
        expect((await health(schedule)).stdout).toContain("no scheduled dump yet");
        fs.writeFileSync(file, original);
      });

      it("a restarted container waits for the newest dump's age to reach the schedule instead of dumping again", async () => {
        const before = scheduledDumps();
        const p = start(schedule);
        await new Promise((r) => setTimeout(r, 2500));
        expect(await stop(p)).toBe(0);
        expect(scheduledDumps()).toEqual(before);
        expect(p.output()).not.toContain("wrote");
      });

      it("a full disk during the dump leaves the previous dump intact and unreplaced", async () => {
        if (process.getuid?.() !== 0) throw new Error("this test mounts a 1 MiB tmpfs as the backup volume and needs root (.ci/run runs as root)");
        const small = path.join(work, "full");
        fs.mkdirSync(small);
        execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "appstack-test-full", small]);
        try {
          const first = start(schedule, { BACKUP_DIR: small });
          await waitForOutput(first, /appstack backup: wrote /, "the first dump");
          await stop(first);
          const [dump] = scheduledDumps(small);
          const kept = { hash: sha256(path.join(small, "scheduled", dump)), record: fs.readFileSync(stateFile("last-dump", small), "utf8") };
          // About 3.8 MB of random hex: its compressed dump is larger than the whole filesystem.
          await query("CREATE TABLE filler AS SELECT md5(random()::text) || md5(random()::text) AS x FROM generate_series(1, 60000)");
          const second = start(schedule, { BACKUP_DIR: small, BACKUP_INTERVAL_SECONDS: "1" });
          await waitForOutput(second, /appstack backup: FAILED: .*No space left on device; the previous dumps are kept/, "the failed dump");
          await stop(second);
          expect(scheduledDumps(small)).toEqual([dump]);
          expect(sha256(path.join(small, "scheduled", dump))).toBe(kept.hash);
          expect(fs.readFileSync(stateFile("last-dump", small), "utf8")).toBe(kept.record);
          expect(fs.readdirSync(path.join(small, "scheduled")).filter((f) => f.endsWith(".partial"))).toEqual([]);
          expect((await health(schedule, small)).code, "still judged by the previous dump").toBe(0);
        } finally {
          execFileSync("umount", [small]);
          await query("DROP TABLE IF EXISTS filler");
        }
      });
    });

    describe("off the host (the declared restic shipper, sftp to a throwaway sshd)", () => {
      it("initialises the repository, ships the newest dump, then each new one, and turns healthy", async () => {
        // Shortened: the shipper looks for new dumps every second.
        const p = start(offsite, { SHIP_POLL_SECONDS: "1", RETRY_SECONDS: "1" });
        await waitForOutput(p, /appstack offsite: shipped offsite_scheduled_\S+ as snapshot [0-9a-f]{8}/, "the first snapshot", 90_000);
        expect(p.output()).toContain("no repository at the configured location yet: restic init");
        const dumper = start(schedule, { BACKUP_INTERVAL_SECONDS: "1" });
        await waitForOutput(dumper, /appstack backup: wrote /, "another dump");
        await stop(dumper);
        await waitUntil("the second snapshot", () => (p.output().match(/appstack offsite: shipped /g) ?? []).length >= 2, 60_000);
        expect(await stop(p)).toBe(0);
        const [epoch, id, file] = fs.readFileSync(stateFile("last-offsite"), "utf8").trim().split(" ");
        expect(Math.abs(Number(epoch) - Date.now() / 1000)).toBeLessThan(60);
        expect(file).toBe(scheduledDumps().at(-1));
        const { r, list } = await snapshots();
        expect(r.code, r.stderr).toBe(0);
        expect(list.map((s) => s.file)).toContain(file);
        expect(list[0].shortId).toBe(id);
        const ok = await health(offsite);
        expect(ok.code, ok.stdout).toBe(0);
        expect(ok.stdout).toMatch(new RegExp(`^newest off-host copy ${file} \\(snapshot ${id}\\), \\d+ s ago \\(at most 172800\\)`));
      });

      it("restores the rows from the off-host repository alone, once the database and the backup volume are gone", async () => {
        const before = await query("SELECT id, body FROM notes ORDER BY id");
        expect(before).toHaveLength(500);
        await server.destroy();
        fs.rmSync(volume, { recursive: true, force: true });
        fs.mkdirSync(volume);
        port = await freePort();
        server = await startPostgres(pgEnv, port);
        expect(await query("SELECT to_regclass('notes')::text AS t")).toEqual([{ t: null }]);

        // What `npm run restore -- --offsite --snapshot latest --yes` runs: list, fetch into a scratch volume, pg_restore.
        const { list } = await snapshots();
        const scratch = path.join(work, "scratch");
        fs.mkdirSync(scratch);
        const cmds = offsiteCommands(target);
        const fetched = await runInContainer(cmds.fetch(list[0].id, "scratch"), target.resticImage, {
          env: { SECRETS_DIR: path.join(work, "fetch-secrets"), RESTORE_DIR: scratch },
          input: stdin(),
        });
        expect(fetched.code, fetched.stderr).toBe(0);
        const file = fetched.stdout.trim();
        // restic restores a file at its original path below the target: the (adapted) volume's path here, /backups/... in the container.
        expect(file).toBe(path.join(scratch, volume, "scheduled", list[0].file));
        const restored = await runInContainer(cmds.restore("scratch", file), target.image, {
          hostEnv: { PGPASSWORD: pgEnv.POSTGRES_PASSWORD },
          rewrite: (a) => (a === target.host ? "127.0.0.1" : a === String(target.port) ? String(port) : a),
        });
        expect(restored.code, restored.stderr).toBe(0);
        expect(await query("SELECT id, body FROM notes ORDER BY id")).toEqual(before);
      });

      it("the drill restores into a throwaway database, reports the check and row counts, drops it, and never opens the live one", async () => {
        const { list } = await snapshots();
        const scratch = path.join(work, "scratch-drill");
        fs.mkdirSync(scratch);
        const cmds = offsiteCommands(target);
        const fetched = await runInContainer(cmds.fetch(list[0].id, "scratch"), target.resticImage, {
          env: { SECRETS_DIR: path.join(work, "drill-secrets"), RESTORE_DIR: scratch },
          input: stdin(),
        });
        expect(fetched.code, fetched.stderr).toBe(0);
        // The live database refuses every connection while the drill runs: the drill must not need it.
        await server.asServer(postgresBin("psql"), ["-h", server.socketDir, "-p", String(port), "-U", pgEnv.POSTGRES_USER, "-d", "postgres", "-c", `ALTER DATABASE "${pgEnv.POSTGRES_DB}" ALLOW_CONNECTIONS false`]);
        let drill: RunResult;
        try {
          drill = await runInContainer(cmds.drill("scratch", fetched.stdout.trim(), "appstack_drill_test01"), target.image, {
            hostEnv: { PGPASSWORD: pgEnv.POSTGRES_PASSWORD },
            env: { PGHOST: "127.0.0.1", PGPORT: String(port) },
          });
        } finally {
          await server.asServer(postgresBin("psql"), ["-h", server.socketDir, "-p", String(port), "-U", pgEnv.POSTGRES_USER, "-d", "postgres", "-c", `ALTER DATABASE "${pgEnv.POSTGRES_DB}" ALLOW_CONNECTIONS true`]);
        }
        expect(drill.code, drill.stderr).toBe(0);
        const out = parseDrillOutput(drill.stdout);
        expect(out.check).toBe("1");
        expect(out.rows).toEqual([{ table: "public.notes", rows: 500 }]);
        expect(out.dropped).toBe(true);
        expect(out.restoreSeconds).toBeGreaterThanOrEqual(0);
        expect(await query("SELECT datname FROM pg_database WHERE datname LIKE 'appstack_drill_%'")).toEqual([]);
        expect(await query("SELECT count(*)::int AS n FROM notes")).toEqual([{ n: 500 }]);
      });

      it("applies the retention with forget --prune grouped by host (each dump has its own path)", async () => {
        const before = (await snapshots()).list;
        expect(before.length).toBeGreaterThanOrEqual(2);
        // Shortened: prune after a second, keeping one daily snapshot (all of them are from today) and no weekly or
        // monthly ones (restic 0.17 and later keep the oldest snapshot while a weekly or monthly bucket is not yet full).
        const p = start(offsite, { PRUNE_INTERVAL_SECONDS: "1", KEEP_DAILY: "1", KEEP_WEEKLY: "0", KEEP_MONTHLY: "0", SHIP_POLL_SECONDS: "1", RETRY_SECONDS: "1" });
        await waitForOutput(p, /appstack offsite: retention applied: 1 daily, 0 weekly, 0 monthly/, "the retention", 90_000);
        await stop(p);
        const after = (await snapshots()).list;
        expect(after.map((s) => s.id)).toEqual([before[0].id]);
      });

      it("restic check finds a corrupted pack, and the shipper turns unhealthy until a check passes", async () => {
        // A dump to ship in this round, so the copy is recent and only the check decides the health.
        const dumper = start(schedule, { BACKUP_INTERVAL_SECONDS: "1" });
        await waitForOutput(dumper, /appstack backup: wrote /, "a dump");
        await stop(dumper);
        const repo = path.join(sftp.root, "repo");
        const local = { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: secrets.resticPassword, HOME: work, PATH: process.env.PATH ?? "" };
        const resticRun = (...args: string[]) => execFileSync(restic.bin, args, { env: local, encoding: "utf8" });
        // A pack that holds a tree: `restic check` reads every tree, whatever checkReadDataPercent says.
        const packs = resticRun("list", "index")
          .trim()
          .split("\n")
          .flatMap((id) => (JSON.parse(resticRun("cat", "index", id)) as { packs: { id: string; blobs: { type: string }[] }[] }).packs)
          .filter((p) => p.blobs.some((b) => b.type === "tree"));
        expect(packs.length).toBeGreaterThan(0);
        const pack = path.join(repo, "data", packs[0].id.slice(0, 2), packs[0].id);
        const original = fs.readFileSync(pack);
        const damaged = Buffer.from(original);
        damaged[Math.floor(damaged.length / 3)] ^= 0xff;
        fs.chmodSync(pack, 0o600);
        fs.writeFileSync(pack, damaged);
        // Not now: the check is what this test watches.
        fs.writeFileSync(stateFile("next-prune"), String(Math.floor(Date.now() / 1000) + 86_400));
        const p = start(offsite, { CHECK_INTERVAL_SECONDS: "1", SHIP_POLL_SECONDS: "1", RETRY_SECONDS: "1" });
        try {
          await waitForOutput(p, /appstack offsite: restic check FOUND ERRORS in the repository/, "the failed check", 90_000);
          const sick = await health(offsite);
          expect(sick.code).not.toBe(0);
          expect(sick.stdout).toMatch(/^restic check found errors: /);
          fs.writeFileSync(pack, original);
          await waitForOutput(p, /appstack offsite: restic check: no errors/, "a passing check", 90_000);
          expect(fs.existsSync(stateFile("offsite-check-failed"))).toBe(false);
          expect((await health(offsite)).code).toBe(0);
        } finally {
          fs.writeFileSync(pack, original);
          await stop(p);
        }
      });

      it("a wrong repository password is said plainly, at once, and never leads to a new repository", async () => {
        const wrongDir = path.join(work, "wrong-secrets");
        fs.cpSync(secretsDir, wrongDir, { recursive: true });
        fs.chmodSync(path.join(wrongDir, "RESTIC_PASSWORD"), 0o600);
        fs.writeFileSync(path.join(wrongDir, "RESTIC_PASSWORD"), "not-the-password");
        const started = Date.now();
        const p = start(offsite, { SECRETS_DIR: wrongDir, RETRY_SECONDS: "60" });
        await waitForOutput(p, /appstack offsite: the repository password is wrong/, "the password error", 30_000);
        expect(Date.now() - started).toBeLessThan(20_000);
        await stop(p);
        expect(p.output()).not.toContain("restic init");
        expect(fs.readFileSync(stateFile("offsite-error"), "utf8")).toMatch(/^\d+ the repository password is wrong/);
        fs.rmSync(stateFile("offsite-error"));

        // And the restore's listing: restic's own message, within seconds, no prompt.
        const t0 = Date.now();
        const { r } = await snapshots({ ...secrets, resticPassword: "not-the-password" });
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(/wrong password or no key found/);
        expect(Date.now() - t0).toBeLessThan(20_000);
      });

      it("an sftp server whose host key is not the known one is refused, never trusted on first use", async () => {
        const other = await startSftpServer();
        try {
          const elsewhere = { ...secrets, resticRepository: `sftp://${other.user}@127.0.0.1:${other.port}/${other.root}/repo`, resticSshKey: other.clientKey };
          const list = (knownHostsLine: string) => {
            const t = { ...target, offsite: { ...target.offsite, knownHosts: [knownHostsLine] } };
            return runInContainer(offsiteCommands(t).snapshots, t.resticImage, { env: { SECRETS_DIR: path.join(work, "other-secrets") }, input: offsiteStdin(t, elsewhere) });
          };
          // With that server's own key, the login works (and finds no repository there).
          const trusted = await list(other.knownHostsLine);
          expect(trusted.code).not.toBe(0);
          expect(trusted.stderr).toMatch(/Is there a repository at the following location/);
          // With another key on file for that address, ssh refuses before anything is sent.
          const t0 = Date.now();
          const refused = await list(sftp.knownHostsLine.replace(`:${sftp.port}]`, `:${other.port}]`));
          expect(refused.code).not.toBe(0);
          expect(refused.stderr).not.toMatch(/Is there a repository/);
          expect(refused.stderr).toMatch(/unable to start the sftp session|Host key verification failed/);
          expect(Date.now() - t0).toBeLessThan(20_000);
          expect(fs.readFileSync(path.join(work, "other-secrets", "known_hosts"), "utf8")).toBe(`${sftp.knownHostsLine.replace(`:${sftp.port}]`, `:${other.port}]`)}\n`);
        } finally {
          await other.destroy();
        }
      });
    });
  });
}
