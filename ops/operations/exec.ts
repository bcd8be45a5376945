import { randomBytes } from "node:crypto";
import type { OpsContext } from "./context";
import { deployedOutputs } from "./deployed";
import { engineCall, engineMessage, type EngineOptions } from "./docker-engine";
import { readExecRecords, whoRan, writeExecRecord, auditVolume, type ExecRecord, type RanBy } from "./exec-audit";
import type { StreamName } from "./log-stream";
import { containerLogLines, withEngine } from "./logs";
import { dockerPreflight, stackDockerTarget, stackSecretNames } from "./preflight";
import { masker } from "./secret-mask";
import { stackContainers, type StackContainer } from "./stack-containers";
import { LONG_RUNNING, requireService } from "./stack-services";
import { EXIT, UserError } from "../shared/errors";
import { shellLine } from "../shared/shell";

/**
 * `npm run exec`: a one-off command in a new container made like one of the
 * service's replicas (its image, env, network, user, memory and CPU limits),
 * never inside a live replica, so a long task takes no serving capacity. It
 * prints the command's output (secrets masked, as `logs` does), exits with
 * the command's exit code, and removes the container. Production needs
 * --yes. Every run is recorded on the stack's Docker host (exec-audit.ts).
 */

export interface ExecOptions {
  stack: string;
  service: string;
  /** The replica to copy; the first running one of the deployed image by default. */
  replica?: number;
  command: string[];
  yes: boolean;
  engine?: EngineOptions;
  /** Where the command's output goes; stdout and stderr of the process by default. */
  write?: (stream: StreamName, line: string) => void;
  /** Stops the command (Ctrl-C): the container is stopped and removed. */
  signal?: AbortSignal;
  now?: () => Date;
  who?: (pulumiUser: string | undefined) => RanBy;
}

const writeToProcess = (stream: StreamName, line: string) => (stream === "stderr" ? process.stderr : process.stdout).write(`${line}\n`);

/** The replica to copy: of the image the stack deployed (a draining old release is passed over), running, by --replica. */
export function pickReplica(containers: StackContainer[], deployedImage: string | undefined, replica: number | undefined, stack: string, service: string): StackContainer {
  const current = containers.filter((c) => c.role === "service" && c.running && (deployedImage === undefined || c.image === deployedImage));
  if (current.length === 0) {
    const others = containers.filter((c) => c.role === "service").map((c) => `${c.name} (${c.running ? "running" : c.details.State.Status}, ${c.image ?? "?"})`);
    throw new UserError(
      `No running ${service} container of stack "${stack}" runs the deployed image${deployedImage ? ` ${deployedImage}` : ""}` +
        (others.length ? `; there are: ${others.join(", ")}.` : ".") +
        `\nSee: npm run status -- --stack ${stack}`,
      EXIT.notDeployed,
    );
  }
  if (replica === undefined) return current[0];
  const chosen = current.find((c) => c.replica === replica);
  if (!chosen) {
    throw new UserError(`Stack "${stack}" has no running ${service} replica ${replica}; it has: ${current.map((c) => `${c.replica} (${c.name})`).join(", ")}.`, EXIT.usage);
  }
  return chosen;
}

/** The one-off container, made like the replica: what `docker run --rm` would be given, minus its ports, aliases and health check. */
export function oneOffSpec(replica: StackContainer, command: string[], ranBy: RanBy): Record<string, unknown> {
  const d = replica.details;
  const network = d.HostConfig.NetworkMode && d.HostConfig.NetworkMode !== "default" ? d.HostConfig.NetworkMode : Object.keys(d.NetworkSettings?.Networks ?? {})[0];
  const labels = d.Config.Labels ?? {};
  return {
    Image: d.Image,
    Cmd: command,
    Env: d.Config.Env ?? [],
    User: d.Config.User ?? "",
    Tty: false,
    OpenStdin: false,
    AttachStdout: true,
    AttachStderr: true,
    // The image's health check is the replica's business; a one-off is done when it exits.
    Healthcheck: { Test: ["NONE"] },
    Labels: {
      "appstack.project": labels["appstack.project"] ?? "appstack",
      "appstack.stack": labels["appstack.stack"],
      "appstack.service": replica.service,
      "appstack.version": labels["appstack.version"] ?? "",
      "appstack.role": "oneoff",
      ...(replica.image ? { "appstack.image": replica.image } : {}),
      "appstack.exec.by": ranBy.pulumiUser ?? ranBy.ci?.actor ?? ranBy.user,
    },
    HostConfig: {
      // On the stack's network, but under no alias: nothing routes traffic to it.
      NetworkMode: network,
      Memory: d.HostConfig.Memory ?? 0,
      NanoCpus: d.HostConfig.NanoCpus ?? 0,
      RestartPolicy: { Name: "no" },
      LogConfig: { Type: "json-file", Config: {} },
    },
    ...(network ? { NetworkingConfig: { EndpointsConfig: { [network]: {} } } } : {}),
  };
}

async function engineOk(res: Promise<{ status: number; body: string }>, what: string): Promise<string> {
  const r = await res;
  if (r.status < 200 || r.status >= 300) throw new OneOffFailed(`${what}: ${engineMessage(r.body)} (HTTP ${r.status})`);
  return r.body;
}

class OneOffFailed extends Error {}

export async function exec(ctx: OpsContext, opts: ExecOptions): Promise<number> {
  const write = opts.write ?? writeToProcess;
  const now = opts.now ?? (() => new Date());
  if (opts.command.length === 0) {
    throw new UserError(`Name the command after --: npm run exec -- --stack ${opts.stack} --service ${opts.service} -- <command...>`, EXIT.usage);
  }
  const { service, environment } = requireService(ctx.root, opts.stack, opts.service, LONG_RUNNING);
  if (environment === "production" && !opts.yes) {
    throw new UserError(
      `Stack "${opts.stack}" is production: the command runs with its secrets, its data and its network. Nothing was run.\n` +
        `To run it, add --yes: npm run exec -- --stack ${opts.stack} --service ${service}${opts.replica ? ` --replica ${opts.replica}` : ""} --yes -- ${shellLine(opts.command)}`,
      EXIT.usage,
    );
  }

  const deployed = await deployedOutputs(ctx, opts.stack);
  const images = (deployed.outputs.images?.value ?? {}) as Record<string, string>;
  const target = stackDockerTarget(ctx.root, opts.stack);
  await dockerPreflight(target, { stack: opts.stack, ...opts.engine });
  const containers = await withEngine(target, opts.stack, () => stackContainers(target, opts.stack, service, opts.engine));
  const replica = pickReplica(containers, images[service], opts.replica, opts.stack, service);

  const mask = masker(replica.details.Config.Env ?? [], stackSecretNames(ctx.root, opts.stack));
  const ranBy = (opts.who ?? whoRan)(deployed.user);
  const started = now();
  const name = `appstack-${opts.stack}-${service}-exec-${started.toISOString().replace(/[-:]/g, "").slice(0, 15)}-${randomBytes(3).toString("hex")}`;
  const record: ExecRecord = {
    container: name,
    stack: opts.stack,
    service,
    command: opts.command.map(mask),
    image: replica.image,
    imageId: replica.details.Image,
    copiedFrom: replica.name,
    ranBy,
    startedAt: started.toISOString(),
  };
  const spec = oneOffSpec(replica, opts.command, ranBy);

  return withEngine(target, opts.stack, async () => {
    // No record, no run.
    await writeExecRecord(target, record, opts.engine);
    write("stderr", `Running on ${target.host} in ${name} (image ${replica.image ?? replica.details.Image}, env and network of ${replica.name}); recorded in volume ${auditVolume(opts.stack)}.`);
    let id: string | undefined;
    let exitCode: number;
    try {
      const created = await engineOk(
        engineCall(target, { method: "POST", path: `/containers/create?name=${encodeURIComponent(name)}`, body: spec }, opts.engine),
        "The Docker engine could not create the one-off container",
      );
      id = (JSON.parse(created) as { Id: string }).Id;
      await engineOk(engineCall(target, { method: "POST", path: `/containers/${id}/start` }, opts.engine), "The Docker engine could not start the command");
      const stop = () => void engineCall(target, { method: "POST", path: `/containers/${id}/stop?t=10` }, opts.engine).catch(() => undefined);
      opts.signal?.addEventListener("abort", stop, { once: true });
      const c: StackContainer = { ...replica, id, name, details: { ...replica.details, Id: id, Config: { ...replica.details.Config, Tty: false } } };
      // Follows until the container exits; the json-file log holds everything from its start.
      await containerLogLines(target, c, mask, { follow: true }, (line) => write(line.stream, line.text), { engine: opts.engine });
      opts.signal?.removeEventListener("abort", stop);
      const waited = await engineOk(engineCall(target, { method: "POST", path: `/containers/${id}/wait` }, { ...opts.engine, timeoutMs: 60_000 }), "Waiting for the command");
      exitCode = (JSON.parse(waited) as { StatusCode: number }).StatusCode;
    } catch (err) {
      if (!(err instanceof OneOffFailed)) throw err;
      await writeExecRecord(target, { ...record, endedAt: now().toISOString(), error: err.message }, opts.engine).catch(() => undefined);
      throw new UserError(`${err.message}\nNothing ran; the attempt is recorded in volume ${auditVolume(opts.stack)}.`, EXIT.oneOffFailed);
    } finally {
      if (id) await engineCall(target, { method: "DELETE", path: `/containers/${id}?force=1&v=1` }, opts.engine).catch(() => undefined);
    }
    await writeExecRecord(target, { ...record, endedAt: now().toISOString(), exitCode }, opts.engine);
    if (exitCode !== 0) write("stderr", `The command exited with ${exitCode}.`);
    return exitCode;
  });
}

/** The stack's exec records, oldest first, as lines. */
export async function execHistory(ctx: OpsContext, opts: { stack: string; engine?: EngineOptions; write?: (stream: StreamName, line: string) => void }): Promise<number> {
  const write = opts.write ?? writeToProcess;
  const target = stackDockerTarget(ctx.root, opts.stack);
  await dockerPreflight(target, { stack: opts.stack, ...opts.engine });
  const containers = await withEngine(target, opts.stack, () => stackContainers(target, opts.stack, undefined, opts.engine));
  const any = containers.find((c) => c.role === "service") ?? containers[0];
  if (!any) throw new UserError(`No container of stack "${opts.stack}" on ${target.host}, so no exec records either.`, EXIT.notDeployed);
  const records = await withEngine(target, opts.stack, () => readExecRecords(target, opts.stack, any.details.Image, opts.engine));
  if (records.length === 0) write("stdout", `No exec runs recorded for stack "${opts.stack}" (volume ${auditVolume(opts.stack)} on ${target.host}).`);
  for (const r of records) {
    const by = [r.ranBy.pulumiUser && `pulumi:${r.ranBy.pulumiUser}`, r.ranBy.gitEmail, r.ranBy.user, r.ranBy.ci && `ci:${r.ranBy.ci.actor}`].filter(Boolean).join(" ");
    const outcome = r.exitCode !== undefined ? `exit ${r.exitCode}` : r.error ? `failed to start: ${r.error}` : "no exit recorded";
    write("stdout", `${r.startedAt}  ${r.service}  ${outcome}  by ${by}  $ ${shellLine(r.command)}`);
  }
  return EXIT.ok;
}
