import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { imageVersion, type ParsedAppConfig } from "../config";
import { replicaAlias } from "./api";
import { applyTransform, LOG_ROTATION, RESTART_POLICY, serviceLabels, type Transform } from "./container-defaults";
import { caddyHeaderLines, HSTS, SECURITY_HEADERS } from "./security-headers";

export type EdgeConfig = NonNullable<ParsedAppConfig["edge"]>;

/** Where the edge answers its own health check, inside the container only. */
export const EDGE_HEALTH_URL = "http://127.0.0.1:8081/healthz";

export interface CaddyfileInput {
  domain: string;
  acmeEmail: string;
  apiPort: number;
  replicas: number;
  /** The API's readiness path, actively checked on every replica. */
  readyPath: string;
}

/**
 * The Caddyfile, from typed config. Upstreams are the replicas' stable aliases
 * (`api-1`, `api-2`...), so an API deploy never changes this file and never
 * restarts the edge. A replacement is invisible to clients: while the new
 * container of a replica starts, the alias resolves to both; the active check
 * drops whichever is not ready, and a failed connection is retried on another
 * upstream for up to 15 s.
 */
export function caddyfile(c: CaddyfileInput): string {
  const upstreams = Array.from({ length: c.replicas }, (_, i) => `${replicaAlias(i + 1)}:${c.apiPort}`).join(" ");
  return [
    "{",
    `\temail ${c.acmeEmail}`,
    "\tadmin off",
    "}",
    "",
    `${c.domain} {`,
    "\tencode zstd gzip",
    "\theader {",
    `\t\tStrict-Transport-Security "${HSTS}"`,
    ...caddyHeaderLines(SECURITY_HEADERS, "\t\t"),
    "\t\t-Server",
    "\t}",
    `\treverse_proxy ${upstreams} {`,
    "\t\tlb_policy round_robin",
    "\t\tlb_retries 5",
    "\t\tlb_try_duration 15s",
    "\t\tlb_try_interval 250ms",
    `\t\thealth_uri ${c.readyPath}`,
    "\t\thealth_interval 2s",
    "\t\thealth_timeout 2s",
    "\t\thealth_status 2xx",
    "\t\thealth_passes 2",
    "\t\tfail_duration 30s",
    "\t\tunhealthy_status 502 503 504",
    "\t}",
    "}",
    "",
    "http://127.0.0.1:8081 {",
    "\tbind 127.0.0.1",
    "\trespond /healthz 200",
    "}",
    "",
  ].join("\n");
}

export interface EdgeArgs {
  config: EdgeConfig;
  environment: string;
  stack: string;
  network: pulumi.Input<string>;
  caddy: CaddyfileInput;
  dependsOn: pulumi.Input<pulumi.Resource>[];
  transform?: { container?: Transform<docker.ContainerArgs> };
}

/**
 * The only container that publishes ports outside dev: Caddy on 80/443,
 * HTTPS with automatic certificates for the API's domain, routing to the API
 * replicas with active health checks and retries. Its certificate storage is
 * a protected volume: losing it means re-issuing against rate limits.
 */
export class Edge extends pulumi.ComponentResource {
  public readonly container: docker.Container;
  public readonly dataVolume: docker.Volume;
  public readonly image: string;

  constructor(name: string, args: EdgeArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("appstack:components:Edge", name, {}, opts);
    const cfg = args.config;
    this.image = cfg.image;
    const image = new docker.RemoteImage(`${name}-image`, { name: cfg.image, keepLocally: true }, { parent: this });
    const labels = (version: string) => serviceLabels({ stack: args.stack, service: "edge", version });
    this.dataVolume = new docker.Volume(
      `${name}-data`,
      { name: `appstack-${args.stack}-${name}-data`, labels: labels("data") },
      { parent: this, protect: true, retainOnDelete: true },
    );
    const containerArgs: docker.ContainerArgs = {
      image: image.imageId,
      command: ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"],
      uploads: [{ file: "/etc/caddy/Caddyfile", content: caddyfile(args.caddy) }],
      volumes: [{ volumeName: this.dataVolume.name, containerPath: "/data" }],
      networksAdvanced: [{ name: args.network }],
      ports: [
        { internal: 80, external: 80 },
        { internal: 443, external: 443 },
        { internal: 443, external: 443, protocol: "udp" },
      ],
      healthcheck: {
        tests: ["CMD", "wget", "-q", "-O", "/dev/null", EDGE_HEALTH_URL],
        interval: "10s",
        timeout: "3s",
        retries: 3,
        startPeriod: "10s",
        startInterval: "1s",
      },
      wait: true,
      waitTimeout: 120,
      restart: RESTART_POLICY,
      memory: cfg.memoryMb,
      cpus: cfg.cpus,
      stopTimeout: 30,
      ...LOG_ROTATION,
      labels: serviceLabels({ stack: args.stack, service: "edge", version: imageVersion(cfg.image), role: "service", image: cfg.image }),
    };
    // Ports 80/443 cannot be held by two containers: the old proxy goes first (a few seconds of downtime, on proxy changes only).
    this.container = new docker.Container(`${name}-proxy`, applyTransform(containerArgs, args.transform?.container), {
      parent: this,
      dependsOn: args.dependsOn,
      deleteBeforeReplace: true,
    });
    this.registerOutputs({});
  }
}
