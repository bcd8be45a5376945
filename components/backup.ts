import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { fileEnvName, secretFilePath } from "../config";
import { BACKUP_DIR, releaseSlug } from "./backup-names";
import type { Transform } from "./container-defaults";
import { createDataVolume } from "./data-store";
import { Job } from "./job";

/**
 * The dump job's script. Everything it needs arrives as environment
 * (libpq's PG* variables, PGPASSWORD included), so no secret is ever in argv.
 * The dump is written under a temporary name and renamed, so a dump that
 * failed half-way never looks like a backup; then all but the newest
 * BACKUP_KEEP dumps are pruned.
 */
export const BACKUP_SCRIPT = [
  "set -eu",
  'file="$BACKUP_DIR/${BACKUP_PREFIX}_$(date -u +%Y%m%dT%H%M%SZ).dump"',
  'pg_dump --format=custom --no-password --file="$file.partial"',
  'mv "$file.partial" "$file"',
  'echo "appstack backup: wrote $file ($(wc -c < "$file") bytes)"',
  'ls -1t "$BACKUP_DIR"/*.dump | tail -n +$((BACKUP_KEEP + 1)) | while read -r old; do rm -f -- "$old"; echo "appstack backup: pruned $old"; done',
].join("\n");

/**
 * Swarm mode's dump script: the same, with PGPASSWORD read from the file the
 * job's container gets (`PGPASSWORD_FILE`), so the job's env holds no password.
 */
export const BACKUP_SCRIPT_PASSWORD_FILE = BACKUP_SCRIPT.replace("set -eu\n", 'set -eu\nPGPASSWORD="$(cat "$PGPASSWORD_FILE")"\nexport PGPASSWORD\n');

/** Dumps a backup volume keeps by default. */
export const DEFAULT_BACKUP_KEEP = 10;

export interface PostgresBackupArgs {
  stack: string;
  /** The release being deployed: the dump's name starts with `<stack>_<release>_`. */
  release: string;
  /**
   * Values whose change means this deploy must be backed up first: the API
   * image reference, the migrations command. A change to any of them (or to
   * the release) replaces the job container, so the dump runs again; a deploy
   * that changes neither re-runs nothing.
   */
  triggers: Record<string, pulumi.Input<string>>;
  /** The running server's image (what `docker inspect` calls its image ID): pg_dump matches the server's major version. */
  image: pulumi.Input<string>;
  /** The server's image reference, for the labels. */
  imageReference: string;
  network: pulumi.Input<string>;
  /** The server's name on the stack network. */
  host: string;
  port: number;
  user: string;
  database: string;
  /** The server's password. Secret. */
  password: pulumi.Output<string>;
  /**
   * Protect the backup volume and keep it when the stack is destroyed. Use the
   * data volume's setting: losing the backups with the data defeats them.
   */
  protect: boolean;
  /**
   * Dumps kept in the volume; older ones are deleted after each new dump.
   * @default 10
   */
  keep?: number;
  /** How long the dump may run before the deploy gives up. @default 1800 */
  timeoutSeconds?: number;
  /** Memory limit of the dump container in MiB. @default 256 */
  memoryMb?: number;
  /** The server must be healthy before the dump starts. */
  dependsOn: pulumi.Input<pulumi.Resource>[];
  /** Swarm mode: the password as a file in the job's container (`PGPASSWORD_FILE`), not in its env. */
  passwordAsFile?: boolean;
  transform?: { container?: Transform<docker.ContainerArgs>; volume?: Transform<docker.VolumeArgs> };
}

/**
 * A `pg_dump --format=custom` of the stack's Postgres (container mode) into
 * a backup volume, as a one-shot job that runs before migrations. A failed
 * dump rejects `completed`, so migrations and the API never start: the
 * deploy stops the way it does for a failed migration.
 * Restore one with `npm run restore -- --stack <name> --backup <file>`.
 */
export class PostgresBackup extends pulumi.ComponentResource {
  public readonly volume: docker.Volume;
  public readonly job: Job;
  /** The job's container once the dump succeeded; put it in the migrations' `dependsOn`. */
  public readonly completed: pulumi.Output<docker.Container>;

  constructor(name: string, args: PostgresBackupArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("appstack:components:PostgresBackup", name, {}, opts);
    const keep = args.keep ?? DEFAULT_BACKUP_KEEP;
    // Named like a data store's volume (backupVolumeName), and protected the same way.
    this.volume = createDataVolume(this, name, args.stack, args.protect, args.transform?.volume);
    this.job = this.createJob(name, args, keep);
    this.completed = this.job.completed;
    this.registerOutputs({});
  }

  private createJob(name: string, args: PostgresBackupArgs, keep: number): Job {
    const triggers = Object.entries(args.triggers)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, value]) => pulumi.interpolate`APPSTACK_TRIGGER_${key}=${value}`);
    return new Job(
      `${name}-dump`,
      {
        stack: args.stack,
        service: "backup",
        description: "The pre-deploy database backup",
        image: args.image,
        imageReference: args.imageReference,
        version: args.release,
        command: ["sh", "-c", args.passwordAsFile ? BACKUP_SCRIPT_PASSWORD_FILE : BACKUP_SCRIPT],
        envs: [
          `PGHOST=${args.host}`,
          `PGPORT=${args.port}`,
          `PGUSER=${args.user}`,
          `PGDATABASE=${args.database}`,
          args.passwordAsFile ? `${fileEnvName("PGPASSWORD")}=${secretFilePath("PGPASSWORD")}` : pulumi.secret(pulumi.interpolate`PGPASSWORD=${args.password}`),
          `BACKUP_DIR=${BACKUP_DIR}`,
          `BACKUP_PREFIX=${args.stack}_${releaseSlug(args.release)}`,
          `BACKUP_KEEP=${keep}`,
          ...triggers,
        ],
        network: args.network,
        memoryMb: args.memoryMb ?? 256,
        cpus: "1",
        timeoutSeconds: args.timeoutSeconds ?? 1800,
        volumes: [{ volumeName: this.volume.name, containerPath: BACKUP_DIR }],
        secretFiles: args.passwordAsFile ? [{ file: secretFilePath("PGPASSWORD"), content: pulumi.secret(args.password) }] : undefined,
        dependsOn: args.dependsOn,
        transform: { container: args.transform?.container },
      },
      { parent: this },
    );
  }
}
