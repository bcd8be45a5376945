import type { ConfigMap, ConfigValue, UpdateSummary } from "@pulumi/pulumi/automation";
import { describe, expect, it } from "vitest";
import { EXIT } from "../ops/shared/errors";
import { failure } from "./helpers/errors";
import { chooseRollbackTarget, recordedImages, rollbackConfig } from "../ops/operations/history";
import { historyFixture, updateEntry } from "./helpers/automation";

const C1 = "1".repeat(40);
const C2 = "2".repeat(40);
const C3 = "3".repeat(40);

const update = updateEntry;

describe("rollback target choice on the stack's history", () => {
  // Newest first, as `pulumi stack history --json` prints it: 10 failed update (current), 9 refresh,
  // 8 cancelled update (recorded as failed), 7 failed destroy, 6 preview, 5 succeeded update,
  // 4 interrupted update (in-progress), 3 succeeded, 2 succeeded without a commit, 1 succeeded.
  const history = historyFixture();

  it("the fixture's field names are the SDK's UpdateSummary", () => {
    const keys: (keyof UpdateSummary)[] = ["version", "kind", "result", "startTime", "endTime", "environment", "config", "message", "resourceChanges"];
    for (const k of keys) expect(history[0]).toHaveProperty(k);
    expect(history[0].startTime).toBeInstanceOf(Date);
  });

  it("picks the last succeeded update before the current one, passing over failed, cancelled and non-update entries", () => {
    const choice = chooseRollbackTarget(history, "staging");
    expect(choice.current.version).toBe(10);
    expect(choice.target.version).toBe(5);
    expect(choice.commit).toBe(C2);
    expect(choice.dirty).toBe(false);
  });

  it("works whatever order the history arrives in", () => {
    const shuffled = [...history].reverse();
    expect(chooseRollbackTarget(shuffled, "staging").target.version).toBe(5);
  });

  it("when the current update succeeded, goes back to the success before it", () => {
    const h = [update(3, "succeeded", C3), update(2, "failed", C2), update(1, "succeeded", C1)];
    const choice = chooseRollbackTarget(h, "staging");
    expect([choice.current.version, choice.target.version]).toEqual([3, 1]);
  });

  it("passes over a success that deployed the same commit and config as the current version", () => {
    const cfg = { "appstack:environment": { value: "staging", secret: false } };
    const h = [update(4, "succeeded", C3, cfg), update(3, "succeeded", C3, cfg), update(2, "succeeded", C2, cfg)];
    const choice = chooseRollbackTarget(h, "staging");
    expect(choice.target.version).toBe(2);
    expect(choice.skipped).toEqual([{ version: 3, reason: "same commit and config as the current version" }]);
  });

  it("the same commit with a different config is a real target", () => {
    const h = [
      update(2, "succeeded", C3, { "appstack:environment": { value: "staging", secret: false }, "appstack:api": { value: '{"replicas":3}', secret: false } }),
      update(1, "succeeded", C3, { "appstack:environment": { value: "staging", secret: false }, "appstack:api": { value: '{"replicas":2}', secret: false } }),
    ];
    expect(chooseRollbackTarget(h, "staging").target.version).toBe(1);
  });

  it("--to picks the named succeeded update", () => {
    const choice = chooseRollbackTarget(history, "staging", 3);
    expect(choice.target.version).toBe(3);
    expect(choice.commit).toBe(C1);
  });

  it("--to a version not in the history: usage error listing recent updates", () => {
    const e = failure(() => chooseRollbackTarget(history, "staging", 42));
    expect(e.exitCode).toBe(EXIT.usage);
    expect(e.message).toContain("Version 42 is not in the history of stack \"staging\"");
    expect(e.message).toContain("version 5 (update, succeeded");
  });

  it("--to a refresh, a destroy or a preview is refused: only an update can be redeployed", () => {
    for (const [v, kind] of [[9, "refresh"], [7, "destroy"], [6, "preview"]] as const) {
      const e = failure(() => chooseRollbackTarget(history, "staging", v));
      expect(e.message).toContain(`was a ${kind}, not an update`);
      expect(e.exitCode).toBe(EXIT.usage);
    }
  });

  it("--to a failed, cancelled or interrupted update is refused", () => {
    for (const [v, result] of [[8, "failed"], [4, "in-progress"]] as const) {
      expect(failure(() => chooseRollbackTarget(history, "staging", v)).message).toContain(`did not succeed (${result})`);
    }
  });

  it("--to the current version: nothing to roll back to", () => {
    const e = failure(() => chooseRollbackTarget(history, "staging", 10));
    expect(e.message).toContain("Version 10 is the current version");
    expect(e.exitCode).toBe(EXIT.noRollbackTarget);
  });

  it("no earlier success: a clear error, not a guess", () => {
    const h = [update(3, "failed", C3), update(2, "succeeded", C3), { ...update(1, "succeeded", C1), kind: "refresh" as const }];
    const onlyCurrent = [update(1, "succeeded", C1)];
    for (const hist of [[update(2, "failed", C2), update(1, "failed", C1)], onlyCurrent]) {
      const e = failure(() => chooseRollbackTarget(hist, "staging"));
      expect(e.exitCode).toBe(EXIT.noRollbackTarget);
      expect(e.message).toContain("no successful update before the current");
    }
    // v2 succeeded but deployed what v3 deployed; v1 is a refresh.
    expect(failure(() => chooseRollbackTarget(h, "staging")).exitCode).toBe(EXIT.noRollbackTarget);
  });

  it("a stack never updated has nothing to roll back", () => {
    expect(failure(() => chooseRollbackTarget([], "staging")).message).toContain("has no update in its history");
  });

  it("a target without a recorded commit cannot be recovered and says so", () => {
    const e = failure(() => chooseRollbackTarget(history, "staging", 2));
    expect(e.message).toContain('no recorded commit (environment "git.head")');
  });

  it("flags a target deployed from a dirty working tree", () => {
    const dirty = { ...update(1, "succeeded", C1), environment: { "git.head": C1, "git.dirty": "true" } };
    expect(chooseRollbackTarget([update(2, "failed", C2), dirty], "staging").dirty).toBe(true);
  });
});

describe("rollback config from the recorded update", () => {
  const target = historyFixture().find((u) => u.version === 5)!;

  it("plain values are set as recorded; secret keys keep the stack's current values", () => {
    const { plain, secretKeys } = rollbackConfig(target.config, new Set(["appstack:OPENAI_API_KEY"]), "staging");
    expect(plain["appstack:api"]).toEqual({ value: '{"image":"ghcr.io/example/api:1.4.2","port":3000}', secret: false });
    expect(plain["appstack:environment"]).toEqual({ value: "staging", secret: false });
    expect(Object.values(plain).every((v) => v.secret === false)).toBe(true);
    expect(secretKeys).toEqual(["appstack:OPENAI_API_KEY"]);
    expect(Object.keys(plain)).not.toContain("appstack:OPENAI_API_KEY");
  });

  it("a secret the stack no longer has is an error with the command that sets it", () => {
    const e = failure(() => rollbackConfig(target.config, new Set(), "staging"));
    expect(e.exitCode).toBe(EXIT.prerequisite);
    expect(e.message).toContain("pulumi config set -s staging --secret OPENAI_API_KEY");
  });

  it("never reads a secret's value, even if a history carried one", () => {
    const leaked: ConfigMap = { "appstack:OPENAI_API_KEY": { value: "sk-live-should-never-be-used", secret: true } as ConfigValue };
    const { plain } = rollbackConfig(leaked, new Set(["appstack:OPENAI_API_KEY"]), "staging");
    expect(JSON.stringify(plain)).not.toContain("sk-live");
  });

  it("lists the image references the update deployed, from its recorded config", () => {
    expect(recordedImages(target.config)).toEqual([
      "appstack:api.image = ghcr.io/example/api:1.4.2",
      "appstack:postgres.image = postgres:17.6-alpine",
    ]);
  });
});
