import * as fs from "node:fs";
import * as path from "node:path";
import type { ConfigMap, ConfigValue, UpdateSummary } from "@pulumi/pulumi/automation";
import { beforeEach, describe, expect, it } from "vitest";
import { EXIT, UserError } from "../ops/shared/errors";
import { composeRollbackStackFile, rollback, type RollbackOptions } from "../ops/operations/rollback";
import { REPOSITORY_PLACEHOLDER } from "../ops/offline/stack-files";
import { FakeAutomation, testContext, updateEntry } from "./helpers/automation";
import { commitAll, git, STAGING_STACK, tempProject, writeFiles } from "./helpers/project";

const SALT = "encryptionsalt: v1:c2FsdHNhbHQ=:v1:bm9uY2Vub25jZQ==:Y2hlY2tjaGVja2NoZWNr\n";
const SECURE = "v1:a2V5a2V5:c2VjcmV0LWNpcGhlcnRleHQ=";
const STACK_FILE = SALT + STAGING_STACK + `  appstack:OPENAI_API_KEY:\n    secure: ${SECURE}\n`;

function recorded(commit: string, apiImage: string): ConfigMap {
  return {
    "appstack:environment": { value: "staging", secret: false },
    "appstack:docker": { value: '{"host":"ssh://deploy@staging.example.com"}', secret: false },
    "appstack:api": { value: JSON.stringify({ image: apiImage }), secret: false },
    "appstack:commit": { value: commit.slice(0, 7), secret: false },
    // `pulumi stack history --json` without --show-secrets: no value.
    "appstack:OPENAI_API_KEY": { secret: true } as ConfigValue,
  };
}

const update = updateEntry;

interface Repo {
  root: string;
  good: string;
  bad: string;
  history: UpdateSummary[];
}

/** A repository with a good commit (deployed as version 1) and a bad one (version 2, failed). */
function repo(): Repo {
  const root = tempProject({ "Pulumi.staging.yaml": STACK_FILE, "index.ts": "export const program = 'good';\n" });
  fs.writeFileSync(path.join(root, ".gitignore"), "node_modules\nbackups/\n");
  fs.mkdirSync(path.join(root, "node_modules"));
  const good = commitAll(root, "good release");
  writeFiles(root, { "index.ts": "export const program = 'bad';\n" });
  const bad = commitAll(root, "bad release");
  const history = [update(2, "failed", bad, recorded(bad, "api:1.5.0")), update(1, "succeeded", good, recorded(good, "api:1.4.2"))];
  return { root, good, bad, history };
}

/** What the fake sees in the rollback's working directory when the preview runs. */
interface Seen {
  head?: string;
  program?: string;
  stackFile?: string;
  nodeModules?: string;
}

function automationFor(r: Repo, seen: Seen = {}): FakeAutomation {
  return new FakeAutomation((workDir) =>
    workDir === r.root
      ? { history: r.history }
      : {
          preview: () => {
            seen.head = git(workDir, "rev-parse", "HEAD");
            seen.program = fs.readFileSync(path.join(workDir, "index.ts"), "utf8");
            seen.stackFile = fs.readFileSync(path.join(workDir, "Pulumi.staging.yaml"), "utf8");
            seen.nodeModules = fs.readlinkSync(path.join(workDir, "node_modules"));
            return { same: 10, update: 2 };
          },
          up: () => ({ version: 3 }),
        },
  );
}

const opts = (over: Partial<RollbackOptions> = {}): RollbackOptions => ({ stack: "staging", previewOnly: false, yes: true, lockTimeoutSeconds: 30, ...over });

beforeEach(() => {
  process.env.PULUMI_CONFIG_PASSPHRASE = "test-passphrase";
});

describe("rollback: redeploy an earlier update's program and config", () => {
  it("runs the recorded commit's program in a temporary worktree, with the recorded plain config and the current secrets", async () => {
    const r = repo();
    const seen: Seen = {};
    const auto = automationFor(r, seen);
    const ctx = testContext(r.root, auto);
    expect(await rollback(ctx, opts())).toBe(EXIT.ok);

    // The program of version 1, at its commit, with this checkout's node_modules.
    expect(seen.head).toBe(r.good);
    expect(seen.program).toContain("'good'");
    expect(seen.nodeModules).toBe(path.join(r.root, "node_modules"));
    // The stack file: today's secrets provider and secure value, and no plain value (those come from setAllConfig).
    expect(seen.stackFile).toContain(SALT.trim());
    expect(seen.stackFile).toContain(SECURE);
    expect(seen.stackFile).not.toContain("appstack:docker");

    const worktree = auto.calls.find((c) => c.op === "setAllConfig")!.workDir;
    expect(worktree).not.toBe(r.root);
    const onWorktree = auto.calls.filter((c) => c.workDir === worktree).map((c) => c.op);
    expect(onWorktree).toEqual(["openStack", "setAllConfig", "preview", "up"]);
    const config = auto.calls.find((c) => c.op === "setAllConfig")!.detail as ConfigMap;
    expect(config).toEqual({
      "appstack:environment": { value: "staging", secret: false },
      "appstack:docker": { value: '{"host":"ssh://deploy@staging.example.com"}', secret: false },
      "appstack:api": { value: '{"image":"api:1.4.2"}', secret: false },
      "appstack:commit": { value: r.good.slice(0, 7), secret: false },
    });
    expect(auto.calls.find((c) => c.op === "up")!.detail).toEqual({ message: `appstack rollback to version 1 (${r.good.slice(0, 12)})` });

    // What it goes back to, before the preview.
    const out = ctx.lines.join("\n");
    expect(out).toContain("from: version 2 (update, failed");
    expect(out).toContain("to:   version 1 (update, succeeded, 2025-06-01T00:00:00.000Z");
    expect(out).toContain(`commit ${r.good} "good release"`);
    expect(out).toContain("image  appstack:api.image = api:1.4.2");
    expect(out).toContain("secret(s) appstack:OPENAI_API_KEY keep the stack's current values");
    expect(out).toContain("the stack is now at version 3");
    expect(ctx.streamed.join("")).toContain("Previewing update");

    // The worktree is gone afterwards; the checkout is untouched.
    expect(fs.existsSync(worktree)).toBe(false);
    expect(git(r.root, "worktree", "list").split("\n")).toHaveLength(1);
    expect(git(r.root, "status", "--porcelain")).toBe("");
  });

  it("--preview prints the target and the preview, and changes nothing", async () => {
    const r = repo();
    const auto = automationFor(r);
    const ctx = testContext(r.root, auto);
    expect(await rollback(ctx, opts({ previewOnly: true, yes: false }))).toBe(EXIT.ok);
    expect(auto.ops()).toContain("preview");
    expect(auto.ops()).not.toContain("up");
    expect(ctx.lines.join("\n")).toContain("--preview: nothing was changed");
    expect(git(r.root, "worktree", "list").split("\n")).toHaveLength(1);
  });

  it("without --yes it asks after the preview; no means nothing is applied", async () => {
    const r = repo();
    const auto = automationFor(r);
    const ctx = testContext(r.root, auto);
    expect(await rollback(ctx, opts({ yes: false }))).toBe(EXIT.ok);
    expect(ctx.questions).toEqual(['Roll back stack "staging" to version 1?']);
    expect(auto.ops()).not.toContain("up");
  });

  it("--to names the version; --to not in the history is a usage error", async () => {
    const r = repo();
    r.history.unshift(update(3, "succeeded", r.bad, recorded(r.bad, "api:1.5.1")));
    const seen: Seen = {};
    expect(await rollback(testContext(r.root, automationFor(r, seen)), opts({ to: 1 }))).toBe(EXIT.ok);
    expect(seen.head).toBe(r.good);
    const err = await rollback(testContext(r.root, automationFor(r)), opts({ to: 7 })).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.exitCode).toBe(EXIT.usage);
    expect(err.message).toContain("Version 7 is not in the history");
  });
});

describe("rollback refuses, clearly, when it cannot be done", () => {
  it("a dirty working tree: commit or stash first; nothing reaches Pulumi", async () => {
    const r = repo();
    writeFiles(r.root, { "Pulumi.staging.yaml": STACK_FILE + "  appstack:extra: 1\n" });
    const auto = automationFor(r);
    const err = await rollback(testContext(r.root, auto), opts()).catch((e) => e);
    expect(err.exitCode).toBe(EXIT.prerequisite);
    expect(err.message).toContain("uncommitted changes (Pulumi.staging.yaml)");
    expect(err.message).toContain("git stash");
    expect(auto.calls).toEqual([]);
  });

  it("the recorded commit is not in the repository: how to fetch it", async () => {
    const r = repo();
    r.history[1] = update(1, "succeeded", "a".repeat(40), recorded(r.good, "api:1.4.2"));
    const err = await rollback(testContext(r.root, automationFor(r)), opts()).catch((e) => e);
    expect(err.exitCode).toBe(EXIT.prerequisite);
    expect(err.message).toContain(`commit ${"a".repeat(40)}, which is not in this repository`);
    expect(err.message).toContain("git fetch --unshallow");
  });

  it("no earlier success", async () => {
    const r = repo();
    r.history.pop();
    const err = await rollback(testContext(r.root, automationFor(r)), opts()).catch((e) => e);
    expect(err.exitCode).toBe(EXIT.noRollbackTarget);
  });

  it("an unknown stack names the stacks there are", async () => {
    const r = repo();
    const err = await rollback(testContext(r.root, automationFor(r)), opts({ stack: "prod" })).catch((e) => e);
    expect(err.exitCode).toBe(EXIT.usage);
    expect(err.message).toContain('Unknown stack "prod"');
    expect(err.message).toContain("Stacks in this project: staging");
  });

  it("a secret that still holds the repository's placeholder counts as not set", async () => {
    const r = repo();
    writeFiles(r.root, { "Pulumi.staging.yaml": STACK_FILE.replace(SECURE, REPOSITORY_PLACEHOLDER) });
    commitAll(r.root, "placeholder secret");
    const err = await rollback(testContext(r.root, automationFor(r)), opts()).catch((e) => e);
    expect(err.exitCode).toBe(EXIT.prerequisite);
    expect(err.message).toContain("pulumi config set -s staging --secret OPENAI_API_KEY");
  });

  it("a passphrase-encrypted stack without a passphrase says which variable to set", async () => {
    const r = repo();
    delete process.env.PULUMI_CONFIG_PASSPHRASE;
    const err = await rollback(testContext(r.root, automationFor(r)), opts()).catch((e) => e);
    expect(err.exitCode).toBe(EXIT.prerequisite);
    expect(err.message).toContain("PULUMI_CONFIG_PASSPHRASE_FILE");
  });

  it("a failed preview stops before anything is applied, and the worktree is still removed", async () => {
    const r = repo();
    const auto = new FakeAutomation((workDir) =>
      workDir === r.root
        ? { history: r.history }
        : {
            preview: () => {
              throw Object.assign(new Error("CommandError"), { commandResult: { stderr: "error: the program failed: Cannot find module 'zod'" } });
            },
          },
    );
    const err = await rollback(testContext(r.root, auto), opts()).catch((e) => e);
    expect(err.exitCode).toBe(EXIT.updateFailed);
    expect(err.message).toContain("Cannot find module 'zod'");
    expect(auto.ops()).not.toContain("up");
    expect(git(r.root, "worktree", "list").split("\n")).toHaveLength(1);
  });
});

describe("the rollback's stack file", () => {
  it("keeps the header and only the named secure keys", () => {
    const out = composeRollbackStackFile(STACK_FILE, ["appstack:OPENAI_API_KEY"], "appstack");
    expect(out.startsWith(SALT)).toBe(true);
    expect(out).toContain(`appstack:OPENAI_API_KEY:\n    secure: ${SECURE}`);
    expect(out).not.toContain("appstack:environment");
    const none = composeRollbackStackFile(STACK_FILE, [], "appstack");
    expect(none).not.toContain(SECURE);
  });

  it("accepts keys written without the namespace", () => {
    const text = "config:\n  OPENAI_API_KEY:\n    secure: abc\n  environment: staging\n";
    expect(composeRollbackStackFile(text, ["appstack:OPENAI_API_KEY"], "appstack")).toBe("config:\n  OPENAI_API_KEY:\n    secure: abc\n");
  });
});
