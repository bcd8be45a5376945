import { z } from "zod";
import { isSecretEnvName } from "../../config/secret-env";
import { defineResourceRule } from "../rule";
import { envEntries, isContainer, isKnown, joinPath, serviceOf, TYPES, type ResourceView } from "../view";

/** Rules that keep secrets secret and strong. */

/** Env names that hold credentials (config/secret-env.ts: one definition for the pack and the ops commands). */
export { isSecretEnvName };

/** Prefixes that build tools compile into the browser bundle: anyone can read these values. */
const PUBLIC_PREFIXES = ["VITE_", "NEXT_PUBLIC_", "REACT_APP_", "PUBLIC_"];
const isPublicEnvName = (name: string) => PUBLIC_PREFIXES.some((p) => name.startsWith(p));

export const containerSecretEnv = defineResourceRule({
  name: "secret-env-is-secret",
  description:
    "Container env vars with credential names (…_KEY, …_SECRET, …_TOKEN, …PASSWORD, DATABASE_URL, REDIS_URL) are Pulumi secrets and the container keeps envs secret " +
    "(additionalSecretOutputs), so no credential is stored or shown in plain text (the seeds: 'Keep secure, never commit', production secrets management).",
  remediationSteps:
    "Pass the value through pulumi.secret()/requireSecret (secretEnv in the stack config) and set additionalSecretOutputs: [\"envs\"] on the container.",
  severity: "critical",
  check(r, ctx) {
    if (!isContainer(r)) return;
    const { entries, unreadable } = envEntries(r);
    const secretNamed = entries.filter((e) => isSecretEnvName(e.name));
    for (const e of secretNamed) {
      // Only the offline run can see secrecy; CrossGuard hands policies plain text (pulumi/pulumi-policy#241).
      if (e.secret === false) ctx.report(`${e.name} (${e.path}) is a plain string; it must be a secret`);
    }
    const holdsSecrets = secretNamed.length > 0 || unreadable > 0 || [...(r.secretPaths ?? [])].some((p) => p.startsWith("envs"));
    if (holdsSecrets && !r.additionalSecretOutputs.includes("envs")) {
      ctx.report('the container holds credentials in envs but does not list "envs" in additionalSecretOutputs; its state would keep them unencrypted');
    }
  },
});

/** Vercel env vars as { key, sensitive, path of the value } from the resource kinds that declare them. */
function vercelVariables(r: ResourceView): { key: string; sensitive: unknown; valuePath: string }[] {
  if (r.type === TYPES.vercelEnv && typeof r.props.key === "string") {
    return [{ key: r.props.key, sensitive: r.props.sensitive, valuePath: "value" }];
  }
  const list = r.type === TYPES.vercelEnvs ? ["variables", r.props.variables] : r.type === TYPES.vercelProject ? ["environments", r.props.environments] : undefined;
  if (!list || !Array.isArray(list[1])) return [];
  const [field, items] = list as [string, unknown[]];
  return items.flatMap((v, i) => {
    const item = (v ?? {}) as { key?: unknown; sensitive?: unknown };
    return typeof item.key === "string" ? [{ key: item.key, sensitive: item.sensitive, valuePath: joinPath(joinPath(field, i), "value") }] : [];
  });
}

export const vercelSecretEnvSensitive = defineResourceRule({
  name: "frontend-secret-env-sensitive",
  description:
    "Vercel env vars with credential names are sensitive: true (and secret), so neither the Vercel dashboard nor its API can read them back " +
    "(the seeds set their keys in the Vercel dashboard by hand; 'Keep secure, never commit').",
  remediationSteps: "List the variable in frontend.secretEnv (created with sensitive: true from a secure config value).",
  severity: "critical",
  check(r, ctx) {
    for (const v of vercelVariables(r)) {
      if (!isSecretEnvName(v.key)) continue;
      if (isKnown(v.sensitive) && v.sensitive !== true) ctx.report(`${v.key} is not sensitive: its value can be read in the Vercel dashboard and API`);
      if (r.secretPaths && !r.secretPaths.has(v.valuePath)) ctx.report(`${v.key}'s value is a plain string; it must be a secret`);
    }
  },
});

export const noSecretsInFrontendBundle = defineResourceRule<{ allow: string[] }>({
  name: "no-secrets-in-frontend-bundle",
  description:
    "No credential goes into a browser-visible variable (VITE_…, NEXT_PUBLIC_…): the build compiles those into the JavaScript anyone downloads " +
    "(the seeds: the frontend has 'No direct database connections', all backend access goes through the API).",
  remediationSteps:
    "Keep the credential on the API (api.secretEnv) and call the API from the frontend; a key that is public by design (a Supabase anon key) goes in this rule's allow list.",
  severity: "critical",
  config: z.strictObject({ allow: z.array(z.string()).default([]) }),
  check(r, ctx) {
    const exposed = (name: string) => isPublicEnvName(name) && !ctx.config.allow.includes(name);
    // Vercel's SDK makes every variable's value a secret, so secrecy says nothing here; the name and `sensitive` do.
    for (const v of vercelVariables(r)) {
      if (!exposed(v.key)) continue;
      if (isSecretEnvName(v.key)) ctx.report(`${v.key} has a credential's name but is compiled into the public bundle`);
      else if (v.sensitive === true) ctx.report(`${v.key} is marked sensitive but is compiled into the public bundle`);
    }
    if (isContainer(r) && serviceOf(r) === "frontend") {
      for (const e of envEntries(r).entries) {
        if (exposed(e.name) && (isSecretEnvName(e.name) || e.secret === true)) ctx.report(`${e.name} is compiled into the public bundle but holds a credential`);
      }
    }
  },
});

export const generatedSecretLength = defineResourceRule<{ minLength: number }>({
  name: "generated-secret-length",
  description:
    "Generated secrets are at least minLength characters (the seeds: 'JWT Secret (must be 32+ characters)', 'Cryptographically secure secret (not dev-secret)') " +
    "and come from RandomPassword, whose result Pulumi keeps secret (RandomString's is plain).",
  remediationSteps: "Use random.RandomPassword with length >= 32.",
  severity: "high",
  config: z.strictObject({ minLength: z.number().int().min(16).default(32) }),
  check(r, ctx) {
    if (r.type === TYPES.randomPassword) {
      const length = r.props.length;
      if (isKnown(length) && (typeof length !== "number" || length < ctx.config.minLength)) {
        ctx.report(`length ${String(length)} is below ${ctx.config.minLength}`);
      }
    }
    if (r.type === TYPES.randomString && /password|secret|token|key/i.test(r.name)) {
      ctx.report("a secret generated with RandomString is stored in plain text; use RandomPassword");
    }
  },
});

export const SECRET_RULES = [containerSecretEnv, vercelSecretEnvSensitive, noSecretsInFrontendBundle, generatedSecretLength];
