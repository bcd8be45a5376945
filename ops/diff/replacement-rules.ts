/**
 * Which input changes make the engine REPLACE a resource rather than update it
 * in place, for every resource type appstack declares. The engine asks the
 * provider; these tables restate what the providers' schemas say, so the
 * offline diff can tell a reviewer "this replaces the database container"
 * without a provider plugin, a backend or credentials.
 *
 * Sources (read from the providers' own schemas):
 * - pulumi-docker bridges kreuzwerker/terraform-provider-docker: `ForceNew`
 *   attributes of docker_container, docker_volume, docker_network and
 *   docker_image (= RemoteImage). docker_container updates in place only what
 *   `resourceDockerContainerUpdate` sends to Docker's ContainerUpdate (restart
 *   policy, memory, memory swap, CPU shares, CPU set); `cpus` is ForceNew.
 *   docker_volume and docker_network have no Update at all. The healthcheck
 *   became ForceNew upstream (PR #989): Docker cannot change it on a running
 *   container, so an in-place "update" would be silently lost.
 *   docker_service (swarm mode) updates in place (a rolling update of its
 *   tasks) everything but name, mode and auth; docker_secret and docker_config
 *   have no Update (Swarm secrets and configs are immutable).
 * - @pulumi/random bridges terraform-provider-random: every random_password
 *   and random_id argument has RequiresReplace (a new value).
 * - @pulumiverse/vercel bridges vercel/terraform-provider-vercel: project
 *   (team_id only), project_environment_variable (key, project_id, team_id,
 *   sensitive), project_domain (domain, project_id, team_id), deployment
 *   (everything but delete_on_destroy: a deployment is immutable),
 *   project_route (project_id, team_id, position).
 */

export type Action = "update" | "replace";

export interface ReplacementRule {
  /** Pulumi type token. */
  type: string;
  /** How people call it. */
  title: string;
  /** What a change to any input not listed below does. */
  otherwise: Action;
  /** Top-level inputs (Pulumi names) that replace the resource. */
  replace: string[];
  /** Top-level inputs updated in place. */
  update: string[];
  /** Where the rule comes from. */
  source: string;
}

export const REPLACEMENT_RULES: ReplacementRule[] = [
  {
    type: "docker:index/container:Container",
    title: "docker Container",
    otherwise: "replace",
    replace: [
      "image",
      "name",
      "envs",
      "command",
      "entrypoints",
      "labels",
      "ports",
      "volumes",
      "mounts",
      "networksAdvanced",
      "networkMode",
      "healthcheck",
      "cpus",
      "logDriver",
      "logOpts",
      "stopTimeout",
      "stopSignal",
      "shmSize",
      "user",
      "workingDir",
      "hostname",
      "capabilities",
      "privileged",
      "uploads",
    ],
    update: [
      "restart",
      "maxRetryCount",
      "memory",
      "memorySwap",
      "cpuShares",
      "cpuSet",
      "wait",
      "waitTimeout",
      "mustRun",
      "start",
      "rm",
      "attach",
      "logs",
      "removeVolumes",
      "destroyGraceSeconds",
      "containerReadRefreshTimeoutMilliseconds",
    ],
    source: "kreuzwerker/terraform-provider-docker docker_container (ForceNew; ContainerUpdate)",
  },
  {
    type: "docker:index/volume:Volume",
    title: "docker Volume",
    otherwise: "replace",
    replace: ["name", "driver", "driverOpts", "labels"],
    update: [],
    source: "docker_volume: every argument ForceNew, no Update",
  },
  {
    type: "docker:index/network:Network",
    title: "docker Network",
    otherwise: "replace",
    replace: ["name", "driver", "options", "labels", "internal", "attachable", "ingress", "ipamConfigs", "ipamDriver", "ipamOptions"],
    update: [],
    source: "docker_network: every argument ForceNew, no Update",
  },
  {
    type: "docker:index/service:Service",
    title: "docker Service",
    otherwise: "update",
    replace: ["name", "mode", "auth"],
    update: ["labels", "taskSpec", "updateConfig", "rollbackConfig", "endpointSpec", "convergeConfig"],
    source: "docker_service: name, mode, auth ForceNew; the rest is a rolling update of the tasks",
  },
  {
    type: "docker:index/secret:Secret",
    title: "docker Secret",
    otherwise: "replace",
    replace: ["name", "data", "labels"],
    update: [],
    source: "docker_secret: every argument ForceNew, no Update (Swarm secrets are immutable)",
  },
  {
    type: "docker:index/serviceConfig:ServiceConfig",
    title: "docker ServiceConfig",
    otherwise: "replace",
    replace: ["name", "data", "dataRaw", "labels"],
    update: [],
    source: "docker_config: every argument ForceNew, no Update (Swarm configs are immutable)",
  },
  {
    type: "docker:index/remoteImage:RemoteImage",
    title: "docker RemoteImage",
    otherwise: "replace",
    replace: ["name", "pullTriggers", "triggers", "platform", "build"],
    update: ["keepLocally", "forceRemove"],
    source: "docker_image: name, pull_triggers, triggers ForceNew",
  },
  {
    type: "random:index/randomPassword:RandomPassword",
    title: "random RandomPassword",
    otherwise: "replace",
    replace: ["length", "special", "upper", "lower", "numeric", "number", "minLower", "minUpper", "minNumeric", "minSpecial", "overrideSpecial", "keepers"],
    update: [],
    source: "random_password: every argument RequiresReplace (a new password)",
  },
  {
    type: "random:index/randomId:RandomId",
    title: "random RandomId",
    otherwise: "replace",
    replace: ["byteLength", "keepers", "prefix"],
    update: [],
    source: "random_id: every argument RequiresReplace (a new value)",
  },
  {
    type: "vercel:index/project:Project",
    title: "vercel Project",
    otherwise: "update",
    replace: ["teamId"],
    update: ["name", "framework", "buildCommand", "outputDirectory", "installCommand", "rootDirectory", "environments", "gitRepository"],
    source: "vercel_project: team_id RequiresReplace; the rest updates (a rename too)",
  },
  {
    type: "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable",
    title: "vercel ProjectEnvironmentVariable",
    otherwise: "update",
    replace: ["key", "projectId", "teamId", "sensitive"],
    update: ["value", "valueWo", "targets", "gitBranch", "comment", "customEnvironmentIds"],
    source: "vercel_project_environment_variable: key, project_id, team_id, sensitive RequiresReplace",
  },
  {
    type: "vercel:index/deployment:Deployment",
    title: "vercel Deployment",
    otherwise: "replace",
    replace: ["projectId", "teamId", "files", "environment", "production", "projectSettings", "pathPrefix", "ref", "meta", "customEnvironmentId"],
    update: ["deleteOnDestroy"],
    source: "vercel_deployment: immutable; only delete_on_destroy updates",
  },
  {
    type: "vercel:index/projectDomain:ProjectDomain",
    title: "vercel ProjectDomain",
    otherwise: "update",
    replace: ["domain", "projectId", "teamId"],
    update: ["redirect", "redirectStatusCode", "gitBranch", "customEnvironmentId"],
    source: "vercel_project_domain: domain, project_id, team_id RequiresReplace",
  },
  {
    type: "vercel:index/projectRoute:ProjectRoute",
    title: "vercel ProjectRoute",
    otherwise: "update",
    replace: ["projectId", "teamId", "position"],
    update: ["name", "description", "enabled", "srcSyntax", "route"],
    source: "vercel_project_route: project_id, team_id, position RequiresReplace",
  },
];

const BY_TYPE = new Map(REPLACEMENT_RULES.map((r) => [r.type, r]));

export interface InputVerdict {
  action: Action;
  /** False when appstack has no rule for this type: the verdict is a guess (update). */
  modelled: boolean;
}

/**
 * What a change to the top-level input `input` of a resource of `type` does.
 * Providers (`pulumi:providers:*`) and components update: the engine diffs a
 * provider's config in place, and a component has no provider at all.
 */
export function inputVerdict(type: string, input: string): InputVerdict {
  const rule = BY_TYPE.get(type);
  if (!rule) return { action: "update", modelled: type.startsWith("pulumi:providers:") || isComponent(type) };
  if (rule.replace.includes(input)) return { action: "replace", modelled: true };
  if (rule.update.includes(input)) return { action: "update", modelled: true };
  return { action: rule.otherwise, modelled: true };
}

/** A component resource (no provider): `pkg:module:Type` without an `index/` module path. */
export function isComponent(type: string): boolean {
  return !type.startsWith("pulumi:") && !type.split(":")[1]?.includes("/");
}

/** The first path segment of an input path: `envs[2]` -> `envs`, `healthcheck.tests` -> `healthcheck`. */
export function topLevelInput(path: string): string {
  return /^[^.[]+/.exec(path)?.[0] ?? path;
}

/**
 * `replaceOnChanges` / `ignoreChanges` entries as the engine reads them:
 * a property path, `*` for all; a path covers itself and everything below it.
 */
export function pathMatches(pattern: string, path: string): boolean {
  if (pattern === "*") return true;
  return path === pattern || path.startsWith(`${pattern}.`) || path.startsWith(`${pattern}[`);
}

/** The README's table of these rules, so the documentation is generated from the code it describes. */
export function renderRulesTable(): string {
  const rows = REPLACEMENT_RULES.map((r) => {
    const replace = r.otherwise === "replace" ? `${r.replace.map((i) => `\`${i}\``).join(", ")} and any other input` : r.replace.map((i) => `\`${i}\``).join(", ");
    const update = r.otherwise === "update" ? `${r.update.map((i) => `\`${i}\``).join(", ")} and any other input` : r.update.map((i) => `\`${i}\``).join(", ") || "nothing";
    return `| ${r.title} | ${replace} | ${update} |`;
  });
  return ["| resource | replaced when these change | updated in place |", "| --- | --- | --- |", ...rows].join("\n");
}
