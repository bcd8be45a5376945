import * as fs from "node:fs";
import * as path from "node:path";
import * as rpc from "@pulumi/pulumi/runtime/rpc";
import type { Deployment } from "@pulumi/pulumi/automation";

/** ISO 8601 in its basic format (20250601T120000.000Z): sorts by time, and no colons, so it is a valid file and artifact name everywhere. */
export function backupTimestamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, "");
}

/** Paths (`deployment.resources[3].outputs.result`) of secret values that carry plain text instead of ciphertext. */
export function plaintextSecretPaths(value: unknown, at = ""): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => plaintextSecretPaths(v, `${at}[${i}]`));
  if (value === null || typeof value !== "object") return [];
  const obj = value as Record<string, unknown>;
  if (obj[rpc.specialSigKey] === rpc.specialSecretSig) {
    return "ciphertext" in obj && !("plaintext" in obj) && !("value" in obj) ? [] : [at];
  }
  return Object.entries(obj).flatMap(([k, v]) => plaintextSecretPaths(v, at ? `${at}.${k}` : k));
}

/** Owner read/write only: the state names every resource and holds secrets, encrypted. */
export const STATE_BACKUP_MODE = 0o600;

/**
 * Writes the pre-deploy state to `backups/<stack>/<time>.json`, readable by
 * the owner only. Refuses (writes nothing) when any secret in it is not
 * ciphertext: a state backup must be as safe to keep as the backend's own copy.
 */
export function writeStateBackup(root: string, stack: string, state: Deployment, at: Date): string {
  const leaks = plaintextSecretPaths(state);
  if (leaks.length > 0) {
    throw new Error(
      `refusing to write a state backup with ${leaks.length} secret(s) in plain text (first at ${leaks[0]}); ` +
        "the export must keep secrets encrypted",
    );
  }
  const dir = path.join(root, "backups", stack);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${backupTimestamp(at)}.json`);
  fs.writeFileSync(file, JSON.stringify(state, null, 2) + "\n", { mode: STATE_BACKUP_MODE, flag: "wx" });
  return file;
}
