import * as path from "node:path";
import { commandErrorText, step } from "./automation";
import type { OpsContext } from "./context";
import { EXIT, UserError } from "../shared/errors";
import { backupFromOutputs, type BackupAge, type BackupOutput } from "./backup-age";
import { endpointsFromOutputs, renderStatusTable, smokeCheck } from "./health";
import { withLockWait } from "./lock-wait";
import { rollback } from "./rollback";
import { stackEnv } from "./stack-env";
import { backupCheck } from "./status";
import { writeStateBackup } from "./state-backup";

export interface SmokeSettings {
  /** Per-request timeout. */
  timeoutMs: number;
  /** How long unhealthy services are retried after the update. */
  budgetMs: number;
  intervalMs: number;
}

export const DEFAULT_SMOKE: SmokeSettings = { timeoutMs: 5000, budgetMs: 60_000, intervalMs: 3000 };

export interface DeployOptions {
  stack: string;
  /** Create the stack in the backend if it does not exist (up:dev). */
  init: boolean;
  /** Use the local file backend whatever PULUMI_BACKEND_URL says (up:dev). */
  localBackend: boolean;
  yes: boolean;
  rollbackOnFailure: boolean;
  lockTimeoutSeconds: number;
  smoke: SmokeSettings;
  /** Refuses a stack whose config does not validate (validateStack from ops/offline/validate.ts). */
  validate(): Promise<string>;
  /** Refuses a Docker host that does not answer, or whose engine is too old (dockerPreflight from ./preflight.ts); the line to print. */
  preflight(): Promise<string>;
  /** After a failed update: why the stack's containers are unhealthy (diagnoseUnhealthy from ./unhealthy.ts), or "". */
  diagnose?(): Promise<string>;
  /** The smoke check's backup ages (readBackupAges on the stack's Docker host). */
  backups?(backup: BackupOutput): Promise<BackupAge[]>;
}

/**
 * validate -> Pulumi CLI (installed if missing) -> Docker preflight -> (preview and confirm, unless --yes) -> state backup -> up,
 * streamed -> smoke check -> with --rollback-on-failure, rollback when the
 * update or the smoke check fails.
 */
export async function deploy(ctx: OpsContext, opts: DeployOptions): Promise<number> {
  ctx.log(await opts.validate());
  const env = stackEnv(ctx.root, opts.stack, { localBackend: opts.localBackend });
  if (env.placeholderKeys.length > 0) {
    throw new UserError(
      `Stack "${opts.stack}" is not deployable yet: ${env.placeholderKeys.join(", ")} still hold the repository's placeholder, which Pulumi cannot decrypt. Set each first:\n` +
        env.placeholderKeys.map((k) => `  pulumi config set -s ${opts.stack} --secret ${k.slice(k.indexOf(":") + 1)}`).join("\n"),
      EXIT.invalidConfig,
    );
  }
  for (const note of env.notes) ctx.log(note);
  // The CLI first (it may have to be installed), then the Docker host; both before any stack is opened or anything changes.
  const cli = await ctx.automation.cliVersion();
  ctx.log(await opts.preflight());
  const stack = await ctx.automation.openStack({ stackName: opts.stack, workDir: ctx.root, create: opts.init, envVars: env.envVars });
  const who = await stack.whoAmI().catch(() => undefined);
  ctx.log(`Deploying stack "${opts.stack}" with Pulumi CLI ${cli}${who ? ` as ${who.user} on ${who.url ?? "the default backend"}` : ""}.`);
  const lock = { stack: opts.stack, timeoutSeconds: opts.lockTimeoutSeconds, log: ctx.log, clock: ctx.clock };

  if (!opts.yes) {
    await step(`The preview of stack "${opts.stack}"`, () => withLockWait(() => stack.preview({ onOutput: ctx.stream }), { ...lock, operation: "preview" }));
    if (!(await ctx.confirm(`Deploy these changes to stack "${opts.stack}"?`))) {
      ctx.log("Deploy cancelled; nothing was changed.");
      return EXIT.ok;
    }
  }

  const state = await step(`Exporting the state of stack "${opts.stack}" (the backup before the update; nothing was deployed)`, () => stack.exportState());
  const backup = await step("Writing the state backup (nothing was deployed)", async () => writeStateBackup(ctx.root, opts.stack, state, new Date(ctx.clock.now())));
  ctx.log(`State before the update: ${path.relative(ctx.root, backup)} (secrets stay encrypted).`);

  let result;
  try {
    result = await withLockWait(() => stack.up({ onOutput: ctx.stream, message: `appstack deploy ${opts.stack}` }), { ...lock, operation: "deploy" });
  } catch (err) {
    if (err instanceof UserError) throw err;
    const why = `The update of stack "${opts.stack}" failed:\n${commandErrorText(err)}${await diagnosis(opts)}`;
    throw await afterFailure(ctx, opts, why, EXIT.updateFailed, "the update failed");
  }
  const version = result.summary.version;
  ctx.log(`Update succeeded: stack "${opts.stack}" is at version ${version}.`);

  let found;
  try {
    found = endpointsFromOutputs(result.outputs, opts.stack);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    ctx.log(`Smoke check skipped: ${err.message.split("\n")[0]}`);
    return EXIT.ok;
  }
  ctx.log(`Smoke check: ${found.endpoints.map((e) => e.healthUrl).join(", ")}`);
  const results = await smokeCheck(found.endpoints, { ...opts.smoke, log: ctx.log, clock: ctx.clock });
  ctx.log(renderStatusTable(results, found.version));
  const failing = results.filter((r) => !r.healthy);
  if (failing.length === 0) {
    const backup = backupFromOutputs(result.outputs);
    const stale = await backupCheck(ctx, opts, backup);
    if (stale.length > 0) {
      // The release is not at fault: rolling it back would not bring a backup back.
      throw new UserError(
        `Deployed stack "${opts.stack}" (version ${version}) and every service is healthy, but its backups are overdue: ` +
          `${stale.map((a) => `${a.kind} (${a.detail})`).join("; ")}. Not rolled back: the release is not at fault. See docs/backups.md ("When a backup is overdue").`,
        EXIT.unhealthy,
      );
    }
    ctx.log(`Deployed stack "${opts.stack}" (version ${version}); every service is healthy${backup && opts.backups ? ", and its backups are recent" : ""}.`);
    return EXIT.ok;
  }
  const names = failing.map((r) => `${r.service} (${r.status ?? r.error})`).join(", ");
  const why = `Smoke check failed after version ${version} of stack "${opts.stack}": ${names} still unhealthy after ${Math.round(opts.smoke.budgetMs / 1000)} s.`;
  throw await afterFailure(ctx, opts, why, EXIT.unhealthy, `smoke check failed after version ${version}`);
}

/** What the Docker host says about the stack's unhealthy containers; a diagnosis that fails says so and never hides the update's own error. */
async function diagnosis(opts: DeployOptions): Promise<string> {
  if (!opts.diagnose) return "";
  try {
    return await opts.diagnose();
  } catch (err) {
    return `\n(The containers' health could not be read: ${(err as Error)?.message ?? String(err)}.)`;
  }
}

/** Rolls back when asked to, and returns the error the deploy ends with either way. */
async function afterFailure(ctx: OpsContext, opts: DeployOptions, why: string, code: number, reason: string): Promise<UserError> {
  if (!opts.rollbackOnFailure) {
    return new UserError(`${why}\nTo go back to the previous successful version: npm run rollback -- --stack ${opts.stack}`, code);
  }
  ctx.log(why);
  ctx.log("Rolling back (--rollback-on-failure).");
  try {
    await rollback(ctx, { stack: opts.stack, previewOnly: false, yes: true, lockTimeoutSeconds: opts.lockTimeoutSeconds, reason });
  } catch (err) {
    const msg = err instanceof UserError ? err.message : String((err as Error)?.message ?? err);
    return new UserError(`${why}\nThe automatic rollback did not complete either:\n${msg}`, code);
  }
  return new UserError(`${why}\nRolled back to the previous successful version (see above); the deploy still counts as failed.`, code);
}
