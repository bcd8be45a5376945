import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { applyTransform, LOG_ROTATION, serviceLabels, type Transform } from "./container-defaults";
import type { JobSecretFile } from "./env";

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
  envs: pulumi.Input<string>[];
  network: pulumi.Input<string>;
  memoryMb: number;
  cpus: string;
  /** How long the job may run before the deploy gives up. */
  timeoutSeconds: number;
  volumes?: docker.types.input.ContainerVolume[];
  /** Files written into the container before it starts. */
  uploads?: pulumi.Input<docker.types.input.ContainerUpload>[];
  /** Swarm mode: secrets as files written into the container before it starts (its env names them, `<NAME>_FILE`). */
  secretFiles?: JobSecretFile[];
  /** What must be up before the job starts (healthy data stores). */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
  transform?: { container?: Transform<docker.ContainerArgs> };
}

/** How many log lines a failed job shows in the deploy error. */
export const JOB_LOG_LINES = 40;

/**
 * Turns a one-shot container's exit code into the deploy's outcome. The Docker
 * provider records `exitCode` but never fails an update on it, so a failed
 * migration would otherwise be followed by new API containers on an old schema.
 */
export function checkJobExit(description: string, exitCode: number | undefined | null, logs: string | undefined): void {
  if (exitCode === undefined || exitCode === null || exitCode === 0) return;
  const lines = (logs ?? "").trimEnd().split("\n");
  const tail = lines.slice(-JOB_LOG_LINES).join("\n");
  throw new pulumi.RunError(
    `${description} failed with exit code ${exitCode}; the deploy stopped before any service was replaced.\n` +
      `--- last ${Math.min(lines.length, JOB_LOG_LINES)} log lines ---\n${tail || "(no output)"}`,
  );
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
    const containerArgs: docker.ContainerArgs = {
      image: args.image,
      command: args.command,
      envs: args.envs,
      networksAdvanced: [{ name: args.network }],
      volumes: args.volumes,
      uploads: args.secretFiles ? [...(args.uploads ?? []), ...args.secretFiles] : args.uploads,
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
      additionalSecretOutputs: args.secretFiles ? ["envs", "containerLogs", "uploads"] : ["envs", "containerLogs"],
    });
    const container = this.container;
    this.completed = pulumi
      .all([container.exitCode, container.containerLogs])
      .apply(([code, logs]) => {
        checkJobExit(args.description, code, logs);
        return container;
      });
    this.registerOutputs({});
  }
}
