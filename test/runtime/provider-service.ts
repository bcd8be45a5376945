/**
 * A declared `docker.Service` (and the `docker.Secret`, `docker.ServiceConfig`
 * and overlay `docker.Network` it uses), created on a real engine the way the
 * Docker provider creates them: kreuzwerker/terraform-provider-docker, the
 * provider pulumi-docker bridges, field by field:
 *
 *   - the spec: `createServiceSpec` (internal/provider/structures_service.go):
 *     `Labels` as a map, `TaskTemplate.ContainerSpec` (Image, Labels, Args,
 *     User, Env as `K=V`, ReadOnly, CapabilityAdd and CapabilityDrop, Mounts
 *     with their TmpfsOptions (SizeBytes, Mode), StopSignal, StopGracePeriod, Healthcheck,
 *     Secrets and Configs with their file targets, and what the schema always
 *     sends: an empty DNSConfig and Isolation "default"), Resources.Limits,
 *     RestartPolicy, Placement, Networks (`id` as the target, aliases),
 *     LogDriver, Mode, UpdateConfig and RollbackConfig (durations in
 *     nanoseconds, MaxFailureRatio as a number), EndpointSpec;
 *   - the create and the wait: `resourceDockerServiceCreate` and
 *     `resourceDockerServiceUpdate` (internal/provider/resource_docker_service_funcs.go):
 *     with `convergeConfig`, poll the tasks whose desired state is running,
 *     one per slot, until as many run as the service has replicas; an update
 *     waits for the service's UpdateStatus: `completed`, or the error the
 *     provider returns for `rollback_completed` ("service rollback completed:
 *     <Swarm's message>") and `paused`;
 *   - `docker_secret` and `docker_config`: `POST /secrets/create` and
 *     `POST /configs/create` with the data decoded from the input's base64
 *     (the Go client sends it base64 again) or, for `dataRaw`, as given.
 *
 * What the provider's Go client does before it sends a spec (with
 * QueryRegistry it asks the registry for the image's digest; without a
 * reachable registry it only adds a warning) is not here: no registry is
 * reachable, and the test images are local.
 */
import { Engine, pollUntil } from "./engine";
import { goDurationNs } from "./provider-container";

type Inputs = Record<string, unknown>;
type Obj = Record<string, unknown>;

const labelMap = (labels: unknown) =>
  Object.fromEntries(((labels as { label: string; value: string }[] | undefined) ?? []).map((l) => [l.label, l.value]));
const ns = (d: unknown) => (typeof d === "string" && d !== "" ? goDurationNs(d) : 0);

function containerSpec(c: Obj): Obj {
  const spec: Obj = { Image: c.image, Labels: labelMap(c.labels) };
  if (c.commands) spec.Command = c.commands;
  if (c.args) spec.Args = c.args;
  if (c.env) spec.Env = Object.entries(c.env as Record<string, string>).map(([k, v]) => `${k}=${v}`);
  if (c.user) spec.User = c.user;
  // createContainerSpec: read_only, cap_add and cap_drop as the Go client's omitempty fields.
  if (c.readOnly) spec.ReadOnly = true;
  if ((c.capAdds as string[] | undefined)?.length) spec.CapabilityAdd = c.capAdds;
  if ((c.capDrops as string[] | undefined)?.length) spec.CapabilityDrop = c.capDrops;
  const mounts = (c.mounts as Obj[] | undefined) ?? [];
  if (mounts.length) {
    spec.Mounts = mounts.map((m) => {
      const out: Obj = { Type: m.type, Target: m.target, Source: m.source ?? "", ReadOnly: (m.readOnly as boolean | undefined) ?? false };
      const tmpfs = m.tmpfsOptions as { sizeBytes?: number; mode?: number } | undefined;
      if (tmpfs) out.TmpfsOptions = { SizeBytes: tmpfs.sizeBytes ?? 0, Mode: tmpfs.mode ?? 0 };
      return out;
    });
  }
  if (c.stopSignal) spec.StopSignal = c.stopSignal;
  spec.StopGracePeriod = ns(c.stopGracePeriod);
  const hc = c.healthcheck as { tests?: string[]; interval?: string; timeout?: string; startPeriod?: string; retries?: number } | undefined;
  spec.Healthcheck = hc
    ? { Test: hc.tests, Interval: ns(hc.interval), Timeout: ns(hc.timeout), StartPeriod: ns(hc.startPeriod), Retries: hc.retries ?? 0 }
    : {};
  spec.DNSConfig = {};
  const fileRef = (r: Obj, idKey: string, nameKey: string, idField: string, nameField: string) => ({
    [idField]: r[idKey],
    [nameField]: r[nameKey],
    File: { Name: r.fileName, UID: r.fileUid ?? "0", GID: r.fileGid ?? "0", Mode: (r.fileMode as number | undefined) ?? 0o444 },
  });
  if ((c.secrets as Obj[] | undefined)?.length) spec.Secrets = (c.secrets as Obj[]).map((s) => fileRef(s, "secretId", "secretName", "SecretID", "SecretName"));
  if ((c.configs as Obj[] | undefined)?.length) spec.Configs = (c.configs as Obj[]).map((s) => fileRef(s, "configId", "configName", "ConfigID", "ConfigName"));
  spec.Isolation = "default";
  return spec;
}

function updateConfig(u: Obj | undefined): Obj | undefined {
  if (!u) return undefined;
  return {
    Parallelism: u.parallelism ?? 1,
    Delay: ns(u.delay),
    FailureAction: u.failureAction ?? "pause",
    Monitor: ns(u.monitor ?? "5s"),
    MaxFailureRatio: Number(u.maxFailureRatio ?? "0.0"),
    Order: u.order ?? "stop-first",
  };
}

/** The ServiceSpec the provider sends for a service's inputs (see the module comment). */
export function serviceSpec(inputs: Inputs): Obj {
  const task = inputs.taskSpec as Obj;
  const limits = ((task.resources as Obj | undefined)?.limits ?? undefined) as { memoryBytes?: number; nanoCpus?: number } | undefined;
  const restart = task.restartPolicy as { condition?: string; delay?: string; maxAttempts?: number; window?: string } | undefined;
  const placement = task.placement as { constraints?: string[] } | undefined;
  const log = task.logDriver as { name: string; options?: Record<string, string> } | undefined;
  const mode = inputs.mode as { replicated?: { replicas?: number }; global?: boolean } | undefined;
  const endpoint = inputs.endpointSpec as { mode?: string; ports?: Obj[] } | undefined;
  const taskTemplate: Obj = {
    ContainerSpec: containerSpec(task.containerSpec as Obj),
    Resources: limits ? { Limits: { NanoCPUs: limits.nanoCpus ?? 0, MemoryBytes: limits.memoryBytes ?? 0 } } : {},
    RestartPolicy: restart
      ? { Condition: restart.condition, Delay: ns(restart.delay), MaxAttempts: restart.maxAttempts ?? 0, Window: ns(restart.window) }
      : undefined,
    Placement: { Constraints: placement?.constraints ?? [], Preferences: [], MaxReplicas: 0 },
    ForceUpdate: 0,
    Networks: ((task.networksAdvanceds as { id?: string; name?: string; aliases?: string[] }[] | undefined) ?? []).map((n) => ({
      Target: n.id ?? n.name,
      Aliases: n.aliases ?? [],
      DriverOpts: {},
    })),
    LogDriver: log ? { Name: log.name, Options: log.options ?? {} } : undefined,
  };
  return {
    Name: inputs.name,
    Labels: labelMap(inputs.labels),
    TaskTemplate: taskTemplate,
    Mode: mode?.global ? { Global: {} } : { Replicated: { Replicas: mode?.replicated?.replicas ?? 1 } },
    UpdateConfig: updateConfig(inputs.updateConfig as Obj | undefined),
    RollbackConfig: updateConfig(inputs.rollbackConfig as Obj | undefined),
    EndpointSpec: {
      Mode: endpoint?.mode ?? "",
      Ports: (endpoint?.ports ?? []).map((p) => ({
        Name: p.name ?? "",
        Protocol: p.protocol ?? "tcp",
        TargetPort: p.targetPort,
        PublishedPort: p.publishedPort ?? 0,
        PublishMode: p.publishMode ?? "ingress",
      })),
    },
  };
}

/** A `docker.Secret`'s create request: its data decoded from the input's base64 (the Go client encodes it again). */
export async function createSecret(engine: Engine, inputs: Inputs, name: string): Promise<string> {
  const body = { Name: name, Data: inputs.data, Labels: labelMap(inputs.labels) };
  return (await engine.json<{ ID: string }>("POST", "/secrets/create", body)).ID;
}

/** A `docker.ServiceConfig`'s create request (`dataRaw` as the text it is). */
export async function createConfig(engine: Engine, inputs: Inputs, name: string): Promise<string> {
  const data = inputs.dataRaw !== undefined ? Buffer.from(String(inputs.dataRaw), "utf8").toString("base64") : inputs.data;
  return (await engine.json<{ ID: string }>("POST", "/configs/create", { Name: name, Data: data, Labels: labelMap(inputs.labels) })).ID;
}

/** An overlay `docker.Network`'s create request. */
export async function createNetwork(engine: Engine, inputs: Inputs, name: string): Promise<string> {
  const body = {
    Name: name,
    Driver: inputs.driver,
    Attachable: inputs.attachable ?? false,
    Options: inputs.options ?? {},
    Labels: labelMap(inputs.labels),
    IPAM: { Driver: "default" },
    CheckDuplicate: true,
  };
  return (await engine.json<{ Id: string }>("POST", "/networks/create", body)).Id;
}

export interface SwarmTask {
  ID: string;
  Slot?: number;
  NodeID?: string;
  DesiredState: string;
  Status: { State: string; Err?: string; Message?: string; Timestamp: string; ContainerStatus?: { ContainerID?: string } };
  Spec?: { ContainerSpec?: { Image?: string; Env?: string[] } };
}

export interface SwarmService {
  ID: string;
  Version: { Index: number };
  Spec: Obj & { TaskTemplate: Obj & { ContainerSpec: Obj }; Mode: { Replicated?: { Replicas: number } } };
  PreviousSpec?: Obj;
  UpdateStatus?: { State: string; Message?: string };
}

const STATE_ORDER = ["new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running"];

/** The provider's converge check: one task per slot (the lowest desired state wins), counted when running. */
async function runningReplicas(engine: Engine, id: string): Promise<{ running: number; tasks: SwarmTask[] }> {
  const filters = encodeURIComponent(JSON.stringify({ service: [id], "desired-state": ["running"] }));
  const tasks = await engine.json<SwarmTask[]>("GET", `/tasks?filters=${filters}`);
  const bySlot = new Map<number, SwarmTask>();
  for (const t of tasks) {
    const slot = t.Slot ?? 0;
    const prev = bySlot.get(slot);
    if (!prev || STATE_ORDER.indexOf(t.Status.State) < STATE_ORDER.indexOf(prev.Status.State)) bySlot.set(slot, t);
  }
  return { running: [...bySlot.values()].filter((t) => t.Status.State === "running").length, tasks };
}

/**
 * The provider's waits are terraform-plugin-sdk's `StateChangeConf`: the
 * first look after `Delay`, then after 5 s (`MinTimeout`), doubling up to
 * 10 s between looks, until `Timeout`. The times a test measures are the
 * ones `pulumi up` would take.
 */
async function stateChangeWait<T>(what: string, delayMs: number, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  await new Promise((r) => setTimeout(r, delayMs));
  for (let wait = 5000; ; wait = Math.min(wait * 2, 10_000)) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: timeout while waiting for state (${Math.round(timeoutMs / 1000)} s)`);
    await new Promise((r) => setTimeout(r, Math.min(wait, Math.max(0, deadline - Date.now()) + 1)));
  }
}

/** `POST /services/create`, then (with convergeConfig) the provider's wait until every replica runs. */
export async function providerCreateService(
  engine: Engine,
  spec: Obj,
  converge?: { timeoutSeconds: number; delaySeconds: number },
): Promise<{ id: string; warnings: string[] }> {
  const created = await engine.json<{ ID: string; Warnings?: string[] | null }>("POST", "/services/create", spec);
  if (converge) {
    const replicas = (spec.Mode as { Replicated?: { Replicas: number } }).Replicated?.Replicas ?? 1;
    await stateChangeWait(`service ${String(spec.Name)} converged`, converge.delaySeconds * 1000, converge.timeoutSeconds * 1000, async () =>
      (await runningReplicas(engine, created.ID)).running === replicas ? true : undefined,
    );
  }
  return { id: created.ID, warnings: created.Warnings ?? [] };
}

/**
 * `POST /services/{id}/update` with the new spec at the service's version,
 * then the provider's update wait: resolves on `completed`, rejects with the
 * provider's own error text on a rollback or a pause.
 */
export async function providerUpdateService(engine: Engine, id: string, spec: Obj, timeoutSeconds: number): Promise<void> {
  const current = await engine.json<SwarmService>("GET", `/services/${id}`);
  await engine.request("POST", `/services/${id}/update?version=${current.Version.Index}`, { json: spec });
  // The update's wait has its own Delay: 7 s.
  await stateChangeWait(`service ${String(spec.Name)} updated`, 7000, timeoutSeconds * 1000, async () => {
    const s = await engine.json<SwarmService>("GET", `/services/${id}`);
    switch (s.UpdateStatus?.State) {
      case "completed":
        return true;
      case "rollback_completed":
        throw new Error(`service rollback completed: ${s.UpdateStatus.Message ?? ""}`);
      case "paused":
        throw new Error(`service update paused: ${s.UpdateStatus.Message ?? ""}`);
      case "rollback_paused":
        throw new Error(`service rollback paused: ${s.UpdateStatus.Message ?? ""}`);
      default:
        return undefined;
    }
  });
}

/** Removes a service and waits until its tasks' containers are gone. */
export async function removeService(engine: Engine, id: string): Promise<void> {
  await engine.request("DELETE", `/services/${id}`).catch(() => undefined);
  const filters = encodeURIComponent(JSON.stringify({ label: [`com.docker.swarm.service.id=${id}`] }));
  await pollUntil(`service ${id} removed`, 120_000, 1000, async () =>
    (await engine.json<unknown[]>("GET", `/containers/json?all=1&filters=${filters}`)).length === 0 ? true : undefined,
  );
}
