import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { applyTransform, hardening, LOG_ROTATION, serviceLabels, type Transform } from "./container-defaults";
import { toDockerEnvs, toFileEnvs, type ServiceEnv } from "./env";
import { maskSecrets, MIN_MASKABLE_SECRET } from "./log-mask";

export interface JobArgs {
  stack: string;
  /** The service label, e.g. "migrate" or "backup". */
  service: string;
  /** What the failure message calls this job: "Database migrations". */
  description: string;
  image: pulumi.Input<string>;
  imageReference: string;
  version: pulumi.Input<string>;
  command: pulumi.Input<string>[];
  /**
   * The job's environment. Every secret value in it is masked in the deploy
   * error a failure prints, which reaches CI logs.
   */
  env: ServiceEnv;
  /** The network the job reaches its peers on; without one it has no network at all. */
  network?: pulumi.Input<string>;
  /** Paths it writes that are not volumes: tmpfs on its read-only root filesystem. @default ["/tmp"] */
  writable?: string[];
  memoryMb: number;
  cpus: string;
  /** How long the job may run before the deploy gives up. */
  timeoutSeconds: number;
  volumes?: docker.types.input.ContainerVolume[];
  /** Files written into the container before it starts; its root filesystem then stays writable (hardening's writableRoot). */
  uploads?: pulumi.Input<docker.types.input.ContainerUpload>[];
  /**
   * Swarm mode: each secret as a file in `/run/secrets/`, written into the
   * container before it starts (a plain container cannot mount Swarm
   * secrets); its env holds `<NAME>_FILE` only, as a service's does.
   */
  secretsAsFiles?: boolean;
  /** What must be up before the job starts (healthy data stores). */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
  transform?: { container?: Transform<docker.ContainerArgs> };
}

/** How many log lines a failed job shows in the deploy error. */
export const JOB_LOG_LINES = 40;

export interface JobOutcome {
  /** What the message calls the job: "Database migrations". */
  description: string;
  exitCode: number | undefined | null;
  logs: string | undefined;
  /** The container's Docker name, for the command that shows its whole log. */
  container: string;
  /** Every secret value the job received: none of them may reach the message. */
  secrets: readonly string[];
}

/**
 * Turns a one-shot container's exit code into the deploy's outcome. The Docker
 * provider records `exitCode` but never fails an update on it, so a failed
 * migration would otherwise be followed by new API containers on an old schema.
 *
 * The message goes to `pulumi up`'s output and from there into CI logs, where
 * nothing masks the generated passwords. It keeps the tail of the log with
 * every secret the job received, and the credentials of any URL, replaced by
 * `[secret]`; where that cannot be done safely, it shows no log at all. Either
 * way it names the command that shows the whole log on the Docker host.
 */
export function checkJobExit(outcome: JobOutcome): void {
  const { description, exitCode, logs, container, secrets } = outcome;
  if (exitCode === undefined || exitCode === null || exitCode === 0) return;
  const lines = (logs ?? "").trimEnd().split("\n");
  const tail = lines.slice(-JOB_LOG_LINES).join("\n");
  const masked = maskSecrets(tail, secrets);
  const head = `${description} failed with exit code ${exitCode}; the deploy stopped before any service was replaced.`;
  const where = `Its whole log, unmasked, on the stack's Docker host: docker logs ${container}`;
  const body =
    masked === undefined
      ? `The log is not shown: it may hold a secret shorter than ${MIN_MASKABLE_SECRET} characters, which cannot be masked reliably.`
      : `--- last ${Math.min(lines.length, JOB_LOG_LINES)} log lines, secrets masked ---\n${masked || "(no output)"}`;
  throw new pulumi.RunError(`${head}\n${where}\n${body}`);
}

/**
 * A one-shot container that runs to completion on every create or replace
 * (a changed image, command or env), and a gate the next step depends on.
 */
export class Job extends pulumi.ComponentResource {
  public readonly container: docker.Container;
  /**
   * The container, once it exited 0. Put it in a later resource's `dependsOn`:
   * a non-zero exit rejects it, and that resource is never created.
   */
  public readonly completed: pulumi.Output<docker.Container>;

  constructor(name: string, args: JobArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("appstack:components:Job", name, {}, opts);
    const asFiles = args.secretsAsFiles ? toFileEnvs(args.env) : undefined;
    const uploads = asFiles ? [...(args.uploads ?? []), ...asFiles.files] : args.uploads;
    const containerArgs: docker.ContainerArgs = {
      image: args.image,
      command: args.command,
      envs: asFiles ? asFiles.envs : toDockerEnvs(args.env),
      ...(args.network ? { networksAdvanced: [{ name: args.network }] } : { networkMode: "none" }),
      ...hardening({ stack: args.stack, service: args.service, writable: args.writable ?? ["/tmp"], writableRoot: (uploads?.length ?? 0) > 0 }),
      volumes: args.volumes,
      uploads,
      // Run once: the provider waits for the exit (attach) and keeps the output (logs).
      restart: "no",
      mustRun: false,
      attach: true,
      logs: true,
      memory: args.memoryMb,
      cpus: args.cpus,
      ...LOG_ROTATION,
      labels: serviceLabels({ stack: args.stack, service: args.service, version: args.version, role: "job", image: args.imageReference }),
    };
    this.container = new docker.Container(`${name}-run`, applyTransform(containerArgs, args.transform?.container), {
      parent: this,
      dependsOn: args.dependsOn,
      customTimeouts: { create: `${args.timeoutSeconds}s` },
      // Swarm mode: the secret files are uploads.
      additionalSecretOutputs: asFiles ? ["envs", "containerLogs", "uploads"] : ["envs", "containerLogs"],
    });
    const container = this.container;
    this.completed = pulumi
      .all([container.exitCode, container.containerLogs, container.name, pulumi.all(Object.values(args.env.secret))])
      .apply(([exitCode, logs, name, secrets]) => {
        checkJobExit({ description: args.description, exitCode, logs, container: name, secrets });
        return container;
      });
    this.registerOutputs({});
  }
}
