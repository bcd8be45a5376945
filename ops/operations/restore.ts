import { spawn } from "node:child_process";
import { BACKUP_DIR, BACKUP_NAME, BACKUP_SUFFIX, backupVolumeName } from "../../components/backup-names";
import { SCHEDULED_DIR, STATE_DIR, STATE_FILES } from "../../components/backup-scripts";
import { backupContainerNames } from "../../components/backup-names";
import { appConfigSchema, postgresSchema } from "../../config/schema";
import { overlayNetworkName } from "../../config/swarm";
import { step } from "./automation";
import type { OpsContext } from "./context";
import { EXIT, UserError } from "../shared/errors";
import { readProject, readStackConfig, resolveStackFile } from "../offline/stack-files";
import { stackEnv } from "./stack-env";

/** The docker CLI, against the stack's Docker host. Secrets travel in `env` or on stdin (`input`), never in `args`. */
export interface DockerCli {
  run(args: string[], env: Record<string, string>, input?: string): Promise<{ code: number; stdout: string; stderr: string }>;
}

export const localDocker: DockerCli = {
  run(args, env, input) {
    return new Promise((resolve, reject) => {
      const child = spawn("docker", args, { env: { ...process.env, ...env }, stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
      if (input !== undefined) child.stdin!.end(input);
      let stdout = "";
      let stderr = "";
      child.stdout!.on("data", (d) => (stdout += d));
      child.stderr!.on("data", (d) => (stderr += d));
      child.on("error", (err: NodeJS.ErrnoException) =>
        reject(
          err.code === "ENOENT"
            ? new UserError("The docker CLI is not on PATH; restore runs pg_restore in a container on the stack's Docker host. Install Docker's CLI.", EXIT.prerequisite)
            : err,
        ),
      );
      child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  },
};

/** Where a stack's Postgres lives, from its stack file. */
export interface RestoreTarget {
  stack: string;
  /** `swarm`: the API and the worker are services, scaled to 0 and back instead of stopped and started. @default host */
  mode?: "host" | "swarm";
  dockerHost: string;
  sshOpts?: string[];
  /** A tcp:// host with TLS: the docker CLI takes the material from DOCKER_TLS_VERIFY and DOCKER_CERT_PATH. */
  tls?: boolean;
  image: string;
  network: string;
  volume: string;
  host: string;
  port: number;
  user: string;
  database: string;
}

/** The labels of every container a restore runs, so `docker ps` shows whose it is. */
export const restoreRun = (stack: string) => [
  "run", "--rm", "--label", "appstack.project=appstack", "--label", `appstack.stack=${stack}`, "--label", "appstack.service=restore", "--label", "appstack.role=job",
];

/** Finds the stack's running API or worker containers (swarm mode: services) by their labels. */
function listApp(t: RestoreTarget, service: string): string[] {
  return [
    ...(t.mode === "swarm" ? ["service", "ls"] : ["ps"]), "-q",
    "--filter", "label=appstack.project=appstack",
    "--filter", `label=appstack.stack=${t.stack}`,
    "--filter", `label=appstack.service=${service}`,
    "--filter", "label=appstack.role=service",
  ];
}

/**
 * pg_restore of `file` from a volume mounted read-only at `at`, in one
 * transaction: the database is either the dump's or unchanged. PGPASSWORD
 * comes from the environment (-e NAME without a value).
 */
export function pgRestoreArgs(t: RestoreTarget, volume: string, at: string, file: string): string[] {
  return [
    ...restoreRun(t.stack), "--network", t.network, "-v", `${volume}:${at}:ro`, "-e", "PGPASSWORD", t.image,
    "pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error",
    "--host", t.host, "--port", String(t.port), "--username", t.user, "--dbname", t.database,
    file,
  ];
}

/** Swarm mode: each service's ID and replicas, so the restore can scale it back to what it was. */
const serviceReplicas = (ids: string[]) => ["service", "inspect", "--format", "{{.ID}} {{.Spec.Mode.Replicated.Replicas}}", ...ids];

/** Stops the API and worker: containers, or (swarm mode, `ids` as `<service>=<replicas>`) services scaled to 0 and waited on until their tasks are gone. */
const stopApp = (t: RestoreTarget, ids: string[]) =>
  t.mode === "swarm" ? ["service", "scale", "--detach=false", ...ids.map((id) => `${id.split("=")[0]}=0`)] : ["stop", ...ids];
/** Starts them again: swarm mode scales each service back to its replicas. */
const startApp = (t: RestoreTarget, ids: string[]) => (t.mode === "swarm" ? ["service", "scale", "--detach=false", ...ids] : ["start", ...ids]);

/** The docker invocations of one restore, in order. Pure, so the exact argv is tested. */
export function restoreCommands(t: RestoreTarget, backup: string) {
  return {
    /**
     * Prints "<bytes> <mtime epoch>" of the dump, or MISSING and the volume's dumps (pre-deploy and scheduled),
     * newest first. The name is an argument, never shell text.
     */
    inspect: [
      ...restoreRun(t.stack), "-v", `${t.volume}:${BACKUP_DIR}:ro`, "--entrypoint", "sh", t.image,
      "-c", `cd ${BACKUP_DIR} && if [ -f "$1" ]; then stat -c '%s %Y' "$1"; else echo MISSING; ls -1t -- *.dump ${SCHEDULED_DIR}/*.dump 2>/dev/null; fi`, "sh", backup,
    ],
    /** API and worker containers (swarm mode: services): stopped during the restore, started after, so nothing writes half-way. */
    listApi: listApp(t, "api"),
    listWorker: listApp(t, "worker"),
    replicas: serviceReplicas,
    stop: (ids: string[]) => stopApp(t, ids),
    start: (ids: string[]) => startApp(t, ids),
    restore: pgRestoreArgs(t, t.volume, BACKUP_DIR, `${BACKUP_DIR}/${backup}`),
  };
}

/** The docker CLI on the stack's Docker host; a failed call is a UserError with docker's own message. */
export function dockerOn(docker: DockerCli, target: RestoreTarget) {
  return async (args: string[], extraEnv: Record<string, string> = {}, input?: string): Promise<string> => {
    const r = await docker.run(args, { DOCKER_HOST: target.dockerHost, ...extraEnv }, input);
    if (r.code !== 0) throw new UserError(`docker ${args[0]} on ${target.dockerHost} failed (exit ${r.code}):\n${r.stderr.trim()}`, EXIT.prerequisite);
    return r.stdout;
  };
}

/**
 * The stack's API and worker containers that are running now; swarm mode:
 * its API and worker services, each as `<id>=<replicas>`.
 */
export async function runningApp(docker$: ReturnType<typeof dockerOn>, t: RestoreTarget): Promise<string[]> {
  const ids = async (args: string[]) => (await docker$(args)).split("\n").map((s) => s.trim()).filter(Boolean);
  const app = [...(await ids(listApp(t, "api"))), ...(await ids(listApp(t, "worker")))];
  if (t.mode !== "swarm" || app.length === 0) return app;
  return (await ids(serviceReplicas(app))).map((line) => line.replace(" ", "="));
}

/** What a restore tells the user it does to the API and worker. */
export function appStopLine(t: RestoreTarget, app: string[]): string {
  return t.mode === "swarm"
    ? `  Scales ${app.length} API/worker service(s) to 0 during the restore and back to their replicas after (${app.join(", ")}).`
    : `  Stops ${app.length} API/worker container(s) during the restore and starts them after.`;
}

/** Runs `restore` with the API and worker stopped (`runningApp`), and starts them again however it ends. */
export async function withAppStopped<T>(docker$: ReturnType<typeof dockerOn>, t: RestoreTarget, app: string[], restore: () => Promise<T>): Promise<T> {
  if (app.length) await docker$(stopApp(t, app));
  try {
    return await restore();
  } finally {
    if (app.length) await docker$(startApp(t, app));
  }
}

/**
 * After a restore, the newest dump no longer holds what the database does:
 * the scheduled-dump container forgets its last dump and restarts, so it dumps
 * (and the shipper copies) the restored data now, not a schedule later. A
 * stack without that container (an older deploy) is told how instead.
 */
export async function dumpRestoredNow(docker: DockerCli, t: RestoreTarget, log: (line: string) => void): Promise<void> {
  const container = backupContainerNames(t.stack).schedule;
  const env = { DOCKER_HOST: t.dockerHost };
  const forget = await docker.run(["exec", container, "rm", "-f", `${BACKUP_DIR}/${STATE_DIR}/${STATE_FILES.lastDump}`], env);
  const restart = forget.code === 0 ? await docker.run(["restart", container], env) : forget;
  if (restart.code === 0) {
    log(`The scheduled dump runs again now (${container} restarted), so the restored data is backed up without waiting for the schedule.`);
  } else {
    log(`note: could not restart ${container} (${restart.stderr.trim().split("\n")[0]}); the restored data is dumped at the next scheduled time.`);
  }
}

/** A stack file's settings under the project's namespace, as JSON values. */
export function stackSettings(root: string, stack: string): (key: string) => unknown {
  const project = readProject(root).name;
  const { file } = resolveStackFile(root, { stack });
  const sc = readStackConfig(file, stack, project);
  return (key: string) => {
    const v = sc.config[`${project}:${key}`];
    if (v === undefined) return undefined;
    try {
      return JSON.parse(v);
    } catch {
      return v;
    }
  };
}

export function restoreTarget(root: string, stack: string): RestoreTarget {
  const raw = stackSettings(root, stack);
  const docker = appConfigSchema.shape.docker.safeParse(raw("docker"));
  const pg = postgresSchema.safeParse(raw("postgres"));
  if (!docker.success || !pg.success) {
    throw new UserError(`The docker or postgres settings of stack "${stack}" do not validate; run: npm run validate -- --stack ${stack}`, EXIT.invalidConfig);
  }
  if (pg.data.mode !== "container") {
    throw new UserError(
      `Stack "${stack}" uses an external Postgres (postgres.mode = external): appstack neither dumps nor restores it. ` +
        `Restore it with your provider's point-in-time recovery.`,
      EXIT.usage,
    );
  }
  const swarm = docker.data.mode === "swarm";
  return {
    stack,
    ...(swarm ? { mode: "swarm" as const } : {}),
    dockerHost: docker.data.host,
    sshOpts: docker.data.sshOpts,
    tls: docker.data.tls === true,
    image: pg.data.image,
    // Swarm mode: the attachable overlay, where the restore container (on the manager) reaches the Postgres service.
    network: swarm ? overlayNetworkName(stack) : `appstack-${stack}`,
    volume: backupVolumeName(stack),
    host: "postgres",
    port: 5432,
    user: pg.data.user,
    database: pg.data.database,
  };
}

/** The database password, from the stack's secret `connections.databaseUrl` output; kept in memory and child env only. */
export function passwordFromOutputs(outputs: Record<string, { value: unknown }>, stack: string): string {
  const url = (outputs.connections?.value as { databaseUrl?: unknown } | undefined)?.databaseUrl;
  if (typeof url !== "string") {
    throw new UserError(`Stack "${stack}" has no connections.databaseUrl output; deploy it first: npm run deploy -- --stack ${stack}`, EXIT.usage);
  }
  return decodeURIComponent(new URL(url).password);
}

export interface RestoreOptions {
  stack: string;
  /** Without one, the command lists the backups in the volume. */
  backup?: string;
  yes: boolean;
}

/**
 * Restores one pre-deploy dump into the stack's Postgres: shows what it will
 * overwrite, and only with --yes stops the API and worker, runs pg_restore
 * (one transaction) and starts them again.
 */
export async function restore(ctx: OpsContext, docker: DockerCli, opts: RestoreOptions): Promise<number> {
  // Without --backup, ask for a name that cannot exist: the inspect step then lists what there is.
  const name = opts.backup === undefined ? "" : opts.backup.endsWith(BACKUP_SUFFIX) ? opts.backup : `${opts.backup}${BACKUP_SUFFIX}`;
  if (opts.backup !== undefined && !BACKUP_NAME.test(name)) {
    throw new UserError(`--backup must be a file name from the backup volume (letters, digits, . _ -; a scheduled dump's starts with scheduled/), got "${opts.backup}".`, EXIT.usage);
  }
  const env = stackEnv(ctx.root, opts.stack);
  const target = restoreTarget(ctx.root, opts.stack);
  const cmds = restoreCommands(target, name);
  const docker$ = dockerOn(docker, target);

  const inspected = (await docker$(cmds.inspect)).trim().split("\n");
  if (inspected[0] === "MISSING") {
    const available = inspected.slice(1).filter(Boolean);
    throw new UserError(
      (opts.backup === undefined ? `Name the backup to restore: --backup <name>. In volume ${target.volume} on ${target.dockerHost}:\n` : `No backup "${name}" in volume ${target.volume} on ${target.dockerHost}.\n`) +
        (available.length ? `Available, newest first:\n${available.slice(0, 20).map((f) => `  ${f}`).join("\n")}` : "The volume holds no backups yet."),
      EXIT.usage,
    );
  }
  const [bytes, mtime] = inspected[0].split(" ").map(Number);
  const app = await runningApp(docker$, target);

  ctx.log(`Restore of stack "${opts.stack}" from backup ${name} (${bytes} bytes, taken ${new Date(mtime * 1000).toISOString()}):`);
  ctx.log(`  OVERWRITES database "${target.database}" on Postgres "${target.host}" (network ${target.network}, Docker host ${target.dockerHost}).`);
  ctx.log(`  Every object in the dump is dropped and recreated; rows written since the backup are lost. One transaction: on error nothing changes.`);
  ctx.log(appStopLine(target, app));
  if (target.sshOpts?.length) ctx.log(`  note: the docker CLI does not take docker.sshOpts; put them in ~/.ssh/config for this host.`);
  if (target.tls) ctx.log(`  note: the docker CLI reads TLS material from its environment: DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH=<a folder with ca.pem, cert.pem, key.pem>.`);
  if (!opts.yes) {
    throw new UserError(`Nothing was changed. To restore, run again with --yes:\n  npm run restore -- --stack ${opts.stack} --backup ${name} --yes`, EXIT.usage);
  }

  await ctx.automation.cliVersion();
  const stack = await ctx.automation.openStack({ stackName: opts.stack, workDir: ctx.root, envVars: env.envVars });
  const outputs = await step(`Reading the outputs of stack "${opts.stack}"`, () => stack.outputs(), EXIT.prerequisite);
  const password = passwordFromOutputs(outputs, opts.stack);
  await withAppStopped(docker$, target, app, () => docker$(cmds.restore, { PGPASSWORD: password }));
  ctx.log(`Restored database "${target.database}" of stack "${opts.stack}" from ${name}.`);
  await dumpRestoredNow(docker, target, ctx.log);
  return EXIT.ok;
}
