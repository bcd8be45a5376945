import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { HEALTH_INTERVAL_SECONDS, HEARTBEAT_ENV, type ParsedAppConfig } from "../config";
import { applyTransform, hardening, LOG_ROTATION, RESTART_POLICY, secondsString, serviceLabels, type Transform } from "./container-defaults";
import { toDockerEnvs, type ServiceEnv } from "./env";
import { serviceImage, type ResolvedImage } from "./image";
import { DEFAULT_APP_FILE_OWNER, replicatedServiceArgs, type SecretFile, type SwarmTarget } from "./swarm-service";

export type WorkerConfig = NonNullable<ParsedAppConfig["worker"]>;


/** The process check's pattern: configured, else the worker's command as its command line reads. */
export function processPattern(cfg: WorkerConfig): string | undefined {
  return cfg.health.type === "process" ? (cfg.health.pattern ?? cfg.command.join(" ")) : undefined;
}

/**
 * A Node program that exits 0 when a process whose command line contains
 * `pattern` has run for at least `upSeconds`, else 1 with the reason on
 * stdout (Docker keeps it in the health log). It reads /proc itself and skips
 * its own process and its ancestors, whose command lines hold the pattern
 * too: `sh -c "pgrep -f X"` always finds its own shell, so it can never fail.
 */
export function processCheckScript(pattern: string, upSeconds: number): string {
  return [
    `const fs=require("fs"),pattern=${JSON.stringify(pattern)},up=${upSeconds};`,
    `const stat=(p)=>{const s=fs.readFileSync("/proc/"+p+"/stat","utf8");return s.slice(s.lastIndexOf(")")+2).split(" ")};`,
    `const skip=new Set();for(let p=process.pid;p>0&&!skip.has(p);){skip.add(p);try{p=Number(stat(p)[1])}catch{break}}`,
    `const uptime=parseFloat(fs.readFileSync("/proc/uptime","utf8"));let ran=-1;`,
    `for(const p of fs.readdirSync("/proc")){if(!/^\\d+$/.test(p)||skip.has(Number(p)))continue;`,
    `try{if(!fs.readFileSync("/proc/"+p+"/cmdline","utf8").split("\\0").join(" ").includes(pattern))continue;ran=Math.max(ran,uptime-stat(p)[19]/100)}catch{}}`,
    `if(ran<0){console.log("no process whose command line contains "+JSON.stringify(pattern));process.exit(1)}`,
    `if(ran<up){console.log(JSON.stringify(pattern)+" has run "+Math.floor(ran)+" s; healthy after "+up+" s");process.exit(1)}`,
  ].join("");
}

/** A Node program that exits 0 while `file` is younger than `maxAgeSeconds`, else 1 with the reason on stdout. */
export function heartbeatCheckScript(file: string, maxAgeSeconds: number): string {
  return [
    `const file=${JSON.stringify(file)},max=${maxAgeSeconds};let age;`,
    `try{age=(Date.now()-require("fs").statSync(file).mtimeMs)/1000}`,
    `catch{console.log("no heartbeat file "+file+": the worker must touch $HEARTBEAT_FILE at least every "+max+" s");process.exit(1)}`,
    `if(age>=max){console.log("heartbeat "+file+" is "+Math.floor(age)+" s old (limit "+max+" s)");process.exit(1)}`,
  ].join("");
}

/**
 * The worker's health check (see `worker.health` in config/schema.ts). The
 * process and heartbeat checks are exec'd Node programs: no shell, no
 * pgrep, the same requirement as the API's default probe.
 */
export function workerHealthTest(cfg: WorkerConfig): string[] {
  const h = cfg.health;
  switch (h.type) {
    case "process":
      return ["CMD", "node", "-e", processCheckScript(processPattern(cfg)!, h.upSeconds)];
    case "heartbeat":
      return ["CMD", "node", "-e", heartbeatCheckScript(h.file, h.maxAgeSeconds)];
    case "command":
      return ["CMD", ...h.command];
  }
}

/** How long `pulumi up` waits for a worker container to turn healthy. */
export function workerHealthTimeout(cfg: WorkerConfig): number {
  return cfg.healthTimeoutSeconds ?? (cfg.health.type === "heartbeat" ? cfg.health.maxAgeSeconds + 120 : 150);
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
  /** Swarm mode: the worker is one service on the overlay network, its secrets mounted as files. */
  swarm?: SwarmTarget & { secrets: SecretFile[] };
  transform?: { container?: Transform<docker.ContainerArgs>; service?: Transform<docker.ServiceArgs> };
}

/** Failed checks in a row before a worker counts as unhealthy. */
const WORKER_HEALTH_RETRIES = 3;

/** The worker's health check, the same for a container and a service's task. */
export function workerHealthcheck(cfg: WorkerConfig) {
  return {
    tests: workerHealthTest(cfg),
    interval: secondsString(HEALTH_INTERVAL_SECONDS),
    timeout: "5s",
    retries: WORKER_HEALTH_RETRIES,
    startPeriod: `${workerStartPeriod(cfg)}s`,
  };
}

/** Seconds after a worker's start during which failed checks do not count: a first job may take a while before the first heartbeat. */
export function workerStartPeriod(cfg: WorkerConfig): number {
  return cfg.health.type === "heartbeat" ? cfg.health.maxAgeSeconds : 30;
}

/**
 * The background worker: `replicas` containers running `command`, with a
 * health check and a stop grace period long enough for SIGTERM to drain the
 * current job.
 */
export class Worker extends pulumi.ComponentResource {
  /** Host mode: the worker's containers. */
  public readonly containers: docker.Container[];
  /** Swarm mode: the worker's service. */
  public readonly service?: docker.Service;
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
    if (args.swarm) {
      this.service = this.createService(name, args, env, args.swarm);
      this.containers = [];
      this.registerOutputs({});
      return;
    }
    const envs = toDockerEnvs(env);

    this.containers = Array.from({ length: cfg.replicas }, (_, idx) => {
      const containerArgs: docker.ContainerArgs = {
        image: args.image.id,
        command: cfg.command,
        envs,
        networksAdvanced: [{ name: args.network }],
        ...hardening({ stack: args.stack, service: "worker", writable: cfg.writablePaths }),
        healthcheck: workerHealthcheck(cfg),
        wait: true,
        waitTimeout: workerHealthTimeout(cfg),
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

  /** What the next steps wait for: the containers, or the service once it converged. */
  public get ready(): pulumi.Resource[] {
    return this.service ? [this.service] : this.containers;
  }

  /** Swarm mode: `replicas` tasks, replaced one at a time, start-first, rolled back by Swarm on failure. */
  private createService(name: string, args: WorkerArgs, env: ServiceEnv, target: SwarmTarget & { secrets: SecretFile[] }): docker.Service {
    const cfg = args.config;
    const serviceArgs = replicatedServiceArgs({
      identity: { stack: args.stack, service: "worker", version: args.release, role: "service", image: args.image.reference },
      replicas: cfg.replicas,
      task: {
        image: serviceImage(args.image),
        args: cfg.command,
        env: env.plain,
        secrets: target.secrets,
        owner: cfg.secretFiles ?? DEFAULT_APP_FILE_OWNER,
        healthcheck: workerHealthcheck(cfg),
        memoryMb: cfg.memoryMb,
        cpus: cfg.cpus,
        stopGracePeriodSeconds: cfg.stopGracePeriodSeconds,
        hardening: { writable: cfg.writablePaths },
        target,
      },
      order: "start-first",
      health: { startPeriodSeconds: workerStartPeriod(cfg), intervalSeconds: HEALTH_INTERVAL_SECONDS, retries: WORKER_HEALTH_RETRIES },
      healthTimeoutSeconds: workerHealthTimeout(cfg),
    });
    return new docker.Service(`${name}-service`, applyTransform(serviceArgs, args.transform?.service), { parent: this, dependsOn: args.dependsOn });
  }
}
