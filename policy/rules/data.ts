import { isPinnedImage } from "../../config/schema";
import { defineResourceRule, defineStackRule } from "../rule";
import { at, DATA_STORES, envEntries, isAppstackContainer, isAppstackService, isAppstackWorkload, isKnown, label, roleOf, serviceOf, TYPES, workload, type ResourceView } from "../view";

/** Rules about what is deployed (images) and what must survive a deploy or the host (data and its backups). */

/** The image references a resource shows: a pull's name, a container's image label, or a literal image input. */
function imageReferences(r: ResourceView): { where: string; ref: string }[] {
  const refs: { where: string; ref: string }[] = [];
  if (r.type === TYPES.remoteImage && typeof r.props.name === "string") refs.push({ where: "name", ref: r.props.name });
  if (r.type === "docker:index/image:Image" && typeof r.props.imageName === "string") refs.push({ where: "imageName", ref: r.props.imageName });
  if (isAppstackContainer(r)) {
    const labelled = label(r, "appstack.image");
    if (labelled) refs.push({ where: "label appstack.image", ref: labelled });
    // The components pass the pulled image's ID (sha256:...), which is pinned by nature; a literal reference is checked.
    const image = r.props.image;
    if (typeof image === "string" && !image.startsWith("sha256:") && image !== labelled) refs.push({ where: "image", ref: image });
  }
  if (isAppstackService(r)) {
    // Every node pulls a service's image by this reference: it must not move between two nodes' pulls.
    const image = at(r, ["taskSpec", "containerSpec", "image"]);
    if (typeof image === "string" && image !== label(r, "appstack.image")) refs.push({ where: "taskSpec.containerSpec.image", ref: image });
  }
  return refs;
}

export const pinnedImages = defineResourceRule({
  name: "pinned-images",
  description:
    "Deployed images are immutable: a digest or a version tag with major.minor, never latest or a bare major (the seeds' 'images built for production', " +
    "'Deploy: Production release v1.0.0' and rollback to a previous deployment need the exact build to be named). Uses isPinnedImage from config/schema.ts.",
  remediationSteps: "Set <service>.image to a release tag (ghcr.io/acme/api:1.4.2) or a digest (@sha256:...); local builds are for dev only.",
  severity: "high",
  check(r, ctx) {
    for (const { where, ref } of imageReferences(r)) {
      if (!isPinnedImage(ref)) ctx.report(`${where} "${ref}" is not pinned: it names a tag that can move (use a digest or a major.minor version tag)`);
    }
  },
});

export const dataStoreNoHostPort = defineResourceRule({
  name: "data-store-no-host-port",
  description:
    "Postgres and Redis publish no port on the Docker host (outside dev): the seeds reach their databases only through credentials and firewalls " +
    "('Check firewall rules allow connection'); a published port exposes them to the network.",
  remediationSteps: "Remove <store>.hostPort from the stack file; services reach the store over the stack network.",
  severity: "critical",
  check(r, ctx) {
    const w = workload(r);
    if (!w || !DATA_STORES.has(serviceOf(r) ?? "") || !isKnown(w.ports)) return;
    const ports = w.ports;
    if (Array.isArray(ports) && ports.length > 0) {
      const shown = ports.map((p) => {
        const { external, internal, ip } = (p ?? {}) as { external?: unknown; internal?: unknown; ip?: unknown };
        return `${isKnown(ip) && ip ? `${String(ip)}:` : ""}${isKnown(external) && external !== undefined ? String(external) : "?"}->${String(internal)}`;
      });
      ctx.report(`${serviceOf(r)} publishes ${shown.join(", ")} on the Docker host`);
    }
  },
});

export const onlyEdgePublishesPorts = defineResourceRule({
  name: "only-edge-publishes-ports",
  description:
    "Only the edge proxy publishes host ports (outside dev): it terminates TLS and forwards to the API, like the seeds' load balancer " +
    "('SSL/TLS: Terminate at load balancer'); an API, worker or job container with a host port bypasses TLS and the security headers.",
  remediationSteps: "Remove the container's ports; public traffic goes through the edge proxy (api.domain).",
  severity: "high",
  check(r, ctx) {
    const service = serviceOf(r);
    const w = workload(r);
    if (!w || service === "edge" || DATA_STORES.has(service ?? "") || !isKnown(w.ports)) return;
    const ports = w.ports;
    if (Array.isArray(ports) && ports.length > 0) ctx.report(`${service ?? r.name} publishes ${ports.length} host port${ports.length === 1 ? "" : "s"}; only the edge proxy may`);
  },
});

export const protectedDataVolumes = defineResourceRule({
  name: "protected-data-volumes",
  description:
    "The stack's volumes (Postgres and Redis data, the edge proxy's certificates) are protected and retained on delete: the seeds take a backup before every " +
    "production deploy because losing the data is the one failure a rollback cannot undo; protect makes `pulumi destroy` and a replacing change refuse to delete it.",
  remediationSteps: "Set <store>.protectVolume (always on in production); the components set protect and retainOnDelete on their volumes.",
  severity: "critical",
  check(r, ctx) {
    if (r.type !== TYPES.volume || label(r, "appstack.project") !== "appstack") return;
    const what = `the ${serviceOf(r) ?? r.name} volume`;
    if (!r.protect) ctx.report(`${what} is not protected: pulumi destroy or a replacement would delete its data`);
    // retainOnDelete is visible to the offline run only (@pulumi/policy does not pass it to policies).
    if (r.retainOnDelete === false) ctx.report(`${what} is not retained on delete: removing it from the program would delete its data`);
  },
});

/** The app services and the env vars appstack wires into each. */
const REQUIRED_ENV: Record<string, string[]> = {
  api: ["DATABASE_URL", "REDIS_URL", "APP_VERSION"],
  worker: ["DATABASE_URL", "REDIS_URL", "APP_VERSION"],
  migrate: ["DATABASE_URL"],
};

export const requiredEnvWired = defineResourceRule({
  name: "required-env-wired",
  description:
    "The API, the worker and the migration job receive their connection URLs and the release (the seeds' 'Critical (Must Set)': DATABASE_URL, " +
    "'REDIS_URL (NEW REQUIREMENT)', 'Redis (REQUIRED in production)', and 'Include version/build information'): a service started without them fails at its first request, not at deploy time.",
  remediationSteps:
    "Let appstack wire DATABASE_URL, REDIS_URL and APP_VERSION from the Postgres and Redis components and the release (in swarm mode the secrets as DATABASE_URL_FILE and REDIS_URL_FILE); never drop them in a transform.",
  severity: "high",
  check(r, ctx) {
    const required = isAppstackWorkload(r) ? REQUIRED_ENV[serviceOf(r) ?? ""] : undefined;
    if (!required) return;
    const { entries, unreadable } = envEntries(r);
    // A secret built from a password generated on this very deploy is unknown as a whole in a first preview: its name cannot be read.
    if (unreadable > 0) return;
    const names = new Set(entries.map((e) => e.name));
    // In swarm mode a secret arrives as a file that <NAME>_FILE names.
    const missing = required.filter((n) => !names.has(n) && !names.has(`${n}_FILE`));
    if (missing.length > 0) ctx.report(`${serviceOf(r)} gets no ${missing.join(" and ")}`);
  },
});

/** The stack's running containers of a service; swarm mode: its Swarm service. */
const runs = (resources: ResourceView[], service: string) =>
  resources.filter((r) => isAppstackWorkload(r) && serviceOf(r) === service && roleOf(r) === "service");

export const offsiteBackups = defineStackRule({
  name: "offsite-backups",
  description:
    "A Postgres that the stack runs is dumped on a schedule and every dump is copied off the host, encrypted (restic): the seeds' 'Backup & recovery strategy', " +
    "'database backup automation' and 'backup storage'. A pre-deploy dump alone leaves a week without a deploy a week without a backup, and a dump on the " +
    "database's own disk dies with it.",
  remediationSteps:
    "Keep backup.schedule, and set backup.offsite: the restic repository and its password as secure keys (docs/backups.md). An external Postgres is backed up by its provider.",
  severity: "critical",
  check(resources, ctx) {
    for (const pg of runs(resources, "postgres")) {
      if (runs(resources, "backup-schedule").length === 0) {
        ctx.report(`${pg.name} has no scheduled dumps (a backup-schedule container): between deploys nothing backs it up`, pg.urn);
      } else if (runs(resources, "backup-offsite").length === 0) {
        ctx.report(`${pg.name} has no off-host copy of its dumps (a backup-offsite container, backup.offsite): they live on its own disk and die with it`, pg.urn);
      }
    }
  },
});

export const DATA_RULES = [pinnedImages, dataStoreNoHostPort, onlyEdgePublishesPorts, protectedDataVolumes, requiredEnvWired, offsiteBackups];
