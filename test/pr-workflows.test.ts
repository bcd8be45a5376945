import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { EXIT } from "../ops/shared/errors";
import { repoStacks, ROOT } from "./helpers/cli";
import {
  effectivePermissions,
  environmentsOf,
  evaluateCondition,
  events,
  loadWorkflow,
  matrixValues,
  pinsIn,
  runStep as runScript,
  stepsUsing,
  type Job,
  type Step,
  type Workflow,
} from "./helpers/workflows";

/**
 * ci.yml and preview.yml: what they run, for which stacks, with which
 * permissions and credentials; and the shell logic of the steps that decide
 * whether a pull request is blocked, executed for real with a stand-in `npm`.
 */

const ci = loadWorkflow("ci.yml");
const preview = loadWorkflow("preview.yml");

function job(wf: Workflow, id: string): Job {
  const j = wf.jobs[id];
  if (!j) throw new Error(`${wf.file} has no job ${id}: ${Object.keys(wf.jobs).join(", ")}`);
  return j;
}

function step(j: Job, predicate: (s: Step) => boolean, what: string): Step {
  const s = (j.steps ?? []).find(predicate);
  if (!s) throw new Error(`no step ${what}`);
  return s;
}

const runs = (j: Job) => (j.steps ?? []).map((s) => s.run ?? "").join("\n");

function runStep(s: Step, env: Record<string, string>, npm?: { stdout?: string; stderr?: string; code: number }) {
  return runScript(s, env, { npm });
}

describe("ci.yml", () => {
  it("runs on pushes to main and on pull requests", () => {
    expect(events(ci)).toEqual(expect.arrayContaining(["push", "pull_request"]));
  });

  it("installs with npm ci on the project's Node, then type-checks and tests", () => {
    const test = job(ci, "test");
    expect(stepsUsing(test, "actions/setup-node")[0].with?.["node-version-file"]).toBe(".nvmrc");
    const script = runs(test);
    for (const cmd of ["npm ci", "npm run typecheck", "npm test"]) expect(script).toContain(cmd);
    expect(script.indexOf("npm ci")).toBeLessThan(script.indexOf("npm run typecheck"));
    expect(effectivePermissions(ci, test)).toEqual({ contents: "read" });
  });
});

describe("preview.yml: pulumi preview per deployed stack", () => {
  const p = job(preview, "preview");
  const pulumi = stepsUsing(p, "pulumi/actions");

  it("runs on pull requests, for staging and production", () => {
    expect(events(preview)).toEqual(["pull_request"]);
    expect(matrixValues(p, "stack")).toEqual(["staging", "production"]);
  });

  it("uses pulumi/actions (current major) to preview with diff, refresh, the policy pack and one edited comment per stack", () => {
    expect(pulumi).toHaveLength(1);
    const pin = pinsIn(fs.readFileSync(path.join(ROOT, ".github/workflows/preview.yml"), "utf8")).find((x) => x.action === "pulumi/actions");
    expect(Number(pin?.comment.replace(/^v/, "").split(".")[0])).toBeGreaterThanOrEqual(7);
    expect(pulumi[0].with).toMatchObject({
      command: "preview",
      "stack-name": "${{ matrix.stack }}",
      "comment-on-pr": true,
      "edit-pr-comment": true,
      diff: true,
      refresh: true,
      policyPacks: "policy",
      policyPackConfigs: "policy/config.${{ matrix.stack }}.json",
    });
    // The pack and each stack's config exist where the step points.
    expect(fs.existsSync(path.join(ROOT, "policy", "PulumiPolicy.yaml"))).toBe(true);
    for (const stack of matrixValues(p, "stack")) expect(fs.existsSync(path.join(ROOT, "policy", `config.${stack}.json`)), String(stack)).toBe(true);
    expect(effectivePermissions(preview, p)).toEqual({ contents: "read", "pull-requests": "write" });
  });

  it("takes the backend, passphrase and ssh key from the stack's preview environment", () => {
    expect(p.environment).toBe("${{ matrix.stack }}-preview");
    expect(environmentsOf(preview, p)).toEqual(["production-preview", "staging-preview"]);
    expect(pulumi[0].with?.["cloud-url"]).toBe("${{ vars.PULUMI_BACKEND_URL }}");
    expect(pulumi[0].env?.PULUMI_CONFIG_PASSPHRASE).toBe("${{ secrets.PULUMI_CONFIG_PASSPHRASE }}");
    expect(JSON.stringify(p.steps)).toContain("secrets.DOCKER_SSH_KEY");
  });

  describe("runs only for pull requests from this repository into main", () => {
    const pr = (over: { action?: string; head?: string; base?: string }) => ({
      github: {
        event_name: "pull_request",
        repository: "acme/appstack",
        base_ref: over.base ?? "main",
        event: { action: over.action ?? "synchronize", pull_request: { head: { repo: { full_name: over.head ?? "acme/appstack" } } } },
      },
    });

    it("a pull request from a branch of this repository into main: previewed", () => {
      expect(evaluateCondition(p.if, pr({}))).toBe(true);
      expect(evaluateCondition(p.if, pr({ action: "opened" }))).toBe(true);
    });

    it("a fork's pull request: no job (GitHub gives forks no secrets; a waiting approval would be noise)", () => {
      expect(evaluateCondition(p.if, pr({ head: "mallory/appstack" }))).toBe(false);
    });

    it("a pull request into another branch, or a label change: no job", () => {
      expect(evaluateCondition(p.if, pr({ base: "release-1.x" }))).toBe(false);
      expect(evaluateCondition(p.if, pr({ action: "labeled" }))).toBe(false);
      expect(evaluateCondition(p.if, pr({ action: "unlabeled" }))).toBe(false);
    });
  });

  describe("skips cleanly where the secrets are not available", () => {
    const check = step(p, (s) => s.id === "credentials", "credentials");
    const all = { STACK: "staging", HAS_BACKEND: "true", HAS_PASSPHRASE: "true", HAS_SSH_KEY: "true", HAS_KNOWN_HOSTS: "true" };

    it("every step after the check runs only when credentials are available", () => {
      const later = (p.steps ?? []).slice((p.steps ?? []).indexOf(check) + 1).filter((s) => s.name !== "Remove the ssh key");
      for (const s of later) expect(s.if, s.name ?? s.uses ?? s.run).toBe("steps.credentials.outputs.available == 'true'");
    });

    it("the check reads whether each secret is set, never its value", () => {
      for (const value of Object.values(check.env ?? {})) {
        if (value.includes("secrets.")) expect(value).toMatch(/^\$\{\{ secrets\.\w+ != '' \}\}$/);
      }
    });

    it("a missing secret: skipped, naming what to configure", () => {
      const r = runStep(check, { ...all, HAS_PASSPHRASE: "false", HAS_KNOWN_HOSTS: "false" });
      expect(r.code).toBe(0);
      expect(r.outputs.available).toBe("false");
      expect(r.summary).toContain("Pulumi preview of `staging` skipped");
      expect(r.summary).toContain("secret PULUMI_CONFIG_PASSPHRASE, variable DOCKER_SSH_KNOWN_HOSTS");
      expect(r.summary).toContain("staging-preview");
    });

    it("everything configured: the preview runs", () => {
      const r = runStep(check, all);
      expect(r.outputs.available).toBe("true");
      expect(r.summary).toBe("");
    });
  });
});

describe("preview.yml: the offline diff gate", () => {
  const diffJob = job(preview, "offline-diff");
  const commentJob = job(preview, "offline-diff-comment");
  const diffStep = step(diffJob, (s) => s.id === "diff", "diff");
  const gate = step(diffJob, (s) => s.name?.startsWith("Fail on destructive") ?? false, "gate");
  const env = { STACK: "production", BASE_SHA: "0123456789abcdef0123456789abcdef01234567", BASE_REF: "main", ALLOW_DESTRUCTIVE: "false" };

  it("covers every stack file in the repository, with read-only permissions and the base commit in the clone", () => {
    expect(matrixValues(diffJob, "stack")).toEqual(repoStacks().sort((a, b) => ["dev", "staging", "production"].indexOf(a) - ["dev", "staging", "production"].indexOf(b)));
    expect(effectivePermissions(preview, diffJob)).toEqual({ contents: "read" });
    expect(stepsUsing(diffJob, "actions/checkout")[0].with?.["fetch-depth"]).toBe(0);
    expect(diffStep.env?.BASE_SHA).toBe("${{ github.event.pull_request.base.sha }}");
    expect(diffStep.env?.ALLOW_DESTRUCTIVE).toBe("${{ contains(github.event.pull_request.labels.*.name, 'allow-destructive') }}");
  });

  it("re-runs when the allow-destructive label is added or removed", () => {
    expect((preview.on as { pull_request: { types: string[] } }).pull_request.types).toEqual(expect.arrayContaining(["labeled", "unlabeled", "synchronize"]));
  });

  it("puts no ${{ }} expression inside a script (values reach scripts through env only)", () => {
    for (const j of Object.values(preview.jobs)) for (const s of j.steps ?? []) expect(s.run ?? "", s.name).not.toContain("${{");
  });

  it("no changes: the comment is the diff, and the gate passes", () => {
    const r = runStep(diffStep, env, { stdout: "### Offline diff: stack `production`\n\nStack `production`: no changes\n", code: 0 });
    expect(r.npmArgs).toBe(`run -s diff -- --stack production --base ${env.BASE_SHA} --format markdown`);
    expect(r.outputs.code).toBe("0");
    expect(r.comment).toContain("no changes");
    expect(r.summary).toBe(r.comment);
    expect(runStep(gate, { CODE: "0", STACK: "production" }).code).toBe(0);
  });

  it("destructive changes without the label: the comment says how to accept them, and the gate fails", () => {
    const r = runStep(diffStep, env, { stdout: "> **Destructive: 1 change ...**\n", code: EXIT.destructive });
    expect(r.outputs.code).toBe(String(EXIT.destructive));
    expect(r.comment).toContain("Destructive");
    expect(r.comment).toContain("adds the `allow-destructive` label to accept them");
    const g = runStep(gate, { CODE: String(EXIT.destructive), STACK: "production" });
    expect(g.code).toBe(1);
    expect(g.stdout).toContain("::error title=Destructive changes::");
  });

  it("with the label: diff runs with --allow-destructive and the comment records the acceptance", () => {
    const r = runStep(diffStep, { ...env, ALLOW_DESTRUCTIVE: "true" }, { stdout: "> **Destructive: 1 change ...**\n", code: 0 });
    expect(r.npmArgs).toContain("--allow-destructive");
    expect(r.comment).toContain("accepted by the `allow-destructive` label");
  });

  it("a stack new in this pull request is a note, not a failure; a diff that could not run fails with its message", () => {
    const added = runStep(diffStep, env, { stderr: 'Stack "production" is new: ...', code: EXIT.stackOnOneSide });
    expect(added.comment).toContain('Stack "production" is new');
    expect(added.comment).not.toContain("failed");
    expect(runStep(gate, { CODE: String(EXIT.stackOnOneSide), STACK: "production" }).code).toBe(0);

    const failed = runStep(diffStep, env, { stderr: "Base ref ... does not name a commit", code: EXIT.badBaseRef });
    expect(failed.comment).toContain(`failed (exit ${EXIT.badBaseRef})`);
    expect(failed.comment).toContain("does not name a commit");
    expect(runStep(gate, { CODE: String(EXIT.badBaseRef), STACK: "production" }).code).toBe(1);
  });

  it("the comment job runs no repository code, only comments, skips forks, and posts one sticky comment per stack", () => {
    expect(stepsUsing(commentJob, "actions/checkout")).toEqual([]);
    expect((commentJob.steps ?? []).some((s) => s.run)).toBe(false);
    expect(effectivePermissions(preview, commentJob)).toEqual({ "pull-requests": "write" });
    expect(commentJob.if).toContain("github.event.pull_request.head.repo.full_name == github.repository");
    expect(matrixValues(commentJob, "stack")).toEqual(matrixValues(diffJob, "stack"));
    const upload = stepsUsing(diffJob, "actions/upload-artifact")[0];
    const download = stepsUsing(commentJob, "actions/download-artifact")[0];
    expect(download.with?.name).toBe(upload.with?.name);
    const sticky = stepsUsing(commentJob, "marocchino/sticky-pull-request-comment")[0];
    expect(sticky.with).toMatchObject({ header: "offline-diff-${{ matrix.stack }}", path: upload.with?.path });
  });
});
