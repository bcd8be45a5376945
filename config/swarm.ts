import { replaceListSteps, type FixStep, type KeyPath } from "./fix";
import type { Environment, ParsedAppConfig, SchemaIssue } from "./schema";

/**
 * Swarm mode (`docker.mode: swarm`): the names a stack's Swarm objects get,
 * the node labels it places services by, and the config rules that only
 * swarm mode has. Free of provider imports: the ops commands (preflight,
 * restore) read the same names.
 */

/** The node label that pins a data store to the node with its volume: `appstack.node=<postgres.node>`. */
export const SWARM_NODE_LABEL = "appstack.node";
/** The node label of the nodes that run the edge and publish ports 80 and 443: `appstack.edge=true`. */
export const SWARM_EDGE_LABEL = "appstack.edge";

/** A node label value appstack accepts (`postgres.node`). */
export const SWARM_LABEL_VALUE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/**
 * Swarm's rule for service names (swarmkit's `validateAnnotations`): a DNS
 * name component, at most 63 characters.
 */
export const SWARM_SERVICE_NAME = /^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$/;
export const SWARM_SERVICE_NAME_MAX = 63;
/**
 * Swarm's rule for secret and config names (swarmkit's
 * `validateConfigOrSecretAnnotations`): at most 64 of `[a-zA-Z0-9-_.]`,
 * starting and ending with a letter or digit.
 */
export const SWARM_OBJECT_NAME = /^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$/;
export const SWARM_OBJECT_NAME_MAX = 64;

/** Hex characters of the version suffix that makes each value of a secret a new Swarm secret (a 4-byte `RandomId`). */
export const SECRET_VERSION_HEX = 8;

/** The stack's services: `appstack-<stack>-<part>` (`appstack-production-api`). */
export const swarmServiceName = (stack: string, part: string) => `appstack-${stack}-${part}`;

/** A secret's Swarm name: the env name it is mounted as, and a version that changes with its value. */
export const swarmSecretName = (stack: string, name: string, version: string) => `appstack-${stack}-${name}-${version}`;

/** The edge's Caddyfile as a Swarm config, named by a digest of its content. */
export const swarmConfigName = (stack: string, digest: string) => `appstack-${stack}-caddyfile-${digest}`;

/** The stack's overlay network; not the host-mode bridge's name, so both can exist while a stack moves. */
export const overlayNetworkName = (stack: string) => `appstack-${stack}-overlay`;

/** Where a service's secret files are mounted; `<NAME>_FILE` points at each. */
export const SECRETS_DIR = "/run/secrets";
export const secretFilePath = (name: string) => `${SECRETS_DIR}/${name}`;
export const fileEnvName = (name: string) => `${name}_FILE`;

/** Parts whose service names a stack has, the longest last: what limits the stack name. */
const SERVICE_PARTS = ["api", "edge", "redis", "worker", "postgres"];

type Sections = Partial<ParsedAppConfig>;
type AddIssue = (issue: SchemaIssue) => void;

function issue(path: KeyPath, message: string, fix: FixStep[], note?: string): SchemaIssue {
  return { code: "custom", path: [...path], message, params: { fix, note } };
}

/** The secret env names a swarm stack mounts as files, with the key that names each (for a rule's message). */
function secretNames(cfg: Sections): { name: string; path: KeyPath; list: KeyPath; all: string[] }[] {
  const out: { name: string; path: KeyPath; list: KeyPath; all: string[] }[] = [];
  const add = (list: KeyPath, names: string[]) => names.forEach((name, i) => out.push({ name, path: [...list, i], list, all: names }));
  add(["generatedSecrets"], cfg.generatedSecrets ?? []);
  if (cfg.api) add(["api", "secretEnv"], cfg.api.secretEnv);
  if (cfg.worker) add(["worker", "secretEnv"], cfg.worker.secretEnv);
  return out;
}

/** The names appstack mounts itself, besides the services' own secrets. */
const WIRED_SECRET_FILES = ["DATABASE_URL", "REDIS_URL", "POSTGRES_PASSWORD", "REDIS_PASSWORD"];

/** Why a stack name cannot name this stack's Swarm objects, if it cannot. */
export function swarmStackNameProblem(stack: string): string | undefined {
  const longestService = swarmServiceName(stack, SERVICE_PARTS[SERVICE_PARTS.length - 1]);
  if (!SWARM_SERVICE_NAME.test(longestService)) {
    return `the stack name "${stack}" cannot be part of a Swarm service name (${longestService}): Swarm takes letters, digits, - and _ only`;
  }
  if (longestService.length > SWARM_SERVICE_NAME_MAX) {
    return `the stack name "${stack}" is too long for Swarm: ${longestService} has ${longestService.length} characters, Swarm takes ${SWARM_SERVICE_NAME_MAX}`;
  }
  const longestSecret = swarmSecretName(stack, WIRED_SECRET_FILES.reduce((a, b) => (b.length > a.length ? b : a)), "0".repeat(SECRET_VERSION_HEX));
  if (longestSecret.length > SWARM_OBJECT_NAME_MAX) {
    return `the stack name "${stack}" is too long for Swarm: the secret ${longestSecret} has ${longestSecret.length} characters, Swarm takes ${SWARM_OBJECT_NAME_MAX}`;
  }
  return undefined;
}

/**
 * The rules of swarm mode, and of swarm settings in host mode. Each problem
 * names its key and the command that fixes it.
 */
export function swarmRules(cfg: Sections, env: Environment, stack: string | undefined, addIssue: AddIssue): void {
  const swarm = cfg.docker?.mode === "swarm";
  const stores = [
    ["postgres", cfg.postgres],
    ["redis", cfg.redis],
  ] as const;

  for (const [name, store] of stores) {
    if (store?.mode !== "container") continue;
    if (store.replicas !== undefined && store.replicas > 1) {
      addIssue(
        issue([name, "replicas"], `a data store runs exactly one server: two ${name} servers on one data volume corrupt it`, [{ rm: [name, "replicas"] }], `for replicas, use a managed ${name} (${name}.mode external)`),
      );
    }
    if (!swarm && store.node !== undefined) {
      addIssue(issue([name, "node"], "applies to docker.mode swarm only: in host mode every container runs on docker.host", [{ rm: [name, "node"] }], "or set docker.mode to swarm"));
    }
    if (swarm && env !== "dev" && store.node === undefined) {
      addIssue(
        issue(
          [name, "node"],
          `is required in swarm mode outside dev: ${name} must run on the node that holds its data volume, never move to one without it`,
          [{ set: [name, "node"] }],
          `Pulumi asks for the label value, e.g. db-1; then label that node: docker node update --label-add ${SWARM_NODE_LABEL}=db-1 <node>`,
        ),
      );
    }
  }

  for (const service of ["api", "worker"] as const) {
    if (!swarm && cfg[service]?.secretFiles !== undefined) {
      addIssue(
        issue([service, "secretFiles"], "applies to docker.mode swarm only: in host mode secrets reach the container as env vars", [{ rm: [service, "secretFiles"] }], "or set docker.mode to swarm"),
      );
    }
  }
  if (!swarm) return;

  if (cfg.api?.hostPort !== undefined) {
    addIssue(
      issue(
        ["api", "hostPort"],
        env === "dev"
          ? "is refused in swarm mode: the dev API publishes api.port on the node (Swarm publishes a task's port on every address of the node, not on 127.0.0.1)"
          : `is refused in swarm mode: only the edge publishes ports in ${env}`,
        [{ rm: ["api", "hostPort"] }],
      ),
    );
  }

  const stackProblem = stack === undefined ? undefined : swarmStackNameProblem(stack);
  if (stackProblem) {
    addIssue(issue(["docker", "mode"], stackProblem, [{ rm: ["docker", "mode"] }], "or deploy the stack under a shorter name of letters, digits, - and _"));
  }

  for (const s of secretNames(cfg)) {
    const fileVar = fileEnvName(s.name);
    for (const service of ["api", "worker"] as const) {
      if (cfg[service] && fileVar in cfg[service]!.env && (s.list[0] === "generatedSecrets" || s.list[0] === service)) {
        addIssue(issue([service, "env", fileVar], `${fileVar} is wired by appstack in swarm mode: it names the file that holds the secret ${s.name}`, [{ rm: [service, "env", fileVar] }]));
      }
    }
    if (stack === undefined || stackProblem) continue;
    const longest = swarmSecretName(stack, s.name, "0".repeat(SECRET_VERSION_HEX));
    if (longest.length > SWARM_OBJECT_NAME_MAX) {
      addIssue(
        issue(
          s.path,
          `${s.name} is too long for a Swarm secret name: ${longest} has ${longest.length} characters, Swarm takes ${SWARM_OBJECT_NAME_MAX}`,
          replaceListSteps(s.list, s.all.filter((n) => n !== s.name)),
          `then add it again under a name of at most ${s.name.length - (longest.length - SWARM_OBJECT_NAME_MAX)} characters (the app reads that name, or the file <NAME>_FILE names)`,
        ),
      );
    }
  }
}
