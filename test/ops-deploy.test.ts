import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import type { Deployment, OutputMap } from "@pulumi/pulumi/automation";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { deploy } from "../ops/operations/deploy";
import { EXIT, UserError } from "../ops/shared/errors";
import { REPOSITORY_PLACEHOLDER } from "../ops/offline/stack-files";
import { commandError, concurrentUpdateError, DIY_LOCK_STDERR, FakeAutomation, FakeClock, testContext, updateEntry } from "./helpers/automation";
import { deployOptions } from "./helpers/deploy-options";
import { commitAll, git, STAGING_STACK, tempProject } from "./helpers/project";

const STATE: Deployment = JSON.parse(fs.readFileSync(path.join(__dirname, "fixtures/automation/state-export.staging.json"), "utf8"));

let server: http.Server;
let base: string;
beforeAll(async () => {
  server = http.createServer((req, res) => {
    res.statusCode = req.url === "/health" ? 200 : 503;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => {
  delete process.env.PULUMI_CONFIG_PASSPHRASE;
  delete process.env.PULUMI_CONFIG_PASSPHRASE_FILE;
});

function outputs(healthPath: string): OutputMap {
  return {
    version: { value: "1.5.0", secret: false },
    endpoints: { value: { api: { url: base, healthUrl: `${base}${healthPath}`, image: "ghcr.io/example/api:1.5.0" } }, secret: false },
  };
}

const options = deployOptions;

describe("deploy", () => {
  it("validates, backs up the state, runs up with streamed output, then smoke-checks every service", async () => {
    const root = tempProject({ "Pulumi.staging.yaml": STAGING_STACK });
    const auto = new FakeAutomation(() => ({ state: STATE, up: () => ({ outputs: outputs("/health"), version: 12 }) }));
    const ctx = testContext(root, auto);
    expect(await deploy(ctx, options(root))).toBe(EXIT.ok);

    expect(auto.ops()).toEqual(["cliVersion", "openStack", "exportState", "up"]);
    const backups = fs.readdirSync(path.join(root, "backups/staging"));
    expect(backups).toEqual(["20250603T090000.000Z.json"]);
    expect(JSON.parse(fs.readFileSync(path.join(root, "backups/staging", backups[0]), "utf8"))).toEqual(STATE);
    expect(ctx.streamed.join("")).toContain("Updating (fake)");
    const out = ctx.lines.join("\n");
    expect(out).toContain('Stack "staging" (');
    expect(out).toContain("configuration is valid");
    expect(out).toContain("State before the update: backups/staging/20250603T090000.000Z.json (secrets stay encrypted)");
    expect(out).toMatch(/ok +api +http:\/\/127\.0\.0\.1:\d+\/health +200/);
    expect(out).toContain('Deployed stack "staging" (version 12); every service is healthy.');
  });

  it("stops at the Docker preflight, before any stack is opened or anything changes", async () => {
    const root = tempProject({ "Pulumi.staging.yaml": STAGING_STACK });
    const auto = new FakeAutomation(() => ({ state: STATE }));
    const refused = new UserError("The Docker engine at docker.host (ssh://deploy@staging.example.com) does not answer", EXIT.dockerHost);
    const err = await deploy(testContext(root, auto), options(root, { preflight: () => Promise.reject(refused) })).catch((e) => e);
    expect(err).toBe(refused);
    // Only the CLI's version was asked for (the CLI check comes first: it may install one).
    expect(auto.ops()).toEqual(["cliVersion"]);
    expect(fs.existsSync(path.join(root, "backups"))).toBe(false);
  });

  it("prints the preflight's engine line before it deploys", async () => {
    const root = tempProject({ "Pulumi.staging.yaml": STAGING_STACK });
    const auto = new FakeAutomation(() => ({ state: STATE, up: () => ({ outputs: outputs("/health"), version: 12 }) }));
    const ctx = testContext(root, auto);
    await deploy(ctx, options(root));
    expect(ctx.lines).toContain("Docker engine at ssh://deploy@staging.example.com: Docker 27.5.1, API 1.47 (linux/amd64).");
  });

  it("refuses a stack whose config does not validate: nothing reaches Pulumi", async () => {
    const root = tempProject({ "Pulumi.staging.yaml": STAGING_STACK.replace("mode: container\n    image: postgres", "mode: container\n    imgae: postgres") });
    const auto = new FakeAutomation(() => ({}));
    const err = await deploy(testContext(root, auto), options(root)).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.exitCode).toBe(EXIT.invalidConfig);
    expect(err.message).toContain("appstack:postgres.imgae");
    expect(auto.calls).toEqual([]);
  });

  it("refuses a stack whose secrets still hold the repository's placeholder, naming the command to set each", async () => {
    const root = tempProject({ "Pulumi.staging.yaml": fs.readFileSync(path.join(__dirname, "../Pulumi.staging.yaml"), "utf8") });
    expect(fs.readFileSync(path.join(root, "Pulumi.staging.yaml"), "utf8")).toContain(REPOSITORY_PLACEHOLDER);
    const auto = new FakeAutomation(() => ({}));
    const err = await deploy(testContext(root, auto), options(root)).catch((e) => e);
    expect(err.exitCode).toBe(EXIT.invalidConfig);
    expect(err.message).toContain("still hold the repository's placeholder");
    expect(err.message).toMatch(/pulumi config set -s staging --secret \w+$/m);
    expect(auto.calls).toEqual([]);
  });

  it("a state export that fails stops before the update, with the CLI's message", async () => {
    const root = tempProject({ "Pulumi.staging.yaml": STAGING_STACK });
    const auto = new FakeAutomation(() => ({ state: commandError("error: failed to decrypt: incorrect passphrase") }));
    const err = await deploy(testContext(root, auto), options(root)).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.exitCode).toBe(EXIT.updateFailed);
    expect(err.message).toContain("nothing was deployed");
    expect(err.message).toContain("incorrect passphrase");
    expect(auto.ops()).not.toContain("up");
  });

  it("a state export with plain-text secrets is refused and nothing is deployed", async () => {
    const root = tempProject({ "Pulumi.staging.yaml": STAGING_STACK });
    const plain = JSON.parse(fs.readFileSync(path.join(__dirname, "fixtures/automation/state-export-show-secrets.staging.json"), "utf8"));
    const auto = new FakeAutomation(() => ({ state: plain }));
    const err = await deploy(testContext(root, auto), options(root)).catch((e) => e);
    expect(err.message).toContain("secret(s) in plain text");
    expect(auto.ops()).not.toContain("up");
    expect(fs.existsSync(path.join(root, "backups"))).toBe(false);
  });

  it("without --yes: preview, then ask; a no changes nothing and takes no backup", async () => {
    const root = tempProject({ "Pulumi.staging.yaml": STAGING_STACK });
    const auto = new FakeAutomation(() => ({}));
    const ctx = testContext(root, auto);
    expect(await deploy(ctx, options(root, { yes: false }))).toBe(EXIT.ok);
    expect(auto.ops()).toEqual(["cliVersion", "openStack", "preview"]);
    expect(ctx.questions).toEqual(['Deploy these changes to stack "staging"?']);
    expect(fs.existsSync(path.join(root, "backups"))).toBe(false);
  });

  it("waits for another update's lock, with a message, then deploys", async () => {
    const root = tempProject({ "Pulumi.staging.yaml": STAGING_STACK });
    const auto = new FakeAutomation(() => ({
      up: (attempt) => {
        if (attempt <= 2) throw concurrentUpdateError(DIY_LOCK_STDERR);
        return { outputs: outputs("/health"), version: 7 };
      },
    }));
    const clock = new FakeClock();
    const ctx = testContext(root, auto, { clock });
    expect(await deploy(ctx, options(root))).toBe(EXIT.ok);
    expect(auto.ops().filter((o) => o === "up")).toHaveLength(3);
    expect(auto.ops().filter((o) => o === "exportState")).toHaveLength(1);
    expect(ctx.lines.filter((l) => l.includes("is locked by another update"))).toHaveLength(2);
    expect(clock.sleeps).toEqual([5000, 5000]);
  });

  it(`a lock held past --lock-timeout ends the deploy with exit code ${EXIT.locked}`, async () => {
    const root = tempProject({ "Pulumi.staging.yaml": STAGING_STACK });
    const auto = new FakeAutomation(() => ({
      up: () => {
        throw concurrentUpdateError(DIY_LOCK_STDERR);
      },
    }));
    const err = await deploy(testContext(root, auto), options(root, { lockTimeoutSeconds: 10 })).catch((e) => e);
    expect(err.exitCode).toBe(EXIT.locked);
    expect(auto.ops().filter((o) => o === "up")).toHaveLength(3);
  });

  it("a failed update is reported with the engine's error and the rollback command", async () => {
    const root = tempProject({ "Pulumi.staging.yaml": STAGING_STACK });
    const auto = new FakeAutomation(() => ({
      up: () => {
        throw commandError("error: update failed\n  docker:index/container:Container (api-1): container exited unhealthy");
      },
    }));
    const err = await deploy(testContext(root, auto), options(root)).catch((e) => e);
    expect(err.exitCode).toBe(EXIT.updateFailed);
    expect(err.message).toContain("container exited unhealthy");
    expect(err.message).toContain("npm run rollback -- --stack staging");
    expect(auto.ops().filter((o) => o === "up")).toHaveLength(1);
  });

  it(`a failed smoke check without --rollback-on-failure exits ${EXIT.unhealthy} and says how to roll back`, async () => {
    const root = tempProject({ "Pulumi.staging.yaml": STAGING_STACK });
    const auto = new FakeAutomation(() => ({ up: () => ({ outputs: outputs("/broken"), version: 12 }) }));
    const ctx = testContext(root, auto);
    const err = await deploy(ctx, options(root)).catch((e) => e);
    expect(err.exitCode).toBe(EXIT.unhealthy);
    expect(err.message).toContain("Smoke check failed after version 12");
    expect(err.message).toContain("api (503)");
    expect(err.message).toContain("npm run rollback -- --stack staging");
    expect(ctx.lines.join("\n")).toMatch(/FAIL api .* 503/);
    expect(auto.ops()).not.toContain("history");
  });

  it("dev without a passphrase gets the empty one, and up:dev pins the local file backend", async () => {
    const root = tempProject({ "Pulumi.dev.yaml": "config:\n  appstack:environment: dev\n" });
    const auto = new FakeAutomation(() => ({}));
    const ctx = testContext(root, auto);
    expect(await deploy(ctx, options(root, { stack: "dev", init: true, localBackend: true }))).toBe(EXIT.ok);
    const open = auto.calls.find((c) => c.op === "openStack")!.detail as { create: boolean; envVars: Record<string, string> };
    expect(open.create).toBe(true);
    expect(open.envVars).toEqual({ PULUMI_BACKEND_URL: "file://~", PULUMI_CONFIG_PASSPHRASE: "" });
    expect(ctx.lines.join("\n")).toContain("dev stack: secrets use an empty passphrase");
    expect(ctx.lines.join("\n")).toContain("Smoke check skipped");
  });
});

describe("deploy --rollback-on-failure", () => {
  function repoWithHistory() {
    const root = tempProject({ "Pulumi.staging.yaml": STAGING_STACK });
    fs.writeFileSync(path.join(root, ".gitignore"), "backups/\nnode_modules\n");
    const good = commitAll(root, "good release");
    fs.writeFileSync(path.join(root, "index.ts"), "// new release\n");
    const bad = commitAll(root, "bad release");
    const config = { "appstack:environment": { value: "staging", secret: false } };
    return { root, good, history: [updateEntry(12, "succeeded", bad, config), updateEntry(11, "succeeded", good, config)] };
  }

  it("a failed smoke check rolls back to the previous successful version, and the deploy still fails", async () => {
    const { root, good, history } = repoWithHistory();
    const heads: string[] = [];
    const auto = new FakeAutomation((workDir) => ({
      history,
      up: () => {
        heads.push(git(workDir, "rev-parse", "HEAD"));
        return workDir === root ? { outputs: outputs("/broken"), version: 12 } : { outputs: outputs("/health"), version: 13 };
      },
    }));
    const ctx = testContext(root, auto);
    const err = await deploy(ctx, options(root, { rollbackOnFailure: true })).catch((e) => e);
    expect(err.exitCode).toBe(EXIT.unhealthy);
    expect(err.message).toContain("Rolled back to the previous successful version");
    // The second up ran the previous release's commit.
    expect(heads[1]).toBe(good);
    const rollbackUp = auto.calls.filter((c) => c.op === "up")[1];
    expect((rollbackUp.detail as { message: string }).message).toBe(
      `appstack rollback to version 11 (${good.slice(0, 12)}): smoke check failed after version 12`,
    );
    const out = ctx.lines.join("\n");
    expect(out).toContain("Rolling back (--rollback-on-failure).");
    expect(out).toContain("to:   version 11 (update, succeeded");
  });

  it("a failed update rolls back too", async () => {
    const { root, history } = repoWithHistory();
    const auto = new FakeAutomation((workDir) => ({
      history,
      up: () => {
        if (workDir === root) throw commandError("error: update failed");
        return { version: 13 };
      },
    }));
    const err = await deploy(testContext(root, auto), options(root, { rollbackOnFailure: true })).catch((e) => e);
    expect(err.exitCode).toBe(EXIT.updateFailed);
    expect(err.message).toContain("Rolled back to the previous successful version");
    expect(auto.ops().filter((o) => o === "up")).toHaveLength(2);
  });

  it("when the rollback itself cannot run, both failures are reported", async () => {
    const { root, history } = repoWithHistory();
    const auto = new FakeAutomation(() => ({ history: history.slice(0, 1), up: () => ({ outputs: outputs("/broken"), version: 12 }) }));
    const err = await deploy(testContext(root, auto), options(root, { rollbackOnFailure: true })).catch((e) => e);
    expect(err.exitCode).toBe(EXIT.unhealthy);
    expect(err.message).toContain("Smoke check failed after version 12");
    expect(err.message).toContain("The automatic rollback did not complete either");
    expect(err.message).toContain("no successful update before the current");
  });
});
