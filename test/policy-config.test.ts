import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../ops/cli/cli";
import { EXIT, UserError } from "../ops/shared/errors";
import { policyPackOptions } from "../ops/offline/policy";
import { loadPolicyConfig, PolicyConfigError, resolvePolicyConfig, stacksWithPolicyConfig } from "../policy/config";
import { RULES } from "../policy/rules";
import { repoStacks, ROOT, runOps, STACK_TRACE } from "./helpers/cli";

const problemsOf = (raw: unknown): string[] => {
  try {
    resolvePolicyConfig(raw, RULES, "policy/config.test.json");
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyConfigError);
    return (err as PolicyConfigError).problems;
  }
  throw new Error("expected a PolicyConfigError");
};

const levels = (file: string) => new Map([...loadPolicyConfig(path.join(ROOT, "policy", file), RULES)].map(([k, v]) => [k, v.level]));

describe("policy config: the repository's files", () => {
  it("there is one policy config per stack file, and no other", () => {
    expect(stacksWithPolicyConfig(path.join(ROOT, "policy"))).toEqual(repoStacks());
  });

  it("production enforces every rule as mandatory", () => {
    expect([...levels("config.production.json").values()].every((l) => l === "mandatory")).toBe(true);
  });

  it("staging is mandatory by default and relaxes only what the file names", () => {
    const staging = levels("config.staging.json");
    const relaxed = [...staging].filter(([, l]) => l !== "mandatory").map(([k]) => k);
    expect(relaxed.sort()).toEqual(Object.keys(JSON.parse(fs.readFileSync(path.join(ROOT, "policy/config.staging.json"), "utf8"))).filter((k) => k !== "all").sort());
  });

  it("dev is advisory: no rule can fail a dev preview", () => {
    expect([...levels("config.dev.json").values()].every((l) => l === "advisory" || l === "disabled")).toBe(true);
  });

  it("the pack's directory declares the same dependency versions as the repository", () => {
    const root = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).dependencies;
    const pack = JSON.parse(fs.readFileSync(path.join(ROOT, "policy/package.json"), "utf8")).dependencies;
    for (const [name, version] of Object.entries(pack)) expect(root[name], name).toBe(version);
  });
});

describe("policy config: for the Pulumi CLI", () => {
  it("a preview or update of a stack gets the pack directory and that stack's config file", () => {
    expect(policyPackOptions(ROOT, "staging")).toEqual({ policyPacks: [path.join(ROOT, "policy")], policyPackConfigs: [path.join(ROOT, "policy/config.staging.json")] });
    expect(() => policyPackOptions(ROOT, "qa")).toThrow(/No policy config for stack "qa"/);
  });
});

describe("policy config: settings", () => {
  it("all sets every rule; a rule's own entry wins; settings get their defaults", () => {
    const s = resolvePolicyConfig({ all: "advisory", "pinned-images": "mandatory", "worker-graceful-stop": { minSeconds: 90 } }, RULES, "x");
    expect(s.get("pinned-images")).toEqual({ level: "mandatory", config: {} });
    expect(s.get("worker-graceful-stop")).toEqual({ level: "advisory", config: { minSeconds: 90 } });
    expect(s.get("generated-secret-length")).toEqual({ level: "advisory", config: { minLength: 32 } });
  });

  it("without all, rules are mandatory: the pack fails closed", () => {
    expect(resolvePolicyConfig({}, RULES, "x").get("service-health-check")?.level).toBe("mandatory");
  });

  it("a rule's entry may be an object with enforcementLevel and settings", () => {
    const s = resolvePolicyConfig({ "generated-secret-length": { enforcementLevel: "disabled", minLength: 48 } }, RULES, "x");
    expect(s.get("generated-secret-length")).toEqual({ level: "disabled", config: { minLength: 48 } });
  });
});

describe("policy config: bad input is a clear error", () => {
  it("an unknown enforcement level names the key, the value and the levels", () => {
    expect(problemsOf({ all: "strict" })).toEqual(['"all": "strict" is not an enforcement level (expected one of advisory, mandatory, disabled)']);
    expect(problemsOf({ "pinned-images": "warn" })).toEqual(['"pinned-images": "warn" is not an enforcement level (expected one of advisory, mandatory, disabled)']);
    expect(problemsOf({ "worker-graceful-stop": { enforcementLevel: "hard" } })[0]).toContain('"worker-graceful-stop"."enforcementLevel": "hard" is not an enforcement level');
  });

  it("remediate is refused: this pack has no remediations", () => {
    expect(problemsOf({ all: "remediate" })[0]).toContain("this pack has no remediations");
  });

  it("an unknown rule (a typo) is an error that lists the rules", () => {
    const [p] = problemsOf({ "pinned-image": "disabled" });
    expect(p).toMatch(/^"pinned-image": no such rule in appstack-readiness \(the rules are: .*pinned-images/);
  });

  it("an unknown or mistyped setting is an error; every problem is reported at once", () => {
    const ps = problemsOf({ all: "nope", "worker-graceful-stop": { minSecs: 5 }, "generated-secret-length": { minLength: "long" } });
    expect(ps).toHaveLength(3);
    expect(ps).toContain('"worker-graceful-stop"."minSecs": not a setting of this rule');
    expect(ps.find((p) => p.startsWith('"generated-secret-length"."minLength"'))).toMatch(/expected number/);
  });

  it("a value that is neither a level nor settings, a non-object file, and bad JSON are errors", () => {
    expect(problemsOf({ "pinned-images": 3 })[0]).toMatch(/expected an enforcement level or an object/);
    expect(problemsOf(["mandatory"])[0]).toMatch(/expected a JSON object/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "policy-config-"));
    fs.writeFileSync(path.join(dir, "bad.json"), "{ all: mandatory }");
    expect(() => loadPolicyConfig(path.join(dir, "bad.json"), RULES, "bad.json")).toThrow(/bad.json has 1 problem.*\n\n1\. is not valid JSON/s);
  });
});

describe("policy config: through the command", () => {
  it(`a broken policy config exits ${EXIT.invalidConfig} before the program runs, with the problems and no stack trace`, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "policy-config-"));
    const file = path.join(dir, "config.production.json");
    fs.writeFileSync(file, JSON.stringify({ all: "strict", "pinned-image": "advisory" }));
    const r = runOps(["policy", "--stack", "production", "--policy-config", file]);
    expect(r.code).toBe(EXIT.invalidConfig);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`The policy config ${file} has 2 problems; no rule was run.`);
    expect(r.stderr).toContain('1. "all": "strict" is not an enforcement level');
    expect(r.stderr).toContain('2. "pinned-image": no such rule');
    expect(r.stderr).not.toMatch(STACK_TRACE);
  });

  // The rest fail before any program runs, so the CLI's own entry (runCli) is called in this process.
  const refusal = async (args: string[]): Promise<UserError> => {
    const err = await runCli(args).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UserError);
    return err as UserError;
  };

  it("an unknown stack name is a usage error that lists the stacks", async () => {
    const err = await refusal(["policy", "--stack", "prod"]);
    expect(err.exitCode).toBe(EXIT.usage);
    expect(err.message).toContain('Unknown stack "prod"');
    expect(err.message).toMatch(/dev, production, staging/);
  });

  it("a stack without a policy config says which stacks have one and how to proceed", async () => {
    const err = await refusal(["policy", "--stack-file", path.join(ROOT, "test/fixtures/Pulumi.unready.yaml")]);
    expect(err.exitCode).toBe(EXIT.usage);
    expect(err.message).toContain('No policy config for stack "unready": policy/config.unready.json does not exist.');
    expect(err.message).toContain("Stacks with a policy config: dev, production, staging.");
  });

  it("--all takes no stack and prints text; bad options are usage errors", async () => {
    for (const args of [["--all", "--stack", "dev"], ["--all", "--format", "json"], ["--stack", "dev", "--format", "yaml"], ["--stak", "dev"]]) {
      expect((await refusal(["policy", ...args])).exitCode, args.join(" ")).toBe(EXIT.usage);
    }
  });
});
