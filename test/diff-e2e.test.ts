import * as fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT } from "../ops/shared/errors";
import { SECURE_PLACEHOLDER } from "../ops/offline/stack-files";
import { STACK_TRACE } from "./helpers/cli";
import { ThrowawayRepo } from "./helpers/git-repo";

/**
 * `npm run diff` end to end: a copy of this project in a throwaway git
 * repository, one commit per change, and the real command run against it.
 * Each diff plans the stack twice (base ref and working tree), so the cases
 * share one repository and build on each other's commits.
 */

const NEW_CIPHERTEXT = "v1:bmV3LXNhbHQtZm9yLXRlc3Q=:dGhlIHNlY29uZCBjaXBoZXJ0ZXh0IG9mIHRoZSBrZXk=";
const OPENAI_KEY_LINE = /(appstack:OPENAI_API_KEY:\n\s+secure: )(\S+)/;


describe("npm run diff against a git ref", { timeout: 240_000 }, () => {
  let repo: ThrowawayRepo;
  const commits: Record<string, string> = {};

  beforeAll(() => {
    repo = new ThrowawayRepo();
    commits.initial = repo.commit("the stack as it is");
  });
  afterAll(() => repo?.remove());

  it(`an unchanged stack prints "no changes" and exits ${EXIT.ok}`, () => {
    const r = repo.ops(["diff", "--stack", "dev", "--base", "HEAD"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toContain("no changes");
  });

  it(`a new API image is a new release beside the old one: its containers are created, the old ones deleted (not destructive: exit ${EXIT.ok})`, () => {
    repo.edit("Pulumi.staging.yaml", "image: ghcr.io/acme/appstack-api:1.5.0-rc.1", "image: ghcr.io/acme/appstack-api:1.5.0");
    commits.api = repo.commit("api 1.5.0");
    const r = repo.ops(["diff", "--stack", "staging", "--base", commits.initial, "--format", "json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(EXIT.ok);
    const d = JSON.parse(r.stdout);
    const replicas = (action: string) =>
      d.resources.filter((x: { name: string; action: string }) => /^api-[0-9a-f]{8}-1$/.test(x.name) && x.action === action);
    expect(replicas("create")).toEqual([expect.objectContaining({ type: "docker:index/container:Container" })]);
    expect(replicas("delete")).toEqual([expect.objectContaining({ type: "docker:index/container:Container" })]);
    expect(replicas("create")[0].name).not.toBe(replicas("delete")[0].name);
    expect(d.resources.find((x: { name: string }) => x.name === "api-image")).toMatchObject({ action: "replace" });
    // The edge is switched to the new containers by its config job, which runs again.
    expect(d.resources.find((x: { name: string }) => x.name === "edge-config-run")).toMatchObject({ action: "replace" });
    expect(d.resources.find((x: { name: string }) => x.name === "edge-proxy")).toBeUndefined();
    expect(d.destructive).toEqual([]);
  });

  it("a new Postgres version is flagged destructive at the top and exits with its own code, unless allowed", () => {
    repo.edit("Pulumi.dev.yaml", "    hostPort: 5432\n", "    hostPort: 5432\n    image: postgres:17.7-alpine\n");
    commits.postgres = repo.commit("postgres 17.7");
    const r = repo.ops(["diff", "--stack", "dev", "--base", commits.api]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(EXIT.destructive);
    const banner = r.stdout.indexOf("Destructive");
    expect(banner).toBeGreaterThan(0);
    expect(banner).toBeLessThan(r.stdout.indexOf("to replace"));
    expect(r.stdout).toMatch(/\*\*replace\*\* `postgres-server` \(docker Container\): the postgres server is stopped and recreated/);

    const allowed = repo.ops(["diff", "--stack", "dev", "--base", commits.api, "--allow-destructive", "--format", "json"]);
    expect(allowed.code).toBe(EXIT.ok);
    expect(JSON.parse(allowed.stdout).destructive).toEqual([expect.objectContaining({ name: "postgres-server", action: "replace" })]);
  });

  it("a changed secret is reported as changed without printing either ciphertext or a stand-in value", () => {
    const oldCiphertext = OPENAI_KEY_LINE.exec(repo.read("Pulumi.staging.yaml"))![2];
    repo.edit("Pulumi.staging.yaml", OPENAI_KEY_LINE, `$1${NEW_CIPHERTEXT}`);
    commits.secret = repo.commit("rotate OPENAI_API_KEY");
    const r = repo.ops(["diff", "--stack", "staging", "--base", commits.postgres]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).not.toContain(oldCiphertext);
    expect(r.stdout).not.toContain(NEW_CIPHERTEXT);
    expect(r.stdout).not.toContain(SECURE_PLACEHOLDER);
    expect(r.stdout).toMatch(/`appstack:OPENAI_API_KEY`: changed/);
    // Both services that read the key get it as a secret env var: each container is replaced.
    for (const name of ["api-[0-9a-f]{8}-1", "worker-1"]) {
      expect(r.stdout).toMatch(new RegExp(`\\*\\*\`${name}\`\\*\\* \\(docker Container\\): replace[^*]*?\`envs\\[\\d+\\]\`: secret value changed \\*\\*\\(forces replacement\\)\\*\\*`));
    }
    // The key that did not change (vercelApiToken has the same ciphertext as before) is not reported.
    expect(r.stdout).not.toContain("vercelApiToken");
  });

  it(`a base ref that names no commit: exit ${EXIT.badBaseRef} and how to find one, no stack trace`, () => {
    const r = repo.ops(["diff", "--stack", "staging", "--base", "no-such-branch"]);
    expect(r.code).toBe(EXIT.badBaseRef);
    expect(r.stderr).toContain('Base ref "no-such-branch" does not name a commit');
    expect(r.stderr).toContain("git fetch");
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(r.stdout).toBe("");
  });

  it(`a base ref at which the stack's config is invalid: exit ${EXIT.baseDoesNotEvaluate} with that side's problems`, () => {
    repo.edit("Pulumi.dev.yaml", "    memoryMb: 512\n", "    memoryMb: 512\n    versoin: 17\n");
    commits.broken = repo.commit("a typo");
    repo.edit("Pulumi.dev.yaml", "    versoin: 17\n", "");
    repo.commit("fix the typo");
    const r = repo.ops(["diff", "--stack", "dev", "--base", commits.broken]);
    expect(r.code).toBe(EXIT.baseDoesNotEvaluate);
    expect(r.stderr).toContain(`does not evaluate at ${commits.broken} (${commits.broken.slice(0, 12)})`);
    expect(r.stderr).toContain("appstack:postgres.versoin");
    expect(r.stderr).not.toMatch(STACK_TRACE);
  });

  it(`a stack on one side only: exit ${EXIT.stackOnOneSide}, and it says which side`, () => {
    repo.write("Pulumi.qa.yaml", repo.read("Pulumi.dev.yaml"));
    const r = repo.ops(["diff", "--stack", "qa", "--base", "HEAD"]);
    fs.rmSync(`${repo.dir}/Pulumi.qa.yaml`);
    expect(r.code).toBe(EXIT.stackOnOneSide);
    expect(r.stderr).toMatch(/Stack "qa" is new: Pulumi\.qa\.yaml is in the working tree but not at HEAD/);
    expect(r.stderr).not.toMatch(STACK_TRACE);
  });

  it("leaves no worktree behind, after successes and failures alike", () => {
    expect(repo.worktrees()).toEqual([fs.realpathSync(repo.dir)]);
    // The commands ran with a TMPDIR of their own: whatever they left is there.
    expect(fs.readdirSync(repo.tmpdir).filter((d) => d.startsWith("appstack-diff-"))).toEqual([]);
  });
});
