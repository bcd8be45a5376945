import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { BACKUP_SCRIPT, PostgresBackup } from "../components/backup";
import { OFFSITE_SCRIPT, offsiteHealthScript, SCHEDULE_SCRIPT, scheduleHealthScript } from "../components/backup-scripts";
import { backupSettings, RESTIC_IMAGE } from "../config";
import { BENCH_STEPS } from "./bench/backup";
import { POSTGRES_ALIAS, POSTGRES_PORT } from "../components/postgres";
import type { Plan, PlanResource } from "../ops/offline/plan";
import { restoreCommands, restoreTarget } from "../ops/operations/restore";
import { runOps } from "./helpers/cli";
import { masked, mockStack, registered } from "./helpers/pulumi";
import { STAGING_STACK, tempProject } from "./helpers/project";
import { logicalName } from "./helpers/pulumi";

function plan(args: string[]): Plan {
  const r = runOps(["plan", ...args, "--format", "json"]);
  if (r.code !== 0) throw new Error(`plan ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Plan;
}

const byName = (p: Plan, name: string): PlanResource => {
  const found = p.resources.find((r) => r.name === name || logicalName(r.name) === name);
  if (!found) throw new Error(`${name} not in plan: ${p.resources.map((r) => r.name).join(", ")}`);
  return found;
};

describe("pre-deploy backup in the stack's plan", () => {
  for (const stack of ["dev", "production"]) {
    describe(`stack ${stack}`, () => {
      const p = plan(["--stack", stack]);
      const urn = (name: string) => byName(p, name).urn;

      it("runs in the order Postgres -> backup -> migrations -> api, through dependsOn", () => {
        expect(byName(p, "backup-dump-run").options.dependsOn).toContain(urn("postgres-server"));
        // A dump needs Postgres only: waiting for Redis would add its health-check window to every deploy.
        expect(byName(p, "backup-dump-run").options.dependsOn).not.toContain(urn("redis-server"));
        expect(byName(p, "api-migrate-run").options.dependsOn).toContain(urn("backup-dump-run"));
        const replicas = p.resources.filter((r) => /^api-\d+$/.test(logicalName(r.name)));
        expect(replicas.length).toBeGreaterThan(0);
        for (const api of replicas) expect(api.options.dependsOn).toContain(urn("api-migrate-run"));
        // Nothing of the backup waits on the API: no cycle, the dump comes first.
        expect(byName(p, "backup-dump-run").options.dependsOn).not.toContain(urn("api-migrate-run"));
      });

      it("dumps with pg_dump from the server's image, password in a secret env var, never in argv", () => {
        const job = byName(p, "backup-dump-run");
        const envs = job.inputs.envs as string[];
        expect(job.inputs.command).toEqual(["sh", "-c", BACKUP_SCRIPT]);
        expect(envs).toEqual(expect.arrayContaining(["PGHOST=postgres", "PGPORT=5432", "PGUSER=app", "PGDATABASE=app", "BACKUP_DIR=/backups", "BACKUP_KEEP=10"]));
        expect(job.secretPaths).toEqual([`envs[${envs.indexOf("[secret]")}]`]);
        expect(job.inputs).toMatchObject({ restart: "no", mustRun: false, attach: true, logs: true });
        expect(job.inputs.labels).toEqual(expect.arrayContaining([{ label: "appstack.service", value: "backup" }, { label: "appstack.role", value: "job" }]));
        expect(job.inputs.volumes).toEqual([{ containerPath: "/backups", volumeName: `appstack-${stack}-backup-data` }]);
      });

      it("a new API image or migrations command changes the job's env, which replaces the container (env is ForceNew in the Docker provider), so the dump runs again", () => {
        const envs = byName(p, "backup-dump-run").inputs.envs as string[];
        const api = byName(p, "api-1").inputs.labels as { label: string; value: string }[];
        const apiImage = api.find((l) => l.label === "appstack.image")!.value;
        expect(envs).toContain(`APPSTACK_TRIGGER_API_IMAGE=${apiImage}`);
        expect(envs.find((e) => e.startsWith("APPSTACK_TRIGGER_MIGRATIONS="))).toMatch(/^APPSTACK_TRIGGER_MIGRATIONS=\[".+"\]$/);
        expect(envs.find((e) => e.startsWith("BACKUP_PREFIX="))).toBe(`BACKUP_PREFIX=${stack}_${(p.outputs as { version: string }).version}`);
      });

      it("dumps on a schedule in a long-running container that the deploy waits on until its first dump, password as a root-only file", () => {
        const c = byName(p, "backup-schedule");
        expect(c.inputs).toMatchObject({
          name: `appstack-${stack}-backup-schedule`,
          command: ["sh", "-c", SCHEDULE_SCRIPT],
          restart: "unless-stopped",
          wait: true,
          waitTimeout: 1800,
          volumes: [{ containerPath: "/backups", volumeName: `appstack-${stack}-backup-data` }],
          uploads: [{ file: "/run/appstack/secrets/PGPASSWORD", content: "[secret]", permissions: "0400" }],
        });
        expect(c.inputs.envs).toEqual(expect.arrayContaining(["BACKUP_INTERVAL_SECONDS=86400", "BACKUP_KEEP=7", `BACKUP_PREFIX=${stack}_scheduled`, "BACKUP_RETRY_SECONDS=300"]));
        expect(JSON.stringify(c.inputs.envs)).not.toContain("[secret]");
        expect(c.secretPaths).toEqual(["uploads[0].content"]);
        expect((c.inputs.healthcheck as { tests: string[] }).tests).toEqual(["CMD", "sh", "-c", scheduleHealthScript("/backups", 2 * 86400)]);
        expect(c.inputs.healthcheck).toMatchObject({ interval: "5s", startPeriod: "1800s" });
        expect(c.options.deleteBeforeReplace).toBe(true);
        expect(c.options.dependsOn).toContain(urn("postgres-server"));
        expect(c.options.dependsOn).not.toContain(urn("api-migrate-run"));
        expect(p.outputs.backup).toMatchObject({ schedule: "24h", maxAgeSeconds: 172_800, scheduleContainer: `appstack-${stack}-backup-schedule` });
      });

      if (stack === "production") {
        it("ships every dump off the host with the pinned restic image, health-checked, its secrets as root-only files", () => {
          const c = byName(p, "backup-offsite");
          expect(byName(p, "backup-offsite-image").inputs.name).toBe(RESTIC_IMAGE);
          expect(c.inputs).toMatchObject({ entrypoints: ["/bin/sh", "-c"], command: [OFFSITE_SCRIPT], restart: "unless-stopped", wait: true, waitTimeout: 1800 });
          expect(c.inputs.envs).toEqual(
            expect.arrayContaining(["OFFSITE_HOST=appstack-production", "KEEP_DAILY=7", "KEEP_WEEKLY=4", "KEEP_MONTHLY=12", "CHECK_INTERVAL_SECONDS=604800", "PRUNE_INTERVAL_SECONDS=86400", "AWS_DEFAULT_REGION=eu-central-1"]),
          );
          const uploads = c.inputs.uploads as { file: string; content: string; permissions: string }[];
          expect(uploads.map((u) => `${u.file} ${u.content} ${u.permissions}`)).toEqual([
            "/run/appstack/secrets/RESTIC_REPOSITORY [secret] 0400",
            "/run/appstack/secrets/RESTIC_PASSWORD [secret] 0400",
            "/run/appstack/secrets/env/AWS_ACCESS_KEY_ID [secret] 0400",
            "/run/appstack/secrets/env/AWS_SECRET_ACCESS_KEY [secret] 0400",
          ]);
          expect(c.secretPaths).toEqual(uploads.map((_, i) => `uploads[${i}].content`));
          expect((c.inputs.healthcheck as { tests: string[] }).tests).toEqual(["CMD", "/bin/sh", "-c", offsiteHealthScript("/backups", 2 * 86400)]);
          // After the first dump: its first round has one to ship.
          expect(c.options.dependsOn).toContain(urn("backup-schedule"));
          expect(c.options.deleteBeforeReplace).toBe(true);
          expect(p.outputs.backup).toMatchObject({ offsiteContainer: "appstack-production-backup-offsite" });
        });
      } else {
        it("dev ships nothing off the host (no backup.offsite): the policy pack only warns", () => {
          expect(p.resources.some((r) => r.name === "backup-offsite")).toBe(false);
          expect((p.outputs.backup as { offsiteContainer?: string }).offsiteContainer).toBeUndefined();
        });
      }

      it(stack === "production" ? "production keeps the backup volume: protected, retained on delete" : "dev does not protect the backup volume", () => {
        const vol = byName(p, "backup-data");
        expect(vol.options.protect).toBe(stack === "production");
        expect(vol.options.retainOnDelete).toBe(stack === "production");
      });
    });
  }

  it("an external Postgres gets no backups: appstack cannot dump a managed database", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-ext-"));
    const file = path.join(dir, "Pulumi.ext.yaml");
    const prod = fs.readFileSync(path.join(__dirname, "../Pulumi.production.yaml"), "utf8");
    fs.writeFileSync(
      file,
      prod
        .replace(/ {2}appstack:postgres:\n(?: {4}.*\n)+/, "  appstack:postgres:\n    mode: external\n")
        // Its backup settings and the repository's secrets would be errors now (the provider backs it up).
        .replace(/ {2}appstack:backup:\n(?: {4}.*\n)+/, "")
        .replace(/ {2}appstack:(resticRepository|resticPassword|AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY):\n {4}secure: .*\n/g, "") +
        "  appstack:postgresUrl:\n    secure: v1:YXBwc3RhY2stcGxhY2Vob2xkZXI=:cmVwbGFjZSB3aXRoIHB1bHVtaSBjb25maWcgc2V0IC0tc2VjcmV0\n",
    );
    const p = plan(["--stack-file", file]);
    expect(p.resources.some((r) => r.name === "api-migrate-run")).toBe(true);
    expect(p.resources.filter((r) => r.name.startsWith("backup"))).toEqual([]);
    expect(p.outputs.backup).toBeUndefined();
  });
});

describe("docs/readiness.md", () => {
  it("credits the backup job where the checklists ask for a backup (it once said there was none)", () => {
    const map = fs.readFileSync(path.join(__dirname, "..", "docs", "readiness.md"), "utf8");
    for (const item of ["Backup taken", "Backup & recovery strategy"]) {
      const row = map.split("\n").find((l) => l.startsWith(`| ${item} |`));
      expect(row, item).toBeDefined();
      expect(row).toMatch(/pre-deploy (`pg_dump` job|backup)/);
      expect(row).not.toMatch(/no backup job/);
    }
  });
});

describe("docs/backups.md", () => {
  const doc = fs.readFileSync(path.join(__dirname, "..", "docs", "backups.md"), "utf8");

  it("quotes npm run bench:backup as it prints: the database, every step in order, and the drill's report", () => {
    const blocks = doc.split("<!-- output of: npm run bench:backup").slice(1);
    expect(blocks).toHaveLength(2);
    for (const block of blocks) {
      expect(block).toMatch(/^ -- --restic pinned( --filler random)? -->\npgbench -i -s 7(, its filler column random text)?: a \d+ MB database \([\d,]+ rows\); restic 0\.19\.1, PostgreSQL /);
      const steps = [...block.matchAll(/^\| (\w+) \| .+ \| (\d+\.\d) s(?: \(.+\))? \|$/gm)].map((m) => m[1]);
      expect(steps).toEqual([...BENCH_STEPS]);
      expect(block).toMatch(/```\nRestore drill of stack "offsite": the newest off-host copy, snapshot [0-9a-f]{8} /);
    }
  });

  it("names the restic image the stack pins, and the Debian version the contract tests run", () => {
    expect(doc).toContain(`The shipper runs \`${RESTIC_IMAGE}\`, pinned by its version tag.`);
    expect(doc).toContain("Debian's restic, 0.14.0 in bookworm");
  });
});

describe("PostgresBackup component", () => {
  it("declares the volume and the job, parented to it, with a secret password", async () => {
    const rt = await mockStack("staging");
    new PostgresBackup("backup", {
      stack: "staging",
      predeploy: { release: "v1.4.2+build/7", triggers: { API_IMAGE: "ghcr.io/acme/api:1.4.2" }, keep: 3 },
      schedule: backupSettings({}),
      image: "sha256:abc",
      imageReference: "postgres:17.6-alpine",
      network: "appstack-staging",
      host: "postgres",
      port: 5432,
      user: "app",
      database: "app",
      password: pulumi.secret("pw"),
      protect: false,
      dependsOn: [],
    });
    const job = await registered(rt, "backup-dump-run");
    const { inputs, secretPaths } = masked(job);
    expect(inputs.envs).toEqual([
      "APPSTACK_TRIGGER_API_IMAGE=ghcr.io/acme/api:1.4.2",
      "BACKUP_DIR=/backups",
      "BACKUP_KEEP=3",
      // The release is made safe for a file name.
      "BACKUP_PREFIX=staging_v1.4.2-build-7",
      "PGDATABASE=app",
      "PGHOST=postgres",
      "PGPORT=5432",
      "PGUSER=app",
      "[secret]",
    ]);
    expect(secretPaths).toEqual(["envs[8]"]);
    expect(job.parent).toContain("backup-dump");
    expect((await registered(rt, "backup-data")).parent).toMatch(/PostgresBackup::backup$/);
  });
});

describe("restore targets what the stack declares", () => {
  it("the Postgres host and port restore uses are the component's", () => {
    const t = restoreTarget(tempProject({ "Pulumi.staging.yaml": STAGING_STACK }), "staging");
    expect([t.host, t.port]).toEqual([POSTGRES_ALIAS, POSTGRES_PORT]);
    expect(restoreCommands(t, "x.dump").restore).toContain("--network");
  });
});
