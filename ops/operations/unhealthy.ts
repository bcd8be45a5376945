import { masker } from "./secret-mask";
import { engineJson, EngineUnreachable, type DockerTarget, type EngineOptions } from "./docker-engine";

/**
 * Why a container the deploy waited on never turned healthy. The Docker
 * provider fails `pulumi up` with "container failed to be in healthy state"
 * and nothing else; this reads the stack's service containers on the Docker
 * host (`docker inspect`: state, restarts, the health check and Docker's
 * health log) and says, per unhealthy one, what ran, what it printed (secrets
 * masked) and what to change.
 */

/** The parts of `docker inspect` (GET /containers/{id}/json) read here. */
export interface InspectedContainer {
  Id: string;
  Name: string;
  RestartCount?: number;
  State: {
    Status: string;
    Running: boolean;
    Restarting?: boolean;
    ExitCode?: number;
    Health?: { Status: string; FailingStreak?: number; Log?: { Start: string; End: string; ExitCode: number; Output: string }[] };
  };
  Config: { Image?: string; Env?: string[] | null; Labels?: Record<string, string> | null; Healthcheck?: { Test?: string[] } | null };
}

export interface UnhealthyReport {
  service: string;
  container: string;
  id: string;
  image?: string;
  state: string;
  health?: string;
  restarts: number;
  exitCode?: number;
  /** The health check as Docker runs it, secrets masked. */
  test?: string;
  /** Docker's health log, newest last, secrets masked. */
  checks: { exitCode: number; output: string; end: string }[];
  /** What to change. */
  hint: string;
}

/** The config key of each service's health check, for the hint. */
const HEALTH_KEY: Record<string, string> = { api: "api.health", worker: "worker.health", postgres: "postgres", redis: "redis" };
const TIMEOUT_KEY: Record<string, string> = {
  api: "api.healthTimeoutSeconds",
  worker: "worker.healthTimeoutSeconds",
  postgres: "postgres.healthTimeoutSeconds",
  redis: "redis.healthTimeoutSeconds",
};

/** A health-check test array as one line, long programs shortened. */
function testLine(test: string[] | undefined): string | undefined {
  if (!test?.length) return undefined;
  const line = test.map((t) => (/\s/.test(t) ? JSON.stringify(t) : t)).join(" ");
  return line.length > 240 ? `${line.slice(0, 240)}...` : line;
}

/** What to change, from what the health log and the state say. */
export function hintFor(service: string, c: InspectedContainer, stack: string, host: string): string {
  const last = c.State.Health?.Log?.at(-1);
  const out = last?.Output ?? "";
  const key = HEALTH_KEY[service] ?? `${service}.health`;
  const logs = `its logs: docker -H ${host} logs --tail 50 ${c.Id.slice(0, 12)}`;
  // exec form: `exec: "node": executable file not found in $PATH`; shell form: `/bin/sh: node: not found`.
  if (/executable file not found|no such file or directory|: not found$/im.test(out)) {
    const program = /exec: "([^"]+)"/.exec(out)?.[1] ?? /: ([^\s:]+): not found$/m.exec(out)?.[1];
    return `the image has no ${program ? `\`${program}\`` : "such program"} to run the check: set ${key} to a check the image can run (${
      service === "api" ? "api.health.command" : service === "worker" ? "{type: command, command: [...]}" : "a command it has"
    })`;
  }
  if (/^no heartbeat file/.test(out)) {
    return `the worker writes no heartbeat: make it touch $HEARTBEAT_FILE at least every maxAgeSeconds, or go back to the default process check: pulumi config rm -s ${stack} --path worker.health`;
  }
  if (/^heartbeat .* s old/.test(out)) return `the worker stopped touching its heartbeat (stuck, or a job longer than worker.health.maxAgeSeconds): ${logs}`;
  if (c.State.Restarting || (c.RestartCount ?? 0) > 0 || !c.State.Running) {
    return `the container exits${c.State.ExitCode ? ` (exit code ${c.State.ExitCode})` : ""} and is restarted, so it never stays up long enough to turn healthy: ${logs}`;
  }
  if (/^no process whose command line contains/.test(out)) {
    return `no process matches the check's pattern: set worker.health.pattern to a part of the worker's command line as it runs (docker -H ${host} top ${c.Id.slice(0, 12)}), or see ${logs}`;
  }
  if (!last) return `no health check has finished yet: the check runs after its interval; raise ${TIMEOUT_KEY[service] ?? "the health timeout"} if the service starts slowly, or see ${logs}`;
  return `make the check pass (${key}), or raise ${TIMEOUT_KEY[service] ?? "the health timeout"} if the service needs longer; ${logs}`;
}

/** The stack's long-running containers that are not healthy, with what to change. */
export async function unhealthyServices(
  target: DockerTarget,
  stack: string,
  isSecret: (name: string) => boolean,
  opts: EngineOptions = {},
): Promise<UnhealthyReport[]> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`appstack.stack=${stack}`, "appstack.role=service"] }));
  const listed = await engineJson<{ Id: string }[]>(target, `/containers/json?all=1&filters=${filters}`, opts);
  const reports: UnhealthyReport[] = [];
  for (const { Id } of listed) {
    const c = await engineJson<InspectedContainer>(target, `/containers/${Id}/json`, opts);
    const health = c.State.Health?.Status;
    if (c.State.Running && !c.State.Restarting && (health === undefined || health === "healthy")) continue;
    const mask = masker(c.Config.Env ?? [], isSecret);
    const service = c.Config.Labels?.["appstack.service"] ?? "?";
    reports.push({
      service,
      container: c.Name.replace(/^\//, ""),
      id: c.Id.slice(0, 12),
      image: c.Config.Labels?.["appstack.image"] ?? c.Config.Image,
      state: c.State.Status,
      health,
      restarts: c.RestartCount ?? 0,
      exitCode: c.State.ExitCode,
      test: testLine(c.Config.Healthcheck?.Test?.map(mask)),
      checks: (c.State.Health?.Log ?? []).slice(-2).map((l) => ({ exitCode: l.ExitCode, output: mask(l.Output.trim()), end: l.End })),
      hint: mask(hintFor(service, c, stack, target.host)),
    });
  }
  return reports;
}

/**
 * What a deploy that stopped at each service leaves behind. From the rollout
 * order the program declares (each step depends on the one before;
 * test/policy-stacks.test.ts holds it) and Pulumi's documented behaviour on
 * a failed resource: operations already running finish, none that depend on
 * it start, and a replaced resource's old instance is deleted at the end of
 * a successful update or at the start of the next one. docs/operations.md
 * shows the same sentences (a test holds them equal).
 */
export const LEFT_BEHIND: Record<string, string> = {
  postgres: "Nothing after the data stores ran: no backup, no migrations; the API, worker, edge proxy and frontend are as they were.",
  redis: "Nothing after the data stores ran: no backup, no migrations; the API, worker, edge proxy and frontend are as they were.",
  api: "The backup and the migrations ran (a schema change is applied); the old API containers still run beside the new one that failed; the worker, edge proxy and frontend are as they were.",
  worker:
    "The backup, the migrations and the API rollout ran (the new API serves; the old API containers are removed by the next update); the old worker still runs beside the new one that failed; the edge proxy may have been updated (it does not wait for the worker); the frontend was not deployed.",
  edge: "The backup, the migrations and the API rollout ran; the worker may have been updated (it does not wait for the edge proxy); a replaced edge proxy was removed before its successor started (it holds ports 80 and 443), so the API has no public entry until this is fixed; the frontend was not deployed.",
  frontend: "Every other step ran; a replaced dev frontend container was removed before its successor started (it holds its host port).",
};

/** The services in rollout order (the frontend last). */
const ROLLOUT = ["postgres", "redis", "api", "worker", "edge", "frontend"];

/** The reports as the deploy error's closing section. */
export function renderUnhealthy(reports: UnhealthyReport[]): string {
  if (reports.length === 0) return "";
  const lines = ["", `Containers of this stack that are not healthy (docker inspect):`];
  for (const r of reports) {
    const restarts = r.restarts ? `, restarted ${r.restarts} time${r.restarts === 1 ? "" : "s"}` : "";
    const exit = !r.state.startsWith("running") && r.exitCode !== undefined ? `, last exit code ${r.exitCode}` : "";
    lines.push(`- ${r.service}: container ${r.container} (${r.id}, image ${r.image ?? "?"}), ${r.state}, health ${r.health ?? "none"}${restarts}${exit}`);
    if (r.test) lines.push(`  health check: ${r.test}`);
    if (r.checks.length === 0) lines.push("  health log: empty (no check has finished)");
    for (const check of r.checks) lines.push(`  last check (exit ${check.exitCode}, ${check.end}): ${check.output || "(no output)"}`);
    lines.push(`  to change: ${r.hint}`);
  }
  // The first step in the rollout order that is stuck decides what the rest of the deploy did.
  const first = ROLLOUT.find((service) => reports.some((r) => r.service === service));
  if (first) lines.push(`What this deploy left behind (it stopped at ${first}): ${LEFT_BEHIND[first]}`, "See docs/operations.md, \"When a deploy fails\".");
  return lines.join("\n");
}

/** The section for the deploy error, or a line saying why there is none; never throws. */
export async function diagnoseUnhealthy(target: DockerTarget, stack: string, isSecret: (name: string) => boolean, opts: EngineOptions = {}): Promise<string> {
  try {
    return renderUnhealthy(await unhealthyServices(target, stack, isSecret, opts));
  } catch (err) {
    if (err instanceof EngineUnreachable) return `\n(The containers' health could not be read from ${target.host}: ${err.message}.)`;
    throw err;
  }
}
