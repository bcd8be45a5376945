import { appConfigSchema, SWARM_EDGE_LABEL, SWARM_NODE_LABEL } from "../../config";
import { EXIT, UserError } from "../shared/errors";
import { SECRET } from "../shared/masks";
import { engineJson, EngineUnreachable, type DockerTarget, type EngineOptions } from "./docker-engine";

/**
 * Swarm mode (`docker.mode: swarm`) on the ops side: what the deploy checks
 * of the swarm before anything changes, and, after a failed update, what
 * Swarm says about the tasks that did not run. Both read the manager at
 * `docker.host` through the Engine API (`GET /info`, `/nodes`, `/services`,
 * `/tasks`, `/containers`).
 */

/** What the preflight needs of a swarm stack's settings. */
export interface SwarmSettings {
  stack: string;
  /** The data stores in container mode, each with its `node` label value (none in dev). */
  dataStores: { service: "postgres" | "redis"; node?: string }[];
  /** The stack has an edge (an API outside dev). */
  edge: boolean;
}

/** The swarm settings of a stack's parsed sections, or undefined in host mode. */
export function swarmSettings(stack: string, settings: Record<string, unknown>): SwarmSettings | undefined {
  const docker = appConfigSchema.shape.docker.safeParse(settings.docker);
  if (!docker.success || docker.data.mode !== "swarm") return undefined;
  const dataStores: SwarmSettings["dataStores"] = [];
  for (const service of ["postgres", "redis"] as const) {
    const parsed = appConfigSchema.shape[service].safeParse(settings[service]);
    if (parsed.success && parsed.data.mode === "container") dataStores.push({ service, node: parsed.data.node });
  }
  const environment = settings.environment;
  return { stack, dataStores, edge: settings.api !== undefined && settings.edge !== undefined && environment !== "dev" };
}

interface SwarmNode {
  ID: string;
  Spec: { Labels?: Record<string, string> | null; Role?: string; Availability?: string };
  Description?: { Hostname?: string };
  Status?: { State?: string };
}

interface ListedContainer {
  Id: string;
  Names: string[];
  State: string;
  Labels: Record<string, string>;
}

const refuse = (text: string) => new UserError(`${text}\nSee docs/swarm.md.`, EXIT.swarm);

/**
 * Before a swarm deploy changes anything: the engine at `docker.host` is a
 * manager of an active swarm; each data store's node label is on exactly one
 * node, the one at docker.host (else its service would stay pending, or
 * could start on a node without its data); an edge node is labelled; and no
 * host-mode data-store container of this stack still runs on the volume its
 * service will mount (two servers on one data directory corrupt it), nor the
 * host-mode edge on the ports the edge service publishes. A problem is a UserError
 * with exit code EXIT.swarm and what to do; nothing was changed.
 */
export async function swarmPreflight(target: DockerTarget, s: SwarmSettings, opts: EngineOptions = {}): Promise<string> {
  const info = await engineJson<{ Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean; NodeID?: string } }>(target, "/info", opts);
  const state = info.Swarm?.LocalNodeState ?? "inactive";
  if (state !== "active") {
    throw refuse(
      `docker.mode is swarm, but the engine at docker.host (${target.host}) is in no swarm (its state is ${state}); nothing was changed.\n` +
        `Make that host the swarm's first manager (on it: docker swarm init --advertise-addr <its address>), ` +
        `or point docker.host at a manager of your swarm: pulumi config set -s ${s.stack} --path docker.host`,
    );
  }
  if (!info.Swarm?.ControlAvailable) {
    throw refuse(
      `docker.mode is swarm, but the engine at docker.host (${target.host}) is a swarm worker: only a manager takes services; nothing was changed.\n` +
        `Point docker.host at a manager (docker node ls on a manager lists them): pulumi config set -s ${s.stack} --path docker.host`,
    );
  }
  const nodes = await engineJson<SwarmNode[]>(target, "/nodes", opts);
  const name = (n: SwarmNode) => n.Description?.Hostname ?? n.ID.slice(0, 12);
  const listing = nodes.map((n) => `${name(n)} (${n.Spec.Role ?? "?"}${n.Status?.State && n.Status.State !== "ready" ? `, ${n.Status.State}` : ""})`).join(", ");
  const labelled = (key: string, value: string) => nodes.filter((n) => n.Spec.Labels?.[key] === value);
  const placed: string[] = [];

  for (const store of s.dataStores) {
    if (store.node === undefined) {
      placed.push(`${store.service} on a manager`);
      continue;
    }
    const found = labelled(SWARM_NODE_LABEL, store.node);
    const label = `${SWARM_NODE_LABEL}=${store.node}`;
    if (found.length === 0) {
      throw refuse(
        `No node of the swarm carries the label ${label} (${store.service}.node), so Swarm would leave ${store.service} pending; nothing was changed.\n` +
          `Label the node that holds the ${store.service} volume (nodes: ${listing}):\n  docker -H ${target.host} node update --label-add ${label} <node>`,
      );
    }
    if (found.length > 1) {
      throw refuse(
        `${found.length} nodes carry the label ${label} (${found.map(name).join(", ")}): ${store.service} could start on one without its data; nothing was changed.\n` +
          `Keep the label on the node that holds the ${store.service} volume only:\n  docker -H ${target.host} node update --label-rm ${SWARM_NODE_LABEL} <node>`,
      );
    }
    // The stack's volumes (protected, retained on delete) are created through docker.host: the data must be on that node.
    if (info.Swarm?.NodeID && found[0].ID !== info.Swarm.NodeID) {
      const manager = nodes.find((n) => n.ID === info.Swarm?.NodeID);
      throw refuse(
        `The label ${label} (${store.service}.node) is on ${name(found[0])}, but docker.host is ${manager ? name(manager) : "another node"}: ` +
          `appstack creates and protects the ${store.service} volume on the node at docker.host, so ${store.service} would run on ${name(found[0])} ` +
          `on a volume Docker makes there, empty and unprotected; nothing was changed.\n` +
          `Label the node at docker.host instead (the one that holds the data):\n  docker -H ${target.host} node update --label-rm ${SWARM_NODE_LABEL} ${name(found[0])}\n  docker -H ${target.host} node update --label-add ${label} ${manager ? name(manager) : "<node>"}`,
      );
    }
    placed.push(`${store.service} on ${name(found[0])}`);
  }
  if (s.edge) {
    const edges = labelled(SWARM_EDGE_LABEL, "true");
    if (edges.length === 0) {
      throw refuse(
        `No node of the swarm carries the label ${SWARM_EDGE_LABEL}=true, so the edge would run nowhere and the API would have no public entry; nothing was changed.\n` +
          `Label the node(s) your DNS points api.domain at (nodes: ${listing}):\n  docker -H ${target.host} node update --label-add ${SWARM_EDGE_LABEL}=true <node>`,
      );
    }
    placed.push(`the edge on ${edges.map(name).join(", ")}`);
  }

  const filters = encodeURIComponent(JSON.stringify({ label: [`appstack.stack=${s.stack}`, "appstack.role=service"], status: ["running", "restarting"] }));
  const running = await engineJson<ListedContainer[]>(target, `/containers/json?filters=${filters}`, opts);
  const inTheWay = running.filter((c) => ["postgres", "redis", "edge"].includes(c.Labels["appstack.service"]) && !c.Labels["com.docker.swarm.service.id"]);
  if (inTheWay.length) {
    const names = inTheWay.map((c) => c.Names[0].replace(/^\//, ""));
    const why = [
      ...(inTheWay.some((c) => c.Labels["appstack.service"] !== "edge") ? ["a data store's service would start on the volume a host-mode server still runs on: two servers on one data directory corrupt it"] : []),
      ...(inTheWay.some((c) => c.Labels["appstack.service"] === "edge") ? ["the host-mode edge still holds ports 80 and 443, which the edge service publishes"] : []),
    ];
    throw refuse(
      `Host-mode container${names.length > 1 ? "s" : ""} of this stack still run${names.length > 1 ? "" : "s"} on docker.host (${names.join(", ")}): ${why.join("; and ")}; nothing was changed.\n` +
        `Stop ${names.length > 1 ? "them" : "it"} first, in a maintenance window (the API is down until the services run):\n  docker -H ${target.host} stop ${names.join(" ")}`,
    );
  }
  return `Swarm at ${target.host}: a manager of ${nodes.length} node${nodes.length === 1 ? "" : "s"}; ${placed.join("; ")}.`;
}

interface ServiceState {
  ID: string;
  Spec: { Name: string; Labels?: Record<string, string> };
  UpdateStatus?: { State?: string; Message?: string };
}

interface TaskState {
  ID: string;
  NodeID?: string;
  DesiredState: string;
  Status: { State: string; Timestamp?: string; Err?: string; Message?: string };
}

/** One service that did not converge, with Swarm's own words for why. */
export interface SwarmServiceReport {
  service: string;
  name: string;
  update?: string;
  tasks: { id: string; state: string; at?: string; error: string }[];
  hint: string;
}

/** What to change, from Swarm's task errors. */
export function swarmHint(service: string, name: string, errors: string[], host: string): string {
  const text = errors.join("\n");
  const logs = `the tasks' logs: docker -H ${host} service logs --tail 50 ${name}`;
  const key = service === "api" || service === "worker" ? `${service}.health` : service;
  if (/no suitable node/.test(text)) return `no node satisfies the service's placement: check the node labels (${SWARM_NODE_LABEL}, ${SWARM_EDGE_LABEL}) with docker -H ${host} node ls`;
  if (/unhealthy container/.test(text)) {
    return `the new tasks never passed their health check (${key}); Swarm stopped them${service === "api" || service === "worker" ? " and rolled back: the previous release still serves" : ""}. Make the check pass, or see ${logs}`;
  }
  if (/No such image|pull access denied|manifest unknown/.test(text)) return `a node could not pull the image: check the reference and that every node may pull it (docker login on each node, or a public image)`;
  if (/non-zero exit/.test(text)) return `the task's process exits: ${logs}`;
  return `see ${logs}`;
}

/** The stack's services whose update did not complete, or whose tasks failed, with their last failed tasks. */
export async function swarmServiceReports(target: DockerTarget, stack: string, opts: EngineOptions = {}): Promise<SwarmServiceReport[]> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`appstack.stack=${stack}`] }));
  const services = await engineJson<ServiceState[]>(target, `/services?filters=${filters}`, opts);
  const reports: SwarmServiceReport[] = [];
  for (const s of services) {
    const taskFilters = encodeURIComponent(JSON.stringify({ service: [s.ID] }));
    const tasks = await engineJson<TaskState[]>(target, `/tasks?filters=${taskFilters}`, opts);
    const failed = tasks
      .filter((t) => ["failed", "rejected"].includes(t.Status.State) || (t.Status.State === "pending" && t.Status.Err))
      .sort((a, b) => (b.Status.Timestamp ?? "").localeCompare(a.Status.Timestamp ?? ""))
      .slice(0, 2);
    const update = s.UpdateStatus?.State;
    if (failed.length === 0 && (!update || update === "completed")) continue;
    const service = s.Spec.Labels?.["appstack.service"] ?? "?";
    const masked = (text: string) => text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]+@/gi, `$1${SECRET}@`);
    const errors = failed.map((t) => masked(t.Status.Err ?? t.Status.Message ?? ""));
    reports.push({
      service,
      name: s.Spec.Name,
      update: update ? `${update}${s.UpdateStatus?.Message ? `: ${masked(s.UpdateStatus.Message)}` : ""}` : undefined,
      tasks: failed.map((t, i) => ({ id: t.ID.slice(0, 12), state: t.Status.State, at: t.Status.Timestamp, error: errors[i] })),
      hint: swarmHint(service, s.Spec.Name, errors, target.host),
    });
  }
  return reports;
}

/** The reports as the deploy error's closing section. */
export function renderSwarmReports(reports: SwarmServiceReport[]): string {
  if (reports.length === 0) return "";
  const lines = ["", "Swarm services of this stack that did not converge (docker service ps):"];
  for (const r of reports) {
    lines.push(`- ${r.service}: service ${r.name}${r.update ? `, update ${r.update}` : ""}`);
    for (const t of r.tasks) lines.push(`  task ${t.id} ${t.state}${t.at ? ` (${t.at})` : ""}: ${t.error || "(no message)"}`);
    lines.push(`  to change: ${r.hint}`);
  }
  return lines.join("\n");
}

/** The section for the deploy error in swarm mode, or a line saying why there is none; never throws for an unreachable engine. */
export async function diagnoseSwarm(target: DockerTarget, stack: string, opts: EngineOptions = {}): Promise<string> {
  try {
    return renderSwarmReports(await swarmServiceReports(target, stack, opts));
  } catch (err) {
    if (err instanceof EngineUnreachable) return `\n(The services' state could not be read from ${target.host}: ${err.message}.)`;
    throw err;
  }
}
