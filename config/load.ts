import * as pulumi from "@pulumi/pulumi";
import * as runtimeConfig from "@pulumi/pulumi/runtime/config";
import { z } from "zod";
import { ConfigError, type ConfigProblem } from "./errors";
import { appConfigSchema, parseAppConfig, type IssueParams, type ParsedAppConfig, type SchemaIssue } from "./schema";

/** The typed model of one stack, with every secret still a secret Output. */
export type AppConfig = ParsedAppConfig & {
  /** The stack name, for labels and messages. */
  stack: string;
  /** Secure keys by name, read only through `requireSecret`. */
  secrets: Record<string, pulumi.Output<string>>;
};

/**
 * The SDK's own test for "this key was set with --secret" (it reads the secret
 * key list the engine passes in). It is marked internal in the SDK's typings,
 * so fail loudly if a future SDK drops it rather than treat secrets as plain.
 */
function isConfigSecret(fullKey: string): boolean {
  const fn = (runtimeConfig as unknown as { isConfigSecret?: (k: string) => boolean }).isConfigSecret;
  if (typeof fn !== "function") throw new Error("@pulumi/pulumi no longer exports runtime/config isConfigSecret; appstack needs an update");
  return fn(fullKey);
}

/** Namespaces besides `appstack:` that a stack file may hold. */
const ALLOWED_NAMESPACES = new Set(["pulumi"]);

/**
 * Reads and validates the `appstack:` configuration of the current stack.
 * Throws one ConfigError that lists every problem; registers nothing.
 */
export function loadConfig(cfg: pulumi.Config = new pulumi.Config()): AppConfig {
  const ns = cfg.name;
  const stack = pulumi.getStack();
  const problems: ConfigProblem[] = [];
  // No prototype: a key named "__proto__" must be an unknown setting, not a prototype swap that hides it.
  const raw: Record<string, unknown> = Object.create(null);
  const secureKeys = new Set<string>();
  // Every command of a fix, not only the first, names the stack.
  const withStack = (fix: string) => fix.replace(/\bpulumi config (set|rm) (?!-s )/g, `pulumi config $1 -s ${stack} `);

  for (const [fullKey, value] of Object.entries(runtimeConfig.allConfig())) {
    const colon = fullKey.indexOf(":");
    const [keyNs, key] = [fullKey.slice(0, colon), fullKey.slice(colon + 1)];
    if (keyNs !== ns) {
      if (!ALLOWED_NAMESPACES.has(keyNs)) {
        problems.push({
          key: fullKey,
          problem: `appstack reads only "${ns}:" keys; "${keyNs}:" settings configure nothing here`,
          fix: withStack(`pulumi config rm ${fullKey}`) + `  (then set the ${ns}: equivalent, see README "Configuration")`,
        });
      }
      continue;
    }
    if (isConfigSecret(fullKey)) {
      secureKeys.add(key);
      continue;
    }
    raw[key] = parseConfigValue(value);
  }

  // A schema key stored as a secret would hide the whole object; secrets are top-level keys.
  for (const key of Object.keys(appConfigSchema.shape)) {
    if (secureKeys.has(key)) {
      secureKeys.delete(key);
      problems.push({
        key: `${ns}:${key}`,
        problem: "holds a secure value; settings are plain and each secret is a top-level secure key",
        fix: withStack(`pulumi config rm ${key}`) + `, then set the setting plainly and the secret with pulumi config set -s ${stack} --secret <NAME> <value>`,
      });
    }
  }

  const parsed = parseAppConfig(raw);
  for (const issue of parsed.issues) problems.push(...describeIssue(ns, raw, issue, withStack));

  const neededKeys = new Set(parsed.requiredSecrets.map((n) => n.key));
  for (const { key, usedBy } of parsed.requiredSecrets) {
    if (secureKeys.has(key)) continue;
    problems.push({
      key: `${ns}:${key}`,
      problem: key in raw
        ? `is stored in plain text in the stack file; ${usedBy} needs it as a secret`
        : `is not set; ${usedBy} needs this secret`,
      fix: withStack(`pulumi config set --secret ${key} <value>`),
    });
  }
  for (const key of secureKeys) {
    if (!neededKeys.has(key)) {
      problems.push({
        key: `${ns}:${key}`,
        problem: "is a secret that no service uses (a misspelt name?)",
        fix: withStack(`pulumi config rm ${key}`) + "  (or reference it from a service's secretEnv)",
      });
    }
  }

  if (problems.length > 0 || !parsed.data) throw new ConfigError(stack, dedupe(problems));

  const secrets: Record<string, pulumi.Output<string>> = {};
  for (const key of secureKeys) secrets[key] = cfg.requireSecret(key);
  return { ...parsed.data, stack, secrets };
}

/** Structured values arrive as JSON text; scalars as their string. */
function parseConfigValue(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

function keyPath(ns: string, path: PropertyKey[]): string {
  let out = `${ns}:`;
  path.forEach((seg, i) => {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += (i === 0 ? "" : ".") + String(seg);
  });
  return out;
}

function valueAt(raw: unknown, path: PropertyKey[]): unknown {
  let cur: unknown = raw;
  for (const seg of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return cur;
}

function describeIssue(
  ns: string,
  raw: Record<string, unknown>,
  issue: SchemaIssue,
  withStack: (fix: string) => string,
): ConfigProblem[] {
  const dotted = (path: PropertyKey[]) => keyPath(ns, path).slice(ns.length + 1);
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((k) => {
      const path = [...issue.path, k];
      const suggestion = closest(k, knownKeysAt(raw, issue.path));
      return {
        key: keyPath(ns, path),
        value: JSON.stringify(valueAt(raw, path)),
        problem: `unknown setting${suggestion ? ` (did you mean "${suggestion}"?)` : ""}`,
        fix: withStack(`pulumi config rm ${path.length > 1 ? "--path " : ""}${dotted(path)}`) +
          (suggestion ? `, then pulumi config set -s <stack> --path ${dotted([...issue.path, suggestion])} <value>` : ""),
      };
    });
  }
  const value = valueAt(raw, issue.path);
  const params = (issue as { params?: IssueParams }).params ?? {};
  const missing = value === undefined;
  const key = keyPath(ns, issue.path);
  const setFlag = issue.path.length > 1 ? "--path " : "";
  return [
    {
      key,
      value: missing ? undefined : JSON.stringify(value),
      problem: missing ? `is required: ${issue.message}` : issue.message,
      fix: withStack(params.fix ?? `pulumi config set ${setFlag}${dotted(issue.path)} <${expectedHint(issue)}>`),
    },
  ];
}

function expectedHint(issue: SchemaIssue): string {
  if (issue.code === "invalid_type") return issue.expected;
  if (issue.code === "invalid_value") return issue.values.map(String).join("|");
  if (issue.code === "too_small" || issue.code === "too_big") return "number in range";
  return "value";
}

/** Keys the schema allows at a path, for "did you mean". */
function knownKeysAt(raw: Record<string, unknown>, path: PropertyKey[]): string[] {
  let schema: z.core.$ZodType = appConfigSchema;
  let data: unknown = raw;
  const unwrap = (s: z.core.$ZodType): z.core.$ZodType => {
    const def = s._zod.def as { type: string; innerType?: z.core.$ZodType; options?: z.core.$ZodType[]; in?: z.core.$ZodType };
    if (def.innerType) return unwrap(def.innerType);
    if (def.type === "pipe" && def.in) return unwrap(def.in);
    if (def.type === "union" && def.options) {
      const mode = (data as { mode?: unknown } | undefined)?.mode;
      const match = def.options.find((o) => {
        const shape = (o._zod.def as { shape?: Record<string, z.core.$ZodType> }).shape;
        const lit = shape?.mode?._zod.def as { values?: unknown[] } | undefined;
        return lit?.values?.includes(mode);
      });
      return unwrap(match ?? def.options[0]);
    }
    return s;
  };
  for (const seg of [undefined, ...path]) {
    if (seg !== undefined) {
      data = (data as Record<PropertyKey, unknown> | undefined)?.[seg];
      const shape = (schema._zod.def as { shape?: Record<string, z.core.$ZodType> }).shape;
      if (!shape || typeof seg !== "string" || !shape[seg]) return [];
      schema = shape[seg];
    }
    schema = unwrap(schema);
  }
  const shape = (schema._zod.def as { shape?: Record<string, z.core.$ZodType> }).shape;
  return shape ? Object.keys(shape) : [];
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: { c: string; d: number } | undefined;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d <= Math.max(2, Math.floor(c.length / 3)) && (!best || d < best.d)) best = { c, d };
  }
  return best?.c;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const id = `${p.key}\u0000${p.problem}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}
