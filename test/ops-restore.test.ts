import type { OutputMap } from "@pulumi/pulumi/automation";
import { describe, expect, it } from "vitest";
import { EXIT, UserError } from "../ops/shared/errors";
import { restore, restoreCommands, restoreTarget, type DockerCli } from "../ops/operations/restore";
import { FakeAutomation, testContext } from "./helpers/automation";
import { STAGING_STACK, tempProject } from "./helpers/project";

const PASSWORD = "p@ss:w/rd#1";
const OUTPUTS: OutputMap = {
  connections: { value: { databaseUrl: `postgresql://app:${encodeURIComponent(PASSWORD)}@postgres:5432/app` }, secret: true },
};
const BACKUP = "staging_1.4.2_20250603T090000Z.dump";

/** A docker CLI that answers the inspect and ps calls and records everything it is asked to run. */
class FakeDocker implements DockerCli {
  readonly runs: { args: string[]; env: Record<string, string> }[] = [];
  constructor(private readonly files: Record<string, string> = { [BACKUP]: "123456 1748941200" }) {}
  async run(args: string[], env: Record<string, string>) {
    this.runs.push({ args, env });
    if (args[args.length - 2] === "sh" && args.includes("--entrypoint")) {
      const name = args[args.length - 1];
      const hit = this.files[name];
      return { code: 0, stdout: hit ? `${hit}\n` : `MISSING\n${Object.keys(this.files).join("\n")}\n`, stderr: "" };
    }
    if (args[0] === "ps") return { code: 0, stdout: args.includes("label=appstack.service=api") ? "c0ffee01\nc0ffee02\n" : "beef0001\n", stderr: "" };
    return { code: 0, stdout: "", stderr: "" };
  }
  verbs(): string[] {
    return this.runs.map((r) => (r.args[0] === "run" ? (r.args.includes("pg_restore") ? "run pg_restore" : "run inspect") : r.args[0]));
  }
}

function setup() {
  const root = tempProject({ "Pulumi.staging.yaml": STAGING_STACK });
  const auto = new FakeAutomation(() => ({ outputs: OUTPUTS }));
  return { root, auto, ctx: testContext(root, auto) };
}

describe("restore command construction", () => {
  const target = restoreTarget(tempProject({ "Pulumi.staging.yaml": STAGING_STACK }), "staging");

  it("reads the Docker host, image and names from the stack file", () => {
    expect(target).toEqual({
      stack: "staging",
      dockerHost: "ssh://deploy@staging.example.com",
      sshOpts: undefined,
      tls: false,
      image: "postgres:17.6-alpine",
      network: "appstack-staging",
      volume: "appstack-staging-backup-data",
      host: "postgres",
      port: 5432,
      user: "app",
      database: "app",
    });
  });

  it("pg_restore runs in one transaction, on the stack network, from the read-only backup volume, password from the environment", () => {
    const c = restoreCommands(target, BACKUP);
    expect(c.restore).toEqual([
      "run", "--rm",
      "--label", "appstack.project=appstack", "--label", "appstack.stack=staging", "--label", "appstack.service=restore", "--label", "appstack.role=job",
      "--network", "appstack-staging",
      "-v", "appstack-staging-backup-data:/backups:ro",
      "-e", "PGPASSWORD",
      "postgres:17.6-alpine",
      "pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error",
      "--host", "postgres", "--port", "5432", "--username", "app", "--dbname", "app",
      `/backups/${BACKUP}`,
    ]);
    expect(c.listApi).toEqual([
      "ps", "-q",
      "--filter", "label=appstack.project=appstack",
      "--filter", "label=appstack.stack=staging",
      "--filter", "label=appstack.service=api",
      "--filter", "label=appstack.role=service",
    ]);
  });

  it("the backup name reaches the shell as an argument, never as script text", () => {
    const c = restoreCommands(target, "x$(rm -rf /).dump");
    const script = c.inspect[c.inspect.indexOf("-c") + 1];
    expect(script).not.toContain("rm -rf");
    expect(c.inspect[c.inspect.length - 1]).toBe("x$(rm -rf /).dump");
  });

  it("an external Postgres cannot be restored by appstack, and says so", () => {
    const root = tempProject({ "Pulumi.staging.yaml": STAGING_STACK.replace("mode: container\n    image: postgres:17.6-alpine", "mode: external") });
    expect(() => restoreTarget(root, "staging")).toThrow(/external Postgres/);
  });
});

describe("restore confirmation", () => {
  it("without --yes: prints what it will overwrite, changes nothing, exits non-zero", async () => {
    const { ctx, auto } = setup();
    const docker = new FakeDocker();
    const err = await restore(ctx, docker, { stack: "staging", backup: BACKUP, yes: false }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.exitCode).toBe(EXIT.usage);
    expect(err.message).toContain(`npm run restore -- --stack staging --backup ${BACKUP} --yes`);
    const out = ctx.lines.join("\n");
    expect(out).toContain(`from backup ${BACKUP} (123456 bytes, taken 2025-06-03T09:00:00.000Z)`);
    expect(out).toContain('OVERWRITES database "app" on Postgres "postgres" (network appstack-staging, Docker host ssh://deploy@staging.example.com)');
    expect(out).toContain("Stops 3 API/worker container(s)");
    // Only read-only calls ran: inspect and two ps.
    expect(docker.verbs()).toEqual(["run inspect", "ps", "ps"]);
    expect(auto.calls).toEqual([]);
  });

  it("with --yes: stops the API and worker, restores, starts them again; the password is only in the child's environment", async () => {
    const { ctx } = setup();
    const docker = new FakeDocker();
    expect(await restore(ctx, docker, { stack: "staging", backup: BACKUP.replace(/\.dump$/, ""), yes: true })).toBe(EXIT.ok);
    expect(docker.verbs()).toEqual(["run inspect", "ps", "ps", "stop", "run pg_restore", "start", "exec", "restart"]);
    expect(docker.runs[3].args).toEqual(["stop", "c0ffee01", "c0ffee02", "beef0001"]);
    const pgRestore = docker.runs[4];
    expect(pgRestore.env).toEqual({ DOCKER_HOST: "ssh://deploy@staging.example.com", PGPASSWORD: PASSWORD });
    for (const r of docker.runs) expect(r.args.join(" ")).not.toContain("w/rd");
    expect(docker.runs.filter((r) => r !== pgRestore).every((r) => !("PGPASSWORD" in r.env))).toBe(true);
  });

  it("a stack without a scheduled-dump container is restored all the same, and told when its data is dumped", async () => {
    const { ctx } = setup();
    const docker = new FakeDocker();
    const original = docker.run.bind(docker);
    docker.run = async (args, env) => (args[0] === "exec" ? { code: 1, stdout: "", stderr: "Error: No such container: appstack-staging-backup-schedule" } : original(args, env));
    expect(await restore(ctx, docker, { stack: "staging", backup: BACKUP, yes: true })).toBe(EXIT.ok);
    expect(ctx.lines.join("\n")).toContain("note: could not restart appstack-staging-backup-schedule (Error: No such container: appstack-staging-backup-schedule)");
  });

  it("a failed pg_restore still starts the API and worker again", async () => {
    const { ctx } = setup();
    const docker = new FakeDocker();
    const original = docker.run.bind(docker);
    docker.run = async (args, env) => {
      const r = await original(args, env);
      return args.includes("pg_restore") ? { code: 1, stdout: "", stderr: 'pg_restore: error: could not execute query: ERROR: relation "users" does not exist' } : r;
    };
    const err = await restore(ctx, docker, { stack: "staging", backup: BACKUP, yes: true }).catch((e) => e);
    expect(err.message).toContain('relation "users" does not exist');
    expect(docker.verbs().slice(-2)).toEqual(["run pg_restore", "start"]);
  });

  it("an unknown backup lists the ones there are, newest first", async () => {
    const { ctx } = setup();
    const docker = new FakeDocker({ "staging_1.4.2_20250603T090000Z.dump": "1 1", "staging_1.4.1_20250601T090000Z.dump": "1 1" });
    const err = await restore(ctx, docker, { stack: "staging", backup: "nope", yes: true }).catch((e) => e);
    expect(err.exitCode).toBe(EXIT.usage);
    expect(err.message).toContain('No backup "nope.dump" in volume appstack-staging-backup-data');
    expect(err.message).toContain("  staging_1.4.2_20250603T090000Z.dump\n  staging_1.4.1_20250601T090000Z.dump");
  });

  it("without --backup it lists the backups", async () => {
    const { ctx } = setup();
    const err = await restore(ctx, new FakeDocker(), { stack: "staging", yes: false }).catch((e) => e);
    expect(err.message).toContain("Name the backup to restore: --backup <name>");
    expect(err.message).toContain(BACKUP);
  });

  it("a scheduled dump is restored by its name under scheduled/, as the listing shows it", async () => {
    const { ctx } = setup();
    const scheduled = "scheduled/staging_scheduled_20250603T060000Z.dump";
    const docker = new FakeDocker({ [scheduled]: "99 1748930400" });
    expect(await restore(ctx, docker, { stack: "staging", backup: scheduled, yes: true })).toBe(EXIT.ok);
    expect(docker.runs.find((r) => r.args.includes("pg_restore"))!.args.at(-1)).toBe(`/backups/${scheduled}`);
  });

  it("a path instead of a backup name is refused before anything runs", async () => {
    const { ctx } = setup();
    const docker = new FakeDocker();
    await expect(restore(ctx, docker, { stack: "staging", backup: "../../etc/passwd", yes: true })).rejects.toThrow(/must be a file name/);
    expect(docker.runs).toEqual([]);
  });
});
