import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { repoStacks, ROOT } from "./helpers/cli";

interface Step {
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

  it("push to main deploys staging; a release tag or a manual run deploys production", () => {
    expect(wf.on.push).toEqual({ branches: ["main"], tags: ["v*.*.*"] });
    expect(wf.on.workflow_dispatch.inputs.stack).toMatchObject({ type: "choice", required: true });
    expect([...wf.on.workflow_dispatch.inputs.stack.options].sort()).toEqual(deployed);
    expect(wf.jobs.staging.if).toContain("github.ref == 'refs/heads/main'");
    expect(wf.jobs.staging.if).toContain("inputs.stack == 'staging'");
    expect(wf.jobs.production.if).toContain("startsWith(github.ref, 'refs/tags/v')");
    expect(wf.jobs.production.if).toContain("inputs.stack == 'production'");
    expect(wf.jobs.production.if).not.toContain("refs/heads/main");
  });

  it("production runs behind the production environment (its required reviewers)", () => {
    expect(envName(wf.jobs.production)).toBe("production");
    expect(envName(wf.jobs.staging)).toBe("staging");
  });

  it("one deploy per stack at a time, never cancelling one in progress", () => {
    for (const stack of ["staging", "production"]) {
      expect(wf.jobs[stack].concurrency).toEqual({ group: `appstack-deploy-${stack}`, "cancel-in-progress": false });
    }
  });

  it("deploys with the smoke check's rollback, a lock wait, the full history for rollback, and keeps the state backup", () => {
    for (const stack of ["staging", "production"]) {
      const job = wf.jobs[stack];
      expect(runs(job)).toContain(`npm run deploy -- --stack ${stack} --yes --rollback-on-failure --lock-timeout 900`);
      expect(job.steps[0]).toEqual({ uses: "actions/checkout@v4", with: { "fetch-depth": 0 } });
      const upload = job.steps.find((s) => s.uses?.startsWith("actions/upload-artifact"));
      expect(upload).toMatchObject({ if: "always()", with: { path: "backups/" } });
    }
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
    expect(job.steps[0]).toEqual({ uses: "actions/checkout@v4", with: { "fetch-depth": 0 } });
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

  it("the daily production check does not wait for production's reviewers", () => {
    const prod = wf.jobs.drift.strategy!.matrix.include.find((m) => m.stack === "production")!;
    expect(prod.environment).not.toBe("production");
  });
});
