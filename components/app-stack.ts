import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { AppConfig } from "../config";
import { serviceLabels } from "./container-defaults";
import { Postgres } from "./postgres";
import { Redis } from "./redis";

export interface AppStackArgs {
  /** The validated stack config from `loadConfig()`. */
  config: AppConfig;
}

/** What the stack exports; the ops commands read these names. */
export interface AppStackOutputs {
  environment: string;
  postgres: { host: pulumi.Output<string>; port: pulumi.Output<number>; database: pulumi.Output<string> };
  redis: { host: pulumi.Output<string>; port: pulumi.Output<number> };
  /** Connection URLs. Secret. */
  connections: { databaseUrl: pulumi.Output<string>; redisUrl: pulumi.Output<string> };
}

/**
 * The whole application for one stack: the Docker provider and network, the
 * data stores, and (next) the API, worker and frontend, in the order
 * data stores healthy -> migrations -> API -> worker -> frontend.
 */
export class AppStack extends pulumi.ComponentResource {
  public readonly network?: docker.Network;
  public readonly postgres: Postgres;
  public readonly redis: Redis;
  public readonly outputs: AppStackOutputs;

  constructor(name: string, args: AppStackArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("appstack:components:AppStack", name, {}, opts);
    const cfg = args.config;
    const provider = this.createDockerProvider(name, cfg);
    const childOpts: pulumi.ComponentResourceOptions = { parent: this, providers: { docker: provider } };

    const needsNetwork = cfg.postgres.mode === "container" || cfg.redis.mode === "container";
    this.network = needsNetwork ? this.createNetwork(name, cfg, provider) : undefined;

    this.postgres = new Postgres(
      "postgres",
      {
        config: cfg.postgres,
        environment: cfg.environment,
        stack: cfg.stack,
        network: this.network?.name,
        externalUrl: cfg.postgres.mode === "external" ? cfg.secrets[cfg.postgres.urlSecret] : undefined,
      },
      childOpts,
    );
    this.redis = new Redis(
      "redis",
      {
        config: cfg.redis,
        environment: cfg.environment,
        stack: cfg.stack,
        network: this.network?.name,
        externalUrl: cfg.redis.mode === "external" ? cfg.secrets[cfg.redis.urlSecret] : undefined,
      },
      childOpts,
    );

    this.outputs = {
      environment: cfg.environment,
      postgres: { host: this.postgres.host, port: this.postgres.port, database: this.postgres.database },
      redis: { host: this.redis.host, port: this.redis.port },
      connections: { databaseUrl: this.postgres.url, redisUrl: this.redis.url },
    };
    this.registerOutputs({ ...this.outputs });
  }

  private createDockerProvider(name: string, cfg: AppConfig): docker.Provider {
    return new docker.Provider(`${name}-docker`, { host: cfg.docker.host, sshOpts: cfg.docker.sshOpts }, { parent: this });
  }

  private createNetwork(name: string, cfg: AppConfig, provider: docker.Provider): docker.Network {
    return new docker.Network(
      `${name}-network`,
      {
        name: `appstack-${cfg.stack}`,
        driver: "bridge",
        labels: serviceLabels({ stack: cfg.stack, service: "network", version: "1" }),
      },
      { parent: this, provider },
    );
  }
}
