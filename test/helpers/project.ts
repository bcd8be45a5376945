import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ROOT } from "./cli";

/**
 * A throwaway project directory with this repo's Pulumi.yaml and the given
 * stack files. The tests write their stack files with `appstack:` keys, so
 * the project keeps that name here even in a checkout that renamed it
 * (docs/adopting.md).
 */
export function tempProject(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-ops-test-"));
  fs.writeFileSync(path.join(dir, "Pulumi.yaml"), fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8").replace(/^name: .*$/m, "name: appstack"));
  writeFiles(dir, files);
  return dir;
}

export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
}

export function git(dir: string, ...args: string[]): string {
  return execFileSync("git", args, {
    cwd: dir,
    encoding: "utf8",
    env: { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.com", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.com" },
  }).trim();
}

/** Makes `dir` a git repository and commits everything in it; returns the commit hash. */
export function commitAll(dir: string, message: string): string {
  if (!fs.existsSync(path.join(dir, ".git"))) git(dir, "init", "-q", "-b", "main");
  git(dir, "add", "-A");
  git(dir, "commit", "-q", "-m", message);
  return git(dir, "rev-parse", "HEAD");
}

export const STAGING_STACK = `config:
  appstack:environment: staging
  appstack:docker:
    host: ssh://deploy@staging.example.com
  appstack:postgres:
    mode: container
    image: postgres:17.6-alpine
  appstack:redis:
    mode: container
    image: redis:7.4.6-alpine
`;
