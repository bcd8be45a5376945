import * as pulumi from "@pulumi/pulumi";

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
