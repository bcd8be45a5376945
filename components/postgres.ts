import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { imageVersion, type Environment, type PostgresConfig } from "../config";
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

export const POSTGRES_PORT = 5432;
/** The name other containers on the stack network reach Postgres by. */
export const POSTGRES_ALIAS = "postgres";
/** The official image's server user (uid 70 in the alpine images, 999 in the Debian ones). */
export const POSTGRES_USER = "postgres";
/** Where the server puts its unix socket: the image's default. */
export const POSTGRES_SOCKET_DIR = "/var/run/postgresql";

/**
 * The uid (and gid) of the postgres user in the official image a reference
 * names, fixed by its Dockerfile: 70 in the alpine images, 999 in the Debian
 * ones. Swarm mode gives it the password file, which a server started as
 * that user (not as root) must read itself.
 */
export function postgresUid(image: string): number {
  return /-alpine[^:/@]*(@|$)/.test(image.split("/").pop() ?? image) ? 70 : 999;
}

/**
 * The server as its own non-root user needs no capability; it writes its
 * socket and lock file, and the entrypoint and libpq may write /tmp.
 */
export const POSTGRES_HARDENING: HardeningNeeds = {
  writable: [POSTGRES_SOCKET_DIR, "/tmp"],
  tmpfsOptions: { [POSTGRES_SOCKET_DIR]: "rw,nosuid,nodev,noexec,mode=1777,size=1m", "/tmp": "rw,nosuid,nodev,noexec,mode=1777,size=64m" },
};

/** Where the server keeps its data (the official image's PGDATA). */
const POSTGRES_DATA = "/var/lib/postgresql/data";
/** Postgres's fast shutdown checkpoints first; Docker's default 10 s can cut it short. */
const POSTGRES_STOP_SECONDS = 60;
/** The container's 64 MiB /dev/shm is too small for parallel queries. */
const POSTGRES_SHM_MB = 128;

/** Over TCP, so the image's init phase (a socket-only temporary server) does not count as healthy. */
function postgresHealthTest(cfg: { user: string; database: string }): string[] {
  return ["CMD", "pg_isready", "-h", "127.0.0.1", "-p", String(POSTGRES_PORT), "-U", cfg.user, "-d", cfg.database];
}

/** Characters of the generated password besides letters and digits: URL-special on purpose, so encoding is always exercised. */
export const POSTGRES_PASSWORD_SPECIALS = "!#%&*()-_=+[]{}:?@/";

export interface PostgresArgs {
  /** Container or external mode, from the stack's `appstack:postgres`. */
  config: PostgresConfig;
  environment: Environment;
  stack: string;
  /**
   * The Docker network the server joins (container mode).
   */
  network?: pulumi.Input<string>;
  /**
   * The managed database URL (external mode), a secret Output from secure config.
   */
  externalUrl?: pulumi.Output<string>;
  /** Swarm mode: the server is a service on the overlay network, pinned to the node with its volume. */
  swarm?: SwarmTarget;
  /** Adjust a child's args without forking the component. */
  transform?: { container?: Transform<docker.ContainerArgs>; volume?: Transform<docker.VolumeArgs>; service?: Transform<docker.ServiceArgs> };
}

/**
 * Postgres for one stack: a container with a named volume, a generated
 * password and a `pg_isready` health check that `pulumi up` waits for; or a
 * managed database whose URL comes from secure config.
 */
export class Postgres extends pulumi.ComponentResource {
  /** The postgresql:// connection URL, its password URL-encoded. Secret. */
  public readonly url: pulumi.Output<string>;
  /** Host name on the stack network (container mode) or of the managed service. */
  public readonly host: pulumi.Output<string>;
  public readonly port: pulumi.Output<number>;
  public readonly database: pulumi.Output<string>;
  /** The server container (host mode); undefined in external mode. */
  public readonly container?: docker.Container;
  /** The server service (swarm mode). */
  public readonly service?: docker.Service;
  /** The server image as pulled on docker.host (container mode): what the pre-deploy dump runs. */
  public readonly serverImage?: pulumi.Output<string>;
  /** The data volume; undefined in external mode. */
  public readonly volume?: docker.Volume;

  constructor(name: string, args: PostgresArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("appstack:components:Postgres", name, {}, opts);
    const cfg = args.config;

    if (cfg.mode === "external") {
      if (!args.externalUrl) throw new Error(`Postgres "${name}": external mode needs externalUrl`);
      const ext = externalEndpoint(args.externalUrl, { defaultPort: POSTGRES_PORT, configKey: cfg.urlSecret, example: "postgresql://user:password@host:5432/db" });
      this.url = ext.url;
      this.host = ext.host;
      this.port = ext.port;
      this.database = ext.path;
    } else {
      if (!args.network) throw new Error(`Postgres "${name}": container mode needs a network`);
      const protect = cfg.protectVolume ?? args.environment === "production";
      const image = this.pullImage(name, cfg.image);
      const password = this.createPassword(name);
      this.volume = createDataVolume(this, name, args.stack, protect, args.transform?.volume);
      if (args.swarm) {
        this.service = this.createService(name, args, cfg, password, this.volume, args.swarm);
        this.serverImage = image.imageId;
      } else {
        this.container = this.createContainer(name, args, cfg, image, password, this.volume);
        this.serverImage = this.container.image;
      }
      this.host = pulumi.output(POSTGRES_ALIAS);
      this.port = pulumi.output(POSTGRES_PORT);
      this.database = pulumi.output(cfg.database);
      this.url = pulumi.secret(
        pulumi.interpolate`postgresql://${cfg.user}:${password.result.apply(encodeURIComponent)}@${POSTGRES_ALIAS}:${POSTGRES_PORT}/${cfg.database}`,
      );
    }

    this.registerOutputs({ url: this.url, host: this.host, port: this.port, database: this.database });
  }

  private pullImage(name: string, ref: string): docker.RemoteImage {
    // keepLocally: a replaced image resource must not delete an image a running container uses.
    return new docker.RemoteImage(`${name}-image`, { name: ref, keepLocally: true }, { parent: this });
  }

  private createPassword(name: string): random.RandomPassword {
    return new random.RandomPassword(
      `${name}-password`,
      { length: 32, special: true, overrideSpecial: POSTGRES_PASSWORD_SPECIALS, minLower: 2, minUpper: 2, minNumeric: 2 },
      { parent: this },
    );
  }

  /** What the rollout waits for before the dump and the migrations: the server, healthy. */
  public get server(): docker.Container | docker.Service | undefined {
    return this.container ?? this.service;
  }

  /**
   * Swarm mode: one task on the node labelled with its data, its password a
   * Swarm secret file owned by the image's postgres user, which the server
   * runs as from the start (as in host mode: its entrypoint then needs no
   * capability), replaced stop-first: two servers never share the data
   * directory.
   */
  private createService(
    name: string,
    args: PostgresArgs,
    cfg: Extract<PostgresConfig, { mode: "container" }>,
    password: random.RandomPassword,
    volume: docker.Volume,
    target: SwarmTarget,
  ): docker.Service {
    return createDataStoreService(this, name, args.stack, cfg, {
      password: { name: "POSTGRES_PASSWORD", value: password.result, owner: { uid: postgresUid(cfg.image), gid: postgresUid(cfg.image) } },
      task: {
        user: POSTGRES_USER,
        env: { POSTGRES_USER: cfg.user, POSTGRES_DB: cfg.database },
        healthcheck: { tests: postgresHealthTest(cfg), ...DATA_STORE_HEALTH },
        memoryMb: cfg.memoryMb,
        cpus: cfg.cpus,
        stopGracePeriodSeconds: POSTGRES_STOP_SECONDS,
        mounts: [
          { type: "volume", source: volume.name, target: POSTGRES_DATA },
          // The container's 64 MiB /dev/shm is too small for parallel queries: host mode's shmSize.
          { type: "tmpfs", target: "/dev/shm", tmpfsOptions: { sizeBytes: POSTGRES_SHM_MB * 1024 * 1024 } },
        ],
        hardening: POSTGRES_HARDENING,
        target,
        aliases: [POSTGRES_ALIAS],
      },
      transform: args.transform?.service,
    });
  }

  private createContainer(
    name: string,
    args: PostgresArgs,
    cfg: Extract<PostgresConfig, { mode: "container" }>,
    image: docker.RemoteImage,
    password: random.RandomPassword,
    volume: docker.Volume,
  ): docker.Container {
    const containerArgs: docker.ContainerArgs = {
      name: `appstack-${args.stack}-${name}`,
      image: image.imageId,
      envs: [
        `POSTGRES_USER=${cfg.user}`,
        `POSTGRES_DB=${cfg.database}`,
        pulumi.secret(pulumi.interpolate`POSTGRES_PASSWORD=${password.result}`),
      ],
      volumes: [{ volumeName: volume.name, containerPath: POSTGRES_DATA }],
      networksAdvanced: [{ name: args.network!, aliases: [POSTGRES_ALIAS] }],
      // The image's own non-root user from the start: its entrypoint then needs no capability to chown the
      // data directory and switch user (su-exec), because a new volume takes the image's postgres-owned
      // data directory and an existing one was initialised by that user.
      user: POSTGRES_USER,
      ...hardening({ stack: args.stack, service: name, ...POSTGRES_HARDENING }),
      // Over TCP, so the image's init phase (a socket-only temporary server) does not count as healthy.
      healthcheck: {
        tests: postgresHealthTest(cfg),
        ...DATA_STORE_HEALTH,
      },
      wait: true,
      waitTimeout: cfg.healthTimeoutSeconds,
      restart: RESTART_POLICY,
      memory: cfg.memoryMb,
      cpus: cfg.cpus,
      stopTimeout: POSTGRES_STOP_SECONDS,
      shmSize: POSTGRES_SHM_MB,
      ...LOG_ROTATION,
      labels: serviceLabels({ stack: args.stack, service: name, version: imageVersion(cfg.image), role: "service", image: cfg.image }),
      ports:
        cfg.hostPort !== undefined ? [{ internal: POSTGRES_PORT, external: cfg.hostPort, ip: "127.0.0.1" }] : undefined,
    };
    // Two servers on one data directory corrupt it: the old container goes before the new one starts.
    return new docker.Container(`${name}-server`, applyTransform(containerArgs, args.transform?.container), {
      parent: this,
      deleteBeforeReplace: true,
      additionalSecretOutputs: ["envs"],
    });
  }
}
