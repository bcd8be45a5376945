import { createHmac, randomBytes } from "node:crypto";

/**
 * How `diff` tells whether a secret changed without ever seeing or printing
 * it. The diff process draws a random key per run and hands it to both plan
 * processes in this environment variable (never in argv); each plan then adds
 * an HMAC-SHA256 of every secret value under that key. The key dies with the
 * run, so a digest in a log cannot be checked against a guessed value later,
 * and no value or unkeyed hash of a secret is ever printed.
 */
export const DIFF_KEY_ENV = "APPSTACK_DIFF_KEY";

export type DigestKey = Buffer;

/** A fresh key for one diff run. */
export function newDigestKey(): { key: DigestKey; env: Record<string, string> } {
  const key = randomBytes(32);
  return { key, env: { [DIFF_KEY_ENV]: key.toString("hex") } };
}

/**
 * Reads this process's digest key and removes it from the environment, so the
 * program being planned (and anything it spawns) never sees it.
 */
export function takeDigestKey(env: NodeJS.ProcessEnv = process.env): DigestKey | undefined {
  const hex = env[DIFF_KEY_ENV];
  delete env[DIFF_KEY_ENV];
  if (!hex) return undefined;
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${DIFF_KEY_ENV} must be 64 hex characters`);
  return Buffer.from(hex, "hex");
}

/** JSON with sorted keys, so equal values digest equally whatever their key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    return `{${Object.keys(obj)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(obj[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

export function digest(key: DigestKey, value: unknown): string {
  return createHmac("sha256", key).update(canonical(value)).digest("hex");
}
