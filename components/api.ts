import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { ParsedAppConfig } from "../config";
import { applyTransform, LOG_ROTATION, RESTART_POLICY, secondsString, serviceLabels, type Transform } from "./container-defaults";
import { toDockerEnvs, type ServiceEnv } from "./env";
import type { ResolvedImage } from "./image";
import { Job } from "./job";

export type ApiConfig = NonNullable<ParsedAppConfig["api"]>;

/** Every replica answers to `api`; replica i also to `api-<i>`, which the edge proxy health-checks one by one. */
export const API_ALIAS = "api";
export const replicaAlias = (i: number) => `${API_ALIAS}-${i}`;

/**
 * The in-container liveness probe. Node's own fetch, so the image needs no
 * curl or wget; `api.health.command` replaces it for images without Node.
 */
export function apiHealthTest(cfg: ApiConfig): string[] {
  if (cfg.health.command) return ["CMD", ...cfg.health.command];
  const url = `http://127.0.0.1:${cfg.port}${cfg.health.path}`;
  const ms = Math.max(500, cfg.health.timeoutSeconds * 1000 - 500);
  return [
    "CMD",
    "node",
    "-e",
    `fetch(${JSON.stringify(url)},{signal:AbortSignal.timeout(${ms})}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`,
  ];
}

export interface ApiArgs {
  config: ApiConfig;
  stack: string;
  release: string;
  network: pulumi.Input<string>;
  image: ResolvedImage;
  /** Everything the API and its migrations see: wiring, the user's env, secrets. */
  env: ServiceEnv;
  /** Host ports for dev, replica i on hostPort + i - 1; none elsewhere. */
  hostPort?: number;
  /** What must be healthy before migrations (and the API) start: the data stores. */
  dependsOn: pulumi.Input<pulumi.Resource>[];
  transform?: { container?: Transform<docker.ContainerArgs>; migrations?: Transform<docker.ContainerArgs> };
}

/**
 * The HTTP API: an optional migrations job that must succeed first, then
 * `replicas` containers that `pulumi up` waits on until healthy. A new image
 * or env replaces each container new-before-old: no fixed names and no host
 * ports (outside dev) that would make the two collide.
 */
export class Api extends pulumi.ComponentResource {
  public readonly containers: docker.Container[];
  public readonly migrations?: Job;
  /** The image reference that runs. */
  public readonly image: string;

  constructor(name: string, args: ApiArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("appstack:components:Api", name, {}, opts);
    const cfg = args.config;
    this.image = args.image.reference;
    const envs = toDockerEnvs(args.env);

    this.migrations = cfg.migrations ? this.createMigrations(name, args, envs) : undefined;
    // A failed migration rejects `completed`, so no API container is created or replaced.
    const gate: pulumi.Input<pulumi.Resource>[] = this.migrations ? [this.migrations.completed] : args.dependsOn;
    this.containers = Array.from({ length: cfg.replicas }, (_, i) => this.createReplica(name, args, envs, i + 1, gate));

    this.registerOutputs({});
  }

  private createMigrations(name: string, args: ApiArgs, envs: pulumi.Input<string>[]): Job {
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
        envs,
        network: args.network,
        memoryMb: cfg.memoryMb,
        cpus: cfg.cpus,
        timeoutSeconds: cfg.migrations!.timeoutSeconds,
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
      networksAdvanced: [{ name: args.network, aliases: [replicaAlias(i), API_ALIAS] }],
      healthcheck: {
        tests: apiHealthTest(cfg),
        interval: secondsString(cfg.health.intervalSeconds),
        timeout: secondsString(cfg.health.timeoutSeconds),
        retries: cfg.health.retries,
        startPeriod: secondsString(cfg.health.startPeriodSeconds),
        startInterval: "1s",
      },
      wait: true,
      waitTimeout: cfg.healthTimeoutSeconds,
      restart: RESTART_POLICY,
      memory: cfg.memoryMb,
      cpus: cfg.cpus,
      stopSignal: "SIGTERM",
      stopTimeout: cfg.stopTimeoutSeconds,
      ...LOG_ROTATION,
      labels: serviceLabels({ stack: args.stack, service: "api", version: args.release, role: "service", image: args.image.reference }),
      ports: published ? [{ internal: cfg.port, external: args.hostPort! + i - 1, ip: "127.0.0.1" }] : undefined,
    };
    return new docker.Container(`${name}-${i}`, applyTransform(containerArgs, args.transform?.container), {
      parent: this,
      dependsOn,
      additionalSecretOutputs: ["envs"],
      // Only a published host port forces delete-first (the pulumi-docker#1356 "port is already allocated" failure); that is dev only.
      deleteBeforeReplace: published,
    });
  }
}
