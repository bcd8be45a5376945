import type { z } from "zod";
import type { ResourceView } from "./view";

/** How a violation is reported, from a rule's point of view. */
export interface RuleContext<C = Record<string, never>> {
  /** The rule's configuration from the policy config file, defaults applied. */
  config: C;
  /** Reports one violation; a stack rule names the offending resource's URN. */
  report(message: string, urn?: string): void;
}

interface RuleBase<C> {
  /** Unique kebab-case name; the key in policy config files. */
  name: string;
  /** One sentence: what the rule requires and why, citing the checklist it replaces. */
  description: string;
  /** What to change when it fails. */
  remediationSteps: string;
  severity: "low" | "medium" | "high" | "critical";
  /**
   * Settings a policy config may give this rule (besides enforcementLevel),
   * a strict object whose output is C; its defaults apply when unset.
   */
  config?: z.ZodObject;
}

/** Judges one resource at a time (CrossGuard `validateResource`). */
export interface ResourceRule<C = Record<string, never>> extends RuleBase<C> {
  kind: "resource";
  check(resource: ResourceView, ctx: RuleContext<C>): void;
}

/** Judges the relationship between resources (CrossGuard `validateStack`). */
export interface StackRule<C = Record<string, never>> extends RuleBase<C> {
  kind: "stack";
  check(resources: ResourceView[], ctx: RuleContext<C>): void;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Rule = ResourceRule<any> | StackRule<any>;

/** A reported violation, wherever the rules ran. */
export interface Violation {
  rule: string;
  /** The resource at fault, or undefined for the stack as a whole. */
  urn?: string;
  resourceName?: string;
  resourceType?: string;
  message: string;
}

export function defineResourceRule<C = Record<string, never>>(rule: Omit<ResourceRule<C>, "kind">): ResourceRule<C> {
  return { kind: "resource", ...rule };
}

export function defineStackRule<C = Record<string, never>>(rule: Omit<StackRule<C>, "kind">): StackRule<C> {
  return { kind: "stack", ...rule };
}
