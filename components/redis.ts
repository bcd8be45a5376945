import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { imageVersion, secretFilePath, type Environment, type RedisConfig } from "../config";
import { createDataVolume, externalEndpoint } from "./data-store";
import { createDataStoreService, type SwarmTarget } from "./swarm-service";
import {
  applyTransform,
  DATA_STORE_HEALTH,
  hardening,
  LOG_ROTATION,
  RESTART_POLICY,
  serviceLabels,
  type HardeningNeeds,
  type Transform,
} from "./container-defaults";

export const REDIS_PORT = 6379;
export const REDIS_ALIAS = "redis";

type RedisContainerConfig = Extract<RedisConfig, { mode: "container" }>;

/** Swarm mode: the password file, readable by the redis user (uid 999 in the official images) only. */
export const REDIS_PASSWORD_FILE = secretFilePath("REDIS_PASSWORD");
/** The redis user of the official images (Debian and Alpine alike), which owns the password file in swarm mode. */
export const REDIS_UID = 999;

/**
 * The server's command. The password reaches redis-server through a config
 * file written by the shell's builtin printf from $REDIS_PASSWORD (host mode)
 * or from the Swarm secret file (swarm mode), so it is in no process's argv
 * (`ps`, `docker inspect` Cmd), not in the image and, in swarm mode, not in
 * the service's spec either.
 */
export function redisServerCommand(cfg: RedisContainerConfig, password = '"$REDIS_PASSWORD"'): string[] {
  const flags = [
    `--maxmemory ${cfg.maxmemoryMb}mb`,
    `--maxmemory-policy ${cfg.maxmemoryPolicy}`,
    cfg.appendonly ? "--appendonly yes --appendfsync everysec" : "--appendonly no",
  ].join(" ");
  const script = [
    "set -eu",
    'conf="$(mktemp)"',
    `printf 'requirepass %s\\n' ${password} > "$conf"`,
    `exec redis-server "$conf" ${flags}`,
  ].join("; ");
  return ["sh", "-c", script];
}

/** redis-server needs no capability as the redis user; /tmp holds the config file the command writes. */
export const REDIS_HARDENING: HardeningNeeds = { writable: ["/tmp"], tmpfsOptions: { "/tmp": "rw,nosuid,nodev,noexec,mode=1777,size=1m" } };

/** Time to finish an AOF rewrite and save on SIGTERM. */
const REDIS_STOP_SECONDS = 30;

/** `redis-cli` reads the password from REDISCLI_AUTH, never from argv. */
export const REDIS_HEALTH_TEST = ["CMD-SHELL", "redis-cli -p 6379 ping | grep -q PONG"];
/** Swarm mode: REDISCLI_AUTH for redis-cli alone, from the password file. */
export const REDIS_SWARM_HEALTH_TEST = ["CMD-SHELL", `REDISCLI_AUTH="$(cat ${REDIS_PASSWORD_FILE})" redis-cli -p 6379 ping | grep -q PONG`];

export interface RedisArgs {
  /** Container or external mode, from the stack's `appstack:redis`. */
  config: RedisConfig;
  environment: Environment;
  stack: string;
  /** The Docker network the server joins (container mode). */
  network?: pulumi.Input<string>;
  /** The managed Redis URL (external mode), a secret Output from secure config. */
  externalUrl?: pulumi.Output<string>;
  /** Swarm mode: the server is a service on the overlay network, pinned to the node with its volume. */
  swarm?: SwarmTarget;
  /** Adjust a child's args without forking the component. */
  transform?: { container?: Transform<docker.ContainerArgs>; volume?: Transform<docker.VolumeArgs>; service?: Transform<docker.ServiceArgs> };
}

/**
 * Redis for one stack: a container with AOF persistence, a maxmemory policy,
 * a generated password and a `redis-cli ping` health check; or a managed Redis
 * whose URL comes from secure config.
 */
export class Redis extends pulumi.ComponentResource {
  /** The redis:// connection URL (user default, database 0). Secret. */
  public readonly url: pulumi.Output<string>;
  public readonly host: pulumi.Output<string>;
  public readonly port: pulumi.Output<number>;
  public readonly container?: docker.Container;
  /** The server service (swarm mode). */
  public readonly service?: docker.Service;
  public readonly volume?: docker.Volume;

  constructor(name: string, args: RedisArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("appstack:components:Redis", name, {}, opts);
    const cfg = args.config;

    if (cfg.mode === "external") {
      if (!args.externalUrl) throw new Error(`Redis "${name}": external mode needs externalUrl`);
      const ext = externalEndpoint(args.externalUrl, { defaultPort: REDIS_PORT, configKey: cfg.urlSecret, example: "redis://user:password@host:6379 or rediss://..." });
      this.url = ext.url;
      this.host = ext.host;
      this.port = ext.port;
    } else {
      if (!args.network) throw new Error(`Redis "${name}": container mode needs a network`);
      const protect = cfg.protectVolume ?? args.environment === "production";
      // A swarm service names its image by reference: each node pulls it.
      const image = args.swarm ? undefined : new docker.RemoteImage(`${name}-image`, { name: cfg.image, keepLocally: true }, { parent: this });
      // Letters and digits only: the value goes into a redis.conf line unquoted.
      const password = new random.RandomPassword(`${name}-password`, { length: 40, special: false }, { parent: this });
      this.volume = createDataVolume(this, name, args.stack, protect, args.transform?.volume);
      if (image) this.container = this.createContainer(name, args, cfg, image, password, this.volume);
      else this.service = this.createService(name, args, cfg, password, this.volume, args.swarm!);
      this.host = pulumi.output(REDIS_ALIAS);
      this.port = pulumi.output(REDIS_PORT);
      this.url = pulumi.secret(pulumi.interpolate`redis://default:${password.result}@${REDIS_ALIAS}:${REDIS_PORT}/0`);
    }

    this.registerOutputs({ url: this.url, host: this.host, port: this.port });
  }

  /** What the rollout waits for before the migrations: the server, healthy. */
  public get server(): docker.Container | docker.Service | undefined {
    return this.container ?? this.service;
  }

  /** Swarm mode: one task on the node labelled with its data, replaced stop-first (one AOF file, one writer). */
  private createService(
    name: string,
    args: RedisArgs,
    cfg: RedisContainerConfig,
    password: random.RandomPassword,
    volume: docker.Volume,
    target: SwarmTarget,
  ): docker.Service {
    return createDataStoreService(this, name, args.stack, cfg, {
      password: { name: "REDIS_PASSWORD", value: password.result, owner: { uid: REDIS_UID, gid: REDIS_UID } },
      task: {
        args: redisServerCommand(cfg, `"$(cat ${REDIS_PASSWORD_FILE})"`),
        user: "redis",
        env: {},
        healthcheck: { tests: REDIS_SWARM_HEALTH_TEST, ...DATA_STORE_HEALTH },
        memoryMb: cfg.memoryMb,
        cpus: cfg.cpus,
        stopGracePeriodSeconds: REDIS_STOP_SECONDS,
        mounts: [{ type: "volume", source: volume.name, target: "/data" }],
        hardening: REDIS_HARDENING,
        target,
        aliases: [REDIS_ALIAS],
      },
      transform: args.transform?.service,
    });
  }

  private createContainer(
    name: string,
    args: RedisArgs,
    cfg: RedisContainerConfig,
    image: docker.RemoteImage,
    password: random.RandomPassword,
    volume: docker.Volume,
  ): docker.Container {
    const containerArgs: docker.ContainerArgs = {
      name: `appstack-${args.stack}-${name}`,
      image: image.imageId,
      command: redisServerCommand(cfg),
      // The image's entrypoint drops to the redis user only when the command is redis-server itself;
      // ours is `sh -c`, so say it here. A new volume takes /data's redis ownership from the image.
      user: "redis",
      envs: [
        pulumi.secret(pulumi.interpolate`REDIS_PASSWORD=${password.result}`),
        pulumi.secret(pulumi.interpolate`REDISCLI_AUTH=${password.result}`),
      ],
      volumes: [{ volumeName: volume.name, containerPath: "/data" }],
      networksAdvanced: [{ name: args.network!, aliases: [REDIS_ALIAS] }],
      ...hardening({ stack: args.stack, service: name, ...REDIS_HARDENING }),
      healthcheck: { tests: REDIS_HEALTH_TEST, ...DATA_STORE_HEALTH },
      wait: true,
      waitTimeout: cfg.healthTimeoutSeconds,
      restart: RESTART_POLICY,
      memory: cfg.memoryMb,
      cpus: cfg.cpus,
      stopTimeout: REDIS_STOP_SECONDS,
      ...LOG_ROTATION,
      labels: serviceLabels({ stack: args.stack, service: name, version: imageVersion(cfg.image), role: "service", image: cfg.image }),
      ports: cfg.hostPort !== undefined ? [{ internal: REDIS_PORT, external: cfg.hostPort, ip: "127.0.0.1" }] : undefined,
    };
    // One AOF file, one writer: the old server stops before the new one starts.
    return new docker.Container(`${name}-server`, applyTransform(containerArgs, args.transform?.container), {
      parent: this,
      deleteBeforeReplace: true,
      additionalSecretOutputs: ["envs"],
    });
  }
}
