import { randomBytes } from "node:crypto";
import { DRILL_SCRIPT, OFFSITE_FETCH_SCRIPT, offsiteHost, ROW_COUNTS_SQL, SECRET_FILES, SECRETS_DIR, stdinSecrets } from "../../components/backup-scripts";
import { backupSchema, backupSettings, type OffsiteConfig } from "../../config/schema";
import { step, type StackHandle } from "./automation";
import { duration } from "./backup-age";
import type { OpsContext } from "./context";
import { EXIT, UserError } from "../shared/errors";
import { appStopLine, dockerOn, dumpRestoredNow, passwordFromOutputs, pgRestoreArgs, restoreRun, restoreTarget, runningApp, stackSettings, withAppStopped, type DockerCli, type RestoreTarget } from "./restore";
import { stackEnv } from "./stack-env";

/**
 * Restores from the off-host restic repository, and the restore drill. Both
 * run on the stack's Docker host through the docker CLI: a restic container
 * (the image the shipper runs) fetches one snapshot into a scratch volume,
 * then a container from the server's image restores it. The repository's
 * secrets come from the stack's secure config (decrypted by the Pulumi CLI)
 * and reach the restic container on its stdin only: not argv, not its
 * environment, so `docker inspect` of it shows none of them.
 */

/** Where the fetch step restores a snapshot, in its container and in the Postgres one. */
export const RESTORE_DIR = "/restore";

/** What the off-host restore and the drill need besides the database's own target. */
export interface OffsiteTarget extends RestoreTarget {
  /** The restic image (`backup.offsite.image`). */
  resticImage: string;
  /** The restic host name of the stack's snapshots. */
  offsiteHost: string;
  offsite: OffsiteConfig;
  /** `backup.drill.checkQuery`. */
  checkQuery: string;
  /** `backup.schedule`. */
  schedule: string;
}

export function offsiteTarget(root: string, stack: string): OffsiteTarget {
  const target = restoreTarget(root, stack);
  const raw = stackSettings(root, stack)("backup");
  const parsed = raw === undefined ? undefined : backupSchema.safeParse(raw);
  if (parsed && !parsed.success) {
    throw new UserError(`The backup settings of stack "${stack}" do not validate; run: npm run validate -- --stack ${stack}`, EXIT.invalidConfig);
  }
  const settings = backupSettings({ backup: parsed?.data });
  if (!settings.offsite) {
    throw new UserError(
      `Stack "${stack}" has no off-host backups (backup.offsite is not set), so there is no repository to restore from.\n` +
        `Restore a dump from the backup volume instead: npm run restore -- --stack ${stack}`,
      EXIT.usage,
    );
  }
  return { ...target, resticImage: settings.offsite.image, offsiteHost: offsiteHost(stack), offsite: settings.offsite, checkQuery: settings.drill.checkQuery, schedule: settings.schedule };
}

/** The docker invocations of an off-host restore and of the drill. Pure, so the exact argv is tested. */
export function offsiteCommands(t: OffsiteTarget) {
  const restic = (volume?: string) => [
    ...restoreRun(t.stack),
    // Secrets arrive on stdin (-i) into a tmpfs: they never touch the host's disk or the container's config.
    "-i", "--tmpfs", `${SECRETS_DIR}:mode=0700`,
    "-e", `SECRETS_DIR=${SECRETS_DIR}`, "-e", `OFFSITE_HOST=${t.offsiteHost}`, "-e", `RESTORE_DIR=${RESTORE_DIR}`,
    ...Object.entries(t.offsite.env).flatMap(([k, v]) => ["-e", `${k}=${v}`]),
    ...(volume ? ["-v", `${volume}:${RESTORE_DIR}`] : []),
    "--entrypoint", "/bin/sh", t.resticImage, "-c", OFFSITE_FETCH_SCRIPT, "sh",
  ];
  return {
    /** The stack's snapshots, as restic's JSON. */
    snapshots: [...restic(), "snapshots"],
    /** Restores one snapshot into the scratch volume and prints the dump's path in it. */
    fetch: (snapshot: string, volume: string) => [...restic(volume), "restore", snapshot],
    createVolume: (volume: string) => [
      "volume", "create", "--label", "appstack.project=appstack", "--label", `appstack.stack=${t.stack}`, "--label", "appstack.service=restore", volume,
    ],
    removeVolume: (volume: string) => ["volume", "rm", "-f", volume],
    /** pg_restore of the fetched dump into the stack's database, as `restore --backup` does. */
    restore: (volume: string, file: string) => pgRestoreArgs(t, volume, RESTORE_DIR, file),
    /** The drill in a throwaway database beside the live one; PGPASSWORD from the environment. */
    drill: (volume: string, file: string, database: string) => [
      ...restoreRun(t.stack), "--network", t.network, "-v", `${volume}:${RESTORE_DIR}:ro`,
      "-e", `PGHOST=${t.host}`, "-e", `PGPORT=${t.port}`, "-e", `PGUSER=${t.user}`, "-e", "PGPASSWORD", "-e", `ROW_COUNTS_SQL=${ROW_COUNTS_SQL}`,
      t.image, "sh", "-c", DRILL_SCRIPT, "sh", file, database, t.checkQuery,
    ],
  };
}

/** The secure keys the restic container needs, by the file name it reads each from. */
export function offsiteSecretKeys(offsite: OffsiteConfig): Record<string, string> {
  return {
    [SECRET_FILES.repository]: offsite.repositorySecret,
    [SECRET_FILES.password]: offsite.passwordSecret,
    ...Object.fromEntries(offsite.secretEnv.map((name) => [SECRET_FILES.env(name), name])),
    ...(offsite.sshKeySecret ? { [SECRET_FILES.sshKey]: offsite.sshKeySecret } : {}),
  };
}

/**
 * What the restic container reads on stdin: the repository's secrets by file
 * name (values by secure key, as the stack's config holds them), and the sftp
 * host keys.
 */
export function offsiteStdin(t: Pick<OffsiteTarget, "stack" | "offsite">, values: Record<string, string>): string {
  const files: Record<string, string> = {};
  for (const [file, key] of Object.entries(offsiteSecretKeys(t.offsite))) {
    const value = values[key];
    if (value === undefined) throw new UserError(`Stack "${t.stack}" has no value for the secure key ${key}; set it: pulumi config set -s ${t.stack} --secret ${key}`, EXIT.invalidConfig);
    files[file] = file === SECRET_FILES.sshKey && !value.endsWith("\n") ? `${value}\n` : value;
  }
  if (t.offsite.knownHosts) files[SECRET_FILES.knownHosts] = `${t.offsite.knownHosts.join("\n")}\n`;
  return stdinSecrets(files);
}

async function repositoryStdin(stack: StackHandle, t: OffsiteTarget): Promise<string> {
  const keys = Object.values(offsiteSecretKeys(t.offsite));
  const values = await step(`Reading the off-host repository's secrets from the config of stack "${t.stack}"`, () => stack.configValues(keys), EXIT.prerequisite);
  return offsiteStdin(t, values);
}

/** One restic snapshot of the stack's dumps. */
export interface Snapshot {
  id: string;
  shortId: string;
  time: Date;
  /** The dump's file name. */
  file: string;
}

/** restic's `snapshots --json`, newest first. */
export function parseSnapshots(json: string): Snapshot[] {
  const list = JSON.parse(json || "[]") as { id: string; short_id?: string; time: string; paths?: string[] }[];
  return (list ?? [])
    .map((s) => ({ id: s.id, shortId: s.short_id ?? s.id.slice(0, 8), time: new Date(s.time), file: (s.paths?.[0] ?? "").split("/").pop() ?? "" }))
    .sort((a, b) => b.time.getTime() - a.time.getTime());
}

/**
 * restic's reason for failing, first line only (never the repository's
 * location, which it prints after): its `Fatal:` line, or with `--json`
 * (restic 0.18 and later) the message of its `exit_error` object.
 */
export function resticReason(stderr: string): string {
  for (const line of stderr.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const j = JSON.parse(line) as { message_type?: string; message?: unknown };
      if (j.message_type === "exit_error" && typeof j.message === "string") return j.message.split("\n")[0].trim();
    } catch {
      // not restic's JSON: read on
    }
  }
  return stderr.split("\n").find((l) => l.startsWith("Fatal:"))?.trim() ?? stderr.trim().split("\n").pop() ?? "";
}

/** A failed restic step, in words: the password, the repository, or restic's own reason. */
function resticFailure(what: string, t: OffsiteTarget, stderr: string): UserError {
  const fatal = resticReason(stderr);
  const hint = /wrong password|no key found/.test(stderr)
    ? ` The repository password is wrong: check the secure key ${t.offsite.passwordSecret} (pulumi config get -s ${t.stack} ${t.offsite.passwordSecret}).`
    : /unable to start the sftp session|Host key verification failed|Permission denied|Connection refused|Could not resolve/.test(stderr)
      ? " The sftp login did not succeed: check that backup.offsite.knownHosts holds the server's host key and that the server accepts the key in the secure key backup.offsite.sshKeySecret names."
      : "";
  return new UserError(`${what} failed: ${fatal}${hint}`, EXIT.backup);
}

/** The fetch of one snapshot: the dump's path in the scratch volume. */
async function fetchSnapshot(docker: DockerCli, t: OffsiteTarget, snapshot: Snapshot, volume: string, stdin: string): Promise<string> {
  const r = await docker.run(offsiteCommands(t).fetch(snapshot.id, volume), { DOCKER_HOST: t.dockerHost }, stdin);
  if (r.code !== 0) throw resticFailure(`Fetching snapshot ${snapshot.shortId} from the off-host repository`, t, r.stderr);
  const files = r.stdout.split("\n").map((l) => l.trim()).filter((l) => l.endsWith(".dump"));
  if (files.length !== 1) throw new UserError(`Snapshot ${snapshot.shortId} holds ${files.length} dumps, expected one: ${files.join(", ")}`, EXIT.backup);
  return files[0];
}

async function snapshotsOf(docker: DockerCli, t: OffsiteTarget, stdin: string): Promise<Snapshot[]> {
  const r = await docker.run(offsiteCommands(t).snapshots, { DOCKER_HOST: t.dockerHost }, stdin);
  if (r.code !== 0) throw resticFailure(`Listing the snapshots of stack "${t.stack}" in the off-host repository`, t, r.stderr);
  return parseSnapshots(r.stdout);
}

const scratchVolume = (stack: string) => `appstack-${stack}-restore-${randomBytes(4).toString("hex")}`;

function snapshotTable(snapshots: Snapshot[], now: number): string {
  return snapshots
    .slice(0, 20)
    .map((s) => `  ${s.shortId}  ${s.time.toISOString()}  ${duration((now - s.time.getTime()) / 1000)} ago  ${s.file}`)
    .join("\n");
}

/** Opens the stack and reads what both commands need: the repository's stdin, the snapshots, the database password. */
async function prepare(ctx: OpsContext, docker: DockerCli, stackName: string) {
  const env = stackEnv(ctx.root, stackName);
  const t = offsiteTarget(ctx.root, stackName);
  await ctx.automation.cliVersion();
  const stack = await ctx.automation.openStack({ stackName, workDir: ctx.root, envVars: env.envVars });
  const stdin = await repositoryStdin(stack, t);
  const snapshots = await snapshotsOf(docker, t, stdin);
  if (snapshots.length === 0) {
    throw new UserError(`The off-host repository holds no snapshot of stack "${stackName}" (restic host ${t.offsiteHost}, tag appstack): nothing was shipped yet.`, EXIT.backup);
  }
  const password = async () => passwordFromOutputs(await step(`Reading the outputs of stack "${stackName}"`, () => stack.outputs(), EXIT.prerequisite), stackName);
  return { t, stdin, snapshots, password };
}

export interface OffsiteRestoreOptions {
  stack: string;
  /** A snapshot ID (or its first 8 characters), or `latest`; without one, the command lists them. */
  snapshot?: string;
  yes: boolean;
}

/**
 * Restores one off-host snapshot into the stack's database: lists the
 * snapshots, shows what it will overwrite, and only with --yes fetches the
 * snapshot into a scratch volume, stops the API and worker, runs pg_restore
 * (one transaction) and starts them again, also when it fails.
 */
export async function restoreOffsite(ctx: OpsContext, docker: DockerCli, opts: OffsiteRestoreOptions): Promise<number> {
  const { t, stdin, snapshots, password } = await prepare(ctx, docker, opts.stack);
  const now = ctx.clock.now();
  if (opts.snapshot === undefined) {
    throw new UserError(`Name the snapshot to restore: --snapshot <id> (or latest). Stack "${opts.stack}" in the off-host repository, newest first:\n${snapshotTable(snapshots, now)}`, EXIT.usage);
  }
  const snapshot = opts.snapshot === "latest" ? snapshots[0] : snapshots.find((s) => s.id.startsWith(opts.snapshot!) && opts.snapshot!.length >= 8);
  if (!snapshot) {
    throw new UserError(`No snapshot "${opts.snapshot}" of stack "${opts.stack}" in the off-host repository. Newest first:\n${snapshotTable(snapshots, now)}`, EXIT.usage);
  }
  const docker$ = dockerOn(docker, t);
  const app = await runningApp(docker$, t);
  ctx.log(`Restore of stack "${opts.stack}" from the off-host snapshot ${snapshot.shortId} (${snapshot.file}, taken ${snapshot.time.toISOString()}):`);
  ctx.log(`  OVERWRITES database "${t.database}" on Postgres "${t.host}" (network ${t.network}, Docker host ${t.dockerHost}).`);
  ctx.log(`  Every object in the dump is dropped and recreated; rows written since the dump are lost. One transaction: on error nothing changes.`);
  ctx.log(appStopLine(t, app));
  if (!opts.yes) {
    throw new UserError(`Nothing was changed. To restore, run again with --yes:\n  npm run restore -- --stack ${opts.stack} --offsite --snapshot ${snapshot.shortId} --yes`, EXIT.usage);
  }
  const pgPassword = await password();
  const cmds = offsiteCommands(t);
  const volume = scratchVolume(opts.stack);
  await docker$(cmds.createVolume(volume));
  try {
    const file = await fetchSnapshot(docker, t, snapshot, volume, stdin);
    await withAppStopped(docker$, t, app, () => docker$(cmds.restore(volume, file), { PGPASSWORD: pgPassword }));
  } finally {
    await docker$(cmds.removeVolume(volume));
  }
  ctx.log(`Restored database "${t.database}" of stack "${opts.stack}" from the off-host snapshot ${snapshot.shortId}.`);
  await dumpRestoredNow(docker, t, ctx.log);
  return EXIT.ok;
}

/** What the drill's database side printed. */
export interface DrillOutput {
  restoreSeconds?: number;
  check: string;
  rows: { table: string; rows: number }[];
  dropped: boolean;
}

export function parseDrillOutput(text: string): DrillOutput {
  const out: DrillOutput = { check: "", rows: [], dropped: false };
  for (const line of text.split("\n")) {
    const [tag, ...rest] = line.split("\t");
    if (tag === "RESTORED") out.restoreSeconds = Number(rest[0]);
    else if (tag === "CHECK") out.check = rest.join("\t");
    else if (tag === "ROWS" && rest.length >= 2) out.rows.push({ table: rest[0], rows: Number(rest[1]) });
    else if (tag === "DROPPED") out.dropped = true;
  }
  return out;
}

/** A drill's figures: what `restore --drill` prints and the benchmark reports. */
export interface DrillReport {
  stack: string;
  snapshot: Snapshot;
  database: string;
  /** When the drill ran (ms since the epoch). */
  at: number;
  fetchSeconds: number;
  restoreSeconds: number;
  checkQuery: string;
  result: DrillOutput;
  /** `backup.schedule`, for the recovery point. */
  schedule: string;
  liveDatabase: string;
}

export function renderDrillReport(r: DrillReport): string {
  const age = (r.at - r.snapshot.time.getTime()) / 1000;
  const total = r.fetchSeconds + r.restoreSeconds;
  const rows = r.result.rows.reduce((n, t) => n + t.rows, 0);
  return [
    `Restore drill of stack "${r.stack}": the newest off-host copy, snapshot ${r.snapshot.shortId} (${r.snapshot.file}, taken ${r.snapshot.time.toISOString()}, ${duration(age)} before the drill).`,
    `  fetched from the repository in ${r.fetchSeconds.toFixed(1)} s; restored into the throwaway database ${r.database} in ${r.restoreSeconds.toFixed(1)} s; ${total.toFixed(1)} s in all.`,
    `  check query: ${r.result.check}   (${r.checkQuery})`,
    `  rows: ${rows} in ${r.result.rows.length} table(s)${r.result.rows.length ? `: ${r.result.rows.map((t) => `${t.table} ${t.rows}`).join(", ")}` : ""}`,
    `  ${r.result.dropped ? "dropped the throwaway database" : "the throwaway database was NOT confirmed dropped"}; the live database "${r.liveDatabase}" was never opened.`,
    `Had the host been lost at the drill: the writes of the last ${duration(age)} lost (at most twice backup.schedule, ${r.schedule}, before status fails), and ${total.toFixed(0)} s to bring the data back once a new host runs the stack.`,
  ].join("\n");
}

/**
 * The restore drill: restores the newest off-host snapshot into a throwaway
 * database beside the live one, runs the check query, counts every table's
 * rows, reports the time taken, and drops it. It never opens the live
 * database and stops nothing.
 */
export async function drill(ctx: OpsContext, docker: DockerCli, opts: { stack: string }): Promise<number> {
  const { t, stdin, snapshots, password } = await prepare(ctx, docker, opts.stack);
  const snapshot = snapshots[0];
  const pgPassword = await password();
  const docker$ = dockerOn(docker, t);
  const cmds = offsiteCommands(t);
  const database = `appstack_drill_${randomBytes(6).toString("hex")}`;
  const volume = scratchVolume(opts.stack);
  const at = ctx.clock.now();
  ctx.log(`Restore drill of stack "${opts.stack}": snapshot ${snapshot.shortId} into the throwaway database ${database}...`);
  let fetchSeconds = 0;
  let restoreSeconds = 0;
  let output: string;
  await docker$(cmds.createVolume(volume));
  try {
    const started = ctx.clock.now();
    const file = await fetchSnapshot(docker, t, snapshot, volume, stdin);
    fetchSeconds = (ctx.clock.now() - started) / 1000;
    const restored = ctx.clock.now();
    const r = await docker.run(cmds.drill(volume, file, database), { DOCKER_HOST: t.dockerHost, PGPASSWORD: pgPassword });
    restoreSeconds = (ctx.clock.now() - restored) / 1000;
    if (r.code !== 0) {
      throw new UserError(`The drill's restore of snapshot ${snapshot.shortId} failed (exit ${r.code}); the throwaway database ${database} is dropped on exit:\n${r.stderr.trim()}`, EXIT.backup);
    }
    output = r.stdout;
  } finally {
    await docker$(cmds.removeVolume(volume));
  }
  const result = parseDrillOutput(output);
  ctx.log(renderDrillReport({ stack: opts.stack, snapshot, database, at, fetchSeconds, restoreSeconds, checkQuery: t.checkQuery, result, schedule: t.schedule, liveDatabase: t.database }));
  return EXIT.ok;
}
