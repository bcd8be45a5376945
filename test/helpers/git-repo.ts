import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ROOT, type CliResult } from "./cli";

/**
 * A throwaway git repository holding a copy of this project (its tracked and
 * untracked-but-not-ignored files, as they are now) with this checkout's
 * node_modules linked in: a place to commit changes to a stack and run the
 * ops commands against them, as a user would in their clone.
 */
export class ThrowawayRepo {
  readonly dir: string;
  /** The temporary directory its ops commands use (their TMPDIR): theirs alone, so a test can see what they leave there. */
  readonly tmpdir: string;

  /** `dir`: an empty directory to copy the project into; a new temporary one by default. */
  constructor(dir?: string) {
    this.dir = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), "appstack-repo-"));
    this.tmpdir = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-repo-tmp-"));
    const files = this.gitIn(ROOT, ["ls-files", "--cached", "--others", "--exclude-standard", "-z"]).split("\0").filter(Boolean);
    for (const rel of files) {
      const from = path.join(ROOT, rel);
      if (!fs.existsSync(from) || fs.lstatSync(from).isSymbolicLink()) continue;
      fs.mkdirSync(path.dirname(path.join(this.dir, rel)), { recursive: true });
      fs.copyFileSync(from, path.join(this.dir, rel));
    }
    this.git(["init", "--quiet", "--initial-branch=main"]);
    // A symlink is not a directory, so .gitignore's `node_modules/` would not cover it.
    fs.appendFileSync(path.join(this.dir, ".git", "info", "exclude"), "node_modules\n");
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(this.dir, "node_modules"), "dir");
  }

  private gitIn(cwd: string, args: string[]): string {
    return execFileSync("git", ["-c", "commit.gpgsign=false", "-c", "user.name=appstack test", "-c", "user.email=test@example.com", ...args], {
      cwd,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    }).trim();
  }

  git(args: string[]): string {
    return this.gitIn(this.dir, args);
  }

  /** Commits everything and returns the commit's SHA. */
  commit(message: string): string {
    this.git(["add", "-A"]);
    this.git(["commit", "--quiet", "--allow-empty", "-m", message]);
    return this.git(["rev-parse", "HEAD"]);
  }

  read(file: string): string {
    return fs.readFileSync(path.join(this.dir, file), "utf8");
  }

  write(file: string, text: string): void {
    fs.writeFileSync(path.join(this.dir, file), text);
  }

  /** Replaces exactly one occurrence of `from`, so a test never edits what it did not mean to. */
  edit(file: string, from: string | RegExp, to: string): void {
    const text = this.read(file);
    const matches = text.match(typeof from === "string" ? new RegExp(from.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "g") : new RegExp(from.source, "g"));
    if (matches?.length !== 1) throw new Error(`${file}: expected one match of ${from}, found ${matches?.length ?? 0}`);
    this.write(file, text.replace(from, to));
  }

  /** An ops command in this repository, run the way `npm run <cmd>` runs it (Node 24 from node_modules). */
  ops(args: string[]): CliResult {
    const r = spawnSync(path.join(ROOT, "node_modules", ".bin", "node"), [path.join("ops", "run.js"), ...args], {
      cwd: this.dir,
      // V8's compile cache stays where it would be without TMPDIR (Node's default, os.tmpdir()'s): a cold one costs each process about 0.4 s.
      env: { ...process.env, TMPDIR: this.tmpdir, NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE ?? path.join(os.tmpdir(), "node-compile-cache") },
      encoding: "utf8",
      timeout: 120_000,
    });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  /** Paths of this repository's worktrees, its own checkout first. */
  worktrees(): string[] {
    return this.git(["worktree", "list", "--porcelain"])
      .split("\n")
      .filter((l) => l.startsWith("worktree "))
      .map((l) => l.slice("worktree ".length));
  }

  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
    fs.rmSync(this.tmpdir, { recursive: true, force: true });
  }
}
