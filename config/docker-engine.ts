/**
 * The Docker Engines appstack supports, and what its containers ask of them.
 *
 * The oldest is Docker 20.10, Engine API 1.41: Debian 12's own `docker.io`,
 * the engine many small teams run. Every engine from there on is supported:
 * the Docker provider's client negotiates the API version down to the
 * engine's, and every container input the stack sets exists at API 1.41
 * (CONTAINER_INPUT_AUDIT; test/runtime/engine-compat.test.ts creates every
 * container of the dev and production plans on Debian's 20.10 and compares
 * what the engine stored with what was sent). docs/docker-engine.md is the
 * user's page for all of this.
 */

/** The oldest Docker Engine appstack supports. */
export const MIN_DOCKER_ENGINE = { version: "20.10", apiVersion: "1.41", example: "Debian 12's docker.io" } as const;

/**
 * How often every service's health check runs, and so how long a deploy waits
 * for a new container at least. No health check sets `startInterval`: it needs
 * Engine API 1.44 (Docker 25). Without it, Docker 20.10 (and 25, by its
 * source) runs the first probe one `interval` after the container starts, then
 * one every `interval`; Docker 28 probes every 5 s during `startPeriod` (its
 * default start interval). 5 s makes a ready container count as healthy about
 * 5 s after it starts on every supported engine, for one probe per container
 * every 5 s.
 */
export const HEALTH_INTERVAL_SECONDS = 5;

/** Orders Engine API versions ("1.41" < "1.44" < "1.100"). */
export function compareApiVersions(a: string, b: string): number {
  const [am, an] = a.split(".").map(Number);
  const [bm, bn] = b.split(".").map(Number);
  return am !== bm ? am - bm : (an ?? 0) - (bn ?? 0);
}

/** Whether an engine that speaks `apiVersion` at most is in the supported range. */
export function isSupportedApiVersion(apiVersion: string): boolean {
  return /^\d+\.\d+$/.test(apiVersion) && compareApiVersions(apiVersion, MIN_DOCKER_ENGINE.apiVersion) >= 0;
}

/**
 * `docker.Container` inputs of the Docker provider that need a newer Engine
 * API than the oldest supported engine speaks, and what happens there. No
 * component sets any of them, and the `container-engine-compatible` policy
 * rule reports one that a `transform` adds. Paths are spelled as in the
 * plan (`ports[].ip`).
 */
export interface NewerApiInput {
  input: string;
  apiVersion: string;
  /** The first Docker Engine with that API version. */
  engine: string;
  /** What an engine older than that does with it. */
  onOlderEngines: string;
}

export const NEWER_API_INPUTS: readonly NewerApiInput[] = [
  {
    input: "healthcheck.startInterval",
    apiVersion: "1.44",
    engine: "25.0",
    onOlderEngines:
      'the provider\'s Docker client refuses to create the container ("specify health-check start interval" requires API version 1.44), so every deploy fails',
  },
  {
    input: "networksAdvanced[].macAddress",
    apiVersion: "1.44",
    engine: "25.0",
    onOlderEngines: "the engine does not know the endpoint's MAC address field and ignores it",
  },
  {
    input: "mounts[].volumeOptions.subpath",
    apiVersion: "1.45",
    engine: "26.0",
    onOlderEngines: 'the provider refuses the container ("Setting VolumeOptions.Subpath requires docker version 1.45 or higher")',
  },
  {
    input: "networksAdvanced[].gwPriority",
    apiVersion: "1.48",
    engine: "28.0",
    onOlderEngines: "the engine does not know the field and ignores it: a different network may provide the default gateway",
  },
];

/**
 * Every `docker.Container` input the stack's components set, with the Engine
 * API request the provider makes of it and the oldest API version that has
 * it. "≤ 1.24" marks fields older than API 1.24, the oldest version any
 * current engine serves. Versions come from the Engine API version history
 * (moby `docs/api/version-history.md`) and the Docker client's own checks.
 * test/engine-compat-audit.test.ts fails when a container in any stack sets
 * an input missing here, so a new input gets audited before it ships.
 */
export interface InputAudit {
  /** The input, as the plan spells it. */
  input: string;
  /** Where the provider puts it in its Engine API requests. */
  engineField: string;
  /** The oldest Engine API version with the field. */
  since: string;
}

export const CONTAINER_INPUT_AUDIT: readonly InputAudit[] = [
  { input: "name", engineField: "`POST /containers/create?name=`", since: "≤ 1.24" },
  { input: "image", engineField: "`Config.Image`", since: "≤ 1.24" },
  { input: "command", engineField: "`Config.Cmd`", since: "≤ 1.24" },
  { input: "entrypoints", engineField: "`Config.Entrypoint`", since: "≤ 1.24" },
  { input: "user", engineField: "`Config.User`", since: "≤ 1.24" },
  { input: "envs", engineField: "`Config.Env`", since: "≤ 1.24" },
  { input: "labels[].label", engineField: "`Config.Labels` (key)", since: "≤ 1.24" },
  { input: "labels[].value", engineField: "`Config.Labels` (value)", since: "≤ 1.24" },
  { input: "healthcheck.tests", engineField: "`Config.Healthcheck.Test`", since: "≤ 1.24" },
  { input: "healthcheck.interval", engineField: "`Config.Healthcheck.Interval` (nanoseconds)", since: "≤ 1.24" },
  { input: "healthcheck.timeout", engineField: "`Config.Healthcheck.Timeout` (nanoseconds)", since: "≤ 1.24" },
  { input: "healthcheck.retries", engineField: "`Config.Healthcheck.Retries`", since: "≤ 1.24" },
  { input: "healthcheck.startPeriod", engineField: "`Config.Healthcheck.StartPeriod` (nanoseconds)", since: "1.29" },
  { input: "stopSignal", engineField: "`Config.StopSignal`", since: "≤ 1.24" },
  { input: "stopTimeout", engineField: "`Config.StopTimeout`", since: "1.25" },
  { input: "ports[].internal", engineField: "`Config.ExposedPorts`, `HostConfig.PortBindings` key", since: "≤ 1.24" },
  { input: "ports[].external", engineField: "`HostConfig.PortBindings[].HostPort`", since: "≤ 1.24" },
  { input: "ports[].ip", engineField: "`HostConfig.PortBindings[].HostIp`", since: "≤ 1.24" },
  { input: "ports[].protocol", engineField: "`<port>/<protocol>` in both port maps", since: "≤ 1.24" },
  { input: "volumes[].volumeName", engineField: "`HostConfig.Binds` (`<volume>:<path>:rw`)", since: "≤ 1.24" },
  { input: "volumes[].containerPath", engineField: "`Config.Volumes`, `HostConfig.Binds`", since: "≤ 1.24" },
  { input: "memory", engineField: "`HostConfig.Memory` (MiB × 2²⁰)", since: "≤ 1.24" },
  { input: "cpus", engineField: "`HostConfig.NanoCpus`", since: "1.25" },
  { input: "shmSize", engineField: "`HostConfig.ShmSize` (MiB × 2²⁰)", since: "≤ 1.24" },
  { input: "restart", engineField: "`HostConfig.RestartPolicy.Name`", since: "≤ 1.24" },
  { input: "logDriver", engineField: "`HostConfig.LogConfig.Type`", since: "≤ 1.24" },
  { input: "logOpts", engineField: "`HostConfig.LogConfig.Config`", since: "≤ 1.24" },
  { input: "capabilities.drops", engineField: "`HostConfig.CapDrop`", since: "≤ 1.24" },
  { input: "capabilities.adds", engineField: "`HostConfig.CapAdd`", since: "≤ 1.24" },
  { input: "securityOpts", engineField: "`HostConfig.SecurityOpt`", since: "≤ 1.24" },
  { input: "readOnly", engineField: "`HostConfig.ReadonlyRootfs`", since: "≤ 1.24" },
  { input: "tmpfs", engineField: "`HostConfig.Tmpfs`", since: "≤ 1.24" },
  { input: "cgroupParent", engineField: "`HostConfig.CgroupParent`", since: "≤ 1.24" },
  { input: "networkMode", engineField: "`HostConfig.NetworkMode`", since: "≤ 1.24" },
  {
    input: "networksAdvanced[].name",
    engineField: "`POST /networks/bridge/disconnect`, then `POST /networks/{name}/connect` after the create",
    since: "≤ 1.24",
  },
  { input: "networksAdvanced[].aliases", engineField: "`EndpointConfig.Aliases` of that connect", since: "≤ 1.24" },
  { input: "uploads[].file", engineField: "`PUT /containers/{id}/archive?path=/` (a tar) before the start", since: "≤ 1.24" },
  { input: "uploads[].content", engineField: "the file's content in that tar", since: "≤ 1.24" },
  { input: "uploads[].permissions", engineField: "the file's mode in that tar", since: "≤ 1.24" },
  { input: "wait", engineField: "`GET /containers/{id}/json` every second until `State.Health.Status` is healthy", since: "≤ 1.24" },
  { input: "waitTimeout", engineField: "(the provider's own deadline for that wait)", since: "—" },
  { input: "attach", engineField: "`POST /containers/{id}/wait?condition=not-running`, `State.ExitCode`", since: "1.30" },
  { input: "logs", engineField: "`GET /containers/{id}/logs?follow=1`", since: "≤ 1.24" },
  { input: "mustRun", engineField: "(the provider's own check of `State.Running` on read)", since: "—" },
  { input: "destroyGraceSeconds", engineField: "`POST /containers/{id}/stop?t=` before the delete", since: "≤ 1.24" },
];

/**
 * Swarm mode: every input the stack's `docker.Service`s, `docker.Secret`s,
 * `docker.ServiceConfig`s and overlay `docker.Network` set, with the Engine
 * API field the provider sends it as (`createServiceSpec`,
 * test/runtime/provider-service.ts) and the oldest API version that has it.
 * Versions from the Engine API's version history and docker/cli's own
 * version annotations of `docker service create` flags. Paths are the
 * plan's, prefixed by the resource kind (`service: updateConfig.order`).
 * None needs more than API 1.41: the service health check has no
 * `startInterval` input at all (Swarm's StartInterval is API 1.44).
 */
export const SWARM_INPUT_AUDIT: readonly InputAudit[] = [
  { input: "service: name", engineField: "`POST /services/create`: `Spec.Name`", since: "≤ 1.24" },
  { input: "service: labels[].label", engineField: "`Spec.Labels` (key)", since: "≤ 1.24" },
  { input: "service: labels[].value", engineField: "`Spec.Labels` (value)", since: "≤ 1.24" },
  { input: "service: mode.replicated.replicas", engineField: "`Spec.Mode.Replicated.Replicas`", since: "≤ 1.24" },
  { input: "service: mode.global", engineField: "`Spec.Mode.Global`", since: "≤ 1.24" },
  { input: "service: taskSpec.containerSpec.image", engineField: "`TaskTemplate.ContainerSpec.Image`", since: "≤ 1.24" },
  { input: "service: taskSpec.containerSpec.args", engineField: "`ContainerSpec.Args`", since: "≤ 1.24" },
  { input: "service: taskSpec.containerSpec.user", engineField: "`ContainerSpec.User`", since: "≤ 1.24" },
  { input: "service: taskSpec.containerSpec.env", engineField: "`ContainerSpec.Env` (`K=V`)", since: "≤ 1.24" },
  { input: "service: taskSpec.containerSpec.labels[].label", engineField: "`ContainerSpec.Labels` (key)", since: "≤ 1.24" },
  { input: "service: taskSpec.containerSpec.labels[].value", engineField: "`ContainerSpec.Labels` (value)", since: "≤ 1.24" },
  { input: "service: taskSpec.containerSpec.secrets[].secretId", engineField: "`ContainerSpec.Secrets[].SecretID`", since: "1.25" },
  { input: "service: taskSpec.containerSpec.secrets[].secretName", engineField: "`ContainerSpec.Secrets[].SecretName`", since: "1.25" },
  { input: "service: taskSpec.containerSpec.secrets[].fileName", engineField: "`ContainerSpec.Secrets[].File.Name`", since: "1.25" },
  { input: "service: taskSpec.containerSpec.secrets[].fileUid", engineField: "`ContainerSpec.Secrets[].File.UID`", since: "1.25" },
  { input: "service: taskSpec.containerSpec.secrets[].fileGid", engineField: "`ContainerSpec.Secrets[].File.GID`", since: "1.25" },
  { input: "service: taskSpec.containerSpec.secrets[].fileMode", engineField: "`ContainerSpec.Secrets[].File.Mode`", since: "1.25" },
  { input: "service: taskSpec.containerSpec.configs[].configId", engineField: "`ContainerSpec.Configs[].ConfigID`", since: "1.30" },
  { input: "service: taskSpec.containerSpec.configs[].configName", engineField: "`ContainerSpec.Configs[].ConfigName`", since: "1.30" },
  { input: "service: taskSpec.containerSpec.configs[].fileName", engineField: "`ContainerSpec.Configs[].File.Name`", since: "1.30" },
  { input: "service: taskSpec.containerSpec.configs[].fileUid", engineField: "`ContainerSpec.Configs[].File.UID`", since: "1.30" },
  { input: "service: taskSpec.containerSpec.configs[].fileGid", engineField: "`ContainerSpec.Configs[].File.GID`", since: "1.30" },
  { input: "service: taskSpec.containerSpec.configs[].fileMode", engineField: "`ContainerSpec.Configs[].File.Mode`", since: "1.30" },
  { input: "service: taskSpec.containerSpec.healthcheck.tests", engineField: "`ContainerSpec.Healthcheck.Test`", since: "1.25" },
  { input: "service: taskSpec.containerSpec.healthcheck.interval", engineField: "`ContainerSpec.Healthcheck.Interval` (nanoseconds)", since: "1.25" },
  { input: "service: taskSpec.containerSpec.healthcheck.timeout", engineField: "`ContainerSpec.Healthcheck.Timeout` (nanoseconds)", since: "1.25" },
  { input: "service: taskSpec.containerSpec.healthcheck.retries", engineField: "`ContainerSpec.Healthcheck.Retries`", since: "1.25" },
  { input: "service: taskSpec.containerSpec.healthcheck.startPeriod", engineField: "`ContainerSpec.Healthcheck.StartPeriod` (nanoseconds)", since: "1.29" },
  { input: "service: taskSpec.containerSpec.stopSignal", engineField: "`ContainerSpec.StopSignal`", since: "1.28" },
  { input: "service: taskSpec.containerSpec.stopGracePeriod", engineField: "`ContainerSpec.StopGracePeriod` (nanoseconds)", since: "≤ 1.24" },
  { input: "service: taskSpec.containerSpec.mounts[].type", engineField: "`ContainerSpec.Mounts[].Type`", since: "≤ 1.24" },
  { input: "service: taskSpec.containerSpec.mounts[].source", engineField: "`ContainerSpec.Mounts[].Source`", since: "≤ 1.24" },
  { input: "service: taskSpec.containerSpec.mounts[].target", engineField: "`ContainerSpec.Mounts[].Target`", since: "≤ 1.24" },
  { input: "service: taskSpec.containerSpec.mounts[].tmpfsOptions.sizeBytes", engineField: "`ContainerSpec.Mounts[].TmpfsOptions.SizeBytes`", since: "1.25" },
  { input: "service: taskSpec.containerSpec.mounts[].tmpfsOptions.mode", engineField: "`ContainerSpec.Mounts[].TmpfsOptions.Mode`", since: "1.25" },
  { input: "service: taskSpec.containerSpec.readOnly", engineField: "`ContainerSpec.ReadOnly`", since: "1.28" },
  { input: "service: taskSpec.containerSpec.capDrops", engineField: "`ContainerSpec.CapabilityDrop`", since: "1.41" },
  { input: "service: taskSpec.containerSpec.capAdds", engineField: "`ContainerSpec.CapabilityAdd`", since: "1.41" },
  { input: "service: taskSpec.resources.limits.memoryBytes", engineField: "`TaskTemplate.Resources.Limits.MemoryBytes`", since: "≤ 1.24" },
  { input: "service: taskSpec.resources.limits.nanoCpus", engineField: "`TaskTemplate.Resources.Limits.NanoCPUs`", since: "≤ 1.24" },
  { input: "service: taskSpec.restartPolicy.condition", engineField: "`TaskTemplate.RestartPolicy.Condition`", since: "≤ 1.24" },
  { input: "service: taskSpec.restartPolicy.delay", engineField: "`TaskTemplate.RestartPolicy.Delay` (nanoseconds)", since: "≤ 1.24" },
  { input: "service: taskSpec.logDriver.name", engineField: "`TaskTemplate.LogDriver.Name`", since: "≤ 1.24" },
  { input: "service: taskSpec.logDriver.options", engineField: "`TaskTemplate.LogDriver.Options`", since: "≤ 1.24" },
  { input: "service: taskSpec.placement.constraints", engineField: "`TaskTemplate.Placement.Constraints`", since: "≤ 1.24" },
  { input: "service: taskSpec.networksAdvanceds[].id", engineField: "`TaskTemplate.Networks[].Target`", since: "1.25" },
  { input: "service: taskSpec.networksAdvanceds[].aliases", engineField: "`TaskTemplate.Networks[].Aliases`", since: "1.25" },
  { input: "service: updateConfig.parallelism", engineField: "`Spec.UpdateConfig.Parallelism`", since: "≤ 1.24" },
  { input: "service: updateConfig.delay", engineField: "`Spec.UpdateConfig.Delay` (nanoseconds)", since: "≤ 1.24" },
  { input: "service: updateConfig.failureAction", engineField: "`Spec.UpdateConfig.FailureAction` (`rollback`: 1.28)", since: "1.28" },
  { input: "service: updateConfig.monitor", engineField: "`Spec.UpdateConfig.Monitor` (nanoseconds)", since: "1.25" },
  { input: "service: updateConfig.maxFailureRatio", engineField: "`Spec.UpdateConfig.MaxFailureRatio`", since: "1.25" },
  { input: "service: updateConfig.order", engineField: "`Spec.UpdateConfig.Order`", since: "1.29" },
  { input: "service: rollbackConfig.parallelism", engineField: "`Spec.RollbackConfig.Parallelism`", since: "1.28" },
  { input: "service: rollbackConfig.delay", engineField: "`Spec.RollbackConfig.Delay` (nanoseconds)", since: "1.28" },
  { input: "service: rollbackConfig.failureAction", engineField: "`Spec.RollbackConfig.FailureAction`", since: "1.28" },
  { input: "service: rollbackConfig.monitor", engineField: "`Spec.RollbackConfig.Monitor` (nanoseconds)", since: "1.28" },
  { input: "service: rollbackConfig.maxFailureRatio", engineField: "`Spec.RollbackConfig.MaxFailureRatio`", since: "1.28" },
  { input: "service: rollbackConfig.order", engineField: "`Spec.RollbackConfig.Order`", since: "1.29" },
  { input: "service: endpointSpec.mode", engineField: "`Spec.EndpointSpec.Mode` (`dnsrr`)", since: "≤ 1.24" },
  { input: "service: endpointSpec.ports[].targetPort", engineField: "`EndpointSpec.Ports[].TargetPort`", since: "≤ 1.24" },
  { input: "service: endpointSpec.ports[].publishedPort", engineField: "`EndpointSpec.Ports[].PublishedPort`", since: "≤ 1.24" },
  { input: "service: endpointSpec.ports[].protocol", engineField: "`EndpointSpec.Ports[].Protocol`", since: "≤ 1.24" },
  { input: "service: endpointSpec.ports[].publishMode", engineField: "`EndpointSpec.Ports[].PublishMode` (`host`)", since: "1.25" },
  { input: "service: convergeConfig.timeout", engineField: "(the provider's own deadline: `GET /tasks` until every replica runs)", since: "—" },
  { input: "service: convergeConfig.delay", engineField: "(the provider's own first wait before that)", since: "—" },
  { input: "secret: name", engineField: "`POST /secrets/create`: `Name`", since: "1.25" },
  { input: "secret: data", engineField: "`Data` (base64)", since: "1.25" },
  { input: "secret: labels[].label", engineField: "`Labels` (key)", since: "1.25" },
  { input: "secret: labels[].value", engineField: "`Labels` (value)", since: "1.25" },
  { input: "config: name", engineField: "`POST /configs/create`: `Name`", since: "1.30" },
  { input: "config: dataRaw", engineField: "`Data` (the provider encodes it)", since: "1.30" },
  { input: "config: labels[].label", engineField: "`Labels` (key)", since: "1.30" },
  { input: "config: labels[].value", engineField: "`Labels` (value)", since: "1.30" },
  { input: "network: name", engineField: "`POST /networks/create`: `Name`", since: "≤ 1.24" },
  { input: "network: driver", engineField: "`Driver` (`overlay`)", since: "≤ 1.24" },
  { input: "network: attachable", engineField: "`Attachable`", since: "1.25" },
  { input: "network: options", engineField: "`Options` (`encrypted`)", since: "≤ 1.24" },
  { input: "network: labels[].label", engineField: "`Labels` (key)", since: "≤ 1.24" },
  { input: "network: labels[].value", engineField: "`Labels` (value)", since: "≤ 1.24" },
];

/** The kind prefix of SWARM_INPUT_AUDIT's paths, by resource type. */
export const SWARM_AUDITED_TYPES: Readonly<Record<string, string>> = {
  "docker:index/service:Service": "service",
  "docker:index/secret:Secret": "secret",
  "docker:index/serviceConfig:ServiceConfig": "config",
  "docker:index/network:Network": "network",
};

/** Besides what the inputs ask, the provider sends `HostConfig.Init` (false unless `init` is set) with every create. */
export const PROVIDER_ALWAYS_SENDS = { field: "HostConfig.Init", since: "1.25" } as const;

/** Container inputs whose keys are the user's (a map), not fields of the input. */
const MAP_INPUTS = new Set(["logOpts", "sysctls", "storageOpts", "tmpfs", "env", "options"]);

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * The input paths a container's inputs set, spelled as CONTAINER_INPUT_AUDIT
 * and NEWER_API_INPUTS spell them: `healthcheck.startPeriod`, `ports[].ip`,
 * `logOpts` (a map is one input).
 */
export function containerInputPaths(inputs: Record<string, unknown>, at = ""): string[] {
  const paths = new Set<string>();
  for (const [key, value] of Object.entries(inputs)) {
    if (value === undefined) continue;
    const path = at ? `${at}.${key}` : key;
    if (isPlainObject(value) && !MAP_INPUTS.has(key)) {
      for (const p of containerInputPaths(value, path)) paths.add(p);
    } else if (Array.isArray(value) && value.length > 0 && value.every(isPlainObject)) {
      for (const item of value) for (const p of containerInputPaths(item, `${path}[]`)) paths.add(p);
    } else {
      paths.add(path);
    }
  }
  return [...paths].sort();
}
