import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { apiHostPort, backupSettings, DOCKER_TLS_SECRETS, frontendMode, overlayNetworkName, publicUrls, releaseOf, swarmServiceName, type AppConfig } from "../config";
import { Api, readinessPath } from "./api";
import { PostgresBackup, type BackupStatusOutput } from "./backup";
import { serviceLabels } from "./container-defaults";
import { Edge } from "./edge";
import { pickSecrets, type ServiceEnv } from "./env";
import { Frontend } from "./frontend";
import { resolveImage, type ResolvedImage } from "./image";
import { Postgres, POSTGRES_ALIAS, POSTGRES_PORT } from "./postgres";
import { Redis } from "./redis";
import { createSwarmSecret, type SecretFile, type SwarmTarget } from "./swarm-service";
import { Worker } from "./worker";

/** Characters of each secret named in `generatedSecrets`. */
export const GENERATED_SECRET_LENGTH = 64;

export interface AppStackArgs {
  /** The validated stack config from `loadConfig()`. */
  config: AppConfig;
  /** The project directory, for local builds (dev). */
  root: string;
}

/** What the stack exports; the ops commands (status, rollback) read these names. */
export interface AppStackOutputs {
  environment: string;
  /** The release: `appstack:release`, else the API image tag. */
  version: string;
  endpoints: {
    api?: { url: string; healthUrl: string; image: string };
    frontend?: { url: string; healthUrl: string };
  };
  /** Image references by service. */
  images: Record<string, string>;
  postgres: { host: pulumi.Output<string>; port: pulumi.Output<number>; database: pulumi.Output<string> };
  redis: { host: pulumi.Output<string>; port: pulumi.Output<number> };
  /** Connection URLs. Secret. */
  connections: { databaseUrl: pulumi.Output<string>; redisUrl: pulumi.Output<string> };
  /** The database's backups (Postgres in container mode): what `status` checks the age of. */
  backup?: BackupStatusOutput;
}

/**
 * The whole application for one stack, in the order
 * Postgres healthy -> backup -> (with Redis healthy) migrations succeeded -> API ready -> worker, and the edge
 * switched to the new API -> frontend; the constructor says at each `dependsOn` why it waits.
 * Containers of an API release that is no longer declared are stopped (SIGTERM, drain) and removed at the end of the update.
 * The API's CORS origin is the frontend's URL and the frontend's API URL is
 * the API's: both come from `publicUrls(config)`.
 */
export class AppStack extends pulumi.ComponentResource {
  public readonly network?: docker.Network;
  /** Outside dev: the network of the edge proxy and the API containers only, so the edge cannot reach the data stores. */
  public readonly edgeNetwork?: docker.Network;
  public readonly postgres: Postgres;
  public readonly redis: Redis;
  /** The database's backups (Postgres in container mode): scheduled dumps, their off-host copies, and the pre-deploy dump (with an API). */
  public readonly backup?: PostgresBackup;
  public readonly api?: Api;
  public readonly worker?: Worker;
  public readonly edge?: Edge;
  public readonly frontend?: Frontend;
  public readonly outputs: AppStackOutputs;

  constructor(name: string, args: AppStackArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("appstack:components:AppStack", name, {}, opts);
    const cfg = args.config;
    const urls = publicUrls(cfg);
    const release = releaseOf(cfg);
    const provider = this.createProvider(name, cfg);
    const childOpts: pulumi.ComponentResourceOptions = { parent: this, providers: { docker: provider } };

    const swarm = cfg.docker.mode === "swarm";
    this.network = swarm ? this.createOverlay(name, cfg, provider) : this.createNetwork(name, cfg, provider);
    const network = this.network.name;
    // Services join the overlay by its ID; one-shot jobs and the dev frontend are containers on the manager, attached by name.
    const target: SwarmTarget | undefined = swarm ? { networkId: this.network.id } : undefined;
    const hasEdge = cfg.edge !== undefined && cfg.api !== undefined && cfg.environment !== "dev";
    // Swarm mode: the edge is a service on the overlay, which a bridge network cannot join.
    this.edgeNetwork = hasEdge && !swarm ? this.createNetwork(`${name}-edge`, cfg, provider, "edge") : undefined;
    this.postgres = new Postgres(
      "postgres",
      {
        config: cfg.postgres,
        environment: cfg.environment,
        stack: cfg.stack,
        network,
        externalUrl: cfg.postgres.mode === "external" ? cfg.secrets[cfg.postgres.urlSecret] : undefined,
        swarm: target,
      },
      childOpts,
    );
    this.redis = new Redis(
      "redis",
      {
        config: cfg.redis,
        environment: cfg.environment,
        stack: cfg.stack,
        network,
        externalUrl: cfg.redis.mode === "external" ? cfg.secrets[cfg.redis.urlSecret] : undefined,
        swarm: target,
      },
      childOpts,
    );
    const dataStores = [this.postgres.server, this.redis.server].filter((c): c is docker.Container | docker.Service => c !== undefined);

    const wired = (extra: Record<string, string>): ServiceEnv["plain"] => ({
      NODE_ENV: cfg.environment === "dev" ? "development" : "production",
      APP_VERSION: release,
      ...extra,
    });
    const sharedSecrets = { DATABASE_URL: this.postgres.url, REDIS_URL: this.redis.url, ...this.generateSecrets(name, cfg) };
    const apiSecrets = cfg.api ? { ...pickSecrets(cfg.api.secretEnv, cfg.secrets), ...sharedSecrets } : {};
    const workerSecrets = cfg.worker ? { ...pickSecrets(cfg.worker.secretEnv, cfg.secrets), ...sharedSecrets } : {};
    const secretFiles = target ? this.createSecretFiles(name, cfg, { ...apiSecrets, ...workerSecrets }) : undefined;
    const swarmWith = (secrets: Record<string, unknown>) =>
      target && secretFiles ? { ...target, secrets: Object.keys(secrets).sort().map((n): SecretFile => ({ name: n, secret: secretFiles[n] })) } : undefined;

    let apiImage: ResolvedImage | undefined;
    if (cfg.api) apiImage = resolveImage("api", cfg.api, { stack: cfg.stack, service: "api", root: args.root, parent: this });
    this.backup = this.createBackup(cfg, release, network, apiImage?.reference, childOpts);
    if (cfg.api && apiImage) {
      const apiCfg = cfg.api;
      const cors: Record<string, string> = urls.frontend ? { CORS_ORIGIN: urls.frontend, FRONTEND_URL: urls.frontend } : {};
      this.api = new Api(
        "api",
        {
          config: apiCfg,
          stack: cfg.stack,
          release,
          network,
          edgeNetwork: this.edgeNetwork?.name,
          image: apiImage,
          env: {
            plain: { ...apiCfg.env, ...wired({ PORT: String(apiCfg.port), ...cors }) },
            secret: apiSecrets,
          },
          hostPort: apiHostPort(cfg),
          swarm: swarmWith(apiSecrets),
          // The migrations (and, through them, the replicas) wait for both data stores: they run the API's
          // image with the API's env, and an app that connects to Redis as it starts must find it there.
          // They also wait for the backup: a migration that damages data must have a dump to restore.
          dependsOn: this.backup?.completed ? [...dataStores, this.backup.completed] : dataStores,
        },
        childOpts,
      );
    }

    if (cfg.worker) {
      const w = cfg.worker;
      const image =
        w.image || w.build
          ? resolveImage("worker", w, { stack: cfg.stack, service: "worker", root: args.root, parent: this })
          : apiImage!;
      this.worker = new Worker(
        "worker",
        {
          config: w,
          stack: cfg.stack,
          release,
          network,
          image,
          env: { plain: { ...w.env, ...wired({}) }, secret: workerSecrets },
          // After the API: the new worker code runs only on the migrated schema, and only once the same
          // release's API turned healthy (a failed API rollout leaves the old worker running).
          dependsOn: this.api?.ready ?? dataStores,
          swarm: swarmWith(workerSecrets),
        },
        childOpts,
      );
    }

    if (cfg.edge && cfg.api && this.api && hasEdge) {
      this.edge = new Edge(
        "edge",
        {
          config: cfg.edge,
          environment: cfg.environment,
          stack: cfg.stack,
          network: this.edgeNetwork?.name ?? network,
          domain: cfg.api.domain!,
          readyPath: readinessPath(cfg.api),
          upstreams: this.api.upstreams,
          // The config names the new API containers: it is applied once they are healthy, before the old ones stop.
          dependsOn: this.api.ready,
          swarm: target ? { ...target, apiService: swarmServiceName(cfg.stack, "api"), apiPort: cfg.api.port } : undefined,
        },
        childOpts,
      );
    }

    if (cfg.frontend) {
      this.frontend = new Frontend(
        "frontend",
        {
          config: cfg.frontend,
          mode: frontendMode(cfg),
          environment: cfg.environment,
          stack: cfg.stack,
          release,
          url: urls.frontend!,
          apiUrl: urls.api,
          secrets: pickSecrets(cfg.frontend.secretEnv, cfg.secrets),
          vercelApiToken: cfg.secrets.vercelApiToken,
          network,
          root: args.root,
          hostPort: cfg.frontend.hostPort,
          // Last: the new frontend calls the API (through the edge, once it is switched) and may rely on what
          // this release added to the API or the worker, so everything behind it is ready first.
          dependsOn: [...(this.worker?.ready ?? []), ...(this.edge?.ready ?? []), ...(this.api?.ready ?? [])],
        },
        childOpts,
      );
    }

    const images: Record<string, string> = {};
    if (cfg.postgres.mode === "container") images.postgres = cfg.postgres.image;
    if (cfg.redis.mode === "container") images.redis = cfg.redis.image;
    if (this.api) images.api = this.api.image;
    if (this.worker) images.worker = this.worker.image;
    if (this.edge) images.edge = this.edge.image;
    if (this.frontend?.image) images.frontend = this.frontend.image;

    this.outputs = {
      environment: cfg.environment,
      version: release,
      endpoints: {
        ...(this.api ? { api: { url: urls.api!, healthUrl: urls.apiHealth!, image: this.api.image } } : {}),
        ...(this.frontend ? { frontend: { url: urls.frontend!, healthUrl: urls.frontend! } } : {}),
      },
      images,
      postgres: { host: this.postgres.host, port: this.postgres.port, database: this.postgres.database },
      redis: { host: this.redis.host, port: this.redis.port },
      connections: { databaseUrl: this.postgres.url, redisUrl: this.redis.url },
      ...(this.backup ? { backup: this.backup.status } : {}),
    };
    this.registerOutputs({ ...this.outputs });
  }

  /** JWT/session secrets: GENERATED_SECRET_LENGTH random characters each, secret end to end, never in a stack file. */
  private generateSecrets(name: string, cfg: AppConfig): Record<string, pulumi.Output<string>> {
    const out: Record<string, pulumi.Output<string>> = {};
    for (const env of cfg.generatedSecrets) {
      const slug = env.toLowerCase().replace(/_/g, "-");
      out[env] = new random.RandomPassword(`${name}-secret-${slug}`, { length: GENERATED_SECRET_LENGTH, special: false }, { parent: this }).result;
    }
    return out;
  }

  /**
   * The database's backups (Postgres in container mode): scheduled dumps, off the host with `backup.offsite`, and with
   * an API a dump before anything that could change its schema: a new API image or migrations command.
   */
  private createBackup(
    cfg: AppConfig,
    release: string,
    network: pulumi.Input<string>,
    apiImage: string | undefined,
    opts: pulumi.ComponentResourceOptions,
  ): PostgresBackup | undefined {
    const pg = cfg.postgres;
    const server = this.postgres.server;
    if (pg.mode !== "container" || !server || !this.postgres.serverImage) return undefined;
    const settings = backupSettings(cfg);
    const offsite = settings.offsite;
    return new PostgresBackup(
      "backup",
      {
        stack: cfg.stack,
        predeploy:
          apiImage !== undefined
            ? { release, triggers: { API_IMAGE: apiImage, MIGRATIONS: JSON.stringify(cfg.api?.migrations?.command ?? []) } }
            : undefined,
        schedule: settings,
        offsite: offsite
          ? {
              config: offsite,
              repository: cfg.secrets[offsite.repositorySecret],
              password: cfg.secrets[offsite.passwordSecret],
              env: pickSecrets(offsite.secretEnv, cfg.secrets),
              sshKey: offsite.sshKeySecret ? cfg.secrets[offsite.sshKeySecret] : undefined,
            }
          : undefined,
        image: this.postgres.serverImage,
        imageReference: pg.image,
        network,
        host: POSTGRES_ALIAS,
        port: POSTGRES_PORT,
        user: pg.user,
        database: pg.database,
        password: this.postgres.url.apply((u) => decodeURIComponent(new URL(u).password)),
        // The data volume's rule: backups are kept as long as the data is.
        protect: pg.protectVolume ?? cfg.environment === "production",
        // pg_dump needs the server healthy, and nothing else: waiting for Redis too would add its whole
        // health-check window to every deploy that starts both.
        dependsOn: [server],
        // Swarm mode: the password as a file in the job's container, not in its env.
        passwordAsFile: cfg.docker.mode === "swarm",
      },
      opts,
    );
  }

  /**
   * Swarm mode: every secret a service mounts, once each (the API and the
   * worker share DATABASE_URL, REDIS_URL and the generated secrets), as a
   * Swarm secret that changes name with its value.
   */
  private createSecretFiles(name: string, cfg: AppConfig, secrets: Record<string, pulumi.Output<string>>): Record<string, docker.Secret> {
    const out: Record<string, docker.Secret> = {};
    for (const key of Object.keys(secrets).sort()) {
      const slug = key.toLowerCase().replace(/_/g, "-");
      out[key] = createSwarmSecret(this, `${name}-swarm-secret-${slug}`, { stack: cfg.stack, service: "app", name: key, value: secrets[key] });
    }
    return out;
  }

  /**
   * Swarm mode: an overlay network spanning the nodes, its traffic between
   * nodes encrypted (IPsec), attachable so the one-shot jobs (containers on
   * the manager) reach the services by name.
   */
  private createOverlay(name: string, cfg: AppConfig, provider: docker.Provider): docker.Network {
    return new docker.Network(
      `${name}-overlay`,
      {
        name: overlayNetworkName(cfg.stack),
        driver: "overlay",
        attachable: true,
        options: { encrypted: "" },
        labels: serviceLabels({ stack: cfg.stack, service: "network", version: "1" }),
      },
      { parent: this, provider },
    );
  }

  /** The stack's Docker engine: over ssh, or tcp with TLS material from secure config (config/docker-transport.ts). */
  private createProvider(name: string, cfg: AppConfig): docker.Provider {
    const tls = cfg.docker.tls
      ? {
          caMaterial: cfg.secrets[DOCKER_TLS_SECRETS.ca],
          certMaterial: cfg.secrets[DOCKER_TLS_SECRETS.cert],
          keyMaterial: cfg.secrets[DOCKER_TLS_SECRETS.key],
        }
      : {};
    return new docker.Provider(`${name}-docker`, { host: cfg.docker.host, sshOpts: cfg.docker.sshOpts, ...tls }, { parent: this });
  }

  /** The stack's network (`appstack-<stack>`), or with a role its network of that role (`appstack-<stack>-edge`). */
  private createNetwork(name: string, cfg: AppConfig, provider: docker.Provider, role?: string): docker.Network {
    return new docker.Network(
      `${name}-network`,
      {
        name: role ? `appstack-${cfg.stack}-${role}` : `appstack-${cfg.stack}`,
        driver: "bridge",
        labels: serviceLabels({ stack: cfg.stack, service: role ? `${role}-network` : "network", version: "1" }),
      },
      { parent: this, provider },
    );
  }
}
