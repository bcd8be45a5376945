import {
  UnknownValueError,
  type Policies,
  type PolicyConfigSchema,
  type PolicyResource,
  type ReportViolation,
  type ResourceValidationArgs,
} from "@pulumi/policy";
import { z } from "zod";
import { DEFAULT_ENFORCEMENT } from "./config";
import type { Rule, RuleContext } from "./rule";
import { UNKNOWN, type ResourceView } from "./view";

/** The pack's name, as `pulumi preview --policy-pack` reports it. */
export const PACK_NAME = "appstack-readiness";

/**
 * Copies what CrossGuard hands a policy into plain data. The SDK wraps props in
 * a proxy that throws UnknownValueError when a value only a deploy knows is
 * read; one such value would abort the whole rule, so each one becomes the
 * UNKNOWN marker instead and the rule judges everything else.
 */
export function fromPolicyProps(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value;
  const source = value as Record<string, unknown>;
  const out: Record<string, unknown> | unknown[] = Array.isArray(value) ? [] : {};
  for (const key of Object.keys(source)) {
    let inner: unknown;
    try {
      inner = source[key];
    } catch (err) {
      if (err instanceof UnknownValueError) {
        inner = UNKNOWN;
      } else {
        throw err;
      }
    }
    (out as Record<string, unknown>)[key] = inner === UNKNOWN ? UNKNOWN : fromPolicyProps(inner);
  }
  return out;
}

/** A resource as `validateResource` sees it. Secrecy is not visible to policies (pulumi/pulumi-policy#241). */
export function viewFromResourceArgs(args: ResourceValidationArgs): ResourceView {
  return {
    urn: args.urn,
    type: args.type,
    name: args.name,
    parent: args.opts.parent ?? "",
    props: fromPolicyProps(args.props) as Record<string, unknown>,
    protect: args.opts.protect,
    additionalSecretOutputs: args.opts.additionalSecretOutputs ?? [],
    dependencies: [],
  };
}

/** A resource as `validateStack` sees it (its outputs; for a preview, the planned state). */
export function viewFromPolicyResource(r: PolicyResource): ResourceView {
  return {
    urn: r.urn,
    type: r.type,
    name: r.name,
    parent: r.parent?.urn ?? r.opts.parent ?? "",
    props: fromPolicyProps(r.props) as Record<string, unknown>,
    protect: r.opts.protect,
    additionalSecretOutputs: r.opts.additionalSecretOutputs ?? [],
    dependencies: r.dependencies.map((d) => d.urn),
  };
}

/** A rule's settings schema as the JSON schema the engine validates policy config against. */
export function configSchemaOf(rule: Rule): PolicyConfigSchema | undefined {
  if (!rule.config) return undefined;
  const json = z.toJSONSchema(rule.config, { io: "input" }) as { properties?: PolicyConfigSchema["properties"]; required?: string[] };
  return { properties: json.properties ?? {}, ...(json.required?.length ? { required: json.required } : {}) };
}

function contextFor(rule: Rule, given: object, report: ReportViolation): RuleContext<Record<string, unknown>> {
  // The engine validated `given` against configSchemaOf(rule) and filled its defaults; parsing again types it.
  const config = (rule.config?.parse(given) ?? {}) as Record<string, unknown>;
  return { config, report: (message, urn) => report(message, urn) };
}

/** The rules as CrossGuard policies; the engine applies the policy config's enforcement levels to them. */
export function toCrossGuardPolicies(rules: readonly Rule[]): Policies {
  return rules.map((rule) => {
    const base = {
      name: rule.name,
      description: rule.description,
      remediationSteps: rule.remediationSteps,
      severity: rule.severity,
      enforcementLevel: DEFAULT_ENFORCEMENT,
      configSchema: configSchemaOf(rule),
    };
    if (rule.kind === "resource") {
      return {
        ...base,
        validateResource: (args: ResourceValidationArgs, report: ReportViolation) =>
          rule.check(viewFromResourceArgs(args), contextFor(rule, args.getConfig(), report)),
      };
    }
    return {
      ...base,
      validateStack: (args, report) => rule.check(args.resources.map(viewFromPolicyResource), contextFor(rule, args.getConfig(), report)),
    };
  });
}
