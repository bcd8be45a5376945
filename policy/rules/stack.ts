import { defineStackRule } from "../rule";
import { DATA_STORES, env, isAppstackContainer, isKnown, roleOf, serviceOf, TYPES, type ResourceView } from "../view";

/** Rules that need more than one resource: deploy order and the wiring between API and frontend. */

/** Every URN a resource depends on, directly or through others. */
function dependencyClosure(resources: ResourceView[]): (urn: string) => Set<string> {
  const direct = new Map(resources.map((r) => [r.urn, r.dependencies]));
  const memo = new Map<string, Set<string>>();
  const visit = (urn: string, seen: Set<string>): Set<string> => {
    const known = memo.get(urn);
    if (known) return known;
    const all = new Set<string>();
    for (const d of direct.get(urn) ?? []) {
      if (seen.has(d)) continue;
      all.add(d);
      for (const t of visit(d, new Set([...seen, d]))) all.add(t);
    }
    memo.set(urn, all);
    return all;
  };
  return (urn) => visit(urn, new Set([urn]));
}

const containersOf = (resources: ResourceView[], service: string, role: string) =>
  resources.filter((r) => isAppstackContainer(r) && serviceOf(r) === service && roleOf(r) === role);

export const rolloutOrder = defineStackRule({
  name: "rollout-order",
  description:
    "The deploy runs in the seeds' order: data stores healthy, then migrations, then the API ('Database First: run migration', 'Backend Second'); " +
    "the migration job depends on the database and cache containers and every API container depends on the migration job.",
  remediationSteps: "Keep dependsOn from the migration job to the data stores and from the API containers to the migration job (components/app-stack.ts wires it).",
  severity: "high",
  check(resources, ctx) {
    const depsOf = dependencyClosure(resources);
    const stores = resources.filter((r) => isAppstackContainer(r) && DATA_STORES.has(serviceOf(r) ?? "") && roleOf(r) === "service");
    const migrations = containersOf(resources, "migrate", "job");
    for (const job of migrations) {
      const deps = depsOf(job.urn);
      for (const store of stores) {
        if (!deps.has(store.urn)) ctx.report(`the migration job ${job.name} does not wait for ${store.name}: it could run before the data store is healthy`, job.urn);
      }
    }
    if (migrations.length === 0) return;
    for (const api of containersOf(resources, "api", "service")) {
      const deps = depsOf(api.urn);
      const missing = migrations.filter((m) => !deps.has(m.urn));
      if (missing.length > 0) {
        ctx.report(`${api.name} does not depend on ${missing.map((m) => m.name).join(", ")}: new code could start before its migrations ran`, api.urn);
      }
    }
  },
});

/** The frontend URLs the stack's resources declare: Vercel domains and project URL, or the dev container's published port. */
function frontendUrls(resources: ResourceView[]): string[] {
  const urls: string[] = [];
  for (const r of resources) {
    if (r.type === TYPES.vercelDomain && typeof r.props.domain === "string") urls.push(`https://${r.props.domain}`);
    if (r.type === TYPES.vercelProject && typeof r.props.name === "string") urls.push(`https://${r.props.name}.vercel.app`);
    if (isAppstackContainer(r) && serviceOf(r) === "frontend" && Array.isArray(r.props.ports)) {
      for (const p of r.props.ports as { external?: unknown }[]) {
        if (typeof p?.external === "number") urls.push(`http://localhost:${p.external}`);
      }
    }
  }
  return urls;
}

export const corsMatchesFrontend = defineStackRule({
  name: "cors-matches-frontend",
  description:
    "The API's CORS origin is the URL the frontend is actually served from (a Vercel domain or project URL, or the dev container's port), " +
    "so the seeds' 'Check browser console for CORS errors (should be none)' holds by construction.",
  remediationSteps: "Derive CORS_ORIGIN from the frontend component (frontend.domains); do not type it in the API's env.",
  severity: "critical",
  check(resources, ctx) {
    const urls = frontendUrls(resources);
    if (urls.length === 0) return;
    for (const api of containersOf(resources, "api", "service")) {
      const cors = env(api, "CORS_ORIGIN");
      if (!cors || !isKnown(cors.value) || cors.secret === true) continue;
      if (!urls.includes(cors.value)) {
        ctx.report(`${api.name}: CORS_ORIGIN "${cors.value}" is none of the frontend's URLs (${urls.join(", ")})`, api.urn);
      }
    }
  },
});

export const STACK_RULES = [rolloutOrder, corsMatchesFrontend];
