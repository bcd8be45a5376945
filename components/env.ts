import * as pulumi from "@pulumi/pulumi";
import { fileEnvName, secretFilePath } from "../config";

/** A service's environment: plain values stay readable in the plan; secret ones stay secret Outputs. */
export interface ServiceEnv {
  plain: Record<string, pulumi.Input<string>>;
  secret: Record<string, pulumi.Output<string>>;
}

/** Docker's `envs` list: `NAME=value`, each secret entry a secret Output of its own. */
export function toDockerEnvs(env: ServiceEnv): pulumi.Input<string>[] {
  const plain = Object.entries(env.plain)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => pulumi.interpolate`${k}=${v}`);
  const secret = Object.entries(env.secret)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => pulumi.secret(pulumi.interpolate`${k}=${v}`));
  return [...plain, ...secret];
}

/** The secrets named by a service's `secretEnv`, from the validated config. */
export function pickSecrets(names: string[], secrets: Record<string, pulumi.Output<string>>): Record<string, pulumi.Output<string>> {
  const out: Record<string, pulumi.Output<string>> = {};
  for (const name of names) {
    // loadConfig has already reported a missing secret; this guards programming errors only.
    if (!secrets[name]) throw new Error(`secret ${name} was not loaded`);
    out[name] = secrets[name];
  }
  return out;
}

/** A file a one-shot job gets its secret from: written into the container before it starts (`uploads`), never in its env. */
export interface JobSecretFile {
  file: string;
  content: pulumi.Output<string>;
}

/**
 * Swarm mode's env for a one-shot job (a plain container on the manager, which
 * cannot mount Swarm secrets): the plain values, and `<NAME>_FILE` for each
 * secret, whose file the job's container gets as an upload. `docker inspect`
 * of the job shows no secret value, as for the services.
 */
export function toFileEnvs(env: ServiceEnv): { envs: pulumi.Input<string>[]; files: JobSecretFile[] } {
  const names = Object.keys(env.secret).sort((a, b) => a.localeCompare(b));
  const plain = Object.entries(env.plain)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => pulumi.interpolate`${k}=${v}`);
  return {
    envs: [...plain, ...names.map((n) => `${fileEnvName(n)}=${secretFilePath(n)}`)],
    files: names.map((n) => ({ file: secretFilePath(n), content: pulumi.secret(env.secret[n]) })),
  };
}
