import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./helpers/cli";
import {
  ACTIONS_DIR,
  actionAndWorkflowTexts,
  actionFiles,
  actionSchemaErrors,
  allJobs,
  commentsOnPullRequest,
  effectivePermissions,
  environmentsOf,
  loadAction,
  loadWorkflow,
  passesSecretValue,
  pinsIn,
  readWorkflow,
  secretNames,
  secretsPassedTo,
  workflowFiles,
  workflowSchemaErrors,
  type Step,
} from "./helpers/workflows";

/**
 * Rules for every workflow in .github/workflows, whoever wrote it: valid
 * against GitHub's workflow schema, least-privilege permissions, actions
 * pinned by commit, secrets scoped to the steps that use them, installs
 * without lifecycle scripts, and the project's Node version.
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

describe("Actions are pinned by commit", () => {
  const texts = actionAndWorkflowTexts();
  const pins = texts.flatMap(({ file, text }) => pinsIn(text).map((p) => ({ ...p, file })));

  it("every remote action is pinned by its full 40-hex commit SHA, with the release tag in a comment", () => {
    expect(pins.length).toBeGreaterThan(5);
    for (const p of pins) {
      expect(p.ref, `${p.file}: ${p.line}`).toMatch(/^[0-9a-f]{40}$/);
      expect(p.comment, `${p.file}: ${p.line}`).toMatch(/^v\d+\.\d+\.\d+$/);
    }
  });

  it("the pin check is not vacuous: a tag-pinned action is found and fails the SHA rule", () => {
    const [tagged] = pinsIn("      - uses: actions/checkout@v6\n");
    expect(tagged).toMatchObject({ action: "actions/checkout", ref: "v6", comment: "" });
    expect(tagged.ref).not.toMatch(/^[0-9a-f]{40}$/);
    expect(pinsIn("      - uses: ./.github/actions/ops-setup\n")).toEqual([]);
  });

  it("the YAML agrees with the lines read: every parsed `uses` of a remote action ends in a SHA", () => {
    const parsed = [
      ...allJobs().flatMap(({ job }) => job.steps ?? []),
      ...actionFiles().flatMap((f) => loadAction(f).runs.steps),
    ].filter((s) => s.uses && !s.uses.startsWith("./"));
    expect(parsed.length).toBe(pins.length);
    for (const s of parsed) expect(s.uses).toMatch(/^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/);
  });

  it("one pin per action: every file uses the same commit and tag of it", () => {
    const byAction = new Map<string, Set<string>>();
    for (const p of pins) byAction.set(p.action, (byAction.get(p.action) ?? new Set()).add(`${p.ref} ${p.comment}`));
    for (const [action, refs] of byAction) expect([...refs], action).toHaveLength(1);
  });

  it("docs/security.md lists exactly these pins", () => {
    const doc = fs.readFileSync(path.join(ROOT, "docs/security.md"), "utf8");
    const listed = [...doc.matchAll(/^\| `([\w.-]+\/[\w./-]+)` \| `(v\d+\.\d+\.\d+)` \| `([0-9a-f]{40})` \|/gm)].map((m) => `${m[1]}@${m[3]} ${m[2]}`);
    const used = [...new Set(pins.map((p) => `${p.action}@${p.ref} ${p.comment}`))];
    expect(listed.sort()).toEqual(used.sort());
  });
});

const PULUMI_SECRETS = ["PULUMI_CONFIG_PASSPHRASE", "PULUMI_ACCESS_TOKEN"];
const SSH_STEP = "SSH access to the Docker host";
const runsPulumi = (s: Step) =>
  /npm run (deploy|rollback|drift) --/.test(s.run ?? "") || (s.uses?.startsWith("pulumi/actions@") === true && s.with?.command !== undefined);

describe("Secrets reach only the steps that use them", () => {
  const jobs = allJobs();

  it("no workflow or job sets a secret in its env (every step of the job would see it)", () => {
    for (const f of workflowFiles()) {
      const wf = loadWorkflow(f);
      expect(Object.values(wf.env ?? {}).flatMap(secretNames), f).toEqual([]);
    }
    for (const { wf, id, job } of jobs) expect(Object.values(job.env ?? {}).flatMap(secretNames), `${wf.file} ${id}`).toEqual([]);
  });

  it("the passphrase and the backend token go only to steps that run Pulumi", () => {
    let seen = 0;
    for (const { wf, id, job } of jobs) {
      for (const s of job.steps ?? []) {
        const got = secretsPassedTo(s).filter((n) => PULUMI_SECRETS.includes(n));
        if (got.length === 0) continue;
        seen++;
        expect(runsPulumi(s), `${wf.file} ${id}: ${s.name ?? s.uses}`).toBe(true);
      }
    }
    expect(seen).toBeGreaterThanOrEqual(5);
  });

  it("the Docker host's ssh key goes only to the step that writes it for ssh", () => {
    for (const { wf, id, job } of jobs) {
      for (const s of job.steps ?? []) {
        if (!secretsPassedTo(s).includes("DOCKER_SSH_KEY")) continue;
        const where = `${wf.file} ${id}: ${s.name ?? s.uses}`;
        if (s.uses === "./.github/actions/ops-setup") expect(s.with?.["ssh-private-key"], where).toBe("${{ secrets.DOCKER_SSH_KEY }}");
        else expect(s.name, where).toBe(SSH_STEP);
      }
    }
    for (const f of actionFiles()) {
      const users = loadAction(f).runs.steps.filter((s) => JSON.stringify(s).includes("inputs.ssh-private-key"));
      for (const s of users) expect(s.name, f).toBe(SSH_STEP);
    }
  });

  it("a job that receives any secret other than through a presence test runs in a GitHub environment", () => {
    for (const { wf, id, job } of jobs) {
      const passes = (job.steps ?? []).some((s) => secretsPassedTo(s).length > 0);
      if (passes) expect(environmentsOf(wf, job).length, `${wf.file} ${id}`).toBeGreaterThan(0);
    }
  });

  it("steps that only test whether a secret is set see true or false, never the value", () => {
    for (const { job } of jobs) {
      for (const s of job.steps ?? []) {
        for (const v of Object.values(s.env ?? {})) {
          if (secretNames(v).length > 0 && !passesSecretValue(v)) expect(v).toMatch(/^\$\{\{ secrets\.\w+ != '' \}\}$/);
        }
      }
    }
  });

  it("a job that writes the ssh key removes it in its last step, also after a failure", () => {
    for (const { wf, id, job } of jobs) {
      const steps = job.steps ?? [];
      if (!steps.some((s) => secretsPassedTo(s).includes("DOCKER_SSH_KEY"))) continue;
      const last = steps[steps.length - 1];
      expect(last.if, `${wf.file} ${id}`).toBe("always()");
      expect(last.run, `${wf.file} ${id}`).toMatch(/^rm -r?f .*~\/\.ssh\/id_ed25519/);
    }
  });

  it("checkout leaves no token in the clone's git config", () => {
    for (const { wf, id, job } of jobs) {
      for (const s of job.steps ?? []) {
        if (s.uses?.startsWith("actions/checkout@")) expect(s.with?.["persist-credentials"], `${wf.file} ${id}`).toBe(false);
      }
    }
  });
});

describe("Packages install without lifecycle scripts, before any secret is on the runner", () => {
  const installs = [
    ...allJobs().flatMap(({ job }) => job.steps ?? []),
    ...actionFiles().flatMap((f) => loadAction(f).runs.steps),
  ].filter((s) => /\bnpm (ci|install|i)\b/.test(s.run ?? ""));

  it("every npm install in CI is `npm ci --ignore-scripts`", () => {
    expect(installs.length).toBeGreaterThanOrEqual(4);
    for (const s of installs) expect(s.run).toMatch(/^npm ci --ignore-scripts\b/);
  });

  it("the install runs before the first step that receives a secret", () => {
    for (const { wf, id, job } of allJobs()) {
      const steps = job.steps ?? [];
      const firstSecret = steps.findIndex((s) => secretsPassedTo(s).length > 0);
      if (firstSecret < 0) continue;
      const install = steps.findIndex((s) => /^npm ci /.test(s.run ?? "") || s.uses === "./.github/actions/ops-setup");
      expect(install, `${wf.file} ${id}`).toBeGreaterThanOrEqual(0);
      expect(install, `${wf.file} ${id}`).toBeLessThanOrEqual(firstSecret);
    }
    for (const f of actionFiles()) {
      const steps = loadAction(f).runs.steps;
      const ssh = steps.findIndex((s) => s.name === SSH_STEP);
      if (ssh >= 0) expect(steps.findIndex((s) => /^npm ci /.test(s.run ?? "")), f).toBeLessThan(ssh);
    }
  });

  it("the packages with install scripts are the reviewed ones, none of which a runner needs (docs/security.md)", () => {
    const lock = JSON.parse(fs.readFileSync(path.join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, { hasInstallScript?: boolean }> };
    const withScripts = Object.entries(lock.packages)
      .filter(([, p]) => p.hasInstallScript)
      .map(([k]) => k.replace(/^.*node_modules\//, ""))
      .sort();
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { allowScripts: Record<string, boolean> };
    expect(withScripts).toEqual(Object.keys(pkg.allowScripts).sort());
    const doc = fs.readFileSync(path.join(ROOT, "docs/security.md"), "utf8");
    for (const name of withScripts) expect(doc, name).toContain(`| \`${name}\` |`);
  });
});

describe("GitHub environments", () => {
  const doc = fs.readFileSync(path.join(ROOT, "docs/security.md"), "utf8");
  const used = [...new Set(allJobs().flatMap(({ wf, job }) => environmentsOf(wf, job)))].sort();

  it("the workflows use these environments", () => {
    expect(used).toEqual(["production", "production-drift", "production-preview", "release", "staging", "staging-preview"]);
  });

  it("docs/security.md gives each one's reviewers and deployment branch and tag rules", () => {
    for (const env of used) expect(doc, env).toMatch(new RegExp(`^\\| \`${env}\` \\|[^\\n]*\\|[^\\n]*\\|`, "m"));
  });
});

describe("State backups stay where the state lives", () => {
  it("no workflow uploads the deploy's backups/ folder as an artifact", () => {
    for (const { wf, id, job } of allJobs()) {
      for (const s of job.steps ?? []) {
        if (!s.uses?.startsWith("actions/upload-artifact@")) continue;
        expect(String(s.with?.path ?? ""), `${wf.file} ${id}`).not.toMatch(/(^|[\s/])backups\b/);
      }
    }
  });
});
