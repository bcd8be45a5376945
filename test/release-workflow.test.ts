import { execFile, execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RELEASE_SERVICES } from "../ops/offline/stack-file-edit";
import { EXIT } from "../ops/shared/errors";
import { repoStacks, ROOT } from "./helpers/cli";
import { parse } from "yaml";
import { effectivePermissions, events, loadWorkflow, workflowSchemaErrors, type Step } from "./helpers/workflows";

/**
 * release.yml: what starts it, what it may do, and the injection rules
 * preview.yml follows (no expression inside a script; values reach scripts
 * through env), plus one of its own: the inputs are checked by Node before
 * any shell sees them. Its steps run for real here: the Node check with
 * hostile inputs, the bash steps with stand-ins for npm and gh and a real git.
 */

const wf = loadWorkflow("release.yml");
const job = wf.jobs.release;
const steps = job.steps ?? [];
const byName = (prefix: string): Step => {
  const s = steps.find((x) => x.name?.startsWith(prefix));
  if (!s) throw new Error(`release.yml has no step "${prefix}..."`);
  return s as Step;
};
const check = byName("Check the inputs") as Step & { shell?: string };
const change = byName("Change the image line");
const open = byName("Open the pull request");
const on = wf.on as { workflow_dispatch: { inputs: Record<string, { type: string; options?: string[]; required?: boolean }> }; repository_dispatch: { types: string[] } };

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-release-wf-"));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  summary: string;
  dir: string;
}

/** Runs a step's script as the runner would: bash -e -o pipefail, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files, stand-in programs first on PATH. */
function runStep(s: Step, env: Record<string, string | undefined>, opts: { cwd: string; bin?: Record<string, string> }): Run {
  const dir = fs.mkdtempSync(path.join(scratch, "step-"));
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin);
  for (const [name, script] of Object.entries(opts.bin ?? {})) fs.writeFileSync(path.join(bin, name), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  const [output, summary] = [path.join(dir, "output"), path.join(dir, "summary")];
  fs.writeFileSync(output, "");
  fs.writeFileSync(summary, "");
  const base = { PATH: `${bin}:${process.env.PATH}`, HOME: dir, GITHUB_OUTPUT: output, GITHUB_STEP_SUMMARY: summary };
  const fullEnv = Object.fromEntries(Object.entries({ ...base, ...env }).filter(([, v]) => v !== undefined)) as Record<string, string>;
  const r = spawnSync("bash", ["--noprofile", "--norc", "-e", "-o", "pipefail", "-c", s.run ?? ""], { cwd: opts.cwd, encoding: "utf8", env: fullEnv });
  const lines = fs.readFileSync(output, "utf8").split("\n").filter(Boolean);
  return {
    code: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    outputs: Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)])),
    summary: fs.readFileSync(summary, "utf8"),
    dir,
  };
}

const git = (cwd: string, ...args: string[]) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.com", ...args], { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();

/** A clone of a bare "origin" holding the stack files, as actions/checkout leaves the workspace. */
function workspace(): { dir: string; origin: string } {
  const origin = fs.mkdtempSync(path.join(scratch, "origin-"));
  git(origin, "init", "-q", "--bare", "-b", "main");
  const dir = fs.mkdtempSync(path.join(scratch, "ws-"));
  git(dir, "init", "-q", "-b", "main");
  for (const s of repoStacks()) fs.copyFileSync(path.join(ROOT, `Pulumi.${s}.yaml`), path.join(dir, `Pulumi.${s}.yaml`));
  git(dir, "add", "-A");
  git(dir, "commit", "-q", "-m", "stacks");
  git(dir, "remote", "add", "origin", origin);
  git(dir, "push", "-q", "origin", "main");
  return { dir, origin };
}

const DIGEST_IMAGE = `ghcr.io/acme/appstack-api@sha256:${"ab".repeat(32)}`;

describe("release.yml: triggers and permissions", () => {
  it("runs by hand (stack, service, image) or from the app's repository (repository_dispatch appstack-release)", () => {
    expect(events(wf).sort()).toEqual(["repository_dispatch", "workflow_dispatch"]);
    const inputs = on.workflow_dispatch.inputs;
    expect([...inputs.stack.options!].sort()).toEqual(repoStacks().filter((s) => s !== "dev"));
    expect(inputs.service.options).toEqual([...RELEASE_SERVICES]);
    expect(inputs.image).toMatchObject({ type: "string", required: true });
    expect(on.repository_dispatch.types).toEqual(["appstack-release"]);
  });

  it("its GITHUB_TOKEN only reads; the branch and pull request go through RELEASE_TOKEN, given to that one step", () => {
    expect(effectivePermissions(wf, job)).toEqual({ contents: "read" });
    const withToken = steps.filter((s) => JSON.stringify(s).includes("secrets."));
    expect(withToken).toEqual([open]);
    expect(open.env?.GH_TOKEN).toBe("${{ secrets.RELEASE_TOKEN }}");
    expect(steps[0].with?.["persist-credentials"]).toBe(false);
  });
});

describe("release.yml: injection rules", () => {
  const RAW = /github\.event\.(inputs|client_payload)|(?<![\w.])inputs\./;

  it("no ${{ }} expression inside any script", () => {
    for (const s of steps) expect(s.run ?? "", s.name).not.toContain("${{");
  });

  it("the raw inputs reach one step only, the Node check, and it runs before every step that has a shell", () => {
    const raw = steps.filter((s) => RAW.test(JSON.stringify(s.env ?? {})) || RAW.test(s.if ?? ""));
    expect(raw).toEqual([check]);
    expect(check.shell).toBe("node {0}");
    const shellsBefore = steps.slice(0, steps.indexOf(check)).filter((s) => s.run);
    // Before it: only `npm ci`, which sees no input.
    expect(shellsBefore.map((s) => s.run)).toEqual(["npm ci --ignore-scripts --no-audit --no-fund"]);
    expect(shellsBefore.every((s) => s.env === undefined)).toBe(true);
  });

  it("later steps read the checked values only", () => {
    for (const s of [change, open]) {
      for (const name of ["STACK", "SERVICE", "IMAGE"]) expect(s.env?.[name], `${s.name}: ${name}`).toBe(`\${{ steps.inputs.outputs.${name.toLowerCase()} }}`);
    }
  });
});

/** The Node check as the runner runs it (`node {0}`: the script in a file), in the repository; several at once, each loads TypeScript. */
function runCheck(env: Record<string, string | undefined>): Promise<Run> {
  const dir = fs.mkdtempSync(path.join(scratch, "check-"));
  const [script, output] = [path.join(dir, "script.js"), path.join(dir, "output")];
  fs.writeFileSync(script, check.run ?? "");
  fs.writeFileSync(output, "");
  const fullEnv = Object.fromEntries(Object.entries({ PATH: process.env.PATH, HOME: dir, GITHUB_OUTPUT: output, ...env }).filter(([, v]) => v !== undefined)) as Record<string, string>;
  return new Promise((resolve) =>
    execFile(process.execPath, [script], { cwd: ROOT, env: fullEnv, encoding: "utf8" }, (err, stdout, stderr) => {
      const lines = fs.readFileSync(output, "utf8").split("\n").filter(Boolean);
      const outputs = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr, outputs, summary: "", dir });
    }),
  );
}

describe("release.yml: the Node check, run with the inputs a caller could send", () => {
  const valid = { STACK: "staging", SERVICE: "api", IMAGE: DIGEST_IMAGE };
  const hostile: [string, Record<string, string | undefined>, RegExp][] = [
    ["a command in the image", { IMAGE: '$(touch "$HOME/pwned")' }, /is not an image reference/],
    ["a second output smuggled in with a newline", { IMAGE: `${DIGEST_IMAGE}\nstack=production` }, /is not an image reference/],
    ["a shell in the service", { SERVICE: "api`touch $HOME/pwned`" }, /--service must be one of api, worker/],
    ["a path as the stack", { STACK: "../../../etc/passwd" }, /is not a valid stack name/],
    ["a payload without an image", { IMAGE: undefined }, /The release names no image/],
  ];
  const runs = new Map<string, Run>();
  beforeAll(async () => {
    const all = await Promise.all([runCheck(valid), ...hostile.map(([, over]) => runCheck({ ...valid, ...over }))]);
    runs.set("valid", all[0]);
    hostile.forEach(([what], i) => runs.set(what, all[i + 1]));
  }, 60_000);

  it("valid inputs become the step's outputs", () => {
    const r = runs.get("valid")!;
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.outputs).toEqual({ stack: "staging", service: "api", image: DIGEST_IMAGE });
  });

  for (const [what, , message] of hostile) {
    it(`${what}: the job stops with the reason, no output is written`, () => {
      const r = runs.get(what)!;
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^::error title=Release inputs::/);
      expect(r.stdout).toMatch(message);
      expect(r.stdout.trim().split("\n")).toHaveLength(1);
      expect(r.outputs).toEqual({});
      expect(fs.existsSync(path.join(r.dir, "pwned"))).toBe(false);
    });
  }
});

describe("release.yml: the release and pull-request steps, with stand-ins for npm and gh", () => {
  /** An npm that changes the image line as npm run release would, prints a diff, and exits with `code`. */
  const npm = (code: number, change = true) =>
    `printf '%s\\n' "$*" > "$HOME/npm.args"\n` +
    (change ? `sed -i 's|image: ghcr.io/acme/appstack-api:1.5.0-rc.1|image: ${DIGEST_IMAGE}|' Pulumi.staging.yaml\n` : "") +
    `echo "### Offline diff: stack \\\`staging\\\`"\nexit ${code}`;
  const env = { STACK: "staging", SERVICE: "api", IMAGE: DIGEST_IMAGE };

  it("a change: npm run release with the checked values; the diff in the summary; changed=true", () => {
    const { dir } = workspace();
    const r = runStep(change, env, { cwd: dir, bin: { npm: npm(0) } });
    expect(r.code).toBe(0);
    expect(fs.readFileSync(path.join(r.dir, "npm.args"), "utf8").trim()).toBe(`run -s release -- --stack staging --service api --image ${DIGEST_IMAGE}`);
    expect(r.summary).toContain("### Offline diff: stack `staging`");
    expect(r.outputs.changed).toBe("true");
  });

  it("destructive changes (exit 11) still open the pull request, where the gate decides; any other failure stops the job", () => {
    const { dir } = workspace();
    expect(runStep(change, env, { cwd: dir, bin: { npm: npm(EXIT.destructive) } }).outputs.changed).toBe("true");
    const failed = runStep(change, env, { cwd: workspace().dir, bin: { npm: npm(EXIT.invalidConfig, false) } });
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain("::error title=Release failed::npm run release exited with 1");
  });

  it("the image it already runs: no pull request, a notice", () => {
    const r = runStep(change, env, { cwd: workspace().dir, bin: { npm: npm(0, false) } });
    expect(r.code).toBe(0);
    expect(r.outputs.changed).toBe("false");
    expect(r.stdout).toContain("::notice title=Nothing to release::");
  });

  it("opens a pull request from a new branch holding one commit that changes the stack file alone", () => {
    const { dir, origin } = workspace();
    runStep(change, env, { cwd: dir, bin: { npm: npm(0) } });
    fs.writeFileSync(path.join(dir, "release.md"), "### Offline diff: stack `staging`\n");
    const gh = `printf '%s\\n' "$@" >> "$HOME/gh.args"; echo "--" >> "$HOME/gh.args"`;
    const r = runStep(open, { ...env, GH_TOKEN: "token-for-test", BASE: "main", RUN_URL: "https://example.invalid/run/1", TRIGGER: "repository_dispatch" }, { cwd: dir, bin: { gh } });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const branches = git(origin, "branch", "--list", "appstack-release/*").replace(/^\*?\s*/gm, "").split("\n");
    expect(branches).toHaveLength(1);
    expect(branches[0]).toMatch(/^appstack-release\/staging-api-\d{8}T\d{6}Z$/);
    expect(git(origin, "log", "--format=%s", "-1", branches[0])).toBe(`Release api of staging: ${DIGEST_IMAGE}`);
    expect(git(origin, "diff", "--numstat", "main", branches[0])).toBe("1\t1\tPulumi.staging.yaml");
    const calls = fs.readFileSync(path.join(r.dir, "gh.args"), "utf8").split("--\n").filter(Boolean).map((c) => c.trim().split("\n"));
    expect(calls[0]).toEqual(["auth", "setup-git"]);
    expect(calls[1]).toEqual(["pr", "create", "--base", "main", "--head", branches[0], "--title", `Release api of staging: ${DIGEST_IMAGE}`, "--body-file", "body.md"]);
    const body = fs.readFileSync(path.join(dir, "body.md"), "utf8");
    expect(body).toContain("### Offline diff: stack `staging`");
    expect(body).toContain("Opened by the release workflow (repository_dispatch): https://example.invalid/run/1");
  });

  it("without RELEASE_TOKEN: stops before anything is pushed, saying which secret to add and why", () => {
    const { dir, origin } = workspace();
    const r = runStep(open, { ...env, GH_TOKEN: "", BASE: "main" }, { cwd: dir, bin: { gh: "exit 99" } });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("::error title=No RELEASE_TOKEN::Add the secret RELEASE_TOKEN to the release environment");
    expect(git(origin, "branch", "--list", "appstack-release/*")).toBe("");
  });
});

describe("docs/releases.md: the workflow for the app's repository", () => {
  const doc = fs.readFileSync(path.join(ROOT, "docs", "releases.md"), "utf8");
  const text = /<!-- app-repository-workflow -->\n```yaml\n([\s\S]*?)```/.exec(doc)?.[1] ?? "";
  const app = parse(text) as { jobs: Record<string, { steps: Step[] }> };
  const appSteps = app.jobs?.image?.steps ?? [];
  const dispatch = appSteps.find((s) => s.name === "Ask appstack for a release pull request")!;

  it("is in the doc, valid against GitHub's workflow schema, its actions pinned by commit", () => {
    expect(text).toContain("name: image");
    expect(workflowSchemaErrors(text)).toEqual([]);
    for (const s of appSteps.filter((x) => x.uses)) expect(s.uses, s.uses).toMatch(/^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/);
  });

  it("follows the same injection rules: no expression inside a script", () => {
    for (const s of appSteps) expect(s.run ?? "", s.name).not.toContain("${{");
  });

  it("sends the event and payload release.yml reads (its dispatch step, run with a stand-in gh)", () => {
    const r = runStep(dispatch, { GH_TOKEN: "t", SERVICE: "worker", IMAGE: DIGEST_IMAGE }, { cwd: scratch, bin: { gh: `printf '%s\\n' "$@" > "$HOME/gh.args"` } });
    expect(r.code).toBe(0);
    const args = fs.readFileSync(path.join(r.dir, "gh.args"), "utf8").trim().split("\n");
    expect(args.slice(0, 2)).toEqual(["api", "repos/acme/appstack/dispatches"]);
    const fields = Object.fromEntries(args.slice(2).filter((a) => a !== "-f").map((a) => [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)]));
    expect(fields).toEqual({ event_type: on.repository_dispatch.types[0], "client_payload[stack]": "staging", "client_payload[service]": "worker", "client_payload[image]": DIGEST_IMAGE });
    // The fields release.yml's check reads from the payload.
    for (const name of ["stack", "service", "image"]) expect(JSON.stringify(check.env)).toContain(`github.event.client_payload.${name}`);
  });
});
