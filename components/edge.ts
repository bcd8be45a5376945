import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { EDGE_HEALTH, HEALTH_INTERVAL_SECONDS, imageVersion, type ParsedAppConfig } from "../config";
import { applyTransform, hardening, LOG_ROTATION, RESTART_POLICY, secondsString, serviceLabels, type Transform } from "./container-defaults";
import { Job } from "./job";
import { caddyHeaderLines, HSTS, SECURITY_HEADERS } from "./security-headers";

export type EdgeConfig = NonNullable<ParsedAppConfig["edge"]>;

/** Where the edge answers its own health check, inside the container only. */
export const EDGE_HEALTH_URL = "http://127.0.0.1:8081/healthz";

/** The Caddyfile the edge container starts from; the applied config replaces it and is autosaved under /config. */
export const EDGE_BOOTSTRAP_CADDYFILE = "/etc/caddy/Caddyfile";
/** The full config the edge-config job loads into the running proxy. */
export const EDGE_CADDYFILE = "/etc/caddy/Caddyfile.applied";
/** Caddy's config directory (the image's XDG_CONFIG_HOME): its autosaved config, and here its admin socket. */
export const EDGE_CONFIG_DIR = "/config";
/** Caddy's admin endpoint: a unix socket in the volume only the edge and its config job mount, never a TCP port. */
export const EDGE_ADMIN_ADDRESS = `unix/${EDGE_CONFIG_DIR}/admin.sock`;

/** How long the edge keeps an idle connection to an API container: below the API's own keep-alive timeout, so the edge always closes first. */
export const EDGE_UPSTREAM_IDLE_SECONDS = 30;
/** How long a request may wait for a ready replica (retries on connection failures) before the edge answers 502/503. */
export const EDGE_TRY_SECONDS = 10;

export interface CaddyfileInput {
  domain: string;
  acmeEmail: string;
  /** `host:port` of every API container, by container name: health state is kept per container. */
  upstreams: string[];
  /** The API's readiness path, actively checked on every container. */
  readyPath: string;
}

function globalOptions(acmeEmail: string): string[] {
  return ["{", `\temail ${acmeEmail}`, `\tadmin ${EDGE_ADMIN_ADDRESS}`, "}", ""];
}

/** The security headers as a snippet: imported by the site and by its error handler, so the edge's own 502/503/504 carry them too. */
function securityHeadersSnippet(): string[] {
  return [
    "(security_headers) {",
    "\theader {",
    `\t\tStrict-Transport-Security "${HSTS}"`,
    ...caddyHeaderLines(SECURITY_HEADERS, "\t\t"),
    "\t\t-Server",
    "\t}",
    "}",
    "",
  ];
}

function errorHandler(): string[] {
  return [
    "\thandle_errors {",
    "\t\timport security_headers",
    '\t\trespond "{err.status_code} {err.status_text}" {err.status_code}',
    "\t}",
  ];
}

function internalHealthSite(): string[] {
  return ["", "http://127.0.0.1:8081 {", "\tbind 127.0.0.1", "\trespond /healthz 200", "}", ""];
}

/**
 * The edge's config: HTTPS for `domain`, the security headers on every
 * response (its own errors included), and a reverse proxy to each API
 * container by name, with active readiness checks and retries. No passive
 * health checks: a proxied 503 (a readiness probe from `status`, a request
 * during a blip) never takes a container out. An API deploy changes this
 * config (the container names), and the edge-config job loads it through
 * Caddy's admin socket: a graceful reload that keeps every connection.
 */
export function caddyfile(c: CaddyfileInput): string {
  return [
    ...globalOptions(c.acmeEmail),
    ...securityHeadersSnippet(),
    `${c.domain} {`,
    "\tencode zstd gzip",
    "\timport security_headers",
    `\treverse_proxy ${c.upstreams.join(" ")} {`,
    "\t\tlb_policy round_robin",
    `\t\tlb_try_duration ${EDGE_TRY_SECONDS}s`,
    "\t\tlb_try_interval 250ms",
    `\t\thealth_uri ${c.readyPath}`,
    `\t\thealth_interval ${EDGE_HEALTH.intervalSeconds}s`,
    `\t\thealth_timeout ${EDGE_HEALTH.timeoutSeconds}s`,
    "\t\thealth_status 2xx",
    `\t\thealth_fails ${EDGE_HEALTH.fails}`,
    `\t\thealth_passes ${EDGE_HEALTH.passes}`,
    "\t\ttransport http {",
    `\t\t\tkeepalive ${EDGE_UPSTREAM_IDLE_SECONDS}s`,
    "\t\t}",
    "\t}",
    ...errorHandler(),
    "}",
    ...internalHealthSite(),
  ].join("\n");
}

/**
 * What the edge container starts with before its first config is applied (a
 * new stack): the same site answering 503, so certificates are requested at
 * once. After that, Caddy resumes the last applied config (`--resume`).
 */
export function bootstrapCaddyfile(c: Pick<CaddyfileInput, "domain" | "acmeEmail">): string {
  return [
    ...globalOptions(c.acmeEmail),
    ...securityHeadersSnippet(),
    `${c.domain} {`,
    "\timport security_headers",
    '\trespond "503 Service Unavailable" 503',
    "}",
    ...internalHealthSite(),
  ].join("\n");
}

export interface EdgeArgs {
  config: EdgeConfig;
  environment: string;
  stack: string;
  /** The edge's own network, which it shares with the API containers only: it cannot reach the data stores. */
  network: pulumi.Input<string>;
  domain: string;
  readyPath: string;
  /** `name:port` of every API container of the release being deployed. */
  upstreams: pulumi.Input<string>[];
  /** What the config job waits for besides its upstreams: the API containers (healthy). */
  dependsOn: pulumi.Input<pulumi.Resource>[];
  transform?: { container?: Transform<docker.ContainerArgs>; config?: Transform<docker.ContainerArgs> };
}

/**
 * The only container that publishes ports outside dev: Caddy on 80/443,
 * HTTPS with automatic certificates for the API's domain, routing to the API
 * containers with active health checks and retries.
 *
 * The proxy container does not change when the API does: it starts from a
 * bootstrap config and resumes the last applied one. The `edge-config` job
 * applies the current config through the admin socket after the new API
 * containers are healthy, and before the old ones are stopped.
 */
export class Edge extends pulumi.ComponentResource {
  public readonly container: docker.Container;
  /** The job that applied the current config; later steps wait for it. */
  public readonly config: Job;
  public readonly dataVolume: docker.Volume;
  public readonly image: string;

  constructor(name: string, args: EdgeArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("appstack:components:Edge", name, {}, opts);
    const cfg = args.config;
    this.image = cfg.image;
    const image = new docker.RemoteImage(`${name}-image`, { name: cfg.image, keepLocally: true }, { parent: this });
    const labels = (version: string) => serviceLabels({ stack: args.stack, service: "edge", version });
    // Certificates: losing them means re-issuing against the CA's rate limits.
    this.dataVolume = new docker.Volume(
      `${name}-data`,
      { name: `appstack-${args.stack}-${name}-data`, labels: labels("data") },
      { parent: this, protect: true, retainOnDelete: true },
    );
    // The autosaved config, so a restarted or replaced proxy resumes routing to the current API containers; and the admin socket.
    const configVolume = new docker.Volume(
      `${name}-config`,
      { name: `appstack-${args.stack}-${name}-config`, labels: labels("config") },
      { parent: this, protect: true, retainOnDelete: true },
    );
    const configMount = { volumeName: configVolume.name, containerPath: EDGE_CONFIG_DIR };

    const containerArgs: docker.ContainerArgs = {
      image: image.imageId,
      command: ["caddy", "run", "--config", EDGE_BOOTSTRAP_CADDYFILE, "--adapter", "caddyfile", "--resume"],
      uploads: [{ file: EDGE_BOOTSTRAP_CADDYFILE, content: bootstrapCaddyfile({ domain: args.domain, acmeEmail: cfg.acmeEmail }) }],
      volumes: [
        { volumeName: this.dataVolume.name, containerPath: "/data" },
        configMount,
      ],
      networksAdvanced: [{ name: args.network }],
      // Caddy runs as the image's root user, with no capability but binding ports 80 and 443. Its root
      // filesystem stays writable: the provider uploads the bootstrap Caddyfile through it.
      ...hardening({ stack: args.stack, service: "edge", capabilities: ["NET_BIND_SERVICE"], writable: [], writableRoot: true }),
      ports: [
        { internal: 80, external: 80 },
        { internal: 443, external: 443 },
        { internal: 443, external: 443, protocol: "udp" },
      ],
      healthcheck: {
        tests: ["CMD", "wget", "-q", "-O", "/dev/null", EDGE_HEALTH_URL],
        interval: secondsString(HEALTH_INTERVAL_SECONDS),
        timeout: "3s",
        retries: 3,
        startPeriod: "10s",
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
      deleteBeforeReplace: true,
    });

    const content = pulumi
      .all(args.upstreams)
      .apply((upstreams) => caddyfile({ domain: args.domain, acmeEmail: cfg.acmeEmail, upstreams, readyPath: args.readyPath }));
    this.config = new Job(
      `${name}-config`,
      {
        stack: args.stack,
        service: "edge",
        description: "Applying the edge proxy's config",
        image: image.imageId,
        imageReference: cfg.image,
        version: imageVersion(cfg.image),
        command: ["caddy", "reload", "--config", EDGE_CADDYFILE, "--adapter", "caddyfile", "--address", EDGE_ADMIN_ADDRESS],
        // A replaced proxy container gets the config applied again.
        env: { plain: { EDGE_CONTAINER: this.container.id }, secret: {} },
        // No network: it reaches the proxy through the admin socket in the config volume only.
        memoryMb: 64,
        cpus: "0.25",
        timeoutSeconds: 60,
        uploads: [{ file: EDGE_CADDYFILE, content }],
        volumes: [configMount],
        dependsOn: [this.container, ...args.dependsOn],
        transform: { container: args.transform?.config },
      },
      { parent: this },
    );
    this.registerOutputs({});
  }
}
