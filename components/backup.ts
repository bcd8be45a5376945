import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { HEALTH_INTERVAL_SECONDS, imageVersion, intervalSeconds, type BackupConfig, type OffsiteConfig } from "../config";
import { BACKUP_DIR, backupContainerNames, releaseSlug } from "./backup-names";
import { OFFSITE_SCRIPT, offsiteHealthScript, offsiteHost, SCHEDULE_SCRIPT, scheduleHealthScript, SECRET_FILES, SECRETS_DIR } from "./backup-scripts";
import { applyTransform, hardening, LOG_ROTATION, RESTART_POLICY, secondsString, serviceLabels, type Transform } from "./container-defaults";
import { toDockerEnvs } from "./env";
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

/** How often the off-host shipper looks for a new dump. */
export const SHIP_POLL_SECONDS = 30;

/** After a failed open, prune or check, the shipper tries again this much later. */
export const OFFSITE_RETRY_SECONDS = 300;

/** Docker's health probe of the backup containers: a file's age, as cheap as a probe gets, at every service's interval. */
const BACKUP_HEALTH = { interval: secondsString(HEALTH_INTERVAL_SECONDS), timeout: "5s", retries: 3 } as const;

/** A failed scheduled dump is tried again after a tenth of the schedule, between 30 s and 5 min. */
export const retrySeconds = (scheduleSeconds: number) => Math.min(300, Math.max(30, Math.floor(scheduleSeconds / 10)));

export interface PredeployBackupArgs {
  /** The release being deployed: the dump's name starts with `<stack>_<release>_`. */
  release: string;
  /**
   * Values whose change means this deploy must be backed up first: the API
   * image reference, the migrations command. A change to any of them (or to
   * the release) replaces the job container, so the dump runs again; a deploy
   * that changes neither re-runs nothing.
   */
  triggers: Record<string, pulumi.Input<string>>;
  /**
   * Dumps kept in the volume; older ones are deleted after each new dump.
   * @default 10
   */
  keep?: number;
  /** How long the dump may run before the deploy gives up. @default 1800 */
  timeoutSeconds?: number;
  /** Memory limit of the dump container in MiB. @default 256 */
  memoryMb?: number;
}

/** The off-host copy: its settings and the secrets they name, each a secret Output. */
export interface OffsiteBackupArgs {
  config: OffsiteConfig;
  repository: pulumi.Output<string>;
  password: pulumi.Output<string>;
  /** Backend credentials by env name (`backup.offsite.secretEnv`). */
  env: Record<string, pulumi.Output<string>>;
  /** sftp: the private key. */
  sshKey?: pulumi.Output<string>;
}

export interface PostgresBackupArgs {
  stack: string;
  /** The pre-deploy dump (a stack with an API); without it the component declares no job. */
  predeploy?: PredeployBackupArgs;
  /** The scheduled dumps: `backup` from the stack's config, defaults applied. */
  schedule: BackupConfig;
  /** The off-host copies (`backup.offsite`). */
  offsite?: OffsiteBackupArgs;
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
  /** The server must be healthy before any dump starts. */
  dependsOn: pulumi.Input<pulumi.Resource>[];
  /** Swarm mode: the password as a file in the job's container (`PGPASSWORD_FILE`), not in its env. */
  passwordAsFile?: boolean;
  transform?: {
    container?: Transform<docker.ContainerArgs>;
    schedule?: Transform<docker.ContainerArgs>;
    offsite?: Transform<docker.ContainerArgs>;
    volume?: Transform<docker.VolumeArgs>;
  };
}

/** What `status` and the smoke check read about a stack's backups (the `backup` stack output). */
export interface BackupStatusOutput {
  /** `backup.schedule`, e.g. `24h`. */
  schedule: string;
  /** Twice the schedule: a backup older than this is overdue. */
  maxAgeSeconds: number;
  /** The Docker volume that holds the dumps and their timestamps. */
  volume: pulumi.Output<string>;
  /** The scheduled-dump container's name. */
  scheduleContainer: string;
  /** The off-host shipper's name; absent without `backup.offsite`. */
  offsiteContainer?: string;
}

/**
 * The database's backups (Postgres in container mode), all in one volume:
 *
 * - the pre-deploy dump, a one-shot job that runs before migrations (with an
 *   API): a failed dump rejects `completed`, so migrations and the API never
 *   start, the way a failed migration stops the deploy;
 * - scheduled dumps, by a long-running, health-checked container from the
 *   server's image, every `backup.schedule`;
 * - with `backup.offsite`, a restic container that ships every dump to an
 *   encrypted repository off the host, applies the retention and checks it.
 *
 * Restore with `npm run restore` (docs/backups.md).
 */
export class PostgresBackup extends pulumi.ComponentResource {
  public readonly volume: docker.Volume;
  public readonly job?: Job;
  /** The pre-deploy job's container once the dump succeeded; put it in the migrations' `dependsOn`. */
  public readonly completed?: pulumi.Output<docker.Container>;
  public readonly schedule: docker.Container;
  public readonly offsite?: docker.Container;
  public readonly status: BackupStatusOutput;

  constructor(name: string, args: PostgresBackupArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("appstack:components:PostgresBackup", name, {}, opts);
    // Named like a data store's volume (backupVolumeName), and protected the same way.
    this.volume = createDataVolume(this, name, args.stack, args.protect, args.transform?.volume);
    if (args.predeploy) {
      this.job = this.createJob(name, args, args.predeploy);
      this.completed = this.job.completed;
    }
    const scheduleSeconds = intervalSeconds(args.schedule.schedule);
    const maxAgeSeconds = 2 * scheduleSeconds;
    const names = backupContainerNames(args.stack);
    this.schedule = this.createSchedule(name, args, names.schedule, scheduleSeconds, maxAgeSeconds);
    if (args.offsite) this.offsite = this.createOffsite(name, args, args.offsite, names.offsite, maxAgeSeconds);
    this.status = {
      schedule: args.schedule.schedule,
      maxAgeSeconds,
      volume: this.volume.name,
      scheduleContainer: names.schedule,
      ...(this.offsite ? { offsiteContainer: names.offsite } : {}),
    };
    this.registerOutputs({});
  }

  private createJob(name: string, args: PostgresBackupArgs, predeploy: PredeployBackupArgs): Job {
    const triggers = Object.fromEntries(Object.entries(predeploy.triggers).map(([key, value]) => [`APPSTACK_TRIGGER_${key}`, value]));
    return new Job(
      `${name}-dump`,
      {
        stack: args.stack,
        service: "backup",
        description: "The pre-deploy database backup",
        image: args.image,
        imageReference: args.imageReference,
        version: predeploy.release,
        command: ["sh", "-c", args.passwordAsFile ? BACKUP_SCRIPT_PASSWORD_FILE : BACKUP_SCRIPT],
        env: {
          plain: {
            ...this.serverEnv(args),
            BACKUP_DIR,
            BACKUP_PREFIX: `${args.stack}_${releaseSlug(predeploy.release)}`,
            BACKUP_KEEP: String(predeploy.keep ?? DEFAULT_BACKUP_KEEP),
            ...triggers,
          },
          secret: { PGPASSWORD: args.password },
        },
        network: args.network,
        memoryMb: predeploy.memoryMb ?? 256,
        cpus: "1",
        timeoutSeconds: predeploy.timeoutSeconds ?? 1800,
        volumes: [{ volumeName: this.volume.name, containerPath: BACKUP_DIR }],
        secretsAsFiles: args.passwordAsFile,
        dependsOn: args.dependsOn,
        transform: { container: args.transform?.container },
      },
      { parent: this },
    );
  }

  /** libpq's settings for the stack's server: every dump reads them from its environment. */
  private serverEnv(args: PostgresBackupArgs): Record<string, string> {
    return { PGHOST: args.host, PGPORT: String(args.port), PGUSER: args.user, PGDATABASE: args.database };
  }

  /** The scheduled dumps: the password as a mode-0400 file, so `docker inspect` of this container shows no secret. */
  private createSchedule(name: string, args: PostgresBackupArgs, containerName: string, scheduleSeconds: number, maxAgeSeconds: number): docker.Container {
    const cfg = args.schedule;
    const containerArgs: docker.ContainerArgs = {
      name: containerName,
      image: args.image,
      command: ["sh", "-c", SCHEDULE_SCRIPT],
      // No secret here: the password is a file (uploads).
      envs: toDockerEnvs({
        plain: {
          ...this.serverEnv(args),
          BACKUP_DIR,
          BACKUP_PREFIX: `${args.stack}_scheduled`,
          BACKUP_KEEP: String(cfg.keep),
          BACKUP_INTERVAL_SECONDS: String(scheduleSeconds),
          BACKUP_RETRY_SECONDS: String(retrySeconds(scheduleSeconds)),
          SECRETS_DIR,
        },
        secret: {},
      }),
      uploads: [secretFile(SECRET_FILES.pgPassword, args.password)],
      volumes: [{ volumeName: this.volume.name, containerPath: BACKUP_DIR }],
      networksAdvanced: [{ name: args.network }],
      ...backupService(args, {
        service: "backup-schedule",
        imageReference: args.imageReference,
        healthTest: ["CMD", "sh", "-c", scheduleHealthScript(BACKUP_DIR, maxAgeSeconds)],
        memoryMb: cfg.memoryMb,
        cpus: cfg.cpus,
      }),
    };
    return new docker.Container(`${name}-schedule`, applyTransform(containerArgs, args.transform?.schedule), {
      parent: this,
      // Needs the server healthy; waits for nothing else.
      dependsOn: args.dependsOn,
      // Its name is fixed, and two schedulers on one volume would dump twice: the old one goes first.
      deleteBeforeReplace: true,
      additionalSecretOutputs: ["uploads"],
    });
  }

  /** The restic shipper: repository, password, backend credentials and ssh key as mode-0400 files, none in its env. */
  private createOffsite(name: string, args: PostgresBackupArgs, offsite: OffsiteBackupArgs, containerName: string, maxAgeSeconds: number): docker.Container {
    const cfg = offsite.config;
    const image = new docker.RemoteImage(`${name}-offsite-image`, { name: cfg.image, keepLocally: true }, { parent: this });
    const uploads: docker.types.input.ContainerUpload[] = [
      secretFile(SECRET_FILES.repository, offsite.repository),
      secretFile(SECRET_FILES.password, offsite.password),
      ...Object.entries(offsite.env).map(([env, value]) => secretFile(SECRET_FILES.env(env), value)),
      ...(offsite.sshKey ? [secretFile(SECRET_FILES.sshKey, offsite.sshKey.apply((k) => (k.endsWith("\n") ? k : `${k}\n`)))] : []),
      ...(cfg.knownHosts ? [{ file: `${SECRETS_DIR}/${SECRET_FILES.knownHosts}`, content: `${cfg.knownHosts.join("\n")}\n`, permissions: "0444" }] : []),
    ];
    const containerArgs: docker.ContainerArgs = {
      name: containerName,
      image: image.imageId,
      // The image's entrypoint is restic itself; the shipper is a shell loop around it.
      entrypoints: ["/bin/sh", "-c"],
      command: [OFFSITE_SCRIPT],
      // No secret here: the repository, its password and the backend's credentials are files (uploads).
      envs: toDockerEnvs({
        plain: {
          ...cfg.env,
          BACKUP_DIR,
          SECRETS_DIR,
          OFFSITE_HOST: offsiteHost(args.stack),
          KEEP_DAILY: String(cfg.keepDaily),
          KEEP_WEEKLY: String(cfg.keepWeekly),
          KEEP_MONTHLY: String(cfg.keepMonthly),
          PRUNE_INTERVAL_SECONDS: String(intervalSeconds(cfg.pruneSchedule)),
          CHECK_INTERVAL_SECONDS: String(intervalSeconds(cfg.checkSchedule)),
          CHECK_READ_DATA_PERCENT: String(cfg.checkReadDataPercent),
          SHIP_POLL_SECONDS: String(SHIP_POLL_SECONDS),
          RETRY_SECONDS: String(OFFSITE_RETRY_SECONDS),
        },
        secret: {},
      }),
      uploads,
      volumes: [{ volumeName: this.volume.name, containerPath: BACKUP_DIR }],
      ...backupService(args, {
        service: "backup-offsite",
        imageReference: cfg.image,
        healthTest: ["CMD", "/bin/sh", "-c", offsiteHealthScript(BACKUP_DIR, maxAgeSeconds)],
        memoryMb: cfg.memoryMb,
        cpus: cfg.cpus,
      }),
    };
    return new docker.Container(`${name}-offsite`, applyTransform(containerArgs, args.transform?.offsite), {
      parent: this,
      // After the scheduler is healthy, so a dump is there: the first round ships it at once and the shipper
      // turns healthy at its first probe, instead of waiting a poll for the dump.
      dependsOn: [this.schedule],
      deleteBeforeReplace: true,
      additionalSecretOutputs: ["uploads"],
    });
  }
}

/**
 * What both backup services share: a health check that `pulumi up` waits on
 * (the first dump or copy of a new container may take as long as it takes:
 * until `backup.healthTimeoutSeconds`, failed probes do not count), a restart
 * policy, limits, rotated logs and the labels.
 */
function backupService(
  args: PostgresBackupArgs,
  o: { service: string; imageReference: string; healthTest: string[]; memoryMb: number; cpus: string },
): Partial<docker.ContainerArgs> {
  const timeout = args.schedule.healthTimeoutSeconds;
  return {
    // Root (the volume and the uploaded files are root's) with every capability dropped; the root filesystem
    // stays writable because the provider uploads the secret files through it (hardening's writableRoot).
    ...hardening({ stack: args.stack, service: o.service, writable: [], writableRoot: true }),
    healthcheck: { tests: o.healthTest, ...BACKUP_HEALTH, startPeriod: `${timeout}s` },
    wait: true,
    waitTimeout: timeout,
    restart: RESTART_POLICY,
    memory: o.memoryMb,
    cpus: o.cpus,
    // A dump or a copy cut short is never taken for a backup; 30 s lets a small one finish.
    stopTimeout: 30,
    ...LOG_ROTATION,
    labels: serviceLabels({ stack: args.stack, service: o.service, version: imageVersion(o.imageReference), role: "service", image: o.imageReference }),
  };
}

/** A secret as a root-only file in SECRETS_DIR: never in argv, the plan, or `docker inspect`. */
function secretFile(file: string, value: pulumi.Output<string>): docker.types.input.ContainerUpload {
  return { file: `${SECRETS_DIR}/${file}`, content: pulumi.secret(value), permissions: "0400" };
}
