import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { HEARTBEAT_ENV, type ParsedAppConfig } from "../config";
import { applyTransform, LOG_ROTATION, RESTART_POLICY, serviceLabels, type Transform } from "./container-defaults";
import { toDockerEnvs, type ServiceEnv } from "./env";
import type { ResolvedImage } from "./image";

export type WorkerConfig = NonNullable<ParsedAppConfig["worker"]>;


/** Quotes a value for `sh -c`. */
function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The worker's health check: heartbeat file age (Node, no shell tools needed), a process check, or a command. */
export function workerHealthTest(cfg: WorkerConfig): string[] {
  const h = cfg.health;
  switch (h.type) {
    case "heartbeat":
      return [
        "CMD",
        "node",
        "-e",
        `try{process.exit(Date.now()-require("fs").statSync(${JSON.stringify(h.file)}).mtimeMs<${h.maxAgeSeconds * 1000}?0:1)}catch{process.exit(1)}`,
      ];
    case "process":
      return ["CMD-SHELL", `pgrep -f ${shellQuote(h.pattern)} >/dev/null`];
    case "command":
      return ["CMD", ...h.command];
  }
}

export interface WorkerArgs {
  config: WorkerConfig;
  stack: string;
  release: string;
  network: pulumi.Input<string>;
  image: ResolvedImage;
  env: ServiceEnv;
  /** The worker starts once the API is healthy. */
  dependsOn: pulumi.Input<pulumi.Resource>[];
  transform?: { container?: Transform<docker.ContainerArgs> };
}

/**
 * The background worker: `replicas` containers running `command`, with a
 * health check and a stop grace period long enough for SIGTERM to drain the
 * current job.
 */
export class Worker extends pulumi.ComponentResource {
  public readonly containers: docker.Container[];
  public readonly image: string;

  constructor(name: string, args: WorkerArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("appstack:components:Worker", name, {}, opts);
    const cfg = args.config;
    this.image = args.image.reference;
    const env: ServiceEnv = {
      plain: {
        ...args.env.plain,
        [cfg.concurrencyEnv]: String(cfg.concurrency),
        ...(cfg.health.type === "heartbeat" ? { [HEARTBEAT_ENV]: cfg.health.file } : {}),
      },
      secret: args.env.secret,
    };
    const envs = toDockerEnvs(env);
    const heartbeatWindow = cfg.health.type === "heartbeat" ? cfg.health.maxAgeSeconds : 30;

    this.containers = Array.from({ length: cfg.replicas }, (_, idx) => {
      const containerArgs: docker.ContainerArgs = {
        image: args.image.id,
        command: cfg.command,
        envs,
        networksAdvanced: [{ name: args.network }],
        healthcheck: {
          tests: workerHealthTest(cfg),
          interval: "15s",
          timeout: "5s",
          retries: 3,
          // A first job may take a while before the first heartbeat.
          startPeriod: `${heartbeatWindow}s`,
          startInterval: "2s",
        },
        wait: true,
        waitTimeout: heartbeatWindow + 120,
        restart: RESTART_POLICY,
        memory: cfg.memoryMb,
        cpus: cfg.cpus,
        stopSignal: "SIGTERM",
        stopTimeout: cfg.stopGracePeriodSeconds,
        destroyGraceSeconds: cfg.stopGracePeriodSeconds,
        ...LOG_ROTATION,
        labels: serviceLabels({ stack: args.stack, service: "worker", version: args.release, role: "service", image: args.image.reference }),
      };
      return new docker.Container(`${name}-${idx + 1}`, applyTransform(containerArgs, args.transform?.container), {
        parent: this,
        dependsOn: args.dependsOn,
        additionalSecretOutputs: ["envs"],
      });
    });
    this.registerOutputs({});
  }
}
