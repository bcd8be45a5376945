import type { OpsContext } from "./context";
import { deployedOutputs } from "./deployed";
import { engineCall, engineMessage, EngineUnreachable, type DockerTarget, type EngineOptions } from "./docker-engine";
import { Demuxer, LineSplitter, sinceSeconds, splitTimestamp, type StreamName } from "./log-stream";
import { dockerPreflight, stackDockerTarget, stackSecretNames, unreachable } from "./preflight";
import { masker } from "./secret-mask";
import { stackContainers, type StackContainer } from "./stack-containers";
import { requireService } from "./stack-services";
import { EXIT, UserError } from "../shared/errors";

/**
 * `npm run logs`: what the containers of a stack's service printed, read
 * from its Docker host through the Engine API (the same client and reach as
 * the deploy's preflight: unix socket, tcp, ssh through `docker system
 * dial-stdio`). Every line is prefixed with its container, and every secret
 * the container was given prints as [secret].
 */

/** Lines per container when neither --tail nor --since says. */
export const DEFAULT_TAIL = 100;

export interface LogsOptions {
  stack: string;
  /** One service; without it, every container of the stack. */
  service?: string;
  follow: boolean;
  /** A duration back from now (`10m`) or an RFC 3339 time. */
  since?: string;
  /** Lines per container, from the end. */
  tail?: number;
  /** Ends a followed stream (Ctrl-C). */
  signal?: AbortSignal;
  engine?: EngineOptions;
  /** Where each line goes; stdout and stderr of the process by default. */
  write?: (stream: StreamName, line: string) => void;
  now?: () => number;
}

export interface LogLine {
  /** Docker's timestamp, sortable. */
  key: string;
  stream: StreamName;
  /** The container's own text, secrets masked. */
  text: string;
}

const writeToProcess = (stream: StreamName, line: string) => (stream === "stderr" ? process.stderr : process.stdout).write(`${line}\n`);

/**
 * The log lines of one container, secrets masked, each handed to `onLine` as
 * soon as it is complete. With `follow`, it returns when the container stops
 * or `signal` aborts.
 */
export async function containerLogLines(
  target: DockerTarget,
  c: StackContainer,
  mask: (text: string) => string,
  query: { follow: boolean; since?: number; tail?: number },
  onLine: (line: LogLine) => void,
  opts: { signal?: AbortSignal; engine?: EngineOptions } = {},
): Promise<void> {
  const params = new URLSearchParams({ stdout: "1", stderr: "1", timestamps: "1", follow: query.follow ? "1" : "0", tail: query.tail === undefined ? "all" : String(query.tail) });
  if (query.since !== undefined) params.set("since", String(query.since));
  const splitters: Record<StreamName, LineSplitter> = { stdout: new LineSplitter(), stderr: new LineSplitter() };
  const emit = (stream: StreamName, lines: string[]) => {
    for (const raw of lines) {
      const { key, text } = splitTimestamp(raw);
      onLine({ key, stream, text: mask(text) });
    }
  };
  const demux = new Demuxer((stream, payload) => emit(stream, splitters[stream].push(payload)), c.details.Config.Tty === true);
  const res = await engineCall(target, { method: "GET", path: `/containers/${c.id}/logs?${params}`, onData: (d) => demux.push(d), signal: opts.signal }, opts.engine);
  for (const stream of ["stdout", "stderr"] as const) emit(stream, splitters[stream].flush());
  if (res.status !== 200 && !opts.signal?.aborted) {
    throw new EngineUnreachable(`the Docker engine answered ${res.status} for the logs of ${c.name}: ${engineMessage(res.body)}`, "HTTP");
  }
}

export async function logs(ctx: OpsContext, opts: LogsOptions): Promise<number> {
  const write = opts.write ?? writeToProcess;
  const service = opts.service === undefined ? undefined : requireService(ctx.root, opts.stack, opts.service).service;
  let since: number | undefined;
  try {
    since = opts.since === undefined ? undefined : sinceSeconds(opts.since, (opts.now ?? Date.now)());
  } catch (err) {
    throw new UserError((err as Error).message, EXIT.usage);
  }
  const tail = opts.tail ?? (since === undefined ? DEFAULT_TAIL : undefined);

  await deployedOutputs(ctx, opts.stack);
  const target = stackDockerTarget(ctx.root, opts.stack);
  await dockerPreflight(target, { stack: opts.stack, ...opts.engine });
  const containers = await withEngine(target, opts.stack, () => stackContainers(target, opts.stack, service, opts.engine));
  if (containers.length === 0) {
    throw new UserError(
      `No ${service ? `${service} ` : ""}container of stack "${opts.stack}" on its Docker host (${target.host}): ` +
        `nothing there carries the labels appstack.stack=${opts.stack}${service ? ` and appstack.service=${service}` : ""}.\n` +
        `Was it deployed to another host, or removed? See: npm run status -- --stack ${opts.stack}`,
      EXIT.notDeployed,
    );
  }

  const width = Math.max(...containers.map((c) => c.name.length));
  const prefix = (c: StackContainer) => `${c.name.padEnd(width)} | `;
  const scope = tail !== undefined ? `last ${tail} line${tail === 1 ? "" : "s"} of each` : `since ${new Date(since! * 1000).toISOString()}`;
  write("stderr", `Logs of stack "${opts.stack}" on ${target.host}, ${scope}${opts.follow ? ", following" : ""}: ${containers.map((c) => c.name).join(", ")}`);

  const isSecret = stackSecretNames(ctx.root, opts.stack);
  const collected: { line: LogLine; order: number; seq: number; c: StackContainer }[] = [];
  let seq = 0;
  await withEngine(target, opts.stack, () =>
    Promise.all(
      containers.map((c, order) =>
        containerLogLines(
          target,
          c,
          masker(c.details.Config.Env ?? [], isSecret),
          { follow: opts.follow, since, tail },
          (line) => (opts.follow ? write(line.stream, prefix(c) + line.text) : collected.push({ line, order, seq: seq++, c })),
          { signal: opts.signal, engine: opts.engine },
        ),
      ),
    ),
  );
  // Without --follow, the replicas' lines interleave by the time Docker recorded them.
  collected.sort((a, b) => a.line.key.localeCompare(b.line.key) || a.order - b.order || a.seq - b.seq);
  for (const { line, c } of collected) write(line.stream, prefix(c) + line.text);
  return EXIT.ok;
}

/** An engine that stops answering part-way is exit 15, with what to check. */
export async function withEngine<T>(target: DockerTarget, stack: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof EngineUnreachable && err.reason !== "HTTP") throw unreachable(target, err, stack);
    if (err instanceof EngineUnreachable) throw new UserError(`The Docker engine at ${target.host} refused: ${err.message}`, EXIT.dockerHost);
    throw err;
  }
}
