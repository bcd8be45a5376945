import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import pg from "pg";
import { SECRETS_DIR } from "../../components/backup-scripts";
import { RESTIC_IMAGE } from "../../config";
import { offsiteCommands, offsiteStdin, offsiteTarget, parseSnapshots, type OffsiteTarget } from "../../ops/operations/offsite";
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
import { containerEnv, evaluateStack, PROJECT_ROOT, resource, type Declared, type DeclaredResource } from "../helpers/declared-stack";
import { tempProject } from "../helpers/project";

/**
 * What the backup runtime tests and the backup benchmark share: the dev
 * stack with off-host copies to a throwaway sftp server, evaluated with real
 * secrets; Debian's Postgres started from the declared env; and the declared
 * containers' processes run on the host under busybox, as in the Alpine-based
 * images. Host adaptations, each made here and named: the server is
 * 127.0.0.1:<free port> instead of postgres:5432, and the backup volume, the
 * secret files and a restore's scratch volume are temporary directories.
 */

/** A restic binary to run: Debian's, or the one built at the shipper's image's version. */
export interface Restic {
  label: string;
  bin: string;
}

/** Debian's restic, as .ci/run installs it. */
export const debianRestic = (): Restic => ({ label: "Debian's restic", bin: programOnPath("restic", "Install it with: apt-get install restic (as .ci/run does).") });

/** restic at the shipper image's version, built by test/runtime/setup/restic.sh. */
export function pinnedRestic(): Restic {
  const bin = path.join(PROJECT_ROOT, ".cache", "bin", "restic");
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run bash test/runtime/setup/restic.sh (npm run test:runtime does)`);
  return { label: `restic at the image's version (${RESTIC_IMAGE})`, bin };
}

export class BackupHarness {
  sftp!: SftpServer;
  userland!: ReturnType<typeof alpineUserland>;
  declared!: Declared;
  schedule!: DeclaredResource;
  offsite!: DeclaredResource;
  target!: OffsiteTarget;
  secrets!: Record<string, string>;
  pgEnv!: Record<string, string>;
  server!: PostgresServer;
  port!: number;
  work!: string;
  volume!: string;
  secretsDir!: string;
  readonly running: ServiceProcess[] = [];

  constructor(readonly restic: Restic) {}

  async setUp(): Promise<void> {
    this.sftp = await startSftpServer();
    this.userland = alpineUserland({
      pg_dump: postgresBin("pg_dump"),
      pg_restore: postgresBin("pg_restore"),
      psql: postgresBin("psql"),
      restic: this.restic.bin,
      ssh: programOnPath("ssh", "Install it with: apt-get install openssh-client."),
    });
    this.secrets = {
      resticRepository: `sftp://${this.sftp.user}@127.0.0.1:${this.sftp.port}/${this.sftp.root}/repo`,
      resticPassword: crypto.randomBytes(24).toString("base64"),
      resticSshKey: this.sftp.clientKey,
    };
    const root = tempProject({ "Pulumi.offsite.yaml": this.stackFile() });
    this.declared = await evaluateStack({
      stackFile: path.join(root, "Pulumi.offsite.yaml"),
      values: "contract",
      secure: Object.fromEntries(Object.entries(this.secrets).map(([k, v]) => [`appstack:${k}`, v])),
    });
    this.target = offsiteTarget(root, "offsite");
    this.schedule = resource(this.declared, "backup-schedule");
    this.offsite = resource(this.declared, "backup-offsite");
    this.pgEnv = containerEnv(resource(this.declared, "postgres-server"));
    this.work = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-backups-"));
    this.volume = path.join(this.work, "volume");
    this.secretsDir = path.join(this.work, "secrets");
    fs.mkdirSync(this.volume);
    this.writeUploads(this.schedule, this.secretsDir);
    this.writeUploads(this.offsite, this.secretsDir);
    await this.newServer();
  }

  async tearDown(): Promise<void> {
    for (const p of [...this.running]) await p.stop("SIGKILL", 2000);
    await this.server?.destroy();
    await this.sftp?.destroy();
    this.userland?.destroy();
    if (this.work) fs.rmSync(this.work, { recursive: true, force: true });
  }

  /** A fresh, empty server from the declared env (the old one, if any, destroyed with its files). */
  async newServer(): Promise<void> {
    await this.server?.destroy();
    this.port = await freePort();
    this.server = await startPostgres(this.pgEnv, this.port);
  }

  /** The dev stack with off-host copies to the sftp server: the repository, password and key as secure keys. */
  private stackFile(): string {
    const dev = fs.readFileSync(path.join(PROJECT_ROOT, "Pulumi.dev.yaml"), "utf8");
    return (
      dev +
      [
        "  appstack:backup:",
        "    offsite:",
        "      sshKeySecret: resticSshKey",
        `      knownHosts: [${JSON.stringify(this.sftp.knownHostsLine)}]`,
        ...["resticRepository", "resticPassword", "resticSshKey"].flatMap((k) => [`  appstack:${k}:`, `    secure: ${REPOSITORY_PLACEHOLDER}`]),
        "",
      ].join("\n")
    );
  }

  /** The secret files the provider would upload, written where SECRETS_DIR points on the host. */
  private writeUploads(r: DeclaredResource, dir: string): void {
    for (const upload of (r.inputs.uploads as { file: string; content: string; permissions?: string }[]) ?? []) {
      if (!upload.file.startsWith(`${SECRETS_DIR}/`)) throw new Error(`${r.name} uploads ${upload.file} outside ${SECRETS_DIR}`);
      const file = path.join(dir, upload.file.slice(SECRETS_DIR.length + 1));
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, upload.content, { mode: Number.parseInt(upload.permissions ?? "0644", 8) });
    }
  }

  /** `sh` or `/bin/sh` as the first word is the image's busybox sh. */
  private busyboxSh(argv: string[]): string[] {
    return argv.map((a, i) => (i === 0 && (a === "sh" || a === "/bin/sh") ? path.join(this.userland.dir, "sh") : a));
  }

  /** Starts a declared backup container's process (entrypoint + command, its env) on the host. */
  start(r: DeclaredResource, over: Record<string, string> = {}): ServiceProcess {
    const argv = this.busyboxSh([...((r.inputs.entrypoints as string[] | undefined) ?? []), ...(r.inputs.command as string[])]);
    const env = {
      ...containerEnv(r),
      PGHOST: "127.0.0.1",
      PGPORT: String(this.port),
      BACKUP_DIR: this.volume,
      SECRETS_DIR: this.secretsDir,
      TMPDIR: this.work,
      HOME: this.work,
      PATH: this.userland.path,
      ...over,
    };
    const p = startProgram(argv, env);
    this.running.push(p);
    return p;
  }

  async stop(p: ServiceProcess): Promise<number | null> {
    const code = await p.stop("SIGTERM", 5000);
    this.running.splice(this.running.indexOf(p), 1);
    return code;
  }

  async waitForOutput(p: ServiceProcess, pattern: RegExp, what: string, timeoutMs = 60_000): Promise<void> {
    await waitUntil(`${what} (output so far: ${p.output().slice(-600)})`, () => {
      if (p.child.exitCode !== null) throw new Error(`exited ${p.child.exitCode} before ${what}:\n${p.output()}`);
      return pattern.test(p.output());
    }, timeoutMs);
  }

  /** A declared health check, run as Docker runs it in the container (busybox sh), against a volume on the host. */
  health(r: DeclaredResource, volumeDir = this.volume): Promise<RunResult> {
    const tests = (r.inputs.healthcheck as { tests: string[] }).tests;
    const script = tests[3];
    if (tests[0] !== "CMD" || script.split("/backups").length !== 2) throw new Error(`${r.name}: expected a CMD check naming /backups once: ${JSON.stringify(tests)}`);
    return run(path.join(this.userland.dir, "sh"), ["-c", script.replace("/backups", volumeDir)], { env: { PATH: this.userland.path }, timeoutMs: 10_000 });
  }

  /**
   * Runs what a restore's `docker run` runs inside its container: the env it
   * passes (-e NAME=value, or -e NAME from `hostEnv`), the entrypoint and
   * what follows the image, with `env` and `rewrite` as the host adaptations.
   */
  runInContainer(args: string[], image: string, opts: { env?: Record<string, string>; hostEnv?: Record<string, string>; input?: string; rewrite?: (a: string) => string } = {}) {
    const at = args.indexOf(image);
    if (at <= 0) throw new Error(`${image} is not in ${args.join(" ")}`);
    const env: Record<string, string> = {};
    let entrypoint: string | undefined;
    for (let i = 0; i < at; i++) {
      if (args[i] === "-e") {
        const [k, ...v] = args[++i].split("=");
        env[k] = v.length ? v.join("=") : (opts.hostEnv?.[k] ?? "");
      } else if (args[i] === "--entrypoint") entrypoint = args[++i];
    }
    const argv = this.busyboxSh([...(entrypoint ? [entrypoint] : []), ...args.slice(at + 1)]);
    const rewrite = opts.rewrite ?? ((a: string) => a);
    return run(argv[0], argv.slice(1).map(rewrite), {
      env: { ...env, TMPDIR: this.work, HOME: this.work, PATH: this.userland.path, ...opts.env },
      input: opts.input,
      timeoutMs: 600_000,
    });
  }

  async query(sql: string, database = this.pgEnv.POSTGRES_DB): Promise<Record<string, unknown>[]> {
    const client = new pg.Client({ host: "127.0.0.1", port: this.port, user: this.pgEnv.POSTGRES_USER, password: this.pgEnv.POSTGRES_PASSWORD, database });
    await client.connect();
    try {
      return (await client.query(sql)).rows;
    } finally {
      await client.end();
    }
  }

  stateFile(name: string, dir = this.volume): string {
    return path.join(dir, ".appstack", name);
  }

  scheduledDumps(dir = this.volume): string[] {
    return fs.existsSync(path.join(dir, "scheduled")) ? fs.readdirSync(path.join(dir, "scheduled")).sort() : [];
  }

  /** The restore's secrets on stdin, as `npm run restore` sends them, from the values the stack's config holds. */
  stdin(values = this.secrets): string {
    return offsiteStdin(this.target, values);
  }

  /** The stack's snapshots, listed as `npm run restore -- --offsite` lists them. */
  async snapshots(values = this.secrets) {
    const r = await this.runInContainer(offsiteCommands(this.target).snapshots, this.target.resticImage, { env: { SECRETS_DIR: path.join(this.work, "fetch-secrets") }, input: this.stdin(values) });
    return { r, list: r.code === 0 ? parseSnapshots(r.stdout) : [] };
  }

  /** Fetches a snapshot as the restore does, into a scratch directory standing for its scratch volume; the dump's path. */
  async fetch(snapshot: string, scratch: string): Promise<string> {
    fs.mkdirSync(scratch, { recursive: true });
    const r = await this.runInContainer(offsiteCommands(this.target).fetch(snapshot, "scratch"), this.target.resticImage, {
      env: { SECRETS_DIR: path.join(this.work, "fetch-secrets"), RESTORE_DIR: scratch },
      input: this.stdin(),
    });
    if (r.code !== 0) throw new Error(`fetching ${snapshot} failed (${r.code}): ${r.stderr}`);
    return r.stdout.trim();
  }

  /** The restore's pg_restore of a fetched dump into the server, host and port adapted. */
  pgRestore(file: string): Promise<RunResult> {
    return this.runInContainer(offsiteCommands(this.target).restore("scratch", file), this.target.image, {
      hostEnv: { PGPASSWORD: this.pgEnv.POSTGRES_PASSWORD },
      rewrite: (a) => (a === this.target.host ? "127.0.0.1" : a === String(this.target.port) ? String(this.port) : a),
    });
  }

  /** The drill's database side on a fetched dump, host and port adapted. */
  drill(file: string, database: string): Promise<RunResult> {
    return this.runInContainer(offsiteCommands(this.target).drill("scratch", file, database), this.target.image, {
      hostEnv: { PGPASSWORD: this.pgEnv.POSTGRES_PASSWORD },
      env: { PGHOST: "127.0.0.1", PGPORT: String(this.port) },
    });
  }
}
