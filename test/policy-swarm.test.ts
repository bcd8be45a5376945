import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { RULES } from "../policy/rules";
import {
  apiGracefulStop,
  containerCpuLimit,
  containerHasRole,
  containerLogRotation,
  containerMemoryLimit,
  serviceHealthCheck,
  serviceRestartPolicy,
  serviceWaitsHealthy,
  workerGracefulStop,
} from "../policy/rules/containers";
import { dataStoreNoHostPort, onlyEdgePublishesPorts, pinnedImages, requiredEnvWired } from "../policy/rules/data";
import { corsMatchesFrontend, rolloutOrder, securityHeaders } from "../policy/rules/stack";
import { dataStorePinned, serviceRollbackOnFailure, serviceRollingUpdate, serviceSecretsAsFiles } from "../policy/rules/swarm";
import { containerDropsCapabilities, containerNoNewPrivileges, containerPidsLimit, containerReadOnlyRootfs, dataStoreNonRoot } from "../policy/rules/privileges";
import { edgeChecksApiHealth } from "../policy/rules/web";
import { viewFromWire, type ResourceView } from "../policy/view";
import { ROOT } from "./helpers/cli";
import { planInProcess } from "./helpers/in-process-plan";
import { check, checkStack } from "./helpers/policy";

/**
 * The policy pack over Swarm services: the swarm example's resources as the
 * program registers them pass every rule; each one changed the way a
 * transform or a hand edit could change it is reported by the rule that
 * guards it, in Swarm's own field names.
 */

let views: ResourceView[];
beforeAll(async () => {
  views = (await planInProcess({ stackFile: path.join(ROOT, "examples/Pulumi.swarm-example.yaml") })).resources.map(viewFromWire);
});

/** A deep copy that keeps the UNKNOWN marker (a symbol, which structuredClone refuses). */
const copy = (value: unknown): unknown =>
  Array.isArray(value) ? value.map(copy) : value !== null && typeof value === "object" ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, copy(v)])) : value;

const view = (name: string): ResourceView => {
  const v = views.find((x) => x.name === name);
  if (!v) throw new Error(`no ${name}`);
  return { ...v, props: copy(v.props) as Record<string, unknown> };
};
/** A resource of the example with its props changed. */
function changed(name: string, edit: (props: any) => void): ResourceView { // eslint-disable-line @typescript-eslint/no-explicit-any
  const v = view(name);
  edit(v.props);
  return v;
}
const SERVICES = ["api-service", "worker-service", "postgres-service", "redis-service", "edge-service"];

describe("policy rules over Swarm services", () => {
  it("every service of the swarm example passes every resource rule", () => {
    for (const name of SERVICES) {
      for (const rule of RULES.filter((r) => r.kind === "resource")) expect(check(rule, view(name)), `${rule.name} on ${name}`).toEqual([]);
    }
  });

  it("the container rules judge a service's task template: role, health check, restart condition, limits, log rotation", () => {
    expect(check(containerHasRole, changed("api-service", (p) => (p.labels = p.labels.filter((l: { label: string }) => l.label !== "appstack.role"))))).toEqual([
      'label appstack.role is missing; expected "service" or "job"',
    ]);
    expect(check(serviceHealthCheck, changed("api-service", (p) => delete p.taskSpec.containerSpec.healthcheck))).toEqual([
      "no health check: Docker cannot tell a hung service from a healthy one",
    ]);
    expect(check(serviceRestartPolicy, changed("worker-service", (p) => (p.taskSpec.restartPolicy.condition = "none")))).toEqual([
      'taskSpec.restartPolicy.condition is "none"; a crashed service would stay down',
    ]);
    expect(check(containerMemoryLimit, changed("redis-service", (p) => delete p.taskSpec.resources))).toEqual(["no memory limit: the service may use all of the host's memory"]);
    expect(check(containerCpuLimit, changed("redis-service", (p) => (p.taskSpec.resources.limits.nanoCpus = 0)))).toEqual(["no CPU limit: the service may use every core of the host"]);
    expect(check(containerLogRotation, changed("api-service", (p) => (p.taskSpec.logDriver.options = {})))).toEqual([
      "log driver json-file without logOpts max-size: the log file grows without bound",
    ]);
  });

  it("a replicated service without convergeConfig is reported; the global edge cannot have one and is not", () => {
    expect(check(serviceWaitsHealthy, changed("api-service", (p) => delete p.convergeConfig))).toEqual([
      "no convergeConfig: the deploy would continue while the service's tasks are still starting or failing their health check",
    ]);
    expect(check(serviceWaitsHealthy, view("edge-service"))).toEqual([]);
  });

  it("the API and the worker drain on SIGTERM for their stop grace period", () => {
    expect(check(apiGracefulStop, changed("api-service", (p) => (p.taskSpec.containerSpec.stopGracePeriod = "5s")))).toEqual([
      "taskSpec.containerSpec.stopGracePeriod is 5 s; an API task needs at least 10 s to drain",
    ]);
    expect(check(apiGracefulStop, changed("api-service", (p) => (p.taskSpec.containerSpec.stopSignal = "SIGKILL")))).toEqual(["stopSignal is SIGKILL; the drain starts on SIGTERM"]);
    expect(check(workerGracefulStop, changed("worker-service", (p) => (p.taskSpec.containerSpec.stopGracePeriod = "10s")))).toEqual([
      "taskSpec.containerSpec.stopGracePeriod is 10 s; the worker needs at least 30 s to finish a job",
    ]);
  });

  it("a service's image reference is pinned; only the edge publishes ports; the wired connection files are there", () => {
    expect(check(pinnedImages, changed("api-service", (p) => (p.taskSpec.containerSpec.image = "ghcr.io/acme/appstack-api:latest")))).toEqual([
      'taskSpec.containerSpec.image "ghcr.io/acme/appstack-api:latest" is not pinned: it names a tag that can move (use a digest or a major.minor version tag)',
    ]);
    const published = [{ targetPort: 5432, publishedPort: 5432, protocol: "tcp", publishMode: "host" }];
    expect(check(dataStoreNoHostPort, changed("postgres-service", (p) => (p.endpointSpec.ports = published)))).toEqual(["postgres publishes 5432->5432 on the Docker host"]);
    expect(check(onlyEdgePublishesPorts, changed("worker-service", (p) => (p.endpointSpec.ports = published)))).toEqual(["worker publishes 1 host port; only the edge proxy may"]);
    expect(check(requiredEnvWired, changed("worker-service", (p) => delete p.taskSpec.containerSpec.env.DATABASE_URL_FILE))).toEqual(["worker gets no DATABASE_URL"]);
  });

  it("service-rolling-update: the API and the worker start-first, data stores stop-first, never all tasks at once", () => {
    expect(check(serviceRollingUpdate, changed("api-service", (p) => (p.updateConfig.order = "stop-first")))).toEqual([
      'updateConfig.order is "stop-first": each update would stop a task before its successor is healthy',
    ]);
    expect(check(serviceRollingUpdate, changed("postgres-service", (p) => (p.updateConfig.order = "start-first")))).toEqual([
      'updateConfig.order is "start-first": a new postgres task would start beside the old one, on the same data volume',
    ]);
    expect(check(serviceRollingUpdate, changed("worker-service", (p) => (p.updateConfig.parallelism = 0)))).toEqual(["updateConfig.parallelism is 0: Swarm would replace every task at once"]);
    // A dev API that publishes its port on the node cannot run two tasks there: stop-first is right.
    const devApi = changed("api-service", (p) => {
      p.updateConfig.order = "stop-first";
      p.endpointSpec.ports = [{ targetPort: 3000, publishedPort: 3000, publishMode: "host" }];
    });
    expect(check(serviceRollingUpdate, devApi)).toEqual([]);
  });

  it("service-rollback-on-failure: rollback, a rollbackConfig, and a monitor window past the start period", () => {
    expect(check(serviceRollbackOnFailure, changed("api-service", (p) => (p.updateConfig.failureAction = "pause")))).toEqual([
      'updateConfig.failureAction is "pause": a failed update would stay half-rolled out',
    ]);
    expect(check(serviceRollbackOnFailure, changed("worker-service", (p) => delete p.rollbackConfig))).toEqual([
      "no rollbackConfig: a rollback would use Swarm's defaults (stop-first, for every task at once)",
    ]);
    expect(check(serviceRollbackOnFailure, changed("api-service", (p) => (p.updateConfig.monitor = "10s")))).toEqual([
      "updateConfig.monitor (10 s) is not longer than the health check's start period (20 s): a task that fails after it would not roll the update back",
    ]);
  });

  it("service-secrets-as-files: a credential in a service's env is reported, by name or by secrecy, never by value", () => {
    const plain = changed("api-service", (p) => (p.taskSpec.containerSpec.env.OPENAI_API_KEY = "sk-not-printed"));
    expect(check(serviceSecretsAsFiles, plain)).toEqual([
      "OPENAI_API_KEY (taskSpec.containerSpec.env.OPENAI_API_KEY) has a credential's name in the service's env; mount it as a secret file (OPENAI_API_KEY_FILE) instead",
    ]);
    const secret = changed("worker-service", (p) => (p.taskSpec.containerSpec.env.SENTRY_DSN = "https://k@sentry.example.com/1"));
    secret.secretPaths = new Set([...(secret.secretPaths ?? []), "taskSpec.containerSpec.env.SENTRY_DSN"]);
    expect(check(serviceSecretsAsFiles, secret)).toEqual(["SENTRY_DSN (taskSpec.containerSpec.env.SENTRY_DSN) holds a secret in the service's env; mount it as a secret file instead"]);
  });

  it("the privilege rules judge a service's task: every capability dropped, only the edge's added back, a read-only root, the data stores' own users", () => {
    for (const name of SERVICES) {
      expect(check(containerDropsCapabilities, changed(name, (p) => delete p.taskSpec.containerSpec.capDrops)), name).toEqual([
        'taskSpec.containerSpec.capDrops does not hold "ALL": the service\'s tasks keep Docker\'s default capabilities',
      ]);
      expect(check(containerReadOnlyRootfs, changed(name, (p) => delete p.taskSpec.containerSpec.readOnly)), name).toEqual([
        "taskSpec.containerSpec.readOnly is not true: the process can rewrite the image's files",
      ]);
    }
    expect(check(containerDropsCapabilities, changed("worker-service", (p) => (p.taskSpec.containerSpec.capAdds = ["SYS_ADMIN"])))).toEqual([
      "adds SYS_ADMIN, which worker does not need (allowed: none)",
    ]);
    expect(check(containerDropsCapabilities, changed("edge-service", (p) => (p.taskSpec.containerSpec.capAdds = ["NET_BIND_SERVICE", "NET_RAW"])))).toEqual([
      "adds NET_RAW, which edge does not need (allowed: NET_BIND_SERVICE)",
    ]);
    expect(check(dataStoreNonRoot, changed("postgres-service", (p) => delete p.taskSpec.containerSpec.user))).toEqual([
      "runs as the image's default user (root for the official images); set its non-root user",
    ]);
    expect(check(dataStoreNonRoot, changed("redis-service", (p) => (p.taskSpec.containerSpec.user = "root")))).toEqual(["runs as root; set its non-root user"]);
  });

  it("no-new-privileges and the cgroup slice cannot be set on a service, and their rules do not judge one", () => {
    for (const name of SERVICES) {
      expect(check(containerNoNewPrivileges, view(name)), name).toEqual([]);
      expect(check(containerPidsLimit, view(name)), name).toEqual([]);
    }
  });

  it("data-store-pinned: one task, on the node labelled with its data", () => {
    expect(check(dataStorePinned, changed("postgres-service", (p) => (p.mode.replicated.replicas = 2)))).toEqual([
      "runs 2 replicas: two postgres servers would each have a volume of their own, or share one",
    ]);
    expect(check(dataStorePinned, changed("redis-service", (p) => (p.taskSpec.placement.constraints = ["node.role==manager"])))).toEqual([
      "is not pinned to a node (constraints: node.role==manager): Swarm may start it on a node without its data volume",
    ]);
  });

  it("the stack rules see services: rollout order, CORS, and the edge's Swarm config", () => {
    const worker = changed("worker-service", () => undefined);
    worker.dependencies = [];
    const all = views.map((v) => (v.name === "worker-service" ? worker : v));
    expect(checkStack(rolloutOrder, all).map((v) => v.message)).toEqual([expect.stringMatching(/^worker-service does not wait for .*the API \(api-service\)/)]);
    const cors = views.map((v) => (v.name === "api-service" ? changed("api-service", (p) => (p.taskSpec.containerSpec.env.CORS_ORIGIN = "https://evil.example.com")) : v));
    expect(checkStack(corsMatchesFrontend, cors).map((v) => v.message)).toEqual([expect.stringContaining('api-service: CORS_ORIGIN "https://evil.example.com" is none of the frontend\'s URLs')]);
    const noHeaders = changed("edge-caddyfile", (p) => (p.dataRaw = String(p.dataRaw).replace(/^\s*X-Frame-Options .*$/m, "")));
    expect(checkStack(securityHeaders, views.map((v) => (v.name === "edge-caddyfile" ? noHeaders : v))).map((v) => v.message)).toEqual(["edge-caddyfile does not send X-Frame-Options"]);
    expect(check(edgeChecksApiHealth, view("edge-caddyfile"))).toEqual([]);
    expect(check(edgeChecksApiHealth, changed("edge-caddyfile", (p) => (p.dataRaw = String(p.dataRaw).replace(/\t+name tasks\.\S+\n/, ""))))).toEqual([
      "the edge proxy routes to the API neither with an active health check (health_uri) nor to the healthy tasks Swarm's DNS lists (tasks.<service>)",
    ]);
  });
});
