import { requiredSecretKeys, type ParsedAppConfig } from "./schema";

/**
 * Env names that hold credentials: the seeds' OPENAI_API_KEY, PRIVY_APP_SECRET,
 * JWT_SECRET, REDIS_PASSWORD, DATABASE_URL, REDIS_URL and their kind.
 * `_AUTH` covers REDISCLI_AUTH, which carries the Redis password.
 */
const SECRET_ENV_NAME = /(?:_KEY|_SECRET|_TOKEN|PASSWORD|_AUTH)$|^(?:DATABASE_URL|REDIS_URL)$/;

export const isSecretEnvName = (name: string): boolean => SECRET_ENV_NAME.test(name);

/**
 * Whether an env var of this stack's containers holds a secret: a credential
 * name, a generated secret, or a name a service's `secretEnv` lists (whatever
 * it is called). For masking what a container prints.
 */
export function stackSecretEnv(cfg: Partial<ParsedAppConfig>): (name: string) => boolean {
  const named = new Set([...requiredSecretKeys(cfg).map((k) => k.key), ...(cfg.generatedSecrets ?? [])]);
  return (name) => named.has(name) || isSecretEnvName(name);
}
