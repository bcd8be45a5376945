import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { EXIT, UserError } from "./errors";

/** The git operations rollback needs, on the checkout at `root`. (diff's are below.) */
export interface Git {
  /** Tracked files with uncommitted changes (staged or not). */
  changedFiles(): string[];
  /** The full hash, or undefined when the repository does not have that commit. */
  resolveCommit(ref: string): string | undefined;
  head(): string;
  /** The first line of a commit's message. */
  subject(commit: string): string;
  /** Whether `file` differs between two commits. */
  differs(a: string, b: string, file: string): boolean;
  /** A detached worktree at `commit` in a new temporary directory. */
  addWorktree(commit: string): string;
  removeWorktree(dir: string): void;
}

function run(root: string, args: string[]): string {
  try {
    return execFileSync("git", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT") throw new UserError("git is not on PATH; rollback and diff need it. Install git (e.g. apt-get install git).", EXIT.prerequisite);
    throw Object.assign(new Error(`git ${args.join(" ")}: ${(e.stderr ?? e.message).trim()}`), { stderr: e.stderr });
  }
}

export function localGit(root: string): Git {
  const inRepo = () => {
    try {
      run(root, ["rev-parse", "--git-dir"]);
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError(`${root} is not a git checkout; rollback redeploys a recorded commit, so it needs the repository.`, EXIT.prerequisite);
    }
  };
  inRepo();
  return {
    changedFiles() {
      return run(root, ["status", "--porcelain", "--untracked-files=no"])
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((l) => l.slice(3));
    },
    resolveCommit(ref) {
      if (!/^[0-9a-f]{4,40}$/i.test(ref)) return undefined;
      try {
        return run(root, ["rev-parse", "--verify", "--quiet", `${ref}^{commit}`]).trim() || undefined;
      } catch {
        return undefined;
      }
    },
    head() {
      return run(root, ["rev-parse", "HEAD"]).trim();
    },
    subject(commit) {
      return run(root, ["log", "-1", "--format=%s", commit]).trim();
    },
    differs(a, b, file) {
      return run(root, ["diff", "--name-only", a, b, "--", file]).trim() !== "";
    },
    addWorktree(commit) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-rollback-"));
      run(root, ["worktree", "add", "--detach", dir, commit]);
      return dir;
    },
    removeWorktree(dir) {
      try {
        run(root, ["worktree", "remove", "--force", dir]);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
        run(root, ["worktree", "prune"]);
      }
    },
  };
}

/** The top of the git checkout that holds `dir`. */
export function repositoryRoot(dir: string): string {
  try {
    return run(dir, ["rev-parse", "--show-toplevel"]).trim();
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`${dir} is not inside a git checkout: diff compares against a git ref, so run it from a clone of the repository.`, EXIT.badBaseRef);
  }
}

/** The commit a base ref names (any ref: branch, tag, `origin/main`, a SHA), or a message that says how to find a good one. */
export function resolveBaseRef(root: string, ref: string): string {
  if (!ref || ref.startsWith("-")) throw new UserError(`--base must name a git ref (a branch, tag or commit), got "${ref}".`, EXIT.usage);
  try {
    return run(root, ["rev-parse", "--verify", "--quiet", "--end-of-options", `${ref}^{commit}`]).trim();
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
      run(opts.repoRoot, ["worktree", "remove", "--force", dir]);
    } catch {
      fs.rmSync(dir, { recursive: true, force: true });
      try {
        run(opts.repoRoot, ["worktree", "prune"]);
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
    run(opts.repoRoot, ["worktree", "add", "--detach", "--quiet", dir, opts.commit]);
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
