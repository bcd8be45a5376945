import { defineStackRule } from "../rule";
import { caddyfileOf, DATA_STORES, env, isAppstackWorkload, isKnown, roleOf, serviceOf, TYPES, workload, type ResourceView } from "../view";
import { frontendApiUrls, shown } from "./web";

/** Rules that need more than one resource: deploy order and the wiring between API, edge and frontend. */

/** Every URN a resource depends on, directly or through others. */
function dependencyClosure(resources: ResourceView[]): (urn: string) => Set<string> {
  const direct = new Map(resources.map((r) => [r.urn, r.dependencies]));
  const memo = new Map<string, Set<string>>();
  const visit = (urn: string, path: Set<string>): Set<string> => {
    const known = memo.get(urn);
    if (known) return known;
    const all = new Set<string>();
    for (const d of direct.get(urn) ?? []) {
      if (path.has(d)) continue;
      all.add(d);
      for (const t of visit(d, new Set([...path, d]))) all.add(t);
    }
    memo.set(urn, all);
    return all;
  };
  return (urn) => visit(urn, new Set([urn]));
}

const service = (names: string[], role: string) => (r: ResourceView) => isAppstackWorkload(r) && names.includes(serviceOf(r) ?? "") && roleOf(r) === role;

/**
 * The seeds' deploy order, as stages. Each stage waits for every earlier stage
 * the stack has, except where `waitsFor` narrows that: the backup waits for
 * Postgres alone (a dump needs nothing else).
 */
const STAGES: { name: string; member: (r: ResourceView) => boolean; waitsFor?: (earlier: ResourceView) => boolean }[] = [
  { name: "the data stores", member: (r) => isAppstackWorkload(r) && DATA_STORES.has(serviceOf(r) ?? "") && roleOf(r) === "service" },
  { name: "the backup", member: service(["backup"], "job"), waitsFor: (r) => serviceOf(r) === "postgres" },
  { name: "the migrations", member: service(["migrate"], "job") },
  { name: "the API", member: service(["api"], "service") },
  {
    name: "the worker and the edge's config",
    // Swarm mode has no config job: the edge service itself routes to the API service's healthy tasks.
    member: (r) => service(["worker"], "service")(r) || service(["edge"], "job")(r) || (r.type === TYPES.service && service(["edge"], "service")(r)),
  },
  { name: "the frontend", member: (r) => r.type === "vercel:index/deployment:Deployment" || service(["frontend"], "service")(r) },
];

export const rolloutOrder = defineStackRule({
  name: "rollout-order",
  description:
    "The deploy runs in the seeds' order: 'Database First' (data stores healthy; a backup, when the stack has one; migrations), 'Backend Second', " +
    "'Worker Third', 'Frontend Last': each stage depends on the ones before it (the backup on Postgres alone), so a failed step stops everything after it.",
  remediationSteps:
    "Keep the dependsOn chain components/app-stack.ts wires: data stores -> migrations -> API -> worker and the edge's config -> frontend, with the backup between Postgres and the migrations.",
  severity: "high",
  check(resources, ctx) {
    const depsOf = dependencyClosure(resources);
    const earlier: { name: string; members: ResourceView[] }[] = [];
    for (const stage of STAGES) {
      const members = resources.filter(stage.member);
      if (members.length === 0) continue;
      const needed = (p: ResourceView) => stage.waitsFor?.(p) ?? true;
      for (const m of members) {
        const deps = depsOf(m.urn);
        const missing = earlier
          .map((before) => ({ name: before.name, members: before.members.filter((p) => needed(p) && !deps.has(p.urn)) }))
          .filter((before) => before.members.length > 0);
        if (missing.length > 0) {
          const what = missing.map((before) => `${before.name} (${before.members.map((p) => p.name).join(", ")})`).join(", ");
          ctx.report(`${m.name} does not wait for ${what}: it could start before they are ready`, m.urn);
        }
      }
      earlier.push({ name: stage.name, members });
    }
  },
});

/** The frontend URLs the stack's resources declare: Vercel domains and project URL, or the dev container's published port. */
function frontendUrls(resources: ResourceView[]): string[] {
  const urls: string[] = [];
  for (const r of resources) {
    if (r.type === TYPES.vercelDomain && typeof r.props.domain === "string") urls.push(`https://${r.props.domain}`);
    if (r.type === TYPES.vercelProject && typeof r.props.name === "string") urls.push(`https://${r.props.name}.vercel.app`);
    if (isAppstackWorkload(r) && serviceOf(r) === "frontend") urls.push(...publishedUrls(r));
  }
  return urls;
}

/** `http://localhost:<port>` for each port a container or service publishes (dev). */
function publishedUrls(r: ResourceView): string[] {
  const ports = workload(r)?.ports;
  if (!Array.isArray(ports)) return [];
  return ports.flatMap((p) => (typeof (p as { external?: unknown })?.external === "number" ? [`http://localhost:${(p as { external: number }).external}`] : []));
}

const containersOf = (resources: ResourceView[], svc: string) => resources.filter(service([svc], "service"));

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
    for (const api of containersOf(resources, "api")) {
      const cors = env(api, "CORS_ORIGIN");
      if (!cors || !isKnown(cors.value) || cors.secret === true) continue;
      if (!urls.includes(cors.value)) {
        ctx.report(`${api.name}: CORS_ORIGIN "${cors.value}" is none of the frontend's URLs (${urls.join(", ")})`, api.urn);
      }
    }
  },
});

/** The edge's Caddyfiles: the proxy container's (host mode), or its Swarm config (swarm mode). */
const edgeConfigs = (resources: ResourceView[]) => [...containersOf(resources, "edge"), ...resources.filter((r) => r.type === TYPES.serviceConfig)];

/** The API's public URLs: the edge proxy's site address (https) or, in dev, the API's published ports. */
function apiUrls(resources: ResourceView[]): string[] {
  const urls: string[] = [];
  for (const edge of edgeConfigs(resources)) {
    for (const line of (caddyfileOf(edge) ?? "").split("\n")) {
      const site = /^([a-z0-9-]+(?:\.[a-z0-9-]+)+) \{$/.exec(line.trim());
      if (site) urls.push(`https://${site[1]}`);
    }
  }
  for (const api of containersOf(resources, "api")) urls.push(...publishedUrls(api));
  return urls;
}

const originOf = (url: string): string | undefined => {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
};

export const frontendApiUrlMatchesApi = defineStackRule({
  name: "frontend-api-url-matches-api",
  description:
    "The frontend's API URL (VITE_API_URL) points at the API's public address, the edge proxy's domain or the dev port " +
    "(the seeds: 'Set VITE_API_URL — Value: Your Railway API URL', 'Update VITE_API_URL to match your backend URL').",
  remediationSteps: "Let appstack set frontend.apiUrlEnv from api.domain; never type the API URL in frontend.env.",
  severity: "critical",
  check(resources, ctx) {
    const origins = apiUrls(resources).map(originOf);
    if (origins.length === 0) return;
    for (const r of resources) {
      for (const u of frontendApiUrls(r)) {
        if (!origins.includes(originOf(u.value))) {
          ctx.report(`${shown(u)} does not point at the API (${apiUrls(resources).join(", ")})`, r.urn);
        }
      }
    }
  },
});

/** The response headers the seeds' checklists list (vercel.json, 'Security headers enabled'). */
export const REQUIRED_HEADERS = ["X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"];

export const securityHeaders = defineStackRule({
  name: "security-headers",
  description:
    "Every public entry point sends the seeds' security headers (X-Content-Type-Options, X-Frame-Options, Referrer-Policy; HSTS on the HTTPS edge): " +
    "the Vercel project through a headers route, the edge proxy and the dev frontend through their Caddyfile.",
  remediationSteps: "Keep SECURITY_HEADERS (components/security-headers.ts) in the edge's and the frontend's configuration.",
  severity: "high",
  check(resources, ctx) {
    const lacking = (text: string, names: string[]) => names.filter((h) => !new RegExp(`^\\s*${h}\\s`, "mi").test(text));
    for (const r of [...resources.filter((x) => isAppstackWorkload(x) && ["edge", "frontend"].includes(serviceOf(x) ?? "")), ...resources.filter((x) => x.type === TYPES.serviceConfig)]) {
      const caddyfile = caddyfileOf(r);
      if (caddyfile === undefined) continue;
      const missing = lacking(caddyfile, serviceOf(r) === "edge" ? [...REQUIRED_HEADERS, "Strict-Transport-Security"] : REQUIRED_HEADERS);
      if (missing.length) ctx.report(`${r.name} does not send ${missing.join(", ")}`, r.urn);
    }
    const routes = resources.filter((r) => r.type === "vercel:index/projectRoute:ProjectRoute");
    for (const project of resources.filter((r) => r.type === TYPES.vercelProject)) {
      const headers = new Set(
        routes
          .filter((route) => route.dependencies.includes(project.urn))
          .flatMap((route) => Object.keys(((route.props.route as { headers?: Record<string, unknown> } | undefined)?.headers ?? {}) as object)),
      );
      const missing = REQUIRED_HEADERS.filter((h) => !headers.has(h));
      if (missing.length) ctx.report(`the Vercel project ${project.name} has no route that sends ${missing.join(", ")}`, project.urn);
    }
  },
});

export const STACK_RULES = [rolloutOrder, corsMatchesFrontend, frontendApiUrlMatchesApi, securityHeaders];
