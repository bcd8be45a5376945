import { z } from "zod";
import { SECRETS_DIR } from "../../config/swarm";
import { defineResourceRule, defineStackRule } from "../rule";
import { at, DATA_STORES, isAppstackContainer, isAppstackService, isKnown, label, roleOf, serviceOf, type ResourceView } from "../view";

/**
 * Rules about what a container may do on its host: capabilities, privilege
 * changes, writes to its own filesystem, processes, its user, and which
 * containers it can reach. Each is what components/container-defaults.ts
 * `hardening()` declares for every container. The capability, read-only and
 * user rules judge a Swarm service's task template too (`serviceHardening()`);
 * no-new-privileges and the cgroup slice cannot be set on a service
 * (docs/security.md), so those rules judge containers only.
 */

const strings = (v: unknown): string[] | undefined => (Array.isArray(v) && v.every((x) => typeof x === "string") ? (v as string[]) : undefined);

const CONTAINER_SPEC = ["taskSpec", "containerSpec"];

/** A container's or a service's task's hardening inputs, by their own field names; undefined for other resources. */
function hardeningOf(r: ResourceView): { capDrops: unknown; capAdds: unknown; readOnly: unknown; user: unknown; field: { drops: string; adds: string; readOnly: string; user: string } } | undefined {
  if (isAppstackContainer(r)) {
    const caps = r.props.capabilities;
    const part = (key: "drops" | "adds") => (isKnown(caps) ? ((caps ?? {}) as Record<string, unknown>)[key] : caps);
    return {
      capDrops: part("drops"),
      capAdds: part("adds"),
      readOnly: r.props.readOnly,
      user: r.props.user,
      field: { drops: "capabilities.drops", adds: "capabilities.adds", readOnly: "readOnly", user: "user" },
    };
  }
  if (!isAppstackService(r)) return undefined;
  const spec = at(r, CONTAINER_SPEC);
  const field = (key: string) => (isKnown(spec) ? ((spec ?? {}) as Record<string, unknown>)[key] : spec);
  return {
    capDrops: field("capDrops"),
    capAdds: field("capAdds"),
    readOnly: field("readOnly"),
    user: field("user"),
    field: {
      drops: "taskSpec.containerSpec.capDrops",
      adds: "taskSpec.containerSpec.capAdds",
      readOnly: "taskSpec.containerSpec.readOnly",
      user: "taskSpec.containerSpec.user",
    },
  };
}

export const containerDropsCapabilities = defineResourceRule<{ allow: Record<string, string[]> }>({
  name: "container-drops-capabilities",
  description:
    "Every container, and every Swarm service's task, drops all Linux capabilities and adds back only what its process needs (the edge proxy: NET_BIND_SERVICE for ports 80 and 443): " +
    "Docker's default set lets a compromised process chown any file, kill other users' processes, bind any port or craft raw packets " +
    "(the seeds' security hardening: 'Security scan passed', least privilege).",
  remediationSteps:
    'Build the container args with hardening() from components/container-defaults.ts (capabilities: { drops: ["ALL"], adds: [...] }), ' +
    'a service\'s task with serviceHardening() (capDrops: ["ALL"], capAdds: [...]); ' +
    "a service that needs a capability names it there and in this rule's `allow` setting.",
  severity: "high",
  config: z.strictObject({
    /** Capabilities each long-running service may add back, by its appstack.service label. */
    allow: z.record(z.string(), z.array(z.string())).default({ edge: ["NET_BIND_SERVICE"] }),
  }),
  check(r, ctx) {
    const h = hardeningOf(r);
    if (!h || !isKnown(h.capDrops) || !isKnown(h.capAdds)) return;
    const drops = strings(h.capDrops) ?? [];
    const what = isAppstackContainer(r) ? "the container" : "the service's tasks";
    if (!drops.some((c) => c.toUpperCase() === "ALL")) ctx.report(`${h.field.drops} does not hold "ALL": ${what} keep${isAppstackContainer(r) ? "s" : ""} Docker's default capabilities`);
    const allowed = roleOf(r) === "service" ? (ctx.config.allow[serviceOf(r) ?? ""] ?? []) : [];
    const extra = (strings(h.capAdds) ?? []).filter((c) => !allowed.includes(c.toUpperCase().replace(/^CAP_/, "")));
    if (extra.length > 0) {
      ctx.report(`adds ${extra.join(", ")}, which ${serviceOf(r) ?? r.name} does not need (allowed: ${allowed.length ? allowed.join(", ") : "none"})`);
    }
  },
});

export const containerNoNewPrivileges = defineResourceRule({
  name: "container-no-new-privileges",
  description:
    "Every container runs with no-new-privileges: no process in it can gain privileges through a setuid binary or file capabilities (the seeds' security hardening, 'Security scan passed').",
  remediationSteps: 'Set securityOpts: ["no-new-privileges:true"] (hardening() in components/container-defaults.ts does).',
  severity: "high",
  check(r, ctx) {
    if (!isAppstackContainer(r) || !isKnown(r.props.securityOpts)) return;
    const opts = strings(r.props.securityOpts) ?? [];
    if (!opts.some((o) => /^no-new-privileges(:true|=true)?$/.test(o))) ctx.report("securityOpts lacks no-new-privileges:true: a setuid binary in the image could raise a process's privileges");
  },
});

/**
 * Swarm mode's one-shot jobs (migrations, the pre-deploy dump) get their
 * secrets as files in /run/secrets, which the provider uploads through the
 * root filesystem (the archive endpoint at /, refused when it is read-only),
 * instead of in their environment: the lesser exposure of the two.
 */
function givenSecretFilesOnly(r: ResourceView): boolean {
  const uploads = r.props.uploads;
  if (roleOf(r) !== "job" || !Array.isArray(uploads) || uploads.length === 0) return false;
  return uploads.every((u) => typeof (u as { file?: unknown }).file === "string" && (u as { file: string }).file.startsWith(`${SECRETS_DIR}/`));
}

export const containerReadOnlyRootfs = defineResourceRule<{ exempt: string[] }>({
  name: "container-read-only-rootfs",
  description:
    "Every container's root filesystem, and every Swarm service task's, is read-only, with tmpfs where the process writes: an intruder cannot change the image's programs or plant files that survive " +
    "a restart, and what the process writes is visible in the plan (the seeds' security hardening). Swarm mode's one-shot jobs given only their secret " +
    "files in /run/secrets pass: a file there is less exposed than the env var it replaces. The edge and the two backup containers are exempt by " +
    "default: the Docker provider uploads the edge's Caddyfiles, and the backups' secret files (kept out of their environment), through the root " +
    "filesystem, which Docker refuses when it is read-only. The exemptions are for containers only: a Swarm service is given its files as Swarm " +
    "configs and secrets, never through its root filesystem.",
  remediationSteps:
    "Set readOnly: true and list the paths the process writes as tmpfs (api.writablePaths / worker.writablePaths in the stack file); " +
    "a service whose image cannot run so goes in this rule's `exempt` setting of the stack's policy config, knowingly.",
  severity: "medium",
  // The edge's proxy and config job are given their Caddyfiles, and the scheduled dump and the off-host shipper
  // their secrets, as uploads, which the Docker provider copies in through / (PUT /containers/{id}/archive?path=/):
  // Docker refuses that for a read-only root filesystem.
  config: z.strictObject({ exempt: z.array(z.string()).default(["edge", "backup-schedule", "backup-offsite"]) }),
  check(r, ctx) {
    const h = hardeningOf(r);
    if (!h || !isKnown(h.readOnly)) return;
    // The exemptions are for files the provider uploads through /, which a service is never given (its files are Swarm configs and secrets).
    if (isAppstackContainer(r) && ctx.config.exempt.includes(serviceOf(r) ?? "")) return;
    if (h.readOnly !== true && !givenSecretFilesOnly(r)) ctx.report(`${h.field.readOnly} is not true: the process can rewrite the image's files`);
  },
});

export const containerPidsLimit = defineResourceRule({
  name: "container-pids-limit",
  description:
    "Every container runs in its service's cgroup slice, appstack-<stack>-<service>.slice, whose task limit bounds its processes and threads: a fork bomb " +
    "or a thread leak cannot exhaust the host's process table (the seeds' 'process killed' incidents and resource limits). The Docker provider cannot set a " +
    "container's own pids limit, so the host sets the slice's (systemd TasksMax; docs/security.md).",
  remediationSteps: "Set cgroupParent to appstack-<stack>-<service>.slice (hardening() does), and TasksMax on the host (docs/security.md).",
  severity: "medium",
  check(r, ctx) {
    if (!isAppstackContainer(r) || !isKnown(r.props.cgroupParent)) return;
    const expected = `appstack-${label(r, "appstack.stack")}-${serviceOf(r)}.slice`;
    if (r.props.cgroupParent !== expected) {
      ctx.report(`cgroupParent is ${r.props.cgroupParent === undefined ? "unset" : JSON.stringify(r.props.cgroupParent)}, not ${expected}: no limit bounds its processes`);
    }
  },
});

const ROOT_USERS = new Set(["", "root", "0", "0:0", "root:root"]);

export const dataStoreNonRoot = defineResourceRule({
  name: "data-store-non-root",
  description:
    "Postgres and Redis run as their images' own non-root users from the start (user set on the container, or on the service's task), so their entrypoints need no capability to change " +
    "owners and users, and a compromised server process is not root in its container (the seeds' security hardening, least privilege).",
  remediationSteps: 'Set user: "postgres" / "redis" on the data store containers and services (the components do).',
  severity: "high",
  check(r, ctx) {
    const h = hardeningOf(r);
    if (!h || !DATA_STORES.has(serviceOf(r) ?? "") || roleOf(r) !== "service" || !isKnown(h.user)) return;
    const user = typeof h.user === "string" ? h.user.trim() : "";
    if (ROOT_USERS.has(user)) ctx.report(`runs as ${user || "the image's default user (root for the official images)"}; set its non-root user`);
  },
});

/** The networks a container joins, by name; undefined while a name is not known yet. */
function networksOf(r: ResourceView): string[] | undefined {
  const list = r.props.networksAdvanced;
  if (!isKnown(list)) return undefined;
  if (!Array.isArray(list)) return [];
  const names = list.map((n) => (n as { name?: unknown })?.name);
  return names.every((n): n is string => typeof n === "string") ? names : undefined;
}

export const edgeIsolatedFromDataStores = defineStackRule({
  name: "edge-isolated-from-data-stores",
  description:
    "The edge proxy, the one container the internet reaches, shares no network with Postgres or Redis (it has a network of its own, shared with the API " +
    "containers only), and its config job has no network at all: a compromised edge cannot connect to the data stores (the seeds' 'Check firewall rules allow connection': " +
    "only the services that need a database reach it).",
  remediationSteps: "Put the edge proxy on the stack's edge network only (components/app-stack.ts), and give the edge-config job networkMode none.",
  severity: "high",
  check(resources, ctx) {
    const containers = resources.filter(isAppstackContainer);
    const storeNetworks = new Map<string, string>();
    for (const c of containers.filter((c) => DATA_STORES.has(serviceOf(c) ?? ""))) for (const n of networksOf(c) ?? []) storeNetworks.set(n, serviceOf(c)!);
    for (const edge of containers.filter((c) => serviceOf(c) === "edge")) {
      const nets = networksOf(edge);
      if (nets === undefined) continue;
      if (roleOf(edge) === "job" && nets.length > 0) ctx.report(`the edge's config job joins ${nets.join(", ")}; it needs only the admin socket in its volume`, edge.urn);
      for (const n of nets) if (storeNetworks.has(n)) ctx.report(`${edge.name} shares network ${n} with ${storeNetworks.get(n)}: the edge could reach the data store`, edge.urn);
    }
  },
});

export const PRIVILEGE_RULES = [
  containerDropsCapabilities,
  containerNoNewPrivileges,
  containerReadOnlyRootfs,
  containerPidsLimit,
  dataStoreNonRoot,
  edgeIsolatedFromDataStores,
];
