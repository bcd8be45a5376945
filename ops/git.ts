import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { EXIT, UserError } from "./errors";

/** Runs git and returns its trimmed stdout; git's own message on failure. */
export function git(args: string[], cwd: string): string {
  try {
    return execFileSync("git", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
  } catch (err) {
    const e = err as { stderr?: string; message: string; code?: string };
    if (e.code === "ENOENT") throw new UserError("git is not installed (or not on PATH); diff needs it to read the base ref.", EXIT.badBaseRef);
    throw new Error(`git ${args.join(" ")}: ${(e.stderr || e.message).trim()}`);
  }
}

/** The top of the git checkout that holds `dir`. */
export function repositoryRoot(dir: string): string {
  try {
    return git(["rev-parse", "--show-toplevel"], dir);
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`${dir} is not inside a git checkout: diff compares against a git ref, so run it from a clone of the repository.`, EXIT.badBaseRef);
  }
}

/** The commit a ref names, or a message that says how to find a good one. */
export function resolveCommit(root: string, ref: string): string {
  if (!ref || ref.startsWith("-")) throw new UserError(`--base must name a git ref (a branch, tag or commit), got "${ref}".`, EXIT.usage);
  try {
    return git(["rev-parse", "--verify", "--quiet", "--end-of-options", `${ref}^{commit}`], root);
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(
      `Base ref "${ref}" does not name a commit in ${root}.\n` +
        "Check the name (git branch -a, git log --oneline), or fetch it first: git fetch origin <branch>, then --base origin/<branch>.",
      EXIT.badBaseRef,
    );
  }
}

export interface Worktree {
  /** Where the ref is checked out. */
  dir: string;
  /** The project root inside it (the same subdirectory as in this checkout). */
  projectRoot: string;
}

/**
 * Checks `commit` out into a temporary `git worktree` (detached, outside the
 * checkout), links this checkout's node_modules into it, runs `fn`, and always
 * removes the worktree again: on success, on failure, and on Ctrl-C.
 */
export async function withWorktree<T>(opts: { repoRoot: string; projectRoot: string; commit: string }, fn: (wt: Worktree) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-diff-"));
  const projectRoot = path.join(dir, path.relative(opts.repoRoot, opts.projectRoot));
  const link = path.join(projectRoot, "node_modules");
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    // The link first, so nothing below can ever walk into the real node_modules.
    try {
      if (fs.lstatSync(link).isSymbolicLink()) fs.unlinkSync(link);
    } catch {
      // not created yet
    }
    try {
      git(["worktree", "remove", "--force", dir], opts.repoRoot);
    } catch {
      fs.rmSync(dir, { recursive: true, force: true });
      try {
        git(["worktree", "prune"], opts.repoRoot);
      } catch {
        // the directory is gone; git forgets it on its next prune
      }
    }
  };
  const onSignal = (signal: NodeJS.Signals) => {
    remove();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    git(["worktree", "add", "--detach", "--quiet", dir, opts.commit], opts.repoRoot);
    if (fs.existsSync(projectRoot) && !fs.existsSync(link)) {
      fs.symlinkSync(path.join(opts.projectRoot, "node_modules"), link, "dir");
    }
    return await fn({ dir, projectRoot });
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    remove();
  }
}
