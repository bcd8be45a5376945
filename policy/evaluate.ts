import type { EnforcementLevel, RuleSettings } from "./config";
import type { Rule, Violation } from "./rule";
import type { ResourceView } from "./view";

export interface LeveledViolation extends Violation {
  level: Exclude<EnforcementLevel, "disabled">;
}

export interface Evaluation {
  violations: LeveledViolation[];
  /** Rules that ran (not disabled). */
  ran: string[];
  disabled: string[];
}

/**
 * Runs the rules over a stack's resources, as the engine runs the pack: each
 * resource rule on every resource, each stack rule once over all of them,
 * at the level the policy config gives it. Without settings a rule is
 * mandatory with its default settings.
 */
export function evaluateRules(resources: ResourceView[], rules: readonly Rule[], settings: Map<string, RuleSettings> = new Map()): Evaluation {
  const violations: LeveledViolation[] = [];
  const ran: string[] = [];
  const disabled: string[] = [];
  const byUrn = new Map(resources.map((r) => [r.urn, r]));
  for (const rule of rules) {
    const s = settings.get(rule.name) ?? { level: "mandatory", config: (rule.config?.parse({}) ?? {}) as Record<string, unknown> };
    if (s.level === "disabled") {
      disabled.push(rule.name);
      continue;
    }
    const level = s.level;
    ran.push(rule.name);
    const add = (message: string, urn?: string) => {
      const r = urn ? byUrn.get(urn) : undefined;
      violations.push({ rule: rule.name, level, message, urn, resourceName: r?.name, resourceType: r?.type });
    };
    if (rule.kind === "resource") {
      for (const r of resources) rule.check(r, { config: s.config, report: (message) => add(message, r.urn) });
    } else {
      rule.check(resources, { config: s.config, report: add });
    }
  }
  return { violations, ran, disabled };
}
