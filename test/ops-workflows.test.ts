import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { repoStacks, ROOT } from "./helpers/cli";
import { evaluateCondition, runStep } from "./helpers/workflows";

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
  if?: string;
}
interface Job {
  if?: string;
  environment?: string | { name: string };
  concurrency?: { group: string; "cancel-in-progress": boolean };
  permissions?: unknown;
  strategy?: { matrix: { include: { stack: string; environment: string }[] } };
  "continue-on-error"?: unknown;
  steps: Step[];
}
interface Workflow {
  on: Record<string, any>;
  permissions: Record<string, string>;
  jobs: Record<string, Job>;
}

const load = (name: string): Workflow => parse(fs.readFileSync(path.join(ROOT, ".github/workflows", name), "utf8"));
const envName = (j: Job) => (typeof j.environment === "string" ? j.environment : j.environment?.name);
const runs = (j: Job) => j.steps.map((s) => s.run ?? "").join("\n");
/** Stacks the workflows deploy: every stack file but dev, sorted. */
const deployed = repoStacks().filter((s) => s !== "dev");

/** The contexts an `if:` sees for one trigger. */
const push = (ref: string) => ({ github: { event_name: "push", ref }, inputs: {} });
const dispatch = (ref: string, inputs: Record<string, string> = {}) => ({ github: { event_name: "workflow_dispatch", ref }, inputs });
const schedule = (ref: string) => ({ github: { event_name: "schedule", ref }, inputs: {} });
const CHECKOUT = "actions/checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd";

describe("ops workflows", () => {
  const files = ["deploy.yml", "rollback.yml", "drift.yml"];

  it("every one reads the repository and writes nothing", () => {
    for (const f of files) {
      const wf = load(f);
      expect(wf.permissions, f).toEqual({ contents: "read" });
      for (const job of Object.values(wf.jobs)) expect(job.permissions, f).toBeUndefined();
    }
  });

  it("every job sets up through the shared action and runs an npm ops command, not the Pulumi CLI", () => {
    for (const f of files) {
      for (const job of Object.values(load(f).jobs)) {
        expect(job.steps.map((s) => s.uses)).toContain("./.github/actions/ops-setup");
        expect(runs(job)).toMatch(/npm run (deploy|rollback|drift) --/);
        expect(runs(job)).not.toMatch(/(^|\s)pulumi (up|refresh|preview|stack)/m);
      }
    }
  });

  it("no workflow input or matrix value is expanded inside a shell script", () => {
    for (const f of files) {
      for (const job of Object.values(load(f).jobs)) {
        for (const s of job.steps) expect(s.run ?? "", f).not.toMatch(/\$\{\{\s*(inputs|matrix|github\.event)\./);
      }
    }
  });
});

describe("deploy.yml", () => {
  const wf = load("deploy.yml");
  const runsFor = (job: string, ctx: Record<string, unknown>) => evaluateCondition(wf.jobs[job].if, ctx);

  it("triggers: pushes to main, release tags, and a manual run that names the stack", () => {
    expect(wf.on.push).toEqual({ branches: ["main"], tags: ["v*.*.*"] });
    expect(wf.on.workflow_dispatch.inputs.stack).toMatchObject({ type: "choice", required: true });
    expect([...wf.on.workflow_dispatch.inputs.stack.options].sort()).toEqual(deployed);
  });

  it("staging deploys main only: every push to it, or a manual run from it", () => {
    expect(runsFor("staging", push("refs/heads/main"))).toBe(true);
    expect(runsFor("staging", dispatch("refs/heads/main", { stack: "staging" }))).toBe(true);
    expect(runsFor("staging", dispatch("refs/heads/feature", { stack: "staging" }))).toBe(false);
    expect(runsFor("staging", push("refs/tags/v1.4.2"))).toBe(false);
    expect(runsFor("staging", dispatch("refs/heads/main", { stack: "production" }))).toBe(false);
  });

  it("production deploys release tags only: pushed, or a manual run from the tag; never a branch", () => {
    expect(runsFor("production", push("refs/tags/v1.4.2"))).toBe(true);
    expect(runsFor("production", dispatch("refs/tags/v1.4.2", { stack: "production" }))).toBe(true);
    expect(runsFor("production", push("refs/heads/main"))).toBe(false);
    expect(runsFor("production", dispatch("refs/heads/main", { stack: "production" }))).toBe(false);
    expect(runsFor("production", dispatch("refs/heads/feature", { stack: "production" }))).toBe(false);
    expect(runsFor("production", dispatch("refs/tags/v1.4.2", { stack: "staging" }))).toBe(false);
  });

  it("production runs behind the production environment (its reviewers and tag rule)", () => {
    expect(envName(wf.jobs.production)).toBe("production");
    expect(envName(wf.jobs.staging)).toBe("staging");
  });

  it("one deploy per stack at a time, never cancelling one in progress", () => {
    for (const stack of ["staging", "production"]) {
      expect(wf.jobs[stack].concurrency).toEqual({ group: `appstack-deploy-${stack}`, "cancel-in-progress": false });
    }
  });

  it("deploys with the smoke check's rollback, a lock wait and the full history for rollback", () => {
    for (const stack of ["staging", "production"]) {
      const job = wf.jobs[stack];
      expect(runs(job)).toContain(`npm run deploy -- --stack ${stack} --yes --rollback-on-failure --lock-timeout 900`);
      expect(job.steps[0]).toEqual({ uses: CHECKOUT, with: { "fetch-depth": 0, "persist-credentials": false } });
    }
  });

  it("publishes no state backup as an artifact, and removes the runner's copy with the ssh key", () => {
    for (const stack of ["staging", "production"]) {
      const job = wf.jobs[stack];
      expect(job.steps.some((s) => s.uses?.startsWith("actions/upload-artifact"))).toBe(false);
      expect(job.steps[job.steps.length - 1]).toMatchObject({ if: "always()", run: "rm -rf ~/.ssh/id_ed25519 backups" });
    }
  });

  describe("production checks that the tag is a release on main before any credential reaches the job", () => {
    const job = wf.jobs.production;
    const check = job.steps.find((s) => s.name === "The tag is a release on main")!;
    const repo = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-tags-"));
    afterAll(() => fs.rmSync(repo, { recursive: true, force: true }));
    const git = (...args: string[]) =>
      execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", ...args], { cwd: repo, encoding: "utf8" }).trim();
    // main: A - B, with origin/main as actions/checkout leaves it; a branch off A: C, never merged.
    git("init", "--quiet", "--initial-branch=main");
    git("commit", "--quiet", "--allow-empty", "-m", "A");
    const a = git("rev-parse", "HEAD");
    git("commit", "--quiet", "--allow-empty", "-m", "B");
    const b = git("rev-parse", "HEAD");
    git("update-ref", "refs/remotes/origin/main", b);
    git("checkout", "--quiet", "-b", "unreviewed", a);
    git("commit", "--quiet", "--allow-empty", "-m", "C");
    const c = git("rev-parse", "HEAD");
    const verify = (tag: string, sha: string) => runStep(check, { TAG: tag, GITHUB_SHA: sha }, { cwd: repo });

    it("comes before the ops setup, which writes the ssh key", () => {
      expect(job.steps.indexOf(check)).toBeGreaterThan(0);
      expect(job.steps.indexOf(check)).toBeLessThan(job.steps.findIndex((s) => s.uses === "./.github/actions/ops-setup"));
      expect(check.env).toEqual({ TAG: "${{ github.ref_name }}" });
    });

    it("a tag on main's latest commit or an older one of main: passes", () => {
      expect(verify("v1.4.2", b)).toMatchObject({ code: 0 });
      expect(verify("v1.4.1", a).code).toBe(0);
      expect(verify("v1.5.0-rc.1", b).code).toBe(0);
    });

    it("a tag on a commit main does not contain: fails, naming the tag and the commit", () => {
      const r = verify("v9.9.9", c);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(`::error title=Tag not on main::Tag v9.9.9 points at ${c}, which main does not contain`);
    });

    it("a tag that is not a release version: fails before looking at git", () => {
      for (const tag of ["v1.4", "vnext.1.2", "v1.2.3;id", "release-1.2.3"]) {
        const r = verify(tag, b);
        expect(r.code, tag).toBe(1);
        expect(r.stdout, tag).toContain("::error title=Not a release tag::");
      }
    });
  });
});

describe("rollback.yml", () => {
  const wf = load("rollback.yml");

  it("is manual only: a stack to choose and an optional version", () => {
    expect(Object.keys(wf.on)).toEqual(["workflow_dispatch"]);
    const inputs = wf.on.workflow_dispatch.inputs;
    expect(inputs.stack).toMatchObject({ type: "choice", required: true });
    expect([...inputs.stack.options].sort()).toEqual(deployed);
    expect(inputs.version).toMatchObject({ type: "string", required: false });
  });

  it("shares the deploy's concurrency group and environment for the chosen stack", () => {
    const job = wf.jobs.rollback;
    expect(job.concurrency).toEqual({ group: "appstack-deploy-${{ inputs.stack }}", "cancel-in-progress": false });
    expect(job.environment).toBe("${{ inputs.stack }}");
    expect(job.steps[0]).toEqual({ uses: CHECKOUT, with: { "fetch-depth": 0, "persist-credentials": false } });
  });

  it("runs from main only: the rollback logic that holds the credentials is reviewed code", () => {
    const job = wf.jobs.rollback;
    expect(evaluateCondition(job.if, dispatch("refs/heads/main", { stack: "production" }))).toBe(true);
    expect(evaluateCondition(job.if, dispatch("refs/heads/feature", { stack: "production" }))).toBe(false);
    expect(evaluateCondition(job.if, dispatch("refs/tags/v1.4.2", { stack: "production" }))).toBe(false);
  });

  it("passes the version as --to only when one was given", () => {
    const step = wf.jobs.rollback.steps.find((s) => s.run?.includes("npm run rollback"))!;
    expect(step.env).toMatchObject({ STACK: "${{ inputs.stack }}", VERSION: "${{ inputs.version }}" });
    expect(step.run).toContain('if [ -n "$VERSION" ]; then args+=(--to "$VERSION"); fi');
    expect(step.run).toContain('npm run rollback -- "${args[@]}"');
  });
});

describe("drift.yml", () => {
  const wf = load("drift.yml");

  it("runs on a schedule (and by hand), for every deployed stack, each to its end", () => {
    expect(wf.on.schedule).toEqual([{ cron: expect.stringMatching(/^\S+ \S+ \* \* \*$/) }]);
    expect(wf.on).toHaveProperty("workflow_dispatch");
    const job = wf.jobs.drift;
    expect(job.strategy!.matrix.include.map((m) => m.stack).sort()).toEqual(deployed);
    expect((job.strategy as { "fail-fast"?: boolean })["fail-fast"]).toBe(false);
  });

  it("fails loudly: the drift command's exit code fails the job, nothing swallows it", () => {
    const job = wf.jobs.drift;
    expect(runs(job)).toContain('npm run drift -- --stack "$STACK"');
    expect(job["continue-on-error"]).toBeUndefined();
    for (const s of job.steps) expect((s as Record<string, unknown>)["continue-on-error"]).toBeUndefined();
  });

  it("the daily production check does not wait for production's reviewers: its own environment, admitted from main only", () => {
    const prod = wf.jobs.drift.strategy!.matrix.include.find((m) => m.stack === "production")!;
    expect(prod.environment).toBe("production-drift");
  });

  it("runs from main only: the schedule, or a manual run from main", () => {
    const job = wf.jobs.drift;
    expect(evaluateCondition(job.if, schedule("refs/heads/main"))).toBe(true);
    expect(evaluateCondition(job.if, dispatch("refs/heads/main"))).toBe(true);
    expect(evaluateCondition(job.if, dispatch("refs/heads/feature"))).toBe(false);
  });
});
