import { defineResourceRule } from "../rule";
import { APPLIED_CADDYFILE, caddyfileOf, env, envEntries, isAppstackContainer, isAppstackWorkload, isContainer, isKnown, roleOf, serviceOf, TYPES, uploaded, type ResourceView } from "../view";

/** Rules about how the API and the frontend meet the browser. */

const isApi = (r: ResourceView) => isAppstackWorkload(r) && serviceOf(r) === "api";

/** A known plain value of an env entry, or undefined (absent, unknown, or secret: never echoed). */
function plainEnv(r: ResourceView, name: string): { value?: string; present: boolean } {
  const e = env(r, name);
  if (!e) return { present: false };
  if (!isKnown(e.value) || e.secret === true) return { present: true };
  return { present: true, value: e.value };
}

export const corsRestricted = defineResourceRule({
  name: "cors-restricted-to-frontend",
  description:
    "The API's CORS origin is set, is not a wildcard and equals its FRONTEND_URL (the seeds: 'CORS restricted to production domain', " +
    "'Backend must have correct FRONTEND_URL — any mismatch causes CORS errors', FRONTEND_URL=* only in development).",
  remediationSteps: "Let appstack wire CORS_ORIGIN and FRONTEND_URL from the frontend's URL (frontend.domains); never set them in api.env.",
  severity: "critical",
  check(r, ctx) {
    if (!isApi(r)) return;
    const cors = plainEnv(r, "CORS_ORIGIN");
    const frontend = plainEnv(r, "FRONTEND_URL");
    if (!cors.present) {
      ctx.report("CORS_ORIGIN is not set: the API would fall back to its own default, which in the seeds' code is *");
      return;
    }
    if (cors.value === undefined) return;
    if (cors.value.includes("*")) ctx.report(`CORS_ORIGIN is "${cors.value}": any web site could call the API with the user's credentials`);
    else if (!/^https?:\/\/[^/\s,]+$/.test(cors.value)) ctx.report(`CORS_ORIGIN "${cors.value}" is not a single origin (scheme://host[:port], no path)`);
    if (frontend.value !== undefined && frontend.value !== cors.value) {
      ctx.report(`CORS_ORIGIN "${cors.value}" differs from FRONTEND_URL "${frontend.value}": the browser would block the frontend's requests`);
    }
  },
});

/** The env var holding the API's URL in a frontend build (VITE_API_URL by default, configurable). */
export const API_URL_ENV = /_API_URL$/;

/** A URL a resource declares; `secret` ones are judged but never echoed. */
export interface DeclaredUrl {
  name: string;
  value: string;
  secret: boolean;
}

/** The frontend's API URL as its resources declare it: a Vercel variable or the dev container's env. */
export function frontendApiUrls(r: ResourceView): DeclaredUrl[] {
  if (r.type === TYPES.vercelEnv && typeof r.props.key === "string" && API_URL_ENV.test(r.props.key) && typeof r.props.value === "string") {
    // Vercel's SDK marks every value secret; the URL is still only named in messages, not shown.
    return [{ name: r.props.key, value: r.props.value, secret: r.secretPaths?.has("value") ?? false }];
  }
  if (isContainer(r) && serviceOf(r) === "frontend") {
    return envEntries(r)
      .entries.filter((e) => API_URL_ENV.test(e.name) && isKnown(e.value))
      .map((e) => ({ name: e.name, value: e.value as string, secret: e.secret === true }));
  }
  return [];
}

/** Public URLs a resource declares: the API's CORS origin and frontend URL, and the frontend's API URL. */
function publicUrls(r: ResourceView): DeclaredUrl[] {
  const urls = frontendApiUrls(r);
  if (isApi(r)) {
    for (const name of ["CORS_ORIGIN", "FRONTEND_URL"]) {
      const v = plainEnv(r, name).value;
      if (v !== undefined) urls.push({ name, value: v, secret: false });
    }
  }
  return urls;
}

export const shown = (u: DeclaredUrl) => (u.secret ? u.name : `${u.name} "${u.value}"`);

export const httpsPublicUrls = defineResourceRule({
  name: "https-public-urls",
  description:
    "Public URLs are HTTPS: the API's FRONTEND_URL and CORS_ORIGIN, and the frontend's API URL (the seeds: 'Secure HTTPS required in production', " +
    "'Domain & SSL: production domain with HTTPS certificates'); the edge proxy and Vercel issue the certificates.",
  remediationSteps: "Set api.domain and frontend.domains (host names): appstack builds https:// URLs from them outside dev.",
  severity: "high",
  check(r, ctx) {
    for (const u of publicUrls(r)) {
      if (!u.value.startsWith("https://")) ctx.report(`${shown(u)} is not an https:// URL`);
    }
  },
});

const NODE_SERVICES = new Set(["api", "worker", "migrate"]);

export const nodeEnvProduction = defineResourceRule({
  name: "node-env-production",
  description:
    "The API, worker and migration containers run with NODE_ENV=production (the seeds: 'NODE_ENV=production npm start', 'Disables detailed errors'): " +
    "development mode leaks stack traces and runs slower.",
  remediationSteps: "Deploy with appstack:environment staging or production (appstack sets NODE_ENV from it); never set NODE_ENV in <service>.env.",
  severity: "medium",
  check(r, ctx) {
    if (!isAppstackWorkload(r) || !NODE_SERVICES.has(serviceOf(r) ?? "")) return;
    const e = env(r, "NODE_ENV");
    if (e && (!isKnown(e.value) || e.secret === true)) return;
    if (e?.value !== "production") ctx.report(`NODE_ENV is ${e ? `"${String(e.value)}"` : "not set"}; expected "production"`);
  },
});

export const edgeChecksApiHealth = defineResourceRule({
  name: "edge-checks-api-health",
  description:
    "The edge proxy health-checks the API containers it routes to (the seeds' 'Load balancer health checks working', 'Health check: GET /api/health/ready'): " +
    "a container that is starting, draining or failing gets no traffic. In swarm mode the edge routes to the API service's tasks as Swarm's DNS lists them " +
    "(tasks.<service>), which holds only tasks whose health check (the readiness probe) passes.",
  remediationSteps:
    "Keep health_uri (api.health.readyPath) in the reverse_proxy block of the config the edge-config job applies, or (swarm mode) the dynamic upstreams of tasks.<api service> (components/edge.ts).",
  severity: "high",
  check(r, ctx) {
    if (r.type === TYPES.serviceConfig) {
      const swarmConfig = caddyfileOf(r);
      if (swarmConfig === undefined) return;
      if (!/^\s*reverse_proxy\s/m.test(swarmConfig)) ctx.report("the edge proxy's Caddyfile has no reverse_proxy to the API");
      else if (!/^\s*health_uri\s+\/\S*/m.test(swarmConfig) && !/^\s*name\s+tasks\.\S+$/m.test(swarmConfig)) {
        ctx.report("the edge proxy routes to the API neither with an active health check (health_uri) nor to the healthy tasks Swarm's DNS lists (tasks.<service>)");
      }
      return;
    }
    // The edge's routing lives in the config its job applies; the proxy container carries only a bootstrap.
    if (!isAppstackContainer(r) || serviceOf(r) !== "edge" || roleOf(r) !== "job") return;
    const caddyfile = uploaded(r, APPLIED_CADDYFILE);
    if (caddyfile === undefined) {
      if (!isKnown(r.props.uploads)) return;
      ctx.report(`the edge's config job applies no ${APPLIED_CADDYFILE}: nothing shows the edge checks the API's health`);
      return;
    }
    if (!/^\s*reverse_proxy\s/m.test(caddyfile)) ctx.report("the edge proxy's Caddyfile has no reverse_proxy to the API");
    else if (!/^\s*health_uri\s+\/\S*/m.test(caddyfile)) ctx.report("the edge proxy routes to the API without an active health check (health_uri)");
  },
});

export const WEB_RULES = [corsRestricted, httpsPublicUrls, nodeEnvProduction, edgeChecksApiHealth];
