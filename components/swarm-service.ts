import { createHash } from "node:crypto";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { fileEnvName, HEALTH_INTERVAL_SECONDS, imageVersion, SECRET_VERSION_HEX, secretFilePath, swarmConfigName, swarmSecretName, swarmServiceName, SWARM_NODE_LABEL } from "../config";
import { DATA_STORE_HEALTH_SECONDS, LABEL_PREFIX, LOG_ROTATION, serviceHardening, serviceLabels, type HardeningNeeds, type ServiceIdentity } from "./container-defaults";

/**
 * What every Swarm service of a stack shares (`docker.mode: swarm`): the task
 * template built from the same settings a host-mode container takes (health
 * check, limits, restart, log rotation), rolling updates that roll back on
 * failure, and secrets mounted as files. The components build their services
 * from these, so a setting means the same in both modes.
 */

/** Where a swarm-mode component runs: the stack's overlay network (by ID: the provider replaces a service whose network is given by name on every update). */
export interface SwarmTarget {
  networkId: pulumi.Input<string>;
}

/** A secret mounted into a service as `/run/secrets/<name>`; the service gets `<name>_FILE` with that path. */
export interface SecretFile {
  /** The env name the app knows the secret by (`DATABASE_URL`). */
  name: string;
  secret: docker.Secret;
}

/** Who owns a service's secret files (mode 0400): the user its process runs as. Swarm's default is root. */
export interface FileOwner {
  uid: number;
  gid: number;
}

export const ROOT_OWNER: FileOwner = { uid: 0, gid: 0 };
/** Who owns an app service's secret files when the stack does not say (`api.secretFiles`): the `node` user of the official Node images. */
export const DEFAULT_APP_FILE_OWNER: FileOwner = { uid: 1000, gid: 1000 };
/** Secret files are readable by their owner only. */
export const SECRET_FILE_MODE = 0o400;

/**
 * A value as a Swarm secret. Swarm secrets are immutable, so the name
 * carries a version (a `RandomId` kept by the value): a new value is a new
 * secret, the services that mount it roll to it, and the old one is removed
 * once nothing uses it. The value is never in a name or a label.
 */
export function createSwarmSecret(
  parent: pulumi.Resource,
  resourceName: string,
  args: { stack: string; service: string; name: string; value: pulumi.Output<string> },
): docker.Secret {
  const version = new random.RandomId(
    `${resourceName}-version`,
    { byteLength: SECRET_VERSION_HEX / 2, keepers: { value: pulumi.secret(args.value) } },
    { parent },
  );
  return new docker.Secret(
    resourceName,
    {
      name: version.hex.apply((hex) => swarmSecretName(args.stack, args.name, hex)),
      data: pulumi.secret(args.value.apply((v) => Buffer.from(v, "utf8").toString("base64"))),
      labels: [
        { label: `${LABEL_PREFIX}.project`, value: "appstack" },
        { label: `${LABEL_PREFIX}.stack`, value: args.stack },
        { label: `${LABEL_PREFIX}.service`, value: args.service },
        { label: `${LABEL_PREFIX}.secret`, value: args.name },
      ],
    },
    { parent, additionalSecretOutputs: ["data"] },
  );
}

/** A text as a Swarm config (immutable too): plain in the plan, named by a digest of its content. */
export function createSwarmConfig(parent: pulumi.Resource, resourceName: string, args: { stack: string; service: string; content: string }): docker.ServiceConfig {
  const digest = createHash("sha256").update(args.content).digest("hex").slice(0, SECRET_VERSION_HEX);
  return new docker.ServiceConfig(
    resourceName,
    {
      name: swarmConfigName(args.stack, digest),
      dataRaw: args.content,
      labels: serviceLabels({ stack: args.stack, service: args.service, version: digest }),
    },
    { parent },
  );
}

/** The placement of a data store: the node labelled with its data, or (dev, no label) a manager, where its volume was created. */
export function dataStoreConstraints(node: string | undefined): string[] {
  return [node === undefined ? "node.role==manager" : `node.labels.${SWARM_NODE_LABEL}==${node}`];
}

export interface HealthSpec {
  tests: string[];
  interval: string;
  timeout: string;
  retries: number;
  startPeriod: string;
}

export interface TaskArgs {
  identity: ServiceIdentity;
  image: pulumi.Input<string>;
  /** The image's CMD replaced (its ENTRYPOINT still runs). */
  args?: pulumi.Input<string>[];
  user?: string;
  /** Plain settings only: a secret reaches the service as a file. */
  env: Record<string, pulumi.Input<string>>;
  secrets: SecretFile[];
  owner: FileOwner;
  healthcheck: HealthSpec;
  memoryMb: number;
  cpus: string;
  stopGracePeriodSeconds: number;
  mounts?: docker.types.input.ServiceTaskSpecContainerSpecMount[];
  /** What the process needs (capabilities, paths it writes): the same needs its host-mode container is hardened from. */
  hardening: HardeningNeeds;
  /** Swarm configs as files (not secret: readable by every user of the container). */
  configs?: { config: docker.ServiceConfig; file: string }[];
  target: SwarmTarget;
  aliases?: string[];
  constraints?: string[];
}

/**
 * A service's task template: the container spec (image, env with a
 * `<NAME>_FILE` per secret, secret files, health check, stop signal and grace
 * period, labels, and serviceHardening(): dropped capabilities, a read-only
 * root filesystem, tmpfs where the process writes), limits, restart policy, log rotation, placement, network.
 */
export function taskSpec(a: TaskArgs): docker.types.input.ServiceTaskSpec {
  const files = Object.fromEntries(a.secrets.map((s) => [fileEnvName(s.name), secretFilePath(s.name)]));
  const env = Object.fromEntries(Object.entries({ ...a.env, ...files }).sort(([x], [y]) => x.localeCompare(y)));
  const hardened = serviceHardening(a.hardening);
  const mounts = [...(a.mounts ?? []), ...hardened.tmpfs];
  return {
    containerSpec: {
      image: a.image,
      args: a.args,
      user: a.user,
      env,
      secrets: a.secrets.length === 0 ? undefined : a.secrets.map((s) => ({
        secretId: s.secret.id,
        secretName: s.secret.name,
        fileName: s.name,
        fileUid: String(a.owner.uid),
        fileGid: String(a.owner.gid),
        fileMode: SECRET_FILE_MODE,
      })),
      configs: a.configs?.map((c) => ({ configId: c.config.id, configName: c.config.name, fileName: c.file, fileUid: "0", fileGid: "0", fileMode: 0o444 })),
      healthcheck: a.healthcheck,
      stopSignal: "SIGTERM",
      stopGracePeriod: `${a.stopGracePeriodSeconds}s`,
      mounts: mounts.length ? mounts : undefined,
      capDrops: hardened.capDrops,
      capAdds: hardened.capAdds,
      readOnly: hardened.readOnly,
      labels: serviceLabels(a.identity),
    },
    resources: { limits: { memoryBytes: a.memoryMb * 1024 * 1024, nanoCpus: Math.round(Number(a.cpus) * 1e9) } },
    // Host mode's unless-stopped: a task that exits or fails its health check is replaced, whatever its exit code.
    restartPolicy: { condition: "any", delay: "5s" },
    logDriver: { name: LOG_ROTATION.logDriver, options: { ...LOG_ROTATION.logOpts } },
    placement: a.constraints ? { constraints: a.constraints } : undefined,
    networksAdvanceds: [{ id: a.target.networkId, aliases: a.aliases }],
  };
}

/**
 * How long Swarm watches a new task for failure after it counts as running
 * (running means healthy: a task with a health check is not running before
 * its first passing probe). Longer than the health check's start period, and
 * long enough for `retries` failed probes after it.
 */
export function monitorSeconds(h: { startPeriodSeconds: number; intervalSeconds: number; retries: number }): number {
  return h.startPeriodSeconds + h.intervalSeconds * h.retries;
}

/**
 * Rolling updates, one task at a time: `start-first` starts the new task
 * and stops the old one only once the new one is healthy; `stop-first` where
 * two tasks cannot coexist (a data volume, a host port). A task that fails
 * within the monitor window rolls the whole service back to its previous
 * spec, in the same order.
 */
export function rollingUpdate(order: "start-first" | "stop-first", monitor: number): Pick<docker.ServiceArgs, "updateConfig" | "rollbackConfig"> {
  const common = { parallelism: 1, delay: "0s", order, monitor: `${monitor}s`, maxFailureRatio: "0.0" };
  return { updateConfig: { ...common, failureAction: "rollback" }, rollbackConfig: { ...common, failureAction: "pause" } };
}

/** `pulumi up` waits until every task of the service runs the new spec (healthy), or fails with Swarm's task error. */
export function converge(timeoutSeconds: number): docker.types.input.ServiceConvergeConfig {
  return { timeout: `${timeoutSeconds}s`, delay: `${HEALTH_INTERVAL_SECONDS}s` };
}

/** A replicated service of the stack: its task, how it rolls, and how long a task may take to turn healthy. */
export interface ReplicatedService {
  identity: ServiceIdentity;
  replicas: number;
  task: Omit<TaskArgs, "identity">;
  /** `start-first`, or `stop-first` where two tasks cannot coexist (a data volume, a host port). */
  order: "start-first" | "stop-first";
  /** The health check's timings, for the update's monitor window. */
  health: { startPeriodSeconds: number; intervalSeconds: number; retries: number };
  /** The most one task may take to turn healthy. */
  healthTimeoutSeconds: number;
  /** Ports published on the node (host mode): the dev API. */
  ports?: docker.types.input.ServiceEndpointSpecPort[];
}

/**
 * The args of a replicated service: `appstack-<stack>-<service>`, its
 * labels, the task template, rolling updates with rollback, DNS round robin,
 * and a converge wait of one health timeout per task (they are replaced one
 * at a time) plus the monitor window after the last.
 */
export function replicatedServiceArgs(s: ReplicatedService): docker.ServiceArgs {
  const monitor = monitorSeconds(s.health);
  return {
    name: swarmServiceName(s.identity.stack, s.identity.service),
    labels: serviceLabels(s.identity),
    mode: { replicated: { replicas: s.replicas } },
    taskSpec: taskSpec({ identity: s.identity, ...s.task }),
    ...rollingUpdate(s.order, monitor),
    endpointSpec: s.ports ? { mode: "dnsrr", ports: s.ports } : { mode: "dnsrr" },
    convergeConfig: converge(s.replicas * s.healthTimeoutSeconds + monitor),
  };
}

/**
 * A data store's service: one task, its password a Swarm secret file,
 * pinned to the node with its volume, replaced stop-first (two servers
 * never share a data directory).
 */
export function createDataStoreService(
  parent: pulumi.Resource,
  name: string,
  stack: string,
  store: { image: string; node?: string; healthTimeoutSeconds: number },
  d: {
    password: { name: string; value: pulumi.Output<string>; owner: FileOwner };
    task: Omit<TaskArgs, "identity" | "image" | "secrets" | "owner" | "constraints">;
    transform?: (args: docker.ServiceArgs) => docker.ServiceArgs;
  },
): docker.Service {
  const secret = createSwarmSecret(parent, `${name}-password-secret`, { stack, service: name, name: d.password.name, value: d.password.value });
  const args = replicatedServiceArgs({
    identity: { stack, service: name, version: imageVersion(store.image), role: "service", image: store.image },
    replicas: 1,
    task: { ...d.task, image: store.image, secrets: [{ name: d.password.name, secret }], owner: d.password.owner, constraints: dataStoreConstraints(store.node) },
    order: "stop-first",
    health: DATA_STORE_HEALTH_SECONDS,
    healthTimeoutSeconds: store.healthTimeoutSeconds,
  });
  return new docker.Service(`${name}-service`, d.transform ? d.transform(args) : args, { parent });
}
