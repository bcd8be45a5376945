import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SECRETS_DIR } from "../../components/backup-scripts";
import { offsiteCommands, offsiteStdin, parseDrillOutput } from "../../ops/operations/offsite";
import { postgresBin, run, startSftpServer, waitUntil, type RunResult } from "../contract/servers";
import { SETUP_TIMEOUT_MS } from "../helpers/declared-stack";
import { BackupHarness, type Restic } from "./backup-harness";

export { debianRestic, pinnedRestic } from "./backup-harness";

/**
 * The scheduled dump, the off-host shipper, the restore from the off-host
 * repository and the drill, run for real: what the stack declares (scripts,
 * env, secret files, health checks) against Debian's Postgres and restic, an
 * sftp repository on a throwaway sshd of 127.0.0.1, under busybox as in the
 * Alpine-based images (test/runtime/backup-harness.ts says how each part is
 * adapted to the host). Where a test would otherwise wait a day, an interval
 * is shortened (BACKUP_INTERVAL_SECONDS and the like), and the test says so.
 */

/** The whole suite, against one restic binary: the declared scripts do not change with it. */
export function backupSuite(restic: Restic): void {
  describe(`backups with ${restic.label}`, () => {
    const h = new BackupHarness(restic);
    const start = h.start.bind(h);
    const stop = h.stop.bind(h);
    const waitForOutput = h.waitForOutput.bind(h);
    const health = h.health.bind(h);
    const query = h.query.bind(h);
    const stateFile = h.stateFile.bind(h);
    const scheduledDumps = h.scheduledDumps.bind(h);
    const snapshots = h.snapshots.bind(h);
    const sha256 = (file: string) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");

    beforeAll(async () => {
      await h.setUp();
      await query("CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)");
      await query("INSERT INTO notes SELECT i, 'note ' || i FROM generate_series(1, 500) i");
    }, SETUP_TIMEOUT_MS);

    afterAll(() => h.tearDown());

    describe("what the backup containers are given", () => {
      it("secrets only as mode-0400 files: none in env, command, health check or labels", () => {
        for (const r of [h.schedule, h.offsite]) {
          const visible = JSON.stringify({ envs: r.inputs.envs, command: r.inputs.command, entrypoints: r.inputs.entrypoints, healthcheck: r.inputs.healthcheck, labels: r.inputs.labels });
          for (const s of h.declared.secrets) expect(visible, `${r.name} shows ${s.source}`).not.toContain(s.value);
          const uploads = r.inputs.uploads as { file: string; permissions: string }[];
          const secretFiles = uploads.map((u, i) => ({ u, i })).filter(({ u }) => !u.file.endsWith("known_hosts"));
          expect(secretFiles.length).toBeGreaterThan(0);
          for (const { u, i } of secretFiles) {
            expect(u.permissions).toBe("0400");
            expect(r.secretPaths).toContain(`uploads[${i}].content`);
          }
        }
        expect((h.offsite.inputs.uploads as { file: string }[]).map((u) => u.file).sort()).toEqual(
          ["RESTIC_PASSWORD", "RESTIC_REPOSITORY", "known_hosts", "ssh-key"].map((f) => `${SECRETS_DIR}/${f}`).sort(),
        );
      });
    });

    describe("the scheduled dump (the declared script, busybox sh, Debian's pg_dump)", () => {
      it("dumps at once, records time, size and duration, keeps BACKUP_KEEP, stops at once on SIGTERM", async () => {
        // Shortened: a 2 s schedule and 2 kept, so three dumps and a prune take seconds.
        const p = start(h.schedule, { BACKUP_INTERVAL_SECONDS: "2", BACKUP_KEEP: "2" });
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
        expect(Number(bytes)).toBe(fs.statSync(path.join(h.volume, "scheduled", name)).size);
        expect(Math.abs(Number(epoch) - Date.now() / 1000)).toBeLessThan(30);
        expect(Number(seconds)).toBeGreaterThanOrEqual(0);
        const list = await run(postgresBin("pg_restore"), ["--list", path.join(h.volume, "scheduled", name)]);
        expect(list.stdout).toContain("TABLE public notes");
      });

      it("is healthy while the newest dump is younger than twice the schedule, unhealthy after", async () => {
        const ok = await health(h.schedule);
        expect(ok.code, ok.stdout).toBe(0);
        expect(ok.stdout).toMatch(/^newest dump offsite_scheduled_\S+\.dump: \d+ bytes in \d+ s, \d+ s ago \(at most 172800\)/);
        const file = stateFile("last-dump");
        const original = fs.readFileSync(file, "utf8");
        const [, ...rest] = original.trim().split(" ");
        fs.writeFileSync(file, `${Math.floor(Date.now() / 1000) - 172_801} ${rest.join(" ")}\n`);
        const stale = await health(h.schedule);
        expect(stale.code).not.toBe(0);
        expect(stale.stdout).toMatch(/17280\d s ago \(at most 172800\)/);
        fs.rmSync(file);
        expect((await health(h.schedule)).stdout).toContain("no scheduled dump yet");
        fs.writeFileSync(file, original);
      });

      it("a restarted container waits for the newest dump's age to reach the schedule instead of dumping again", async () => {
        const before = scheduledDumps();
        const p = start(h.schedule);
        await new Promise((r) => setTimeout(r, 2500));
        expect(await stop(p)).toBe(0);
        expect(scheduledDumps()).toEqual(before);
        expect(p.output()).not.toContain("wrote");
      });

      it("a full disk during the dump leaves the previous dump intact and unreplaced", async () => {
        if (process.getuid?.() !== 0) throw new Error("this test mounts a 1 MiB tmpfs as the backup volume and needs root (.ci/run runs as root)");
        const small = path.join(h.work, "full");
        fs.mkdirSync(small);
        execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "appstack-test-full", small]);
        try {
          const first = start(h.schedule, { BACKUP_DIR: small });
          await waitForOutput(first, /appstack backup: wrote /, "the first dump");
          await stop(first);
          const [dump] = scheduledDumps(small);
          const kept = { hash: sha256(path.join(small, "scheduled", dump)), record: fs.readFileSync(stateFile("last-dump", small), "utf8") };
          // About 3.8 MB of random hex: its compressed dump is larger than the whole filesystem.
          await query("CREATE TABLE filler AS SELECT md5(random()::text) || md5(random()::text) AS x FROM generate_series(1, 60000)");
          const second = start(h.schedule, { BACKUP_DIR: small, BACKUP_INTERVAL_SECONDS: "1" });
          await waitForOutput(second, /appstack backup: FAILED: .*No space left on device; the previous dumps are kept/, "the failed dump");
          await stop(second);
          expect(scheduledDumps(small)).toEqual([dump]);
          expect(sha256(path.join(small, "scheduled", dump))).toBe(kept.hash);
          expect(fs.readFileSync(stateFile("last-dump", small), "utf8")).toBe(kept.record);
          expect(fs.readdirSync(path.join(small, "scheduled")).filter((f) => f.endsWith(".partial"))).toEqual([]);
          expect((await health(h.schedule, small)).code, "still judged by the previous dump").toBe(0);
        } finally {
          execFileSync("umount", [small]);
          await query("DROP TABLE IF EXISTS filler");
        }
      });
    });

    describe("off the host (the declared restic shipper, sftp to a throwaway sshd)", () => {
      it("initialises the repository, ships the newest dump, then each new one, and turns healthy", async () => {
        // Shortened: the shipper looks for new dumps every second.
        const p = start(h.offsite, { SHIP_POLL_SECONDS: "1", RETRY_SECONDS: "1" });
        await waitForOutput(p, /appstack offsite: shipped offsite_scheduled_\S+ as snapshot [0-9a-f]{8}/, "the first snapshot", 90_000);
        expect(p.output()).toContain("no repository at the configured location yet: restic init");
        const dumper = start(h.schedule, { BACKUP_INTERVAL_SECONDS: "1" });
        await waitForOutput(dumper, /appstack backup: wrote /, "another dump");
        await stop(dumper);
        await waitUntil("the second snapshot", () => (p.output().match(/appstack offsite: shipped /g) ?? []).length >= 2, 60_000);
        expect(await stop(p)).toBe(0);
        const [epoch, id, file] = fs.readFileSync(stateFile("last-offsite"), "utf8").trim().split(" ");
        expect(file).toBe(scheduledDumps().at(-1));
        // The copy's age is its data's: when the dump was written, in last-offsite and as the snapshot's time.
        const written = Math.floor(fs.statSync(path.join(h.volume, "scheduled", file)).mtimeMs / 1000);
        expect(Number(epoch)).toBe(written);
        const { r, list } = await snapshots();
        expect(r.code, r.stderr).toBe(0);
        expect(list.map((s) => s.file)).toContain(file);
        expect(list[0].shortId).toBe(id);
        expect(list[0].time.getTime() / 1000).toBe(written);
        const ok = await health(h.offsite);
        expect(ok.code, ok.stdout).toBe(0);
        expect(ok.stdout).toMatch(new RegExp(`^newest off-host copy ${file} \\(snapshot ${id}\\), \\d+ s ago \\(at most 172800\\)`));
      });

      it("restores the rows from the off-host repository alone, once the database and the backup volume are gone", async () => {
        const before = await query("SELECT id, body FROM notes ORDER BY id");
        expect(before).toHaveLength(500);
        fs.rmSync(h.volume, { recursive: true, force: true });
        fs.mkdirSync(h.volume);
        await h.newServer();
        expect(await query("SELECT to_regclass('notes')::text AS t")).toEqual([{ t: null }]);

        // What `npm run restore -- --offsite --snapshot latest --yes` runs: list, fetch into a scratch volume, pg_restore.
        const { list } = await snapshots();
        const scratch = path.join(h.work, "scratch");
        const file = await h.fetch(list[0].id, scratch);
        // restic restores a file at its original path below the target: the (adapted) volume's path here, /backups/... in the container.
        expect(file).toBe(path.join(scratch, h.volume, "scheduled", list[0].file));
        const restored = await h.pgRestore(file);
        expect(restored.code, restored.stderr).toBe(0);
        expect(await query("SELECT id, body FROM notes ORDER BY id")).toEqual(before);
      });

      it("the drill restores into a throwaway database, reports the check and row counts, drops it, and never opens the live one", async () => {
        const { list } = await snapshots();
        const file = await h.fetch(list[0].id, path.join(h.work, "scratch-drill"));
        // The live database refuses every connection while the drill runs: the drill must not need it.
        const allow = (yes: boolean) =>
          h.server.asServer(postgresBin("psql"), ["-h", h.server.socketDir, "-p", String(h.port), "-U", h.pgEnv.POSTGRES_USER, "-d", "postgres", "-c", `ALTER DATABASE "${h.pgEnv.POSTGRES_DB}" ALLOW_CONNECTIONS ${yes}`]);
        await allow(false);
        let drill: RunResult;
        try {
          drill = await h.drill(file, "appstack_drill_test01");
        } finally {
          await allow(true);
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
        // monthly ones (restic 0.16 and later keep the oldest snapshot while a weekly or monthly bucket is not yet full).
        const p = start(h.offsite, { PRUNE_INTERVAL_SECONDS: "1", KEEP_DAILY: "1", KEEP_WEEKLY: "0", KEEP_MONTHLY: "0", SHIP_POLL_SECONDS: "1", RETRY_SECONDS: "1" });
        await waitForOutput(p, /appstack offsite: retention applied: 1 daily, 0 weekly, 0 monthly/, "the retention", 90_000);
        await stop(p);
        const after = (await snapshots()).list;
        expect(after.map((s) => s.id)).toEqual([before[0].id]);
      });

      it("restic check finds a corrupted pack, and the shipper turns unhealthy until a check passes", async () => {
        // A dump to ship in this round, so the copy is recent and only the check decides the healt
        const dumper = start(h.schedule, { BACKUP_INTERVAL_SECONDS: "1" });
        await waitForOutput(dumper, /appstack backup: wrote /, "a dump");
        await stop(dumper);
        const repo = path.join(h.sftp.root, "repo");
        const local = { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: h.secrets.resticPassword, HOME: h.work, PATH: process.env.PATH ?? "" };
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
        const p = start(h.offsite, { CHECK_INTERVAL_SECONDS: "1", SHIP_POLL_SECONDS: "1", RETRY_SECONDS: "1" });
        try {
          await waitForOutput(p, /appstack offsite: restic check FOUND ERRORS in the repository/, "the failed check", 90_000);
          const sick = await health(h.offsite);
          expect(sick.code).not.toBe(0);
          expect(sick.stdout).toMatch(/^restic check found errors: /);
          fs.writeFileSync(pack, original);
          await waitForOutput(p, /appstack offsite: restic check: no errors/, "a passing check", 90_000);
          expect(fs.existsSync(stateFile("offsite-check-failed"))).toBe(false);
          expect((await health(h.offsite)).code).toBe(0);
        } finally {
          fs.writeFileSync(pack, original);
          await stop(p);
        }
      });

      it("a wrong repository password is said plainly, at once, and never leads to a new repository", async () => {
        const wrongDir = path.join(h.work, "wrong-secrets");
        fs.cpSync(h.secretsDir, wrongDir, { recursive: true });
        fs.chmodSync(path.join(wrongDir, "RESTIC_PASSWORD"), 0o600);
        fs.writeFileSync(path.join(wrongDir, "RESTIC_PASSWORD"), "not-the-password");
        const started = Date.now();
        const p = start(h.offsite, { SECRETS_DIR: wrongDir, RETRY_SECONDS: "60" });
        await waitForOutput(p, /appstack offsite: the repository password is wrong/, "the password error", 30_000);
        expect(Date.now() - started).toBeLessThan(20_000);
        await stop(p);
        expect(p.output()).not.toContain("restic init");
        expect(fs.readFileSync(stateFile("offsite-error"), "utf8")).toMatch(/^\d+ the repository password is wrong/);
        fs.rmSync(stateFile("offsite-error"));

        // And the restore's listing: restic's own message, within seconds, no prompt.
        const t0 = Date.now();
        const { r } = await snapshots({ ...h.secrets, resticPassword: "not-the-password" });
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(/wrong password or no key found/);
        expect(Date.now() - t0).toBeLessThan(20_000);
      });

      it("an sftp server whose host key is not the known one is refused, never trusted on first use", async () => {
        const other = await startSftpServer();
        try {
          const elsewhere = { ...h.secrets, resticRepository: `sftp://${other.user}@127.0.0.1:${other.port}/${other.root}/repo`, resticSshKey: other.clientKey };
          const list = (knownHostsLine: string) => {
            const t = { ...h.target, offsite: { ...h.target.offsite, knownHosts: [knownHostsLine] } };
            return h.runInContainer(offsiteCommands(t).snapshots, t.resticImage, { env: { SECRETS_DIR: path.join(h.work, "other-secrets") }, input: offsiteStdin(t, elsewhere) });
          };
          // With that server's own key, the login works (and finds no repository there).
          const trusted = await list(other.knownHostsLine);
          expect(trusted.code).not.toBe(0);
          expect(trusted.stderr).toMatch(/Is there a repository at the following location/);
          // With another key on file for that address, ssh refuses before anything is sent.
          const t0 = Date.now();
          const refused = await list(h.sftp.knownHostsLine.replace(`:${h.sftp.port}]`, `:${other.port}]`));
          expect(refused.code).not.toBe(0);
          expect(refused.stderr).not.toMatch(/Is there a repository/);
          expect(refused.stderr).toMatch(/unable to start the sftp session|Host key verification failed/);
          expect(Date.now() - t0).toBeLessThan(20_000);
          expect(fs.readFileSync(path.join(h.work, "other-secrets", "known_hosts"), "utf8")).toBe(`${h.sftp.knownHostsLine.replace(`:${h.sftp.port}]`, `:${other.port}]`)}\n`);
        } finally {
          await other.destroy();
        }
      });
    });
  });
}
