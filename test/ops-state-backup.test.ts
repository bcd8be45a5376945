import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Deployment, Stack } from "@pulumi/pulumi/automation";
import { describe, expect, it } from "vitest";
import { exportEncrypted } from "../ops/operations/automation";
import { backupTimestamp, plaintextSecretPaths, writeStateBackup } from "../ops/operations/state-backup";

const FIXTURES = path.join(__dirname, "fixtures/automation");
const SIG = "4dabf18193072939515e22adb298388d";
const SECRET = "1b47061264138c4ac30d75fd1eb44270";

/** `pulumi stack export` output: secrets as ciphertext. */
const encrypted = (): Deployment => JSON.parse(fs.readFileSync(path.join(FIXTURES, "state-export.staging.json"), "utf8"));
/** `pulumi stack export --show-secrets` output (what Stack.exportStack() returns): the same secrets in plain text. */
const showSecrets = (): Deployment => JSON.parse(fs.readFileSync(path.join(FIXTURES, "state-export-show-secrets.staging.json"), "utf8"));

/** Every secret signature object in a parsed JSON value. */
function secretObjects(v: unknown): Record<string, unknown>[] {
  if (Array.isArray(v)) return v.flatMap(secretObjects);
  if (v === null || typeof v !== "object") return [];
  const o = v as Record<string, unknown>;
  if (o[SIG] === SECRET) return [o];
  return Object.values(o).flatMap(secretObjects);
}

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "appstack-state-"));

describe("pre-deploy state backup", () => {
  it("writes backups/<stack>/<ISO time>.json with every secret still ciphertext, readable by the owner only", () => {
    const root = tmp();
    const file = writeStateBackup(root, "staging", encrypted(), new Date("2025-06-03T09:00:00.000Z"));
    expect(path.relative(root, file)).toBe(path.join("backups", "staging", "20250603T090000.000Z.json"));
    const written = JSON.parse(fs.readFileSync(file, "utf8"));
    expect(written).toEqual(encrypted());
    const secrets = secretObjects(written);
    expect(secrets.length).toBe(5);
    for (const s of secrets) {
      expect(s).not.toHaveProperty("plaintext");
      expect(typeof s.ciphertext).toBe("string");
    }
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it("refuses a state with plain-text secrets (what Stack.exportStack() returns) and writes nothing", () => {
    const root = tmp();
    const state = showSecrets();
    expect(plaintextSecretPaths(state)).toEqual([
      "deployment.resources[0].outputs.connections",
      "deployment.resources[3].outputs.result",
      "deployment.resources[3].outputs.bcryptHash",
      "deployment.resources[4].inputs.envs",
      "deployment.resources[4].outputs.envs",
    ]);
    expect(() => writeStateBackup(root, "staging", state, new Date())).toThrow(/5 secret\(s\) in plain text/);
    expect(fs.existsSync(path.join(root, "backups"))).toBe(false);
  });

  it("the timestamp is ISO 8601 (basic format), sorts by time and has no colon", () => {
    const a = backupTimestamp(new Date("2025-06-03T09:00:00.000Z"));
    const b = backupTimestamp(new Date("2025-11-03T09:00:00.000Z"));
    expect(a).toBe("20250603T090000.000Z");
    expect([b, a].sort()).toEqual([a, b]);
    expect(a).not.toContain(":");
  });

  it("two deploys in the same millisecond do not overwrite each other's backup", () => {
    const root = tmp();
    const at = new Date("2025-06-03T09:00:00.000Z");
    writeStateBackup(root, "staging", encrypted(), at);
    expect(() => writeStateBackup(root, "staging", encrypted(), at)).toThrow(/EEXIST/);
  });

  it("the export runs `pulumi stack export` without --show-secrets, through the workspace's own runner", async () => {
    const seen: string[][] = [];
    const workspace = {
      async runPulumiCmd(args: string[]) {
        seen.push(args);
        return { stdout: fs.readFileSync(path.join(FIXTURES, "state-export.staging.json"), "utf8") };
      },
    };
    const state = await exportEncrypted({ name: "staging", workspace } as unknown as Stack);
    expect(seen).toEqual([["stack", "export", "--stack", "staging"]]);
    expect(plaintextSecretPaths(state)).toEqual([]);
  });
});
