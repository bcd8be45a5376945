import { describe, expect, it } from "vitest";
import { EXIT } from "../ops/shared/errors";
import { failure } from "./helpers/errors";
import { stackEnv } from "../ops/operations/stack-env";
import { STAGING_STACK, tempProject } from "./helpers/project";

const SALTED = "encryptionsalt: v1:c2FsdA==:v1:bm9uY2U=:Y2hlY2s=\n" + STAGING_STACK;
const root = tempProject({ "Pulumi.staging.yaml": SALTED, "Pulumi.dev.yaml": "encryptionsalt: v1:c2FsdA==:v1:bm9uY2U=:Y2hlY2s=\nconfig:\n  appstack:environment: dev\n", "Pulumi.cloud.yaml": STAGING_STACK });

describe("the passphrase each stack gets", () => {
  it("dev without a passphrase: an empty one, said out loud", () => {
    const e = stackEnv(root, "dev", { env: {} });
    expect(e.envVars).toEqual({ PULUMI_CONFIG_PASSPHRASE: "" });
    expect(e.notes.join()).toContain("empty passphrase");
  });

  it("dev with one set: nothing is defaulted", () => {
    expect(stackEnv(root, "dev", { env: { PULUMI_CONFIG_PASSPHRASE: "mine" } }).envVars).toEqual({});
  });

  it("a passphrase stack outside dev without one: what to set", () => {
    const e = failure(() => stackEnv(root, "staging", { env: {} }));
    expect(e.exitCode).toBe(EXIT.prerequisite);
    expect(e.message).toContain("neither PULUMI_CONFIG_PASSPHRASE nor PULUMI_CONFIG_PASSPHRASE_FILE is set");
  });

  it("an empty passphrase outside dev is an unset CI secret, not a choice", () => {
    expect(failure(() => stackEnv(root, "staging", { env: { PULUMI_CONFIG_PASSPHRASE: "" } })).message).toContain("is empty (an unset CI secret?)");
  });

  it("a passphrase file, or a set passphrase, is enough", () => {
    expect(stackEnv(root, "staging", { env: { PULUMI_CONFIG_PASSPHRASE_FILE: "/run/secrets/p" } }).envVars).toEqual({});
    expect(stackEnv(root, "staging", { env: { PULUMI_CONFIG_PASSPHRASE: "s3cret" } }).envVars).toEqual({});
  });

  it("a stack without a passphrase salt (Pulumi Cloud secrets) needs none", () => {
    expect(stackEnv(root, "cloud", { env: {} }).envVars).toEqual({});
  });

  it("up:dev pins the local file backend and says when it overrides PULUMI_BACKEND_URL", () => {
    const e = stackEnv(root, "dev", { localBackend: true, env: { PULUMI_BACKEND_URL: "s3://team-state" } });
    expect(e.envVars.PULUMI_BACKEND_URL).toBe("file://~");
    expect(e.notes.join()).toContain("not PULUMI_BACKEND_URL=s3://team-state");
  });
});
