import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import type { Rule } from "./rule";

/**
 * Policy config: which rules apply to a stack, and how strictly. One JSON file
 * per stack, `policy/config.<stack>.json`, in the Pulumi CLI's own format, so
 * the same file drives both runs:
 *
 *   pulumi preview -s production --policy-pack policy --policy-pack-config policy/config.production.json
 *   npm run policy -- --stack production
 *
 *   { "all": "mandatory", "pinned-images": "advisory", "worker-graceful-stop": { "minSeconds": 60 } }
 *
 * `all` sets every rule's enforcement level; a rule's own entry overrides it
 * and may carry the rule's settings. This is the engine's order too.
 */

/**
 * What a violation does. `remediate` is left out on purpose: this pack has no
 * remediations, and the policy SDK would quietly treat it as mandatory.
 */
export const ENFORCEMENT_LEVELS = ["advisory", "mandatory", "disabled"] as const;
export type EnforcementLevel = (typeof ENFORCEMENT_LEVELS)[number];

/** What a rule does with no config at all: the pack fails closed. */
export const DEFAULT_ENFORCEMENT: EnforcementLevel = "mandatory";

export interface RuleSettings {
  level: EnforcementLevel;
  /** The rule's own settings, defaults applied. */
  config: Record<string, unknown>;
}

export class PolicyConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    const n = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    super(`The policy config ${file} has ${n}; no rule was run.\n\n${problems.map((p, i) => `${i + 1}. ${p}`).join("\n")}`);
    this.name = "PolicyConfigError";
  }
}

const LEVEL_HINT = `expected one of ${ENFORCEMENT_LEVELS.join(", ")}`;

const level = z.enum(ENFORCEMENT_LEVELS, {
  error: (iss) =>
    `${JSON.stringify(iss.input)} is not an enforcement level (${LEVEL_HINT}${iss.input === "remediate" ? "; this pack has no remediations" : ""})`,
});

/** The policy config file's schema: `all`, and per rule a level or { enforcementLevel, ...the rule's settings }. */
export function policyConfigSchema(rules: readonly Rule[]) {
  const shape: Record<string, z.ZodType> = { all: level.optional() };
  for (const rule of rules) {
    const settings = (rule.config ?? z.strictObject({})).extend({ enforcementLevel: level.optional() });
    shape[rule.name] = z.union([level, settings]).optional();
  }
  return z.strictObject(shape);
}

/** One line per zod issue, with the key as written in the file. */
function describeIssues(issues: z.core.$ZodIssue[], input: unknown, rules: readonly Rule[], prefix: PropertyKey[] = []): string[] {
  return issues.flatMap((i) => {
    const at = [...prefix, ...i.path];
    const where = at.length ? at.map((k) => JSON.stringify(k)).join(".") : "the file";
    const value = at.reduce<unknown>((v, k) => (v && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[k] : undefined), input);
    if (i.code === "unrecognized_keys") {
      const known = at.length === 0 ? ` (the rules are: ${rules.map((r) => r.name).join(", ")})` : "";
      return i.keys.map((k) => `${[...at, k].map((x) => JSON.stringify(x)).join(".")}: ${at.length === 0 ? "no such rule in appstack-readiness" : "not a setting of this rule"}${known}`);
    }
    if (i.code === "invalid_union") {
      // A rule's entry is a level (string) or settings (object): explain the branch the value was meant for.
      const branch = typeof value === "string" ? i.errors[0] : i.errors[1];
      if (value !== null && (typeof value === "string" || typeof value === "object") && branch) return describeIssues(branch, input, rules, at);
      return [`${where} = ${JSON.stringify(value)}: expected an enforcement level or an object with enforcementLevel and the rule's settings`];
    }
    return [`${where}: ${i.message}`];
  });
}

/**
 * Validates a policy config against the pack's rules and returns each rule's
 * enforcement level and settings. Every problem is reported at once.
 */
export function resolvePolicyConfig(raw: unknown, rules: readonly Rule[], file: string): Map<string, RuleSettings> {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new PolicyConfigError(file, ['expected a JSON object such as { "all": "mandatory" }']);
  }
  const parsed = policyConfigSchema(rules).safeParse(raw);
  if (!parsed.success) throw new PolicyConfigError(file, describeIssues(parsed.error.issues, raw, rules));
  const data = parsed.data as Record<string, unknown>;
  const all = (data.all as EnforcementLevel | undefined) ?? DEFAULT_ENFORCEMENT;
  const settings = new Map<string, RuleSettings>();
  for (const rule of rules) {
    const entry = data[rule.name];
    if (typeof entry === "string") {
      settings.set(rule.name, { level: entry as EnforcementLevel, config: rule.config?.parse({}) ?? {} });
    } else {
      const { enforcementLevel, ...config } = (entry ?? rule.config?.parse({}) ?? {}) as Record<string, unknown>;
      settings.set(rule.name, { level: (enforcementLevel as EnforcementLevel | undefined) ?? all, config });
    }
  }
  return settings;
}

/** Where a stack's policy config lives. */
export const policyConfigFile = (policyDir: string, stack: string): string => path.join(policyDir, `config.${stack}.json`);

/** Stacks that have a `config.<stack>.json` in the policy directory. */
export function stacksWithPolicyConfig(policyDir: string): string[] {
  return fs
    .readdirSync(policyDir)
    .map((f) => /^config\.(.+)\.json$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();
}

/** Reads and validates a policy config file. */
export function loadPolicyConfig(file: string, rules: readonly Rule[], shownAs = file): Map<string, RuleSettings> {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    throw new PolicyConfigError(shownAs, ["cannot be read (does the file exist?)"]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new PolicyConfigError(shownAs, [`is not valid JSON: ${(err as Error).message}`]);
  }
  return resolvePolicyConfig(raw, rules, shownAs);
}
