/**
 * A declared `docker.Container`, created on a real engine the way the Docker
 * provider creates it: the requests of `resourceDockerContainerCreate` in
 * kreuzwerker/terraform-provider-docker
 * (internal/provider/resource_docker_container_funcs.go, the provider that
 * pulumi-docker bridges), field by field:
 *
 *   1. `POST /containers/create?name=` with Config and HostConfig built from
 *      the inputs (durations in nanoseconds, MiB in bytes, `cpus` as NanoCpus,
 *      ports and volumes as the provider's helpers spell them, HostConfig.Init
 *      always sent, NetworkMode "bridge" by the schema's default);
 *   2. for `networksAdvanced`: `POST /networks/bridge/disconnect`, then
 *      `POST /networks/{name}/connect` with the aliases;
 *   3. each `uploads` entry as a one-file tar, `PUT /containers/{id}/archive?path=/`;
 *   4. `POST /containers/{id}/start`;
 *   5. `wait`: `GET /containers/{id}/json` every second until
 *      State.Health.Status is "healthy" (the provider fails only at
 *      waitTimeout); `attach`: `POST /containers/{id}/wait?condition=not-running`,
 *      then the logs.
 *
 * What the provider's Go client checks before it sends anything (it refuses
 * a health-check startInterval below API 1.44) is not here: an engine would
 * not see it. The contract test asserts such inputs are absent from the plan.
 */
import { Engine, pollUntil, type ContainerInspect } from "./engine";

type Inputs = Record<string, unknown>;

/** The provider's defaults for inputs a plan leaves unset (the resource schema's `Default`s). */
const SCHEMA_DEFAULTS = { restart: "no", start: true, attach: false, logs: false, wait: false, waitTimeout: 60, networkMode: "bridge", portIp: "0.0.0.0", portProtocol: "tcp" };

/** Go's time.ParseDuration for the units Docker durations use, in nanoseconds. */
export function goDurationNs(d: string): number {
  const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0;
  let rest = d;
  while (rest) {
    const m = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/.exec(rest);
    if (!m) throw new Error(`not a Go duration: ${d}`);
    total += Number(m[1]) * units[m[2]];
    rest = rest.slice(m[0].length);
  }
  return Math.round(total);
}

/** docker/cli's opts.ParseCPUs: a decimal number of CPUs as NanoCPUs. */
export function nanoCpus(cpus: string): number {
  if (!/^\d+(\.\d+)?$/.test(cpus)) throw new Error(`invalid cpus: ${cpus}`);
  return Math.round(Number(cpus) * 1e9);
}

export interface ProviderRequests {
  /** `?name=` of the create; the provider sends the name input as given. */
  name?: string;
  /** The body of `POST /containers/create`: container.Config with HostConfig and NetworkingConfig. */
  create: Record<string, unknown> & { HostConfig: Record<string, unknown> };
  networks: { name: string; endpointConfig: { Aliases?: string[]; IPAMConfig: Record<string, never> } }[];
  uploads: { file: string; content: string; mode: number }[];
  start: boolean;
  wait?: { timeoutSeconds: number };
  attach: boolean;
  logs: boolean;
}

/** The requests the provider makes for a container's inputs (see the module comment). */
export function providerRequests(inputs: Inputs): ProviderRequests {
  const s = (k: string) => inputs[k] as string | undefined;
  const n = (k: string) => inputs[k] as number | undefined;
  const config: Record<string, unknown> = { Image: s("image") };
  if (inputs.envs) config.Env = inputs.envs;
  if (inputs.command) config.Cmd = inputs.command;
  if (inputs.entrypoints) config.Entrypoint = inputs.entrypoints;
  if (inputs.user) config.User = inputs.user;
  if (inputs.stopSignal) config.StopSignal = inputs.stopSignal;
  if (inputs.stopTimeout !== undefined) config.StopTimeout = inputs.stopTimeout;

  const hostConfig: Record<string, unknown> = {
    RestartPolicy: { Name: s("restart") ?? SCHEMA_DEFAULTS.restart, MaximumRetryCount: n("maxRetryCount") ?? 0 },
    LogConfig: { Type: s("logDriver") ?? "", ...(inputs.logOpts ? { Config: inputs.logOpts } : {}) },
    NetworkMode: s("networkMode") ?? SCHEMA_DEFAULTS.networkMode,
    Init: (inputs.init as boolean | undefined) ?? false,
    // `read_only` is a plain bool of the schema: always sent.
    ReadonlyRootfs: (inputs.readOnly as boolean | undefined) ?? false,
  };
  if (inputs.tmpfs) hostConfig.Tmpfs = inputs.tmpfs;
  const caps = inputs.capabilities as { adds?: string[]; drops?: string[] } | undefined;
  if (caps) {
    hostConfig.CapAdd = caps.adds ?? [];
    hostConfig.CapDrop = caps.drops ?? [];
  }
  if (inputs.securityOpts) hostConfig.SecurityOpt = inputs.securityOpts;
  // cgroup_parent reaches HostConfig since kreuzwerker/terraform-provider-docker#609 (its typo fixed in #746).
  if (inputs.cgroupParent) hostConfig.CgroupParent = inputs.cgroupParent;

  const ports = (inputs.ports as { internal: number; external?: number; ip?: string; protocol?: string }[] | undefined) ?? [];
  if (ports.length) {
    const exposed: Record<string, object> = {};
    const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
    for (const p of ports) {
      const key = `${p.internal}/${p.protocol ?? SCHEMA_DEFAULTS.portProtocol}`;
      exposed[key] = {};
      (bindings[key] ??= []).push({ HostIp: p.ip ?? SCHEMA_DEFAULTS.portIp, HostPort: p.external === undefined ? "" : String(p.external) });
    }
    config.ExposedPorts = exposed;
    hostConfig.PortBindings = bindings;
  }

  const volumes = (inputs.volumes as { volumeName?: string; hostPath?: string; containerPath: string; readOnly?: boolean }[] | undefined) ?? [];
  // As the provider's volumeSetToDockerVolumes: every path in Volumes, a named volume or host path also bound;
  // an entry with a container path alone is an anonymous volume.
  const bound = volumes.filter((v) => v.hostPath ?? v.volumeName);
  if (volumes.length) config.Volumes = Object.fromEntries(volumes.map((v) => [v.containerPath, {}]));
  if (bound.length) hostConfig.Binds = bound.map((v) => `${v.hostPath ?? v.volumeName}:${v.containerPath}:${v.readOnly ? "ro" : "rw"}`);

  const labels = inputs.labels as { label: string; value: string }[] | undefined;
  if (labels?.length) config.Labels = Object.fromEntries(labels.map((l) => [l.label, l.value]));

  const hc = inputs.healthcheck as { tests: string[]; interval?: string; timeout?: string; startPeriod?: string; startInterval?: string; retries?: number } | undefined;
  if (hc) {
    const health: Record<string, unknown> = { Test: hc.tests };
    if (hc.interval) health.Interval = goDurationNs(hc.interval);
    if (hc.timeout) health.Timeout = goDurationNs(hc.timeout);
    if (hc.startPeriod) health.StartPeriod = goDurationNs(hc.startPeriod);
    if (hc.startInterval) health.StartInterval = goDurationNs(hc.startInterval);
    if (hc.retries !== undefined) health.Retries = hc.retries;
    config.Healthcheck = health;
  }

  if (inputs.memory !== undefined) hostConfig.Memory = (inputs.memory as number) * 1024 * 1024;
  if (inputs.shmSize !== undefined) hostConfig.ShmSize = (inputs.shmSize as number) * 1024 * 1024;
  if (inputs.cpus !== undefined) hostConfig.NanoCpus = nanoCpus(inputs.cpus as string);

  const networks = ((inputs.networksAdvanced as { name: string; aliases?: string[] }[] | undefined) ?? []).map((net) => ({
    name: net.name,
    endpointConfig: { ...(net.aliases?.length ? { Aliases: net.aliases } : {}), IPAMConfig: {} as Record<string, never> },
  }));
  // `permissions` (an octal string) has precedence over `executable`, as in the provider.
  const uploads = ((inputs.uploads as { file: string; content: string; executable?: boolean; permissions?: string }[] | undefined) ?? []).map((u) => ({
    file: u.file,
    content: u.content,
    mode: u.permissions ? Number.parseInt(u.permissions, 8) : u.executable ? 0o744 : 0o644,
  }));
  const wait = (inputs.wait as boolean | undefined) ?? SCHEMA_DEFAULTS.wait;
  return {
    name: s("name"),
    create: { ...config, HostConfig: hostConfig, NetworkingConfig: {} },
    networks,
    uploads,
    start: (inputs.start as boolean | undefined) ?? SCHEMA_DEFAULTS.start,
    wait: wait ? { timeoutSeconds: n("waitTimeout") ?? SCHEMA_DEFAULTS.waitTimeout } : undefined,
    attach: (inputs.attach as boolean | undefined) ?? SCHEMA_DEFAULTS.attach,
    logs: (inputs.logs as boolean | undefined) ?? SCHEMA_DEFAULTS.logs,
  };
}

/** One file as a tar archive (ustar, as Go's archive/tar writes it for a short name). */
export function oneFileTar(file: string, content: string, mode: number): Buffer {
  const data = Buffer.from(content, "utf8");
  const header = Buffer.alloc(512);
  const name = file.replace(/^\//, "");
  if (Buffer.byteLength(name) > 100) throw new Error(`upload path too long for this tar writer: ${file}`);
  const octal = (value: number, width: number) => value.toString(8).padStart(width - 1, "0") + "\0";
  header.write(name, 0, 100, "utf8");
  header.write(octal(mode, 8), 100);
  header.write(octal(0, 8), 108);
  header.write(octal(0, 8), 116);
  header.write(octal(data.length, 12), 124);
  header.write(octal(Math.floor(Date.now() / 1000), 12), 136);
  header.write("        ", 148);
  header.write("0", 156);
  header.write("ustar\0", 257);
  header.write("00", 263);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(octal(sum, 7) + " ", 148);
  const padding = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([header, data, padding, Buffer.alloc(1024)]);
}

export interface CreatedContainer {
  id: string;
  name: string;
  requests: ProviderRequests;
  /** The engine's warnings from the create. */
  warnings: string[];
  /** What the engine stored right after the create and the network connects, before the start. */
  stored: ContainerInspect;
  /** Milliseconds from the start request to "healthy" (`wait`), or to the exit (`attach`). */
  readyMs?: number;
  /** `attach`: the exit code the provider records. */
  exitCode?: number;
  /** `attach` with `logs`: what the provider keeps as containerLogs. */
  logs?: string;
  final: ContainerInspect;
}

/** Runs the provider's create sequence for `requests` (see the module comment); a health wait that times out throws with the last probe's output. */
export async function providerCreate(engine: Engine, requests: ProviderRequests): Promise<CreatedContainer> {
  const query = requests.name ? `?name=${encodeURIComponent(requests.name)}` : "";
  const created = await engine.json<{ Id: string; Warnings: string[] | null }>("POST", `/containers/create${query}`, requests.create);
  const id = created.Id;
  if (requests.networks.length) {
    await engine.request("POST", "/networks/bridge/disconnect", { json: { Container: id, Force: false } }).catch((err: Error) => {
      if (!/is not connected to the network bridge/.test(err.message)) throw err;
    });
    for (const net of requests.networks) {
      await engine.request("POST", `/networks/${encodeURIComponent(net.name)}/connect`, { json: { Container: id, EndpointConfig: net.endpointConfig } });
    }
  }
  for (const u of requests.uploads) {
    await engine.request("PUT", `/containers/${id}/archive?path=/`, { body: oneFileTar(u.file, u.content, u.mode), contentType: "application/x-tar" });
  }
  const stored = await engine.inspectContainer(id);
  const result: CreatedContainer = { id, name: stored.Name.replace(/^\//, ""), requests, warnings: created.Warnings ?? [], stored, final: stored };
  if (!requests.start) return result;

  const startedAt = Date.now();
  await engine.request("POST", `/containers/${id}/start`);
  if (requests.wait) {
    await pollUntil(`${result.name} healthy`, requests.wait.timeoutSeconds * 1000, 1000, async () => {
      const state = (await engine.inspectContainer(id)).State;
      if (state.Health?.Status === "healthy") return true;
      if (!state.Running && state.Status !== "restarting" && state.Status !== "created") {
        throw new Error(`${result.name} stopped (${state.Status}, exit ${state.ExitCode}) before it was healthy:\n${await engine.logs(id)}`);
      }
      return undefined;
    }).catch(async (err: Error) => {
      const health = (await engine.inspectContainer(id)).State.Health;
      const last = health?.Log.at(-1);
      throw new Error(`${err.message}; health ${health?.Status}, last probe: ${last ? `exit ${last.ExitCode}: ${last.Output.trim()}` : "none"}\n${await engine.logs(id)}`);
    });
    result.readyMs = Date.now() - startedAt;
  }
  if (requests.attach) {
    const waited = await engine.json<{ StatusCode: number }>("POST", `/containers/${id}/wait?condition=not-running`, undefined, 600_000);
    result.readyMs = Date.now() - startedAt;
    result.exitCode = waited.StatusCode;
    if (requests.logs) result.logs = await engine.logs(id, 200);
  }
  result.final = await engine.inspectContainer(id);
  return result;
}

/**
 * The paths where what the engine stored differs from what was sent: every
 * field sent must come back with the same value (an image may add list
 * entries to Env, and keys to Labels, ExposedPorts and Volumes). An engine that
 * ignores a field it does not know shows up here.
 */
export function notStored(sent: unknown, stored: unknown, at = ""): string[] {
  if (Array.isArray(sent)) {
    if (!Array.isArray(stored)) return [`${at}: sent ${JSON.stringify(sent)}, stored ${JSON.stringify(stored)}`];
    if (at.endsWith("Env")) return sent.filter((e) => !stored.includes(e)).map((e) => `${at}: ${String(e).split("=")[0]} missing`);
    return JSON.stringify(sent) === JSON.stringify(stored) ? [] : [`${at}: sent ${JSON.stringify(sent)}, stored ${JSON.stringify(stored)}`];
  }
  if (sent !== null && typeof sent === "object") {
    if (stored === null || typeof stored !== "object") return [`${at}: sent ${JSON.stringify(sent)}, stored ${JSON.stringify(stored)}`];
    return Object.entries(sent).flatMap(([k, v]) => notStored(v, (stored as Record<string, unknown>)[k], at ? `${at}.${k}` : k));
  }
  return sent === stored ? [] : [`${at}: sent ${JSON.stringify(sent)}, stored ${JSON.stringify(stored)}`];
}
