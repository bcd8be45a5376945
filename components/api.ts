import { createHash } from "node:crypto";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { ParsedAppConfig } from "../config";
import { applyTransform, hardening, LOG_ROTATION, RESTART_POLICY, secondsString, serviceLabels, type Transform } from "./container-defaults";
import { toDockerEnvs, type ServiceEnv } from "./env";
import { serviceImage, type ResolvedImage } from "./image";
import { Job } from "./job";
import { DEFAULT_APP_FILE_OWNER, replicatedServiceArgs, type SecretFile, type SwarmTarget } from "./swarm-service";

export type ApiConfig = NonNullable<ParsedAppConfig["api"]>;

/** Every replica answers to `api` on the stack's network (for one-off tools); the edge routes to each container by its own name. */
export const API_ALIAS = "api";

/** The path that says a replica can take traffic: `health.readyPath`, else the liveness path. */
export const readinessPath = (cfg: ApiConfig) => cfg.health.readyPath ?? cfg.health.path;

/**
 * The in-container readiness probe: Docker's health check of an API container,
 * so `pulumi up` waits (`wait: true`) until a new replica can serve before the
 * edge is switched to it. Node's own fetch, so the image needs no curl or wget;
 * `api.health.command` replaces it for images without Node.
 */
export function apiHealthTest(cfg: ApiConfig): string[] {
  if (cfg.health.command) return ["CMD", ...cfg.health.command];
  const url = `http://127.0.0.1:${cfg.port}${readinessPath(cfg)}`;
  const ms = Math.max(500, cfg.health.timeoutSeconds * 1000 - 500);
  return [
    "CMD",
    "node",
    "-e",
    `fetch(${JSON.stringify(url)},{signal:AbortSignal.timeout(${ms})}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`,
  ];
}

/** The API's health check, the same for a container and a service's task. */
export function apiHealthcheck(cfg: ApiConfig) {
  return {
    tests: apiHealthTest(cfg),
    interval: secondsString(cfg.health.intervalSeconds),
    timeout: secondsString(cfg.health.timeoutSeconds),
    retries: cfg.health.retries,
    startPeriod: secondsString(cfg.health.startPeriodSeconds),
  };
}

export interface ApiArgs {
  config: ApiConfig;
  stack: string;
  release: string;
  network: pulumi.Input<string>;
  /** Outside dev: the network the API shares with the edge proxy, and nothing else does. */
  edgeNetwork?: pulumi.Input<string>;
  image: ResolvedImage;
  /** Everything the API and its migrations see: wiring, the user's env, secrets. */
  env: ServiceEnv;
  /** Host ports for dev, replica i on hostPort + i - 1; none elsewhere. */
  hostPort?: number;
  /** What must be healthy before migrations (and the API) start: the data stores. */
  dependsOn: pulumi.Input<pulumi.Resource>[];
  /** Swarm mode: the API is one service on the overlay network, its secrets mounted as files. */
  swarm?: SwarmTarget & { secrets: SecretFile[] };
  transform?: { container?: Transform<docker.ContainerArgs>; migrations?: Transform<docker.ContainerArgs>; service?: Transform<docker.ServiceArgs> };
}

/**
 * The release slot of the API's containers outside dev: a short digest of
 * everything that defines what they run (image, settings, plain env, secret
 * names). It is part of each container's resource name, so a new release is a
 * new set of resources beside the old one, not a replacement of it: Pulumi
 * creates the new containers, the edge is switched to them, and only at the
 * end of a successful update are the old ones (no longer declared) stopped and
 * deleted. A failed update leaves the old release untouched and serving; a
 * replacement would have marked it pending deletion, which the next update
 * performs before anything else (pulumi/pulumi#9979). The replica count is
 * left out: adding a replica adds a container to the same slot.
 */
export function releaseSlot(cfg: ApiConfig, imageReference: string, env: ServiceEnv): string {
  const { replicas: _replicas, ...settings } = cfg;
  const plain = Object.fromEntries(Object.entries(env.plain).map(([k, v]) => [k, typeof v === "string" ? v : "(computed)"]));
  const identity = JSON.stringify({ imageReference, settings, plain, secretNames: Object.keys(env.secret).sort() });
  return createHash("sha256").update(identity).digest("hex").slice(0, 8);
}

/**
 * The HTTP API: an optional migrations job that must succeed first, then
 * `replicas` containers that `pulumi up` waits on until ready. Outside dev the
 * containers of a release are named by its slot (`api-<slot>-<i>`), so a new
 * release starts beside the old one and the old one is stopped gracefully
 * (`destroyGraceSeconds`: SIGTERM, drain, then removal) only after the edge
 * has moved to the new one. In dev the API is published on a host port, so
 * a replica is replaced in place, delete-first.
 */
export class Api extends pulumi.ComponentResource {
  /** Host mode: the release's containers. */
  public readonly containers: docker.Container[];
  /** Swarm mode: the service whose tasks replace each other start-first. */
  public readonly service?: docker.Service;
  /** Host mode: the containers' Docker names, which the edge dials one by one. */
  public readonly upstreams: pulumi.Output<string>[];
  /** Outside dev: the release slot in the containers' resource names. */
  public readonly slot?: string;
  public readonly migrations?: Job;
  /** The image reference that runs. */
  public readonly image: string;

  constructor(name: string, args: ApiArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("appstack:components:Api", name, {}, opts);
    const cfg = args.config;
    this.image = args.image.reference;
    const envs = toDockerEnvs(args.env);

    if (args.swarm) {
      this.migrations = cfg.migrations ? this.createMigrations(name, args) : undefined;
      // A failed migration rejects `completed`, so the service is neither created nor updated.
      this.service = this.createService(name, args, args.swarm, this.migrations ? [this.migrations.completed] : args.dependsOn);
      this.containers = [];
      this.upstreams = [];
      this.registerOutputs({});
      return;
    }
    this.migrations = cfg.migrations ? this.createMigrations(name, args) : undefined;
    // A failed migration rejects `completed`, so no API container is created or replaced.
    const gate: pulumi.Input<pulumi.Resource>[] = this.migrations ? [this.migrations.completed] : args.dependsOn;
    this.slot = args.hostPort === undefined ? releaseSlot(cfg, args.image.reference, args.env) : undefined;
    this.containers = Array.from({ length: cfg.replicas }, (_, i) => this.createReplica(name, args, envs, i + 1, gate));
    this.upstreams = this.containers.map((c) => pulumi.interpolate`${c.name}:${cfg.port}`);

    this.registerOutputs({});
  }

  /** What the next steps wait for: the release's containers, or the service once it converged. */
  public get ready(): pulumi.Resource[] {
    return this.service ? [this.service] : this.containers;
  }

  /**
   * Swarm mode: `replicas` tasks of one service, replaced one at a time,
   * start-first (the old task stops once the new one is healthy), rolled back
   * by Swarm when a new task fails within the monitor window. In dev the API
   * publishes its port on the node, so a task is replaced stop-first.
   */
  private createService(name: string, args: ApiArgs, target: SwarmTarget & { secrets: SecretFile[] }, dependsOn: pulumi.Input<pulumi.Resource>[]): docker.Service {
    const cfg = args.config;
    const published = args.hostPort !== undefined;
    const serviceArgs = replicatedServiceArgs({
      identity: { stack: args.stack, service: "api", version: args.release, role: "service", image: args.image.reference },
      replicas: cfg.replicas,
      task: {
        image: serviceImage(args.image),
        env: args.env.plain,
        secrets: target.secrets,
        owner: cfg.secretFiles ?? DEFAULT_APP_FILE_OWNER,
        healthcheck: apiHealthcheck(cfg),
        memoryMb: cfg.memoryMb,
        cpus: cfg.cpus,
        stopGracePeriodSeconds: cfg.stopTimeoutSeconds,
        hardening: { writable: cfg.writablePaths },
        target,
        aliases: [API_ALIAS],
      },
      order: published ? "stop-first" : "start-first",
      health: cfg.health,
      healthTimeoutSeconds: cfg.healthTimeoutSeconds,
      ports: published ? [{ targetPort: cfg.port, publishedPort: args.hostPort, publishMode: "host" }] : undefined,
    });
    return new docker.Service(`${name}-service`, applyTransform(serviceArgs, args.transform?.service), { parent: this, dependsOn });
  }

  private createMigrations(name: string, args: ApiArgs): Job {
    const cfg = args.config;
    return new Job(
      `${name}-migrate`,
      {
        stack: args.stack,
        service: "migrate",
        description: "Database migrations",
        image: args.image.id,
        imageReference: args.image.reference,
        version: args.release,
        command: cfg.migrations!.command,
        env: args.env,
        writable: cfg.writablePaths,
        network: args.network,
        memoryMb: cfg.memoryMb,
        cpus: cfg.cpus,
        timeoutSeconds: cfg.migrations!.timeoutSeconds,
        secretsAsFiles: args.swarm !== undefined,
        dependsOn: args.dependsOn,
        transform: { container: args.transform?.migrations },
      },
      { parent: this },
    );
  }

  private createReplica(
    name: string,
    args: ApiArgs,
    envs: pulumi.Input<string>[],
    i: number,
    dependsOn: pulumi.Input<pulumi.Resource>[],
  ): docker.Container {
    const cfg = args.config;
    const published = args.hostPort !== undefined;
    const containerArgs: docker.ContainerArgs = {
      image: args.image.id,
      envs,
      // The data network (with the alias, for one-off tools), and the edge's network, where the edge dials each container by name.
      networksAdvanced: [{ name: args.network, aliases: [API_ALIAS] }, ...(args.edgeNetwork ? [{ name: args.edgeNetwork }] : [])],
      ...hardening({ stack: args.stack, service: "api", writable: cfg.writablePaths }),
      healthcheck: apiHealthcheck(cfg),
      wait: true,
      waitTimeout: cfg.healthTimeoutSeconds,
      restart: RESTART_POLICY,
      memory: cfg.memoryMb,
      cpus: cfg.cpus,
      stopSignal: "SIGTERM",
      stopTimeout: cfg.stopTimeoutSeconds,
      // Without it the provider removes the old container at once, with its requests in flight.
      destroyGraceSeconds: cfg.stopTimeoutSeconds,
      ...LOG_ROTATION,
      labels: serviceLabels({ stack: args.stack, service: "api", version: args.release, role: "service", image: args.image.reference }),
      ports: published ? [{ internal: cfg.port, external: args.hostPort! + i - 1, ip: "127.0.0.1" }] : undefined,
    };
    const resourceName = this.slot ? `${name}-${this.slot}-${i}` : `${name}-${i}`;
    return new docker.Container(resourceName, applyTransform(containerArgs, args.transform?.container), {
      parent: this,
      dependsOn,
      additionalSecretOutputs: ["envs"],
      // Only a published host port forces delete-first (the pulumi-docker#1356 "port is already allocated" failure); that is dev only.
      deleteBeforeReplace: published,
    });
  }
}
