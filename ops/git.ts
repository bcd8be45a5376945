import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { EXIT, UserError } from "./errors";

/** The git operations rollback needs, on the checkout at `root`. */
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
    if (e.code === "ENOENT") throw new UserError("git is not on PATH; rollback needs it. Install git (e.g. apt-get install git).", EXIT.prerequisite);
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
