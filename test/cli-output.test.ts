import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StackDiff } from "../ops/diff/diff";
import { renderDiffJson, renderDiffMarkdown } from "../ops/diff/diff-render";
import { renderPlanJson, renderPlanMarkdown, type Plan } from "../ops/offline/plan";
import { renderPolicyJson, renderPolicyText, type PolicyReport } from "../ops/offline/policy";
import { REPOSITORY_PLACEHOLDER } from "../ops/offline/stack-files";
import { validateStack } from "../ops/offline/validate";
import { EXIT } from "../ops/shared/errors";
import { runOpsThroughSlowPipe, STACK_TRACE, type CliResult } from "./helpers/cli";
import { ThrowawayRepo } from "./helpers/git-repo";

/**
 * Every command's output reaches a slow reader whole. A pipe holds 64 KiB;
 * a command that exits while the rest of its output waits for the reader
 * loses it (`| jq` gets invalid JSON). The stack here makes every output
 * more than twice that, and each command runs once, all at the same time,
 * through a real pipe into test/helpers/slow-reader.js.
 *
 * What the command wrote is known without a second run: each JSON output
 * renders back to itself only if it arrived whole, and the markdown and text
 * formats are rendered from the same data as the JSON.
 */

const PIPE_BUFFER = 64 * 1024;
const ENV_ENTRIES = 150;
const SECRETS = 1000;

const pad = (i: number) => String(i).padStart(4, "0");

/**
 * A dev stack with a `:latest` image and 150 credential-named plain settings
 * on each of its 11 containers: the plan is long, and the policy has much to say.
 */
function bigStack(value: string): string {
  const env = Array.from({ length: ENV_ENTRIES }, (_, i) => `      FEATURE_${pad(i)}_TOKEN: ${value}-${pad(i)}-of-a-long-enough-setting`).join("\n");
  return [
    "config:",
    "  appstack:environment: dev",
    "  appstack:api:",
    "    image: ghcr.io/acme/appstack-api:latest",
    "    replicas: 2",
    "    health:",
    "      path: /health",
    '    migrations:\n      command: ["node", "migrate.js"]',
    "    env:",
    env,
    "  appstack:worker:",
    '    command: ["node", "worker.js"]',
    "    replicas: 8",
    "    env:",
    env,
    "",
  ].join("\n");
}

/** 1,000 secrets that still hold the repository's placeholder: validate names each one. */
function manySecretsStack(): string {
  const secrets = Array.from({ length: SECRETS }, (_, i) => `SECRET_${pad(i)}`);
  return [
    "config:",
    "  appstack:environment: dev",
    "  appstack:api:",
    "    image: ghcr.io/acme/appstack-api:latest",
    "    health:",
    "      path: /health",
    `    secretEnv: [${secrets.join(", ")}]`,
    ...secrets.map((s) => `  appstack:${s}:\n    secure: ${REPOSITORY_PLACEHOLDER}`),
    "",
  ].join("\n");
}

/** The command ran to its end, said nothing on stderr, and its stdout is large enough to have filled the pipe twice. */
function expectWhole(r: CliResult, code: number): void {
  expect(r.stderr).not.toMatch(STACK_TRACE);
  expect(r.code, r.stderr).toBe(code);
  expect(Buffer.byteLength(r.stdout), "bytes that reached the reader").toBeGreaterThan(2 * PIPE_BUFFER);
}

/** The diff's JSON holds everything its markdown is rendered from. */
function diffFromJson(json: ReturnType<typeof JSON.parse>): { diff: StackDiff; sides: Parameters<typeof renderDiffMarkdown>[1] } {
  return {
    diff: { stack: json.stack, resources: json.resources, unchanged: json.summary.unchanged, outputs: json.outputs, secureConfig: json.secureConfig, notes: json.notes },
    sides: { baseRef: json.base.ref, baseCommit: json.base.commit, head: json.head },
  };
}

describe("command output through a slow pipe", { timeout: 240_000 }, () => {
  let repo: ThrowawayRepo;
  let runs: Record<string, Promise<CliResult>>;

  beforeAll(() => {
    repo = new ThrowawayRepo();
    repo.write("Pulumi.big.yaml", bigStack("value"));
    repo.write("Pulumi.many-secrets.yaml", manySecretsStack());
    repo.write("policy/config.big.json", '{ "all": "mandatory" }\n');
    const base = repo.commit("a big stack");
    // Every setting changes: the diff lists each one on each container.
    repo.write("Pulumi.big.yaml", bigStack("changed"));
    const run = (...args: string[]) => runOpsThroughSlowPipe(args, { root: repo.dir });
    runs = {
      planJson: run("plan", "--stack", "big", "--format", "json"),
      planMarkdown: run("plan", "--stack", "big", "--format", "markdown"),
      diffJson: run("diff", "--stack", "big", "--base", base, "--format", "json"),
      diffMarkdown: run("diff", "--stack", "big", "--base", base, "--format", "markdown"),
      policyText: run("policy", "--stack", "big"),
      policyJson: run("policy", "--stack", "big", "--format", "json"),
      validate: run("validate", "--stack", "many-secrets"),
      readerLeaves: runOpsThroughSlowPipe(["validate", "--stack", "many-secrets"], { root: repo.dir, reader: "head -c 100" }),
    };
  });
  afterAll(async () => {
    await Promise.allSettled(Object.values(runs ?? {}));
    repo?.remove();
  });

  /** Each command's two formats: the JSON renders back to itself, and the other format is rendered from it. */
  const FORMATS: { command: string; json: string; other: string; format: string; code: number; render(json: unknown): [string, string] }[] = [
    { command: "plan", json: "planJson", other: "planMarkdown", format: "markdown", code: EXIT.ok, render: (j) => [renderPlanJson(j as Plan), renderPlanMarkdown(j as Plan)] },
    {
      command: "diff",
      json: "diffJson",
      other: "diffMarkdown",
      format: "markdown",
      code: EXIT.ok,
      render: (j) => {
        const { diff, sides } = diffFromJson(j);
        expect(diff.resources.length).toBeGreaterThan(10);
        return [renderDiffJson(diff, sides), renderDiffMarkdown(diff, sides)];
      },
    },
    // The exit code still says "not ready" when the output goes into a pipe.
    { command: "policy", json: "policyJson", other: "policyText", format: "text", code: EXIT.policy, render: (j) => [renderPolicyJson(j as PolicyReport), renderPolicyText(j as PolicyReport)] },
  ];

  for (const f of FORMATS) {
    it(`${f.command}: the JSON arrives whole and parses; the ${f.format} is all of it`, async () => {
      const [json, other] = await Promise.all([runs[f.json], runs[f.other]]);
      expectWhole(json, f.code);
      const [asJson, asOther] = f.render(JSON.parse(json.stdout));
      expect(json.stdout).toBe(`${asJson}\n`);
      expectWhole(other, f.code);
      expect(other.stdout).toBe(`${asOther}\n`);
    });
  }

  it("validate: every line arrives, down to the last secret still to set", async () => {
    const r = await runs.validate;
    expectWhole(r, EXIT.ok);
    expect(r.stdout).toBe(`${await validateStack({ root: repo.dir, stack: "many-secrets" })}\n`);
    expect(r.stdout).toContain(`SECRET_${pad(SECRETS - 1)}`);
  });

  it("a reader that stops early (| head) ends the command quietly: no error, no stack trace", async () => {
    const r = await runs.readerLeaves;
    expect(r.stdout).toHaveLength(100);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(EXIT.ok);
  });
});
