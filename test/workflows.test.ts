import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import {
  ACTIONS_DIR,
  actionFiles,
  actionRef,
  actionSchemaErrors,
  commentsOnPullRequest,
  effectivePermissions,
  loadWorkflow,
  readWorkflow,
  workflowFiles,
  workflowSchemaErrors,
} from "./helpers/workflows";

/**
 * Rules for every workflow in .github/workflows, whoever wrote it: valid
 * against GitHub's workflow schema, least-privilege permissions, pinned
 * actions, and the project's Node version.
 */

const files = workflowFiles();

describe("GitHub Actions workflows", () => {
  it("the repository has workflows to check", () => {
    expect(files.length).toBeGreaterThan(0);
  });

  it("the schema check is not vacuous: a misspelt key is an error", () => {
    const broken = readWorkflow(files[0]).replace(/runs-on:/, "runs_on:");
    expect(workflowSchemaErrors(broken).join("\n")).toMatch(/runs_on/);
    expect(workflowSchemaErrors("jobs: [")).not.toEqual([]);
  });

  for (const file of files) {
    describe(file, () => {
      const wf = loadWorkflow(file);
      const jobs = Object.entries(wf.jobs ?? {});

      it("is valid against the GitHub Actions workflow schema", () => {
        expect(workflowSchemaErrors(readWorkflow(file))).toEqual([]);
      });

      it("declares its permissions, never write-all, and never writes repository contents", () => {
        expect(wf.permissions, "a top-level permissions block sets the default for every job").toBeDefined();
        for (const [id, job] of jobs) {
          const p = effectivePermissions(wf, job);
          expect(p["*"], `${id}: write-all`).not.toBe("write");
          expect(p.contents ?? "read", `${id}: contents`).not.toBe("write");
        }
      });

      it("grants pull-requests: write only to jobs that comment on the pull request, and to every one that does", () => {
        for (const [id, job] of jobs) {
          const p = effectivePermissions(wf, job);
          expect(p["pull-requests"] === "write", `${id}: pull-requests: write <=> comments`).toBe(commentsOnPullRequest(job));
        }
      });

      it("jobs that do not comment only read (OIDC id-token aside)", () => {
        for (const [id, job] of jobs) {
          if (commentsOnPullRequest(job)) continue;
          const writes = Object.entries(effectivePermissions(wf, job)).filter(([scope, level]) => level === "write" && scope !== "id-token");
          expect(writes, id).toEqual([]);
        }
      });

      it("pins every action to a release (a version tag or a commit), never a branch", () => {
        for (const [id, job] of jobs) {
          for (const step of job.steps ?? []) {
            if (!step.uses || step.uses.startsWith("./") || step.uses.startsWith("docker://")) continue;
            expect(actionRef(step), `${id}: ${step.uses}`).toMatch(/^(v\d+(\.\d+){0,2}|[0-9a-f]{40})$/);
          }
        }
      });

      it("sets up Node from .nvmrc, the project's version", () => {
        for (const [id, job] of jobs) {
          for (const step of job.steps ?? []) {
            if (!step.uses?.startsWith("actions/setup-node@")) continue;
            expect(step.with?.["node-version-file"], id).toBe(".nvmrc");
          }
        }
      });
    });
  }

  for (const file of actionFiles()) {
    it(`composite action ${file} is valid against the action schema`, () => {
      expect(actionSchemaErrors(fs.readFileSync(path.join(ACTIONS_DIR, file), "utf8"))).toEqual([]);
    });
  }
});
