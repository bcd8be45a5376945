import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { EDGE_HEALTH, HEALTH_INTERVAL_SECONDS, imageVersion, SWARM_EDGE_LABEL, swarmServiceName, type ParsedAppConfig } from "../config";
import { applyTransform, hardening, LOG_ROTATION, RESTART_POLICY, secondsString, serviceLabels, type HardeningNeeds, type Transform } from "./container-defaults";
import { Job } from "./job";
import { createSwarmConfig, monitorSeconds, ROOT_OWNER, rollingUpdate, taskSpec, type SwarmTarget } from "./swarm-service";
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

function globalOptions(acmeEmail: string, admin = EDGE_ADMIN_ADDRESS): string[] {
  return ["{", `\temail ${acmeEmail}`, `\tadmin ${admin}`, "}", ""];
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
    ...proxySite(c.domain, `\treverse_proxy ${c.upstreams.join(" ")} {`, [], [
      `\t\thealth_uri ${c.readyPath}`,
      `\t\thealth_interval ${EDGE_HEALTH.intervalSeconds}s`,
      `\t\thealth_timeout ${EDGE_HEALTH.timeoutSeconds}s`,
      "\t\thealth_status 2xx",
      `\t\thealth_fails ${EDGE_HEALTH.fails}`,
      `\t\thealth_passes ${EDGE_HEALTH.passes}`,
    ]),
    ...internalHealthSite(),
  ].join("\n");
}

/**
 * The API's site: compression, the security headers, a reverse proxy that
 * balances round robin, retries a request on connection failures for up to
 * EDGE_TRY_SECONDS, keeps idle upstream connections EDGE_UPSTREAM_IDLE_SECONDS,
 * and finds its upstreams as its first line (static) or `discovery` (dynamic)
 * says, checking them as `checks` says; the edge's own errors carry the
 * headers too.
 */
function proxySite(domain: string, reverseProxy: string, discovery: string[], checks: string[]): string[] {
  return [
    `${domain} {`,
    "\tencode zstd gzip",
    "\timport security_headers",
    reverseProxy,
    ...discovery,
    "\t\tlb_policy round_robin",
    `\t\tlb_try_duration ${EDGE_TRY_SECONDS}s`,
    "\t\tlb_try_interval 250ms",
    ...checks,
    "\t\ttransport http {",
    `\t\t\tkeepalive ${EDGE_UPSTREAM_IDLE_SECONDS}s`,
    "\t\t}",
    "\t}",
    ...errorHandler(),
    "}",
  ];
}

/** How often the swarm edge asks Swarm's DNS for the API's tasks: well within the 2 s Swarm waits between taking a task out of DNS and stopping it. */
export const EDGE_DNS_REFRESH = "1s";

export interface SwarmCaddyfileInput {
  domain: string;
  acmeEmail: string;
  /** The API's service name: the edge asks Swarm's DNS for `tasks.<service>`, one address per healthy task. */
  apiService: string;
  apiPort: number;
}

/**
 * Swarm mode's edge config. It does not change with a deploy: the upstreams
 * are the API service's tasks as Swarm's DNS lists them (`dynamic a
 * tasks.<service>`, refreshed every second). Swarm puts a task in DNS only
 * once its health check (the readiness probe) passes, and takes it out two
 * seconds before it stops it (SIGTERM), so DNS is the readiness signal:
 * Caddy runs no active health checks on dynamic upstreams
 * (caddyserver/caddy#7036). No admin endpoint: nothing reloads this config,
 * a new one is a new Swarm config and a new edge task.
 */
export function swarmCaddyfile(c: SwarmCaddyfileInput): string {
  return [
    ...globalOptions(c.acmeEmail, "off"),
    ...securityHeadersSnippet(),
    ...proxySite(c.domain, "\treverse_proxy {", [
      "\t\tdynamic a {",
      `\t\t\tname tasks.${c.apiService}`,
      `\t\t\tport ${c.apiPort}`,
      `\t\t\trefresh ${EDGE_DNS_REFRESH}`,
      "\t\t}",
    ], []),
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
  /** Swarm mode: the edge is a global service on the nodes labelled `appstack.edge=true`, routing to the API service's tasks. */
  swarm?: SwarmTarget & { apiService: string; apiPort: number };
  transform?: { container?: Transform<docker.ContainerArgs>; config?: Transform<docker.ContainerArgs>; service?: Transform<docker.ServiceArgs> };
}

/** The edge's ports: HTTP, HTTPS and HTTP/3. */
const EDGE_PORTS = [
  { internal: 80, protocol: "tcp" },
  { internal: 443, protocol: "tcp" },
  { internal: 443, protocol: "udp" },
] as const;

/** The edge's own health check, inside the container. */
/** Caddy runs as the image's root user, with no capability but binding ports 80 and 443; it writes only its volumes. */
const EDGE_HARDENING: HardeningNeeds = { capabilities: ["NET_BIND_SERVICE"], writable: [] };
const EDGE_HEALTHCHECK = { tests: ["CMD", "wget", "-q", "-O", "/dev/null", EDGE_HEALTH_URL], interval: secondsString(HEALTH_INTERVAL_SECONDS), timeout: "3s", retries: 3, startPeriod: "10s" };

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
  /** Host mode: the proxy container. */
  public readonly container?: docker.Container;
  /** Host mode: the job that applied the current config; later steps wait for it. */
  public readonly config?: Job;
  /** Swarm mode: the proxy service, one task per edge node. */
  public readonly service?: docker.Service;
  public readonly dataVolume: docker.Volume;
  public readonly image: string;

  constructor(name: string, args: EdgeArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("appstack:components:Edge", name, {}, opts);
    const cfg = args.config;
    this.image = cfg.image;
    const image = args.swarm ? undefined : new docker.RemoteImage(`${name}-image`, { name: cfg.image, keepLocally: true }, { parent: this });
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
    if (!image) {
      this.service = this.createService(name, args, configVolume, args.swarm!);
      this.registerOutputs({});
      return;
    }

    const containerArgs: docker.ContainerArgs = {
      image: image.imageId,
      command: ["caddy", "run", "--config", EDGE_BOOTSTRAP_CADDYFILE, "--adapter", "caddyfile", "--resume"],
      uploads: [{ file: EDGE_BOOTSTRAP_CADDYFILE, content: bootstrapCaddyfile({ domain: args.domain, acmeEmail: cfg.acmeEmail }) }],
      volumes: [
        { volumeName: this.dataVolume.name, containerPath: "/data" },
        configMount,
      ],
      networksAdvanced: [{ name: args.network }],
      // Its root filesystem stays writable: the provider uploads the bootstrap Caddyfile through it.
      ...hardening({ stack: args.stack, service: "edge", ...EDGE_HARDENING, writableRoot: true }),
      ports: EDGE_PORTS.map((p) => ({ internal: p.internal, external: p.internal, ...(p.protocol === "udp" ? { protocol: p.protocol } : {}) })),
      healthcheck: EDGE_HEALTHCHECK,
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

  /** What the frontend waits for: the config applied to the proxy (host mode), or the proxy service (swarm mode). */
  public get ready(): pulumi.Input<pulumi.Resource>[] {
    return this.config ? [this.config.completed] : [this.service!];
  }

  /**
   * Swarm mode: a global service on the nodes labelled `appstack.edge=true`,
   * ports 80/443 published on each of those nodes (host mode: this kernel's
   * ingress mesh is not needed, and the client's address reaches Caddy). Its
   * Caddyfile is a Swarm config; a new one replaces the task stop-first (two
   * tasks cannot hold the node's ports): a few seconds without the edge, on
   * edge changes only, as in host mode. A global service has no converge
   * wait (the provider allows it for replicated services only).
   */
  private createService(name: string, args: EdgeArgs, configVolume: docker.Volume, target: SwarmTarget & { apiService: string; apiPort: number }): docker.Service {
    const cfg = args.config;
    const caddy = createSwarmConfig(this, `${name}-caddyfile`, {
      stack: args.stack,
      service: "edge",
      content: swarmCaddyfile({ domain: args.domain, acmeEmail: cfg.acmeEmail, apiService: target.apiService, apiPort: target.apiPort }),
    });
    const identity = { stack: args.stack, service: "edge", version: imageVersion(cfg.image), role: "service" as const, image: cfg.image };
    const taskSpecArgs = taskSpec({
      identity,
      image: cfg.image,
      args: ["caddy", "run", "--config", EDGE_BOOTSTRAP_CADDYFILE, "--adapter", "caddyfile"],
      env: {},
      secrets: [],
      owner: ROOT_OWNER,
      healthcheck: EDGE_HEALTHCHECK,
      memoryMb: cfg.memoryMb,
      cpus: cfg.cpus,
      stopGracePeriodSeconds: 30,
      mounts: [
        { type: "volume", source: this.dataVolume.name, target: "/data" },
        { type: "volume", source: configVolume.name, target: EDGE_CONFIG_DIR },
      ],
      // Read-only root here: the Caddyfile is a Swarm config, not an upload through /.
      hardening: EDGE_HARDENING,
      configs: [{ config: caddy, file: EDGE_BOOTSTRAP_CADDYFILE }],
      target,
      constraints: [`node.labels.${SWARM_EDGE_LABEL}==true`],
    });
    const serviceArgs: docker.ServiceArgs = {
      name: swarmServiceName(args.stack, "edge"),
      labels: serviceLabels(identity),
      mode: { global: true },
      taskSpec: taskSpecArgs,
      ...rollingUpdate("stop-first", monitorSeconds({ startPeriodSeconds: 10, intervalSeconds: HEALTH_INTERVAL_SECONDS, retries: 3 })),
      endpointSpec: {
        mode: "dnsrr",
        ports: EDGE_PORTS.map((p) => ({ targetPort: p.internal, publishedPort: p.internal, protocol: p.protocol, publishMode: "host" })),
      },
    };
    return new docker.Service(`${name}-service`, applyTransform(serviceArgs, args.transform?.service), { parent: this, dependsOn: args.dependsOn });
  }
}
