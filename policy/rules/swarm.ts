import { isSecretEnvName } from "../../config/secret-env";
import { defineResourceRule } from "../rule";
import { at, DATA_STORES, durationSeconds, envEntries, isAppstackService, isKnown, serviceOf, workload, type ResourceView } from "../view";

/** Rules only Swarm services have (swarm mode): how they roll, roll back, get their secrets and stay beside their data. */

const APP_SERVICES = new Set(["api", "worker"]);

/** Whether a service publishes a port on its node: two of its tasks cannot run there at once. */
function publishesHostPort(r: ResourceView): boolean {
  const ports = at(r, ["endpointSpec", "ports"]);
  return Array.isArray(ports) && ports.some((p) => (p as { publishMode?: unknown })?.publishMode === "host");
}

export const serviceRollingUpdate = defineResourceRule({
  name: "service-rolling-update",
  description:
    "A Swarm service of the API or the worker updates start-first, one task at a time: a new task starts and must turn healthy before an old one stops, " +
    "so a release never lowers the replicas serving (the seeds' 'Zero-downtime deployment'). Data stores update stop-first: two servers must never share " +
    "a data volume. A service that publishes a host port updates stop-first too (two tasks cannot hold the port on one node).",
  remediationSteps: "Keep updateConfig from rollingUpdate() in components/swarm-service.ts: order start-first for the API and the worker, stop-first for Postgres and Redis.",
  severity: "high",
  check(r, ctx) {
    if (!isAppstackService(r)) return;
    const order = at(r, ["updateConfig", "order"]);
    const parallelism = at(r, ["updateConfig", "parallelism"]);
    if (!isKnown(order) || !isKnown(parallelism)) return;
    const service = serviceOf(r) ?? "";
    if (DATA_STORES.has(service)) {
      if (order !== "stop-first") ctx.report(`updateConfig.order is ${order === undefined ? "unset" : `"${String(order)}"`}: a new ${service} task would start beside the old one, on the same data volume`);
    } else if (APP_SERVICES.has(service) && !publishesHostPort(r) && order !== "start-first") {
      ctx.report(`updateConfig.order is ${order === undefined ? 'unset (Swarm\'s default is "stop-first")' : `"${String(order)}"`}: each update would stop a task before its successor is healthy`);
    }
    if (parallelism === 0) ctx.report("updateConfig.parallelism is 0: Swarm would replace every task at once");
  },
});

export const serviceRollbackOnFailure = defineResourceRule({
  name: "service-rollback-on-failure",
  description:
    "A Swarm service rolls itself back when a new task fails (updateConfig.failureAction rollback, a rollbackConfig), watching each new task for longer " +
    "than its health check's start period (updateConfig.monitor): the seeds' rollback plan ('Rollback to previous deployment if issues') carried out by Swarm " +
    "before anyone is paged.",
  remediationSteps: "Keep updateConfig and rollbackConfig from rollingUpdate() in components/swarm-service.ts, with monitorSeconds() of the service's health check.",
  severity: "high",
  check(r, ctx) {
    if (!isAppstackService(r)) return;
    const action = at(r, ["updateConfig", "failureAction"]);
    if (isKnown(action) && action !== "rollback") {
      ctx.report(`updateConfig.failureAction is ${action === undefined ? 'unset (Swarm\'s default is "pause")' : `"${String(action)}"`}: a failed update would stay half-rolled out`);
    }
    if (isKnown(r.props.rollbackConfig) && r.props.rollbackConfig === undefined) ctx.report("no rollbackConfig: a rollback would use Swarm's defaults (stop-first, for every task at once)");
    const monitor = at(r, ["updateConfig", "monitor"]);
    const startPeriod = at(r, ["taskSpec", "containerSpec", "healthcheck", "startPeriod"]);
    if (!isKnown(monitor) || !isKnown(startPeriod)) return;
    const m = durationSeconds(monitor) ?? 5;
    const s = durationSeconds(startPeriod) ?? 0;
    if (m <= s) ctx.report(`updateConfig.monitor (${m} s) is not longer than the health check's start period (${s} s): a task that fails after it would not roll the update back`);
  },
});

export const serviceSecretsAsFiles = defineResourceRule({
  name: "service-secrets-as-files",
  description:
    "A Swarm service gets its secrets as files (Swarm secrets in /run/secrets, named by <NAME>_FILE), never in its env: a service's env is part of its " +
    "spec, which `docker service inspect` shows to anyone with access to a manager, and which Swarm copies to every node (the seeds: 'Keep secure, never commit').",
  remediationSteps: "Pass the value in the service's secrets (createSwarmSecret in components/swarm-service.ts), and the path as <NAME>_FILE.",
  severity: "critical",
  check(r, ctx) {
    if (!isAppstackService(r)) return;
    for (const e of envEntries(r).entries) {
      if (e.secret === true) ctx.report(`${e.name} (${e.path}) holds a secret in the service's env; mount it as a secret file instead`);
      else if (isSecretEnvName(e.name)) ctx.report(`${e.name} (${e.path}) has a credential's name in the service's env; mount it as a secret file (${e.name}_FILE) instead`);
    }
  },
});

/** A placement constraint that holds a task on one node: its label, hostname or ID. */
const PINS = /^node\.(labels\.[\w.-]+|hostname|id)\s*==\s*\S+$/;

export const dataStorePinned = defineResourceRule({
  name: "data-store-pinned",
  description:
    "Postgres and Redis run as one task pinned to the node that holds their volume (a placement constraint on a node label, hostname or ID): a data " +
    "store Swarm moved to another node would start on an empty volume there, as if the data were lost (the seeds: 'Backup before migration').",
  remediationSteps: "Set postgres.node and redis.node (swarm mode) to the value of the appstack.node label on the node with the data.",
  severity: "critical",
  check(r, ctx) {
    const service = serviceOf(r) ?? "";
    if (!isAppstackService(r) || !DATA_STORES.has(service) || !workload(r)) return;
    const replicas = at(r, ["mode", "replicated", "replicas"]);
    if (isKnown(replicas) && replicas !== 1) ctx.report(`runs ${String(replicas)} replicas: two ${service} servers would each have a volume of their own, or share one`);
    const constraints = at(r, ["taskSpec", "placement", "constraints"]);
    if (!isKnown(constraints)) return;
    const list = Array.isArray(constraints) ? constraints.map(String) : [];
    if (!list.some((c) => PINS.test(c))) {
      ctx.report(`is not pinned to a node (constraints: ${list.length ? list.join(", ") : "none"}): Swarm may start it on a node without its data volume`);
    }
  },
});

export const SWARM_RULES = [serviceRollingUpdate, serviceRollbackOnFailure, serviceSecretsAsFiles, dataStorePinned];
