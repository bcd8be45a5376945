import { step } from "./automation";
import { backupFromOutputs, renderBackupTable, unreadable, type BackupAge, type BackupOutput } from "./backup-age";
import type { OpsContext } from "./context";
import { EXIT } from "../shared/errors";
import { endpointsFromOutputs, probeAll, renderStatusTable } from "./health";
import { stackEnv } from "./stack-env";

export interface StatusOptions {
  stack: string;
  timeoutMs: number;
  /** How old the stack's newest local and off-host backups are (readBackupAges on its Docker host). */
  backups?(backup: BackupOutput): Promise<BackupAge[]>;
}

/**
 * Probes every health URL the stack's outputs name, once, and prints one row
 * per service; then the age of the newest local and off-host backup. Either
 * a failing service or a backup older than twice its schedule fails it.
 */
export async function status(ctx: OpsContext, opts: StatusOptions): Promise<number> {
  const env = stackEnv(ctx.root, opts.stack);
  await ctx.automation.cliVersion();
  const stack = await ctx.automation.openStack({ stackName: opts.stack, workDir: ctx.root, envVars: env.envVars });
  const outputs = await step(`Reading the outputs of stack "${opts.stack}"`, () => stack.outputs(), EXIT.prerequisite);
  const { endpoints, version } = endpointsFromOutputs(outputs, opts.stack);
  const results = await probeAll(endpoints, opts.timeoutMs);
  ctx.log(renderStatusTable(results, version));
  const failing = results.filter((r) => !r.healthy);
  const stale = await backupCheck(ctx, opts, backupFromOutputs(outputs));
  if (failing.length > 0) ctx.log(`${failing.length} of ${results.length} service(s) unhealthy on stack "${opts.stack}".`);
  if (stale.length > 0) ctx.log(`Backups of stack "${opts.stack}" overdue: ${stale.map((a) => a.kind).join(" and ")} (older than twice backup.schedule, or none).`);
  return failing.length > 0 || stale.length > 0 ? EXIT.unhealthy : EXIT.ok;
}

/** Prints the backups' table and returns the overdue ones; a stack without backups (external Postgres) has none to judge. */
export async function backupCheck(ctx: OpsContext, opts: Pick<StatusOptions, "backups">, backup: BackupOutput | undefined): Promise<BackupAge[]> {
  if (!backup || !opts.backups) return [];
  const ages = await opts.backups(backup).catch((err: unknown) => unreadable(backup, err));
  ctx.log(renderBackupTable(ages, backup.schedule));
  return ages.filter((a) => !a.ok);
}
