import type { ConfigMap, UpdateSummary } from "@pulumi/pulumi/automation";
import { EXIT, UserError } from "../shared/errors";

/** Keys the CLI records in an update's `environment` (pkg/backend/updates.go). */
export const GIT_HEAD = "git.head";
export const GIT_DIRTY = "git.dirty";

export interface RollbackTarget {
  /** The newest `update` in the history, whatever its result: what is deployed now (or half-deployed). */
  current: UpdateSummary;
  target: UpdateSummary;
  /** The commit the target update was deployed from. */
  commit: string;
  /** The target was deployed from a working tree with uncommitted changes. */
  dirty: boolean;
  /** Successful updates passed over, newest first, and why. */
  skipped: { version: number; reason: string }[];
}

const isUpdate = (u: UpdateSummary) => u.kind === "update";

/** Non-secret config as recorded, for comparing two updates. */
function plainConfig(config: ConfigMap | undefined): string {
  const entries = Object.entries(config ?? {})
    .map(([k, v]) => [k, v.secret ? "[secret]" : v.value] as const)
    .sort(([a], [b]) => a.localeCompare(b));
  return JSON.stringify(entries);
}

function sameDeployment(a: UpdateSummary, b: UpdateSummary): boolean {
  return a.environment?.[GIT_HEAD] === b.environment?.[GIT_HEAD] && plainConfig(a.config) === plainConfig(b.config);
}

export function describeUpdate(u: UpdateSummary): string {
  const when = u.startTime instanceof Date && !Number.isNaN(u.startTime.getTime()) ? u.startTime.toISOString() : String(u.startTime);
  const commit = u.environment?.[GIT_HEAD]?.slice(0, 12) ?? "no commit recorded";
  return `version ${u.version} (${u.kind}, ${u.result}, ${when}, ${commit})`;
}

/**
 * Picks what a rollback redeploys: the update named by `to`, or else the
 * newest *succeeded* `update` older than the current one (the newest `update`
 * of any result). Refreshes, destroys, previews and imports are never
 * targets; failed ones, and cancelled ones (the CLI records a cancelled or
 * interrupted update as `failed` or leaves it `in-progress`), are passed over.
 * A success that deployed the same commit and config as the current update
 * is passed over too: going back to it would change nothing.
 */
export function chooseRollbackTarget(history: UpdateSummary[], stack: string, to?: number): RollbackTarget {
  const byNewest = [...history].sort((a, b) => b.version - a.version);
  const current = byNewest.find(isUpdate);
  if (!current) {
    throw new UserError(`Stack "${stack}" has no update in its history: there is nothing to roll back.`, EXIT.noRollbackTarget);
  }
  const listing = () =>
    byNewest
      .filter(isUpdate)
      .slice(0, 10)
      .map((u) => `  ${describeUpdate(u)}`)
      .join("\n");
  const skipped: RollbackTarget["skipped"] = [];
  let target: UpdateSummary | undefined;

  if (to !== undefined) {
    target = byNewest.find((u) => u.version === to);
    if (!target) {
      throw new UserError(`Version ${to} is not in the history of stack "${stack}". Recent updates:\n${listing()}`, EXIT.usage);
    }
    if (!isUpdate(target)) {
      throw new UserError(`Version ${to} of stack "${stack}" was a ${target.kind}, not an update; only an update can be redeployed. Recent updates:\n${listing()}`, EXIT.usage);
    }
    if (target.version === current.version) {
      throw new UserError(`Version ${to} is the current version of stack "${stack}"; there is nothing to roll back to. Pick an earlier one:\n${listing()}`, EXIT.noRollbackTarget);
    }
    if (target.result !== "succeeded") {
      throw new UserError(`Version ${to} of stack "${stack}" did not succeed (${target.result}); roll back to a succeeded update:\n${listing()}`, EXIT.usage);
    }
  } else {
    for (const u of byNewest) {
      if (!isUpdate(u) || u.version >= current.version || u.result !== "succeeded") continue;
      if (sameDeployment(u, current)) {
        skipped.push({ version: u.version, reason: "same commit and config as the current version" });
        continue;
      }
      target = u;
      break;
    }
    if (!target) {
      throw new UserError(
        `Stack "${stack}" has no successful update before the current ${describeUpdate(current)} that deployed something different; ` +
          `there is nothing to roll back to.\nRecent updates:\n${listing()}`,
        EXIT.noRollbackTarget,
      );
    }
  }

  const commit = target.environment?.[GIT_HEAD];
  if (!commit) {
    throw new UserError(
      `Version ${target.version} of stack "${stack}" has no recorded commit (environment "${GIT_HEAD}"): it was not deployed from a git checkout, ` +
        `so its program cannot be recovered. Pick another with --to:\n${listing()}`,
      EXIT.noRollbackTarget,
    );
  }
  return { current, target, commit, dirty: target.environment?.[GIT_DIRTY] === "true", skipped };
}

/** `image` fields anywhere in the recorded non-secret config: the image references that update deployed. */
export function recordedImages(config: ConfigMap | undefined): string[] {
  const found: string[] = [];
  const walk = (v: unknown, at: string) => {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${at}[${i}]`));
    else if (v !== null && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) {
        if (/^image$/i.test(k) && typeof x === "string") found.push(`${at}.${k} = ${x}`);
        else walk(x, `${at}.${k}`);
      }
    }
  };
  for (const [key, cv] of Object.entries(config ?? {})) {
    if (cv.secret || cv.value === undefined) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(cv.value);
    } catch {
      continue;
    }
    walk(parsed, key);
  }
  return found.sort();
}

/**
 * Splits an update's recorded config for a rollback: plain values are set as
 * recorded; secret values are not in the history (we never ask for them
 * decrypted), so each recorded secret key keeps the value the stack holds now.
 */
export function rollbackConfig(recorded: ConfigMap | undefined, currentSecretKeys: Set<string>, stack: string): { plain: ConfigMap; secretKeys: string[] } {
  const plain: ConfigMap = {};
  const secretKeys: string[] = [];
  const missing: string[] = [];
  for (const [key, cv] of Object.entries(recorded ?? {})) {
    if (cv.secret) {
      if (currentSecretKeys.has(key)) secretKeys.push(key);
      else missing.push(key);
    } else if (cv.value !== undefined) {
      plain[key] = { value: cv.value, secret: false };
    }
  }
  if (missing.length > 0) {
    const short = (k: string) => k.slice(k.indexOf(":") + 1);
    throw new UserError(
      `The target update used secret${missing.length > 1 ? "s" : ""} that stack "${stack}" no longer has: ${missing.join(", ")}.\n` +
        `The history never holds secret values, so rollback reuses the stack's current ones. Set ${missing.length > 1 ? "them" : "it"} first:\n` +
        missing.map((k) => `  pulumi config set -s ${stack} --secret ${short(k)}`).join("\n"),
      EXIT.prerequisite,
    );
  }
  return { plain, secretKeys: secretKeys.sort() };
}
