import type { PlanResource } from "../offline/plan";

/**
 * Which resources hold state that a delete or a replacement destroys or cuts
 * off. A diff that deletes or replaces one of these is destructive: `diff`
 * says so at the top and exits with EXIT.destructive unless allowed.
 */

/** `appstack.service` values of the data stores. */
export const DATA_SERVICES = ["postgres", "redis"] as const;

const DATA_COMPONENTS: Record<string, string> = {
  "appstack:components:Postgres": "postgres",
  "appstack:components:Redis": "redis",
};

/** The type of the resource a URN names (the last element of its type chain). */
export function urnType(urn: string): string {
  const chain = urn.split("::")[2] ?? "";
  return chain.slice(chain.lastIndexOf("$") + 1);
}

function label(r: PlanResource, name: string): string | undefined {
  const labels = r.inputs.labels;
  if (!Array.isArray(labels)) return undefined;
  const found = labels.find((l) => (l as { label?: unknown })?.label === name) as { value?: unknown } | undefined;
  return typeof found?.value === "string" ? found.value : undefined;
}

/** The data store a resource belongs to: its `appstack.service` label, else its Postgres/Redis component parent. */
export function dataService(r: PlanResource): string | undefined {
  const service = label(r, "appstack.service");
  if (service !== undefined) return (DATA_SERVICES as readonly string[]).includes(service) ? service : undefined;
  return DATA_COMPONENTS[urnType(r.parent)];
}

/**
 * Why deleting or replacing this resource is destructive, or undefined when it
 * is not. `protect` comes first: the engine refuses the operation outright.
 */
export function destructiveReason(r: PlanResource): string | undefined {
  if (r.options.protect) return "protected: `pulumi up` refuses to delete or replace it until `protect` is lifted";
  const service = dataService(r);
  switch (r.type) {
    case "docker:index/volume:Volume":
      if (service) return `holds the ${service} data${r.options.retainOnDelete ? " (retained on the host, but detached from the stack)" : ""}`;
      return undefined;
    case "docker:index/container:Container":
      if (service) return `the ${service} server is stopped and recreated on its data volume: downtime, and a major version change needs a dump and restore`;
      return undefined;
    case "docker:index/service:Service":
      if (service) return `the ${service} service (swarm mode) is removed and its task stopped: downtime until a new one runs on the data volume`;
      return undefined;
    case "random:index/randomPassword:RandomPassword":
      if (service === "postgres") return "rotates the postgres password: the existing data directory keeps the old one, so clients with the new password are locked out";
      if (service === "redis") return "rotates the redis password: every client must restart with the new URL";
      return undefined;
    case "vercel:index/project:Project":
      return "deletes the Vercel project with its deployments, domains and environment variables";
    default:
      return undefined;
  }
}
