import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { appConfigSchema, isSupportedApiVersion, MIN_DOCKER_ENGINE, stackSecretEnv } from "../../config";
import { readProject, readStackConfig, resolveStackFile } from "../offline/stack-files";
import { EXIT, UserError } from "../shared/errors";
import { engineVersion, sshDestination, type DockerTarget, type EngineOptions, type EngineVersion, EngineUnreachable } from "./docker-engine";
import { swarmPreflight, swarmSettings, type SwarmSettings } from "./swarm";

/**
 * The deploy's preflight: before anything changes, the Docker engine at the
 * stack's `docker.host` must answer, and for an `ssh://` host, its host key
 * must be known (the provider connects with ssh, which refuses an unknown key
 * without asking). A failure is a UserError with exit code EXIT.dockerHost
 * and what to do. An engine older than the oldest appstack supports
 * (MIN_DOCKER_ENGINE) is refused too, with EXIT.engineTooOld.
 */

/** The stack file's plain settings, parsed as the program reads them (secure keys left out). */
export function stackSettings(root: string, stack: string): Record<string, unknown> {
  const project = readProject(root);
  const { file } = resolveStackFile(root, { stack });
  const sc = readStackConfig(file, stack, project.name);
  const settings: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(sc.config)) {
    if (!key.startsWith(`${project.name}:`) || sc.secretKeys.includes(key)) continue;
    try {
      settings[key.slice(project.name.length + 1)] = JSON.parse(raw);
    } catch {
      settings[key.slice(project.name.length + 1)] = raw;
    }
  }
  return settings;
}

/** Which env names of the stack's containers hold secrets, for masking what they print. */
export function stackSecretNames(root: string, stack: string): (name: string) => boolean {
  const settings = stackSettings(root, stack);
  const sections = Object.fromEntries(
    Object.entries(appConfigSchema.shape).flatMap(([key, schema]) => {
      const parsed = (schema as { safeParse(v: unknown): { success: boolean; data?: unknown } }).safeParse(settings[key]);
      return parsed.success ? [[key, parsed.data]] : [];
    }),
  );
  return stackSecretEnv(sections);
}

/** The stack file's `docker` settings (validated before the preflight runs). */
export function stackDockerTarget(root: string, stack: string): DockerTarget {
  const docker = appConfigSchema.shape.docker.safeParse(stackSettings(root, stack).docker);
  if (!docker.success) throw new UserError(`The docker settings of stack "${stack}" do not validate; run: npm run validate -- --stack ${stack}`, EXIT.invalidConfig);
  return { host: docker.data.host, sshOpts: docker.data.sshOpts, ...(docker.data.tls ? { tls: true } : {}) };
}

/** The stack's swarm settings (docker.mode swarm), or undefined in host mode. */
export function stackSwarmSettings(root: string, stack: string): SwarmSettings | undefined {
  return swarmSettings(stack, stackSettings(root, stack));
}

/** What ssh itself would use for a host: `ssh -G` resolves ~/.ssh/config, aliases and options. */
function sshConfig(target: DockerTarget): Map<string, string> {
  const { destination, port } = sshDestination(target.host);
  const r = spawnSync("ssh", [...(target.sshOpts ?? []), ...(port ? ["-p", port] : []), "-G", "--", destination], { encoding: "utf8", timeout: 10_000 });
  if (r.error || r.status !== 0) {
    const why = (r.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT" ? "there is no ssh client on this machine" : (r.stderr || String(r.error)).trim();
    throw new UserError(
      `docker.host is ${target.host}, and ssh cannot be used for it: ${why}; nothing was changed.\n` +
        `The Docker provider reaches an ssh:// host through the ssh client: install OpenSSH's client (apt-get install openssh-client), or check docker.sshOpts.`,
      EXIT.dockerHost,
    );
  }
  const config = new Map<string, string>();
  for (const line of r.stdout.split("\n")) {
    const space = line.indexOf(" ");
    if (space > 0) config.set(line.slice(0, space).toLowerCase(), line.slice(space + 1));
  }
  return config;
}

export interface HostKeyStatus {
  /** The name ssh looks the key up by: `host`, `[host]:port`, or the HostKeyAlias. */
  name: string;
  known: boolean;
  /** The user's known_hosts files ssh reads for this host (the global ones are read too). */
  files: string[];
  /** ssh's StrictHostKeyChecking for this host: true, ask, accept-new, false. */
  strict: string;
}

/** Whether ssh knows the host key of an ssh:// docker host (`ssh-keygen -F` in each known_hosts file ssh reads). */
export function sshHostKey(target: DockerTarget): HostKeyStatus {
  const config = sshConfig(target);
  const hostname = config.get("hostname") ?? sshDestination(target.host).destination.replace(/^.*@/, "");
  const port = config.get("port") ?? "22";
  const name = config.get("hostkeyalias") ?? (port === "22" ? hostname : `[${hostname}]:${port}`);
  const expand = (f: string) => (f.startsWith("~/") ? path.join(os.homedir(), f.slice(2)) : f);
  const list = (key: string, fallback: string) => (config.get(key) ?? fallback).split(" ").filter((f) => f && f !== "none").map(expand);
  const files = list("userknownhostsfile", "~/.ssh/known_hosts");
  const known = [...files, ...list("globalknownhostsfile", "")].some(
    (f) => fs.existsSync(f) && spawnSync("ssh-keygen", ["-F", name, "-f", f], { encoding: "utf8", timeout: 10_000 }).status === 0,
  );
  return { name, known, files, strict: config.get("stricthostkeychecking") ?? "ask" };
}

/** What to do when the engine does not answer, by why it did not (exit 15); `logs` and `exec` use it for a host that stops answering mid-way. */
export function unreachable(target: DockerTarget, err: EngineUnreachable, stack: string): UserError {
  const url = new URL(target.host);
  const socket = url.protocol === "unix:" ? url.pathname : undefined;
  const setHost = `or point docker.host at a running engine: pulumi config set -s ${stack} --path docker.host`;
  const hint: Record<string, string> = {
    ENOENT: `No socket at ${socket}: start the Docker engine (Docker Desktop, or sudo systemctl start docker), ${setHost}`,
    EACCES: `This user may not use ${socket}: add it to the docker group (sudo usermod -aG docker "$USER", then log in again), or deploy as a user that may use Docker.`,
    ECONNREFUSED: socket
      ? `Nothing answers on ${socket}: start the Docker engine, ${setHost}`
      : `Nothing answers at ${url.host}: check that the engine listens there and that this machine may reach it, ${setHost}`,
    ETIMEDOUT: `The engine did not answer in time: check that ${url.host || socket} is reachable from this machine.`,
    SSH: `ssh could not carry the Docker API: check that this works from this machine: ssh ${(target.sshOpts ?? []).join(" ")}${target.sshOpts?.length ? " " : ""}${sshDestination(target.host).destination} docker version (a key in your ssh agent; on the host, a user in the docker group).`,
  };
  return new UserError(
    `The Docker engine at docker.host (${target.host}) does not answer: ${err.message}; nothing was changed.\n` +
      (hint[err.reason] ?? `Check that the engine at ${target.host} runs and answers.`),
    EXIT.dockerHost,
  );
}

export interface PreflightOptions extends EngineOptions {
  stack: string;
}

/** Runs the preflight; the line to print on success, a UserError (EXIT.dockerHost) otherwise. */
export async function dockerPreflight(target: DockerTarget, opts: PreflightOptions): Promise<{ engine?: EngineVersion; line: string }> {
  if (target.tls) {
    // The client certificate and key are secure config, decrypted only inside the deploy; the provider connects with them.
    return { line: `Docker engine at ${target.host} (TLS): not checked before the update; the Docker provider connects with the stack's TLS material.` };
  }
  const notes: string[] = [];
  if (target.host.startsWith("ssh://")) {
    const key = sshHostKey(target);
    if (!key.known) {
      if (key.strict === "true" || key.strict === "ask") {
        const { port } = sshDestination(target.host);
        const host = key.name.replace(/^\[(.*)\]:\d+$/, "$1");
        throw new UserError(
          `The ssh host key of ${key.name} (docker.host ${target.host}) is not in ${key.files.join(" or ")}, ` +
            `so ssh, and the Docker provider through it, refuses to connect; nothing was changed.\n` +
            `Fetch the key and compare its fingerprint with the host's own (on the host: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub):\n` +
            `  ssh-keyscan ${port ? `-p ${port} ` : ""}-t ed25519 ${host} > ${host}.hostkey && ssh-keygen -lf ${host}.hostkey\n` +
            `then trust it:\n` +
            `  cat ${host}.hostkey >> ~/.ssh/known_hosts`,
          EXIT.dockerHost,
        );
      }
      notes.push(`ssh host key of ${key.name} not yet known; StrictHostKeyChecking=${key.strict} accepts it`);
    }
  }
  let engine: EngineVersion;
  try {
    engine = await engineVersion(target, opts);
  } catch (err) {
    if (err instanceof EngineUnreachable) throw unreachable(target, err, opts.stack);
    throw err;
  }
  requireSupportedEngine(target, engine);
  const platform = engine.os && engine.arch ? ` (${engine.os}/${engine.arch})` : "";
  return { engine, line: `Docker engine at ${target.host}: Docker ${engine.version}, API ${engine.apiVersion}${platform}${notes.length ? `; ${notes.join("; ")}` : ""}.` };
}

/**
 * The deploy's preflight for a stack: the Docker host (dockerPreflight), and
 * in swarm mode the swarm (swarmPreflight). The lines to print.
 */
export async function deployPreflight(root: string, stack: string, opts: EngineOptions = {}): Promise<string> {
  const target = stackDockerTarget(root, stack);
  const { line } = await dockerPreflight(target, { ...opts, stack });
  const swarm = stackSwarmSettings(root, stack);
  return swarm ? `${line}\n${await swarmPreflight(target, swarm, opts)}` : line;
}

/**
 * Refuses an engine older than the oldest appstack supports: on one, the
 * provider cannot create the stack's containers (docs/docker-engine.md). What
 * counts is the API version the engine speaks, which its version implies.
 */
export function requireSupportedEngine(target: DockerTarget, engine: EngineVersion): void {
  if (isSupportedApiVersion(engine.apiVersion)) return;
  const min = MIN_DOCKER_ENGINE;
  throw new UserError(
    `The Docker engine at docker.host (${target.host}) is Docker ${engine.version} with Engine API ${engine.apiVersion}; ` +
      `appstack needs Docker ${min.version} (API ${min.apiVersion}) or newer; nothing was changed.\n` +
      `Upgrade the Docker Engine on that host, then deploy again: ${min.example} is new enough (sudo apt-get install docker.io), ` +
      `or install Docker Engine from Docker's own packages (https://docs.docker.com/engine/install/). ` +
      `The supported range and why: docs/docker-engine.md.`,
    EXIT.engineTooOld,
  );
}
