import { z } from "zod";
import { containerInputPaths, MIN_DOCKER_ENGINE, NEWER_API_INPUTS } from "../../config/docker-engine";
import { MIN_API_STOP_TIMEOUT_SECONDS } from "../../config/schema";
import { defineResourceRule } from "../rule";
import { isAppstackContainer, isAppstackWorkload, isKnown, roleOf, serviceOf, workload, type ResourceView } from "../view";

/**
 * Rules about every container and Swarm service the project declares: how it
 * runs, restarts, is limited and logs. A service is judged on its task
 * template, the same settings in Swarm's spelling (`workload` in view.ts).
 */

const isService = (r: ResourceView) => isAppstackWorkload(r) && roleOf(r) === "service";
const isJob = (r: ResourceView) => isAppstackContainer(r) && roleOf(r) === "job";

export const containerHasRole = defineResourceRule({
  name: "container-declares-role",
  description:
    "Every appstack container is labelled appstack.role=service (long-running) or job (one-shot), so the seeds' health-check and restart items " +
    "reach every service: an unlabelled container would escape those rules.",
  remediationSteps: "Build the container's labels with serviceLabels({ ..., role: \"service\" | \"job\" }) in its component.",
  severity: "medium",
  check(r, ctx) {
    if (!isAppstackWorkload(r)) return;
    const role = roleOf(r);
    if (role !== "service" && role !== "job") {
      ctx.report(`label appstack.role is ${role === undefined ? "missing" : `"${role}"`}; expected "service" or "job"`);
    }
  },
});

export const serviceHealthCheck = defineResourceRule({
  name: "service-health-check",
  description:
    "Every long-running container has a health check (the seeds' API /api/v1/health and worker process checks, 'Health checks passing', " +
    "'Load balancer health checks working'): Docker restarts and the deploy waits on it.",
  remediationSteps: "Give the container args a healthcheck with a test command (CMD or CMD-SHELL), as the components' health settings do.",
  severity: "high",
  check(r, ctx) {
    if (!isService(r)) return;
    const hc = workload(r)!.healthcheck;
    if (!isKnown(hc)) return;
    const tests = (hc as { tests?: unknown } | undefined)?.tests;
    if (!Array.isArray(tests) || tests.length < 2 || tests[0] === "NONE") {
      ctx.report(
        hc === undefined ? "no health check: Docker cannot tell a hung service from a healthy one" : "the health check has no test command (tests is empty or NONE)",
      );
    }
  },
});

export const serviceWaitsHealthy = defineResourceRule({
  name: "service-waits-healthy",
  description:
    "A long-running container is created with wait: true, and a replicated Swarm service with a convergeConfig, so `pulumi up` fails unless it turns healthy " +
    "(the seeds' success criterion 'Health check returns 200 OK' checked by the deploy itself, not by a person afterwards). A global service (the swarm edge) " +
    "cannot have one: the provider converges replicated services only.",
  remediationSteps: "Set wait: true and a waitTimeout on the container, or convergeConfig on the service (the health check must exist).",
  severity: "high",
  check(r, ctx) {
    if (!isService(r)) return;
    const w = workload(r)!;
    if (!isKnown(w.waits) || w.waits === "global") return;
    if (w.kind === "service") {
      if (w.waits !== true) ctx.report("no convergeConfig: the deploy would continue while the service's tasks are still starting or failing their health check");
      return;
    }
    if (w.waits !== true) ctx.report("wait is not true: the deploy would continue while the service is still starting or failing its health check");
  },
});

const RESTARTING = new Set(["always", "unless-stopped", "on-failure", "any"]);

export const serviceRestartPolicy = defineResourceRule({
  name: "service-restart-policy",
  description:
    "Every long-running container has a restart policy (the seeds' 'Restart Policy: ON_FAILURE' for API and worker), and every Swarm service a restart " +
    "condition, so a crash or a host reboot does not leave it down.",
  remediationSteps: 'Set restart: "unless-stopped" (or "always" / "on-failure") on a container, taskSpec.restartPolicy.condition "any" (or "on-failure") on a service.',
  severity: "high",
  check(r, ctx) {
    if (!isService(r)) return;
    const w = workload(r)!;
    const restart = w.restart;
    if (!isKnown(restart) || (w.kind === "service" && restart === undefined)) return;
    if (typeof restart !== "string" || !RESTARTING.has(restart) || (w.kind === "container" && restart === "any")) {
      ctx.report(`${w.field.restart} is ${restart === undefined ? 'unset (Docker\'s default is "no")' : `"${String(restart)}"`}; a crashed service would stay down`);
    }
  },
});

export const containerMemoryLimit = defineResourceRule({
  name: "container-memory-limit",
  description:
    "Every container has a memory limit (the seeds' 'High Memory Usage: process killed (OOM)' and sized services such as 'Memory: 512MB'): " +
    "one leaking process cannot starve the data stores on the same host.",
  remediationSteps: "Set memory (MiB) on the container, or taskSpec.resources.limits.memoryBytes on the service; the components take it from <service>.memoryMb.",
  severity: "high",
  check(r, ctx) {
    const w = workload(r);
    if (!w || !isKnown(w.memory)) return;
    const memory = w.memory;
    if (typeof memory !== "number" || memory <= 0) ctx.report(`no memory limit: the ${w.kind} may use all of the host's memory`);
  },
});

export const containerCpuLimit = defineResourceRule({
  name: "container-cpu-limit",
  description:
    "Every container has a CPU limit (the seeds watch 'CPU/Memory usage' and scale the worker when it is busy): a busy worker cannot starve the API and the data stores on the same host.",
  remediationSteps: 'Set cpus on the container ("0.5", "1"), or taskSpec.resources.limits.nanoCpus on the service; the components take it from <service>.cpus.',
  severity: "medium",
  check(r, ctx) {
    const w = workload(r);
    if (!w || !isKnown(w.cpus)) return;
    const cpus = Number(w.cpus);
    if (w.cpus === undefined || !(cpus > 0)) ctx.report(`no CPU limit: the ${w.kind} may use every core of the host`);
  },
});

/** Log drivers that keep files on the Docker host and therefore need rotation. */
const FILE_DRIVERS = new Set(["json-file", "local"]);

export const containerLogRotation = defineResourceRule({
  name: "container-log-rotation",
  description:
    "Container logs are rotated (the seeds review and aggregate logs; 'Monitor logs for errors'): a json-file log without max-size grows until the host's disk is full.",
  remediationSteps: 'Set logDriver "json-file" with logOpts { "max-size": "10m", "max-file": "5" } (LOG_ROTATION in components/container-defaults.ts).',
  severity: "medium",
  check(r, ctx) {
    const w = workload(r);
    if (!w || !isKnown(w.logDriver) || !isKnown(w.logOpts)) return;
    const driver = (w.logDriver as string | undefined) ?? "json-file";
    if (!FILE_DRIVERS.has(driver)) return;
    const opts = (w.logOpts ?? {}) as Record<string, unknown>;
    if (driver === "json-file" && typeof opts["max-size"] !== "string") {
      ctx.report(`log driver ${driver} without logOpts max-size: the log file grows without bound`);
    }
  },
});

export const containerNotPrivileged = defineResourceRule({
  name: "container-not-privileged",
  description:
    "No container runs privileged (the seeds' security hardening and security scan items): a privileged container has root on the Docker host.",
  remediationSteps: "Remove privileged: true; add only the capability the process needs (capabilities.adds).",
  severity: "critical",
  check(r, ctx) {
    if (!isAppstackContainer(r)) return;
    if (r.props.privileged === true) ctx.report("privileged: true gives the container full access to the Docker host");
  },
});

export const jobRunsOnce = defineResourceRule({
  name: "job-runs-once",
  description:
    "A one-shot container (migrations, backups) runs once: restart \"no\" and mustRun false, so Docker does not re-run a migration after it exits " +
    "and Pulumi does not recreate it on every update (the seeds run the migration as one step before the deploy).",
  remediationSteps: 'Set restart: "no" and mustRun: false on the job container, and do not wait for it to turn healthy.',
  severity: "high",
  check(r, ctx) {
    if (!isJob(r)) return;
    const { restart, mustRun, wait } = r.props;
    if (isKnown(restart) && restart !== undefined && restart !== "no") ctx.report(`restart is "${String(restart)}": the job would run again after it exits`);
    if (isKnown(mustRun) && mustRun !== false) {
      ctx.report(`mustRun is ${mustRun === undefined ? "unset (the provider defaults it to true)" : String(mustRun)}: Pulumi would restart the finished job on every update`);
    }
    if (wait === true) ctx.report("wait: true waits for a healthy state that a one-shot job never reaches");
  },
});

export const workerGracefulStop = defineResourceRule<{ minSeconds: number }>({
  name: "worker-graceful-stop",
  description:
    "Worker containers get time to finish the current job on SIGTERM (the seeds' 'Worker gracefully handles SIGTERM/SIGINT' with 30 s job timeouts): " +
    "stopTimeout at least minSeconds, or Docker kills the job mid-way after 10 s.",
  remediationSteps:
    "Set stopTimeout on the worker container, or taskSpec.containerSpec.stopGracePeriod on its service (worker.stopGracePeriodSeconds), to at least the longest job's timeout.",
  severity: "medium",
  config: z.strictObject({ minSeconds: z.number().int().min(1).default(30) }),
  check(r, ctx) {
    const w = workload(r);
    if (!w || serviceOf(r) !== "worker" || !isKnown(w.stopSeconds)) return;
    const t = w.stopSeconds;
    if (typeof t !== "number" || t < ctx.config.minSeconds) {
      ctx.report(`${w.field.stop} is ${t === undefined ? "unset (Docker's default, 10 s)" : `${String(t)} s`}; the worker needs at least ${ctx.config.minSeconds} s to finish a job`);
    }
  },
});

export const containerEngineCompatible = defineResourceRule({
  name: "container-engine-compatible",
  description:
    `No container uses an input that needs a newer Docker Engine API than the oldest engine appstack supports (Docker ${MIN_DOCKER_ENGINE.version}, ` +
    `API ${MIN_DOCKER_ENGINE.apiVersion}, ${MIN_DOCKER_ENGINE.example}): on such an engine the provider refuses the container, or the engine ignores the input, ` +
    "and the seeds' 'Deployment successful' and 'Application starts without errors' fail on the host the team has (docs/docker-engine.md).",
  remediationSteps:
    "Remove the input (a transform may have added it). A health check without startInterval probes every interval from the start: shorten interval instead.",
  severity: "high",
  check(r, ctx) {
    if (!isAppstackContainer(r)) return;
    const paths = new Set(containerInputPaths(r.props));
    for (const newer of NEWER_API_INPUTS) {
      if (!paths.has(newer.input)) continue;
      ctx.report(
        `${newer.input} needs Docker Engine API ${newer.apiVersion} (Docker ${newer.engine}); on Docker ${MIN_DOCKER_ENGINE.version} (API ${MIN_DOCKER_ENGINE.apiVersion}), ` +
          `the oldest engine appstack supports, ${newer.onOlderEngines}`,
      );
    }
  },
});

export const apiGracefulStop = defineResourceRule({
  name: "api-graceful-stop",
  description:
    "API containers are stopped gracefully when a release replaces them (the seeds' 'Zero-downtime deployment'): SIGTERM, then at least " +
    `${MIN_API_STOP_TIMEOUT_SECONDS} s (destroyGraceSeconds) to drain before removal; without it the Docker provider removes the container at once, ` +
    "with its requests in flight.",
  remediationSteps: `Keep destroyGraceSeconds (a container) or stopGracePeriod (a service) = api.stopTimeoutSeconds (components/api.ts), at least ${MIN_API_STOP_TIMEOUT_SECONDS}.`,
  severity: "high",
  check(r, ctx) {
    const w = workload(r);
    if (w?.kind === "service" && serviceOf(r) === "api" && isKnown(w.stopSeconds)) {
      // Swarm stops a replaced task itself: SIGTERM, the grace period, then SIGKILL.
      const grace = w.stopSeconds;
      if (typeof grace !== "number" || grace < MIN_API_STOP_TIMEOUT_SECONDS) {
        ctx.report(`${w.field.stop} is ${grace === undefined ? "unset: Swarm kills a replaced task after 10 s" : `${String(grace)} s`}; an API task needs at least ${MIN_API_STOP_TIMEOUT_SECONDS} s to drain`);
      }
      if (w.stopSignal !== undefined && w.stopSignal !== "SIGTERM") ctx.report(`stopSignal is ${String(w.stopSignal)}; the drain starts on SIGTERM`);
      return;
    }
    if (!isAppstackContainer(r) || serviceOf(r) !== "api" || roleOf(r) !== "service" || !isKnown(r.props.destroyGraceSeconds)) return;
    const grace = r.props.destroyGraceSeconds;
    if (typeof grace !== "number" || grace < MIN_API_STOP_TIMEOUT_SECONDS) {
      ctx.report(
        `destroyGraceSeconds is ${grace === undefined ? "unset: the container is removed at once, with its requests in flight" : `${String(grace)} s`}; ` +
          `an API container needs at least ${MIN_API_STOP_TIMEOUT_SECONDS} s to drain`,
      );
    }
    if (r.props.stopSignal !== undefined && r.props.stopSignal !== "SIGTERM") ctx.report(`stopSignal is ${String(r.props.stopSignal)}; the drain starts on SIGTERM`);
  },
});

export const CONTAINER_RULES = [
  containerHasRole,
  serviceHealthCheck,
  serviceWaitsHealthy,
  serviceRestartPolicy,
  containerMemoryLimit,
  containerCpuLimit,
  containerLogRotation,
  containerNotPrivileged,
  jobRunsOnce,
  workerGracefulStop,
  containerEngineCompatible,
  apiGracefulStop,
];
