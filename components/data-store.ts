import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { applyTransform, serviceLabels, type Transform } from "./container-defaults";

/**
 * The named volume a data store keeps its files in. Protected volumes refuse
 * `pulumi destroy` and survive a deleted stack (`retainOnDelete`).
 */
export function createDataVolume(
  parent: pulumi.Resource,
  name: string,
  stack: string,
  protect: boolean,
  transform?: Transform<docker.VolumeArgs>,
): docker.Volume {
  const volumeArgs: docker.VolumeArgs = {
    name: `appstack-${stack}-${name}-data`,
    labels: serviceLabels({ stack, service: name, version: "data" }),
  };
  return new docker.Volume(`${name}-data`, applyTransform(volumeArgs, transform), { parent, protect, retainOnDelete: protect });
}

/** A managed service's endpoint, read from its secret URL; every part stays secret. */
export interface ExternalEndpoint {
  url: pulumi.Output<string>;
  host: pulumi.Output<string>;
  port: pulumi.Output<number>;
  /** The URL's path without its slash: the database name for Postgres. */
  path: pulumi.Output<string>;
}

export function externalEndpoint(url: pulumi.Output<string>, opts: { defaultPort: number; configKey: string; example: string }): ExternalEndpoint {
  const parts = url.apply((raw) => {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      // Never echo the value: it holds the password.
      throw new pulumi.RunError(`appstack:${opts.configKey} is not a URL; expected ${opts.example}`);
    }
    return { host: u.hostname, port: Number(u.port || opts.defaultPort), path: decodeURIComponent(u.pathname.slice(1)) };
  });
  return { url: pulumi.secret(url), host: parts.apply((p) => p.host), port: parts.apply((p) => p.port), path: parts.apply((p) => p.path) };
}
