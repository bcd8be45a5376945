import * as fs from "node:fs";
import * as path from "node:path";
import { parseDocument } from "yaml";
import { step, type StackHandle } from "./automation";
import type { OpsContext } from "./context";
import { EXIT, UserError } from "../shared/errors";
import { chooseRollbackTarget, describeUpdate, recordedImages, rollbackConfig } from "./history";
import { withLockWait } from "./lock-wait";
import { readProject, readStackConfig } from "../offline/stack-files";
import { stackEnv } from "./stack-env";

export interface RollbackOptions {
  stack: string;
  /** A version from the stack's history; default: the last succeeded update before the current one. */
  to?: number;
  /** Print the target and the preview, change nothing. */
  previewOnly: boolean;
  yes: boolean;
  lockTimeoutSeconds: number;
  /** Why, for the update's message ("smoke check failed after version 12"). */
  reason?: string;
}

/**
 * The stack file the rollback's worktree runs with: today's file (its
 * secrets provider, salt and secure values) with `config:` cut down to the
 * secret keys the target update used. The plain values are then set from the
 * recorded config with setAllConfig.
 */
export function composeRollbackStackFile(currentText: string, secretKeys: string[], project: string): string {
  const doc = parseDocument(currentText);
  const config = doc.get("config", true) as { items?: { key: unknown }[] } | undefined;
  const full = (k: string) => (k.includes(":") ? k : `${project}:${k}`);
  const keep = new Set(secretKeys);
  if (config?.items) {
    config.items = config.items.filter((item) => {
      const key = String((item.key as { value?: unknown })?.value ?? item.key);
      return keep.has(full(key));
    });
  }
  return doc.toString();
}

/** Checks that can fail before anything is touched, in the order a user would fix them. */
async function prepare(ctx: OpsContext, opts: RollbackOptions) {
  const env = stackEnv(ctx.root, opts.stack);
  const git = ctx.git(ctx.root);
  const dirty = git.changedFiles();
  if (dirty.length > 0) {
    throw new UserError(
      `The working tree has uncommitted changes (${dirty.slice(0, 5).join(", ")}${dirty.length > 5 ? ", ..." : ""}).\n` +
        `Rollback reuses this checkout's ${path.basename(env.file)} for the stack's current secrets, so it must be what is committed. ` +
        `Commit or stash them first (git stash), then run the rollback again.`,
      EXIT.prerequisite,
    );
  }
  await ctx.automation.cliVersion();
  const stack = await ctx.automation.openStack({ stackName: opts.stack, workDir: ctx.root, envVars: env.envVars });
  return { env, git, stack };
}

/**
 * Redeploys an earlier successful update: its program from the recorded git
 * commit (in a temporary worktree, with this checkout's node_modules) and its
 * recorded config (plain values as recorded, secrets as the stack holds them
 * now). Prints the target and the preview before applying.
 */
export async function rollback(ctx: OpsContext, opts: RollbackOptions): Promise<number> {
  const { env, git, stack } = await prepare(ctx, opts);
  for (const note of env.notes) ctx.log(note);

  const history = await step(`Reading the history of stack "${opts.stack}"`, () => stack.history(), EXIT.prerequisite);
  const choice = chooseRollbackTarget(history, opts.stack, opts.to);
  const commit = git.resolveCommit(choice.commit);
  if (!commit) {
    throw new UserError(
      `Version ${choice.target.version} was deployed from commit ${choice.commit}, which is not in this repository.\n` +
        `Fetch it (git fetch --all; in a shallow CI clone: git fetch --unshallow) and run the rollback again.`,
      EXIT.prerequisite,
    );
  }

  const project = readProject(ctx.root).name;
  const current = readStackConfig(env.file, opts.stack, project);
  // A placeholder is no secret value: such a key counts as not set.
  const usable = current.secretKeys.filter((k) => !current.placeholderKeys.includes(k));
  const { plain, secretKeys } = rollbackConfig(choice.target.config, new Set(usable), opts.stack);
  const images = recordedImages(choice.target.config);

  ctx.log(`Rolling back stack "${opts.stack}"`);
  ctx.log(`  from: ${describeUpdate(choice.current)}`);
  ctx.log(`  to:   ${describeUpdate(choice.target)}`);
  ctx.log(`        commit ${commit} "${git.subject(commit)}"`);
  for (const image of images) ctx.log(`        image  ${image}`);
  ctx.log(
    `        config: ${Object.keys(plain).length} plain value(s) as recorded; ` +
      (secretKeys.length ? `secret(s) ${secretKeys.join(", ")} keep the stack's current values` : "no secrets"),
  );
  for (const s of choice.skipped) ctx.log(`  passed over version ${s.version}: ${s.reason}`);
  if (choice.dirty) {
    ctx.log(`  warning: version ${choice.target.version} was deployed from a working tree with uncommitted changes; the commit may differ from what ran.`);
  }
  if (git.differs(commit, git.head(), "package-lock.json")) {
    ctx.log(`  warning: package-lock.json changed since ${commit.slice(0, 12)}; the old program runs with this checkout's node_modules.`);
  }

  const worktree = git.addWorktree(commit);
  try {
    fs.symlinkSync(path.join(ctx.root, "node_modules"), path.join(worktree, "node_modules"), "dir");
    fs.writeFileSync(
      path.join(worktree, path.basename(env.file)),
      composeRollbackStackFile(fs.readFileSync(env.file, "utf8"), secretKeys, project),
      { mode: 0o600 },
    );
    const old = await ctx.automation.openStack({ stackName: opts.stack, workDir: worktree, envVars: env.envVars });
    await step("Setting the recorded config in the rollback's worktree", () => old.setAllConfig(plain));
    return await previewAndApply(ctx, old, opts, choice.target.version, commit);
  } finally {
    git.removeWorktree(worktree);
  }
}

async function previewAndApply(ctx: OpsContext, stack: StackHandle, opts: RollbackOptions, version: number, commit: string): Promise<number> {
  const lock = { stack: opts.stack, timeoutSeconds: opts.lockTimeoutSeconds, log: ctx.log, clock: ctx.clock };
  ctx.log("");
  ctx.log(`Preview of the rollback to version ${version}:`);
  await step("The rollback preview", () => withLockWait(() => stack.preview({ onOutput: ctx.stream }), { ...lock, operation: "rollback preview" }));
  if (opts.previewOnly) {
    ctx.log(`--preview: nothing was changed. Apply with: npm run rollback -- --stack ${opts.stack} --to ${version} --yes`);
    return EXIT.ok;
  }
  if (!opts.yes && !(await ctx.confirm(`Roll back stack "${opts.stack}" to version ${version}?`))) {
    ctx.log("Rollback cancelled; nothing was changed.");
    return EXIT.ok;
  }
  const message = `appstack rollback to version ${version} (${commit.slice(0, 12)})${opts.reason ? `: ${opts.reason}` : ""}`;
  const result = await step(`The rollback of stack "${opts.stack}" to version ${version}`, () =>
    withLockWait(() => stack.up({ onOutput: ctx.stream, message }), { ...lock, operation: "rollback" }),
  );
  ctx.log(`Rolled back stack "${opts.stack}" to the program and config of version ${version}; the stack is now at version ${result.summary.version}.`);
  return EXIT.ok;
}
