import { describe, expect, it } from "vitest";
import {
  containerCpuLimit,
  containerEngineCompatible,
  containerHasRole,
  containerLogRotation,
  containerMemoryLimit,
  containerNotPrivileged,
  jobRunsOnce,
  serviceHealthCheck,
  serviceRestartPolicy,
  serviceWaitsHealthy,
  workerGracefulStop,
  apiGracefulStop,
} from "../policy/rules/containers";
import { dataStoreNoHostPort, onlyEdgePublishesPorts, pinnedImages, protectedDataVolumes, requiredEnvWired } from "../policy/rules/data";
import { RULES } from "../policy/rules";
import {
  containerSecretEnv,
  generatedSecretLength,
  isSecretEnvName,
  noSecretsInFrontendBundle,
  vercelSecretEnvSensitive,
} from "../policy/rules/secrets";
import { corsMatchesFrontend, frontendApiUrlMatchesApi, rolloutOrder, securityHeaders } from "../policy/rules/stack";
import { containerDropsCapabilities, containerNoNewPrivileges, containerPidsLimit, containerReadOnlyRootfs, dataStoreNonRoot, edgeIsolatedFromDataStores } from "../policy/rules/privileges";
import { dockerTransportSecure } from "../policy/rules/transport";
import { corsRestricted, edgeChecksApiHealth, httpsPublicUrls, nodeEnvProduction } from "../policy/rules/web";
import { TYPES, UNKNOWN, type ResourceView } from "../policy/view";
import { check, checkStack, container, labels, readyApi, resource } from "./helpers/policy";

const urls = { DATABASE_URL: "postgresql://app:pw@postgres:5432/app", REDIS_URL: "redis://default:pw@redis:6379/0" };
const worker = (props: Record<string, unknown> = {}) =>
  container("worker-1", "worker", "service", { props: { stopTimeout: 60, ...props }, env: { NODE_ENV: "production", APP_VERSION: "1.4.2" }, secretEnv: urls });
const migrate = (props: Record<string, unknown> = {}) =>
  container("api-migrate", "migrate", "job", { props, env: { NODE_ENV: "production" }, secretEnv: urls });
const postgres = (props: Record<string, unknown> = {}) => container("postgres-server", "postgres", "service", { props, image: "postgres:17.6-alpine" });

describe("policy rules: every container", () => {
  it("the ready API, worker, job and data store pass every container rule", () => {
    for (const c of [readyApi(), worker(), migrate(), postgres()]) {
      for (const rule of [containerHasRole, serviceHealthCheck, serviceWaitsHealthy, serviceRestartPolicy, containerMemoryLimit, containerCpuLimit, containerLogRotation, containerNotPrivileged, jobRunsOnce, workerGracefulStop, apiGracefulStop, requiredEnvWired, containerEngineCompatible]) {
        expect(check(rule, c), `${rule.name} on ${c.name}`).toEqual([]);
      }
    }
  });

  it("a container without an appstack.role label is reported, since the role decides which checks apply", () => {
    const unlabelled = container("api-1", "api", undefined);
    expect(check(containerHasRole, unlabelled)).toEqual(['label appstack.role is missing; expected "service" or "job"']);
    const odd = resource(TYPES.container, "x", { labels: [...labels("api", undefined), { label: "appstack.role", value: "daemon" }] });
    expect(check(containerHasRole, odd)[0]).toContain('"daemon"');
  });

  it("containers that are not appstack's (no appstack.project label) are left alone", () => {
    const foreign = resource(TYPES.container, "other", { privileged: true });
    for (const rule of RULES.filter((r) => r.kind === "resource")) expect(check(rule, foreign)).toEqual([]);
  });

  it("a long-running container needs a health check with a test command", () => {
    expect(check(serviceHealthCheck, readyApi({ props: { healthcheck: undefined } }))[0]).toMatch(/no health check/);
    expect(check(serviceHealthCheck, readyApi({ props: { healthcheck: { tests: ["NONE"] } } }))[0]).toMatch(/no test command/);
    expect(check(serviceHealthCheck, readyApi({ props: { healthcheck: { tests: [] } } }))[0]).toMatch(/no test command/);
    // A one-shot job has no health check and needs none.
    expect(check(serviceHealthCheck, migrate())).toEqual([]);
  });

  it("a long-running container makes the deploy wait until it is healthy", () => {
    expect(check(serviceWaitsHealthy, readyApi({ props: { wait: false } }))).toHaveLength(1);
    expect(check(serviceWaitsHealthy, readyApi({ props: { wait: undefined } }))).toHaveLength(1);
  });

  it("a long-running container restarts after a crash", () => {
    for (const restart of ["unless-stopped", "always", "on-failure"]) expect(check(serviceRestartPolicy, readyApi({ props: { restart } }))).toEqual([]);
    expect(check(serviceRestartPolicy, readyApi({ props: { restart: "no" } }))[0]).toContain('"no"');
    expect(check(serviceRestartPolicy, readyApi({ props: { restart: undefined } }))[0]).toContain("unset");
  });

  it("every container, job or service, has a memory limit", () => {
    expect(check(containerMemoryLimit, readyApi({ props: { memory: undefined } }))).toHaveLength(1);
    expect(check(containerMemoryLimit, migrate({ memory: 0 }))).toHaveLength(1);
  });

  it("every container has a CPU limit", () => {
    expect(check(containerCpuLimit, readyApi({ props: { cpus: undefined } }))).toHaveLength(1);
    expect(check(containerCpuLimit, migrate({ cpus: "0" }))).toHaveLength(1);
    expect(check(containerCpuLimit, readyApi({ props: { cpus: "0.5" } }))).toEqual([]);
  });

  it("json-file logs need max-size; drivers that keep no local file pass", () => {
    expect(check(containerLogRotation, readyApi({ props: { logOpts: undefined } }))).toHaveLength(1);
    expect(check(containerLogRotation, readyApi({ props: { logDriver: undefined, logOpts: undefined } }))[0]).toContain("json-file");
    expect(check(containerLogRotation, readyApi({ props: { logDriver: "journald", logOpts: undefined } }))).toEqual([]);
  });

  it("no container runs privileged", () => {
    expect(check(containerNotPrivileged, readyApi({ props: { privileged: true } }))).toHaveLength(1);
    expect(check(containerNotPrivileged, readyApi({ props: { privileged: false } }))).toEqual([]);
  });

  it("a one-shot job runs once: no restart, mustRun false, no health wait", () => {
    expect(check(jobRunsOnce, migrate({ restart: "on-failure" }))[0]).toMatch(/run again/);
    expect(check(jobRunsOnce, migrate({ mustRun: undefined }))[0]).toMatch(/defaults it to true/);
    expect(check(jobRunsOnce, migrate({ mustRun: true }))).toHaveLength(1);
    expect(check(jobRunsOnce, migrate({ wait: true }))[0]).toMatch(/never reaches/);
    expect(check(jobRunsOnce, migrate({ restart: undefined }))).toEqual([]);
  });

  it("the worker gets time to finish its job on SIGTERM, configurable per stack", () => {
    expect(check(workerGracefulStop, worker({ stopTimeout: undefined }))[0]).toMatch(/10 s/);
    expect(check(workerGracefulStop, worker({ stopTimeout: 20 }))).toHaveLength(1);
    expect(check(workerGracefulStop, worker({ stopTimeout: 60 }), { minSeconds: 90 })[0]).toMatch(/at least 90 s/);
    expect(check(workerGracefulStop, readyApi({ props: { stopTimeout: 1 } }))).toEqual([]);
  });

  it("no container asks for an input the oldest supported Docker Engine (20.10, API 1.41) refuses or ignores", () => {
    const withStartInterval = readyApi({ props: { healthcheck: { tests: ["CMD-SHELL", "true"], interval: "5s", startInterval: "1s" } } });
    expect(check(containerEngineCompatible, withStartInterval)).toEqual([
      'healthcheck.startInterval needs Docker Engine API 1.44 (Docker 25.0); on Docker 20.10 (API 1.41), the oldest engine appstack supports, ' +
        'the provider\'s Docker client refuses to create the container ("specify health-check start interval" requires API version 1.44), so every deploy fails',
    ]);
    const network = migrate({ networksAdvanced: [{ name: "appstack-production", aliases: ["api"] }, { name: "other", gwPriority: 10, macAddress: "02:42:ac:11:00:02" }] });
    expect(check(containerEngineCompatible, network).map((m) => m.split(" needs ")[0])).toEqual(["networksAdvanced[].macAddress", "networksAdvanced[].gwPriority"]);
    expect(check(containerEngineCompatible, postgres({ mounts: [{ target: "/x", type: "volume", volumeOptions: { subpath: "a" } }] }))[0]).toMatch(/^mounts\[\]\.volumeOptions\.subpath needs Docker Engine API 1\.45/);
    // A field the oldest engine has passes, wherever it sits.
    expect(check(containerEngineCompatible, readyApi({ props: { healthcheck: { tests: ["CMD-SHELL", "true"], startPeriod: "20s" } } }))).toEqual([]);
  });

  it("an API container drains before it is removed: destroyGraceSeconds covers the edge's notice time, on SIGTERM", () => {
    expect(check(apiGracefulStop, readyApi())).toEqual([]);
    expect(check(apiGracefulStop, readyApi({ props: { destroyGraceSeconds: undefined } }))[0]).toMatch(/removed at once, with its requests in flight/);
    expect(check(apiGracefulStop, readyApi({ props: { destroyGraceSeconds: 5 } }))[0]).toMatch(/5 s; an API container needs at least 10 s/);
    expect(check(apiGracefulStop, readyApi({ props: { stopSignal: "SIGKILL" } }))[0]).toMatch(/drain starts on SIGTERM/);
    expect(check(apiGracefulStop, worker({ destroyGraceSeconds: undefined }))).toEqual([]);
  });

  it("a value only a deploy knows is not judged (it is not known to be wrong)", () => {
    expect(check(containerMemoryLimit, readyApi({ props: { memory: UNKNOWN } }))).toEqual([]);
    expect(check(serviceRestartPolicy, readyApi({ props: { restart: UNKNOWN } }))).toEqual([]);
  });
});

describe("policy rules: images and data", () => {
  it("images must be pinned by digest or major.minor tag, wherever the reference shows", () => {
    expect(check(pinnedImages, resource(TYPES.remoteImage, "api-image", { name: "ghcr.io/acme/api:1.4.2" }))).toEqual([]);
    expect(check(pinnedImages, resource(TYPES.remoteImage, "api-image", { name: `ghcr.io/acme/api@sha256:${"a".repeat(64)}` }))).toEqual([]);
    for (const ref of ["ghcr.io/acme/api:latest", "ghcr.io/acme/api", "postgres:17", "postgres:alpine"]) {
      expect(check(pinnedImages, resource(TYPES.remoteImage, "x-image", { name: ref }))[0]).toContain(`"${ref}" is not pinned`);
    }
    expect(check(pinnedImages, container("api-1", "api", "service", { image: "ghcr.io/acme/api:main" }))[0]).toContain("label appstack.image");
    expect(check(pinnedImages, resource(TYPES.container, "c", { image: "nginx:latest", labels: labels("frontend", "service", "nginx:1.27") }))).toHaveLength(1);
    expect(check(pinnedImages, resource("docker:index/image:Image", "api-build", { imageName: "appstack-dev-api:0a1b2c3d4e5f" }))).toHaveLength(1);
  });

  it("data stores publish no host port", () => {
    expect(check(dataStoreNoHostPort, postgres())).toEqual([]);
    expect(check(dataStoreNoHostPort, postgres({ ports: [{ internal: 5432, external: 5432, ip: "127.0.0.1" }] }))).toEqual([
      "postgres publishes 127.0.0.1:5432->5432 on the Docker host",
    ]);
    expect(check(dataStoreNoHostPort, readyApi({ props: { ports: [{ internal: 3000, external: 3000 }] } }))).toEqual([]);
  });

  it("only the edge proxy publishes host ports", () => {
    expect(check(onlyEdgePublishesPorts, readyApi({ props: { ports: [{ internal: 3000, external: 3000 }] } }))[0]).toMatch(/only the edge proxy/);
    expect(check(onlyEdgePublishesPorts, container("edge-proxy", "edge", "service", { props: { ports: [{ internal: 443, external: 443 }] } }))).toEqual([]);
    expect(check(onlyEdgePublishesPorts, readyApi())).toEqual([]);
  });

  it("the stack's volumes are protected and retained", () => {
    const volume = (protect: boolean, retainOnDelete?: boolean, service = "postgres") =>
      resource(TYPES.volume, `${service}-data`, { labels: labels(service, undefined) }, { protect, retainOnDelete });
    expect(check(protectedDataVolumes, volume(true, true))).toEqual([]);
    expect(check(protectedDataVolumes, volume(false, false))).toHaveLength(2);
    expect(check(protectedDataVolumes, volume(true, false))[0]).toMatch(/not retained/);
    expect(check(protectedDataVolumes, volume(false, true, "edge"))).toEqual(["the edge volume is not protected: pulumi destroy or a replacement would delete its data"]);
    // Under CrossGuard retainOnDelete is not visible: protect alone is judged.
    expect(check(protectedDataVolumes, volume(true, undefined))).toEqual([]);
    expect(check(protectedDataVolumes, resource(TYPES.volume, "scratch", {}))).toEqual([]);
  });

  it("the API, worker and migrations get the connection URLs", () => {
    expect(check(requiredEnvWired, readyApi())).toEqual([]);
    const noRedis = container("worker-1", "worker", "service", { env: { APP_VERSION: "1.4.2" }, secretEnv: { DATABASE_URL: "postgresql://x" } });
    expect(check(requiredEnvWired, noRedis)).toEqual(["worker gets no REDIS_URL"]);
    const unversioned = container("api-1", "api", "service", { env: { PORT: "3000" }, secretEnv: urls });
    expect(check(requiredEnvWired, unversioned)).toEqual(["api gets no APP_VERSION"]);
    expect(check(requiredEnvWired, container("api-migrate-run", "migrate", "job", { env: { NODE_ENV: "production" } }))).toEqual(["migrate gets no DATABASE_URL"]);
    // In a first preview a secret built from a password generated on this deploy is unknown whole: names cannot be read, nothing is claimed.
    expect(check(requiredEnvWired, resource(TYPES.container, "api-1", { labels: labels("api", "service"), envs: ["PORT=3000", UNKNOWN] }))).toEqual([]);
  });
});

describe("policy rules: secrets", () => {
  it("credential names are recognised as the seeds spell them", () => {
    for (const n of ["OPENAI_API_KEY", "PRIVY_APP_SECRET", "JWT_SECRET", "GITHUB_TOKEN", "REDIS_PASSWORD", "POSTGRES_PASSWORD", "DATABASE_URL", "REDIS_URL", "REDISCLI_AUTH"]) {
      expect(isSecretEnvName(n), n).toBe(true);
    }
    for (const n of ["PORT", "NODE_ENV", "FRONTEND_URL", "CORS_ORIGIN", "MEMORY_CACHE_TTL_SECONDS", "KEYCLOAK_REALM"]) expect(isSecretEnvName(n), n).toBe(false);
  });

  it("a credential in a container env must be a secret input", () => {
    expect(check(containerSecretEnv, readyApi())).toEqual([]);
    const leaked = readyApi({ env: { OPENAI_API_KEY: "sk-test" } });
    expect(check(containerSecretEnv, leaked)).toEqual(["OPENAI_API_KEY (envs[5]) is a plain string; it must be a secret"]);
  });

  it("a container holding credentials keeps envs secret in its state", () => {
    expect(check(containerSecretEnv, readyApi({ additionalSecretOutputs: [] }))[0]).toMatch(/additionalSecretOutputs/);
    // Under CrossGuard secrecy is not visible: the name and additionalSecretOutputs are still judged.
    expect(check(containerSecretEnv, readyApi({ secretPaths: undefined }))).toEqual([]);
    expect(check(containerSecretEnv, readyApi({ secretPaths: undefined, additionalSecretOutputs: [] }))).toHaveLength(1);
    // A wholly unknown entry (a secret built from a password generated on this deploy) counts as a credential.
    expect(check(containerSecretEnv, resource(TYPES.container, "c", { envs: ["PORT=1", UNKNOWN] }))).toHaveLength(1);
  });

  const vercelVar = (key: string, sensitive: boolean, secret: boolean) =>
    resource(TYPES.vercelEnv, `frontend-env-${key}`, { key, value: "v", sensitive, targets: ["production"] }, { secretPaths: new Set(secret ? ["value"] : []) });

  it("Vercel variables with credential names are sensitive and secret", () => {
    expect(check(vercelSecretEnvSensitive, vercelVar("STRIPE_SECRET_KEY", true, true))).toEqual([]);
    expect(check(vercelSecretEnvSensitive, vercelVar("STRIPE_SECRET_KEY", false, true))[0]).toMatch(/not sensitive/);
    expect(check(vercelSecretEnvSensitive, vercelVar("STRIPE_SECRET_KEY", true, false))[0]).toMatch(/plain string/);
    expect(check(vercelSecretEnvSensitive, vercelVar("VITE_API_URL", false, false))).toEqual([]);
    const bulk = resource(TYPES.vercelEnvs, "envs", { variables: [{ key: "A_TOKEN", value: "x", sensitive: false }] });
    expect(check(vercelSecretEnvSensitive, bulk)).toEqual(["A_TOKEN is not sensitive: its value can be read in the Vercel dashboard and API"]);
  });

  it("no credential is compiled into the browser bundle, unless allowed by config", () => {
    expect(check(noSecretsInFrontendBundle, vercelVar("VITE_API_URL", false, false))).toEqual([]);
    expect(check(noSecretsInFrontendBundle, vercelVar("VITE_OPENAI_API_KEY", true, true))[0]).toMatch(/public bundle/);
    // The Vercel SDK makes every value a secret: a public variable is judged by its name and `sensitive`.
    expect(check(noSecretsInFrontendBundle, vercelVar("VITE_FEATURE", false, true))).toEqual([]);
    expect(check(noSecretsInFrontendBundle, vercelVar("VITE_FEATURE", true, true))[0]).toMatch(/marked sensitive/);
    expect(check(noSecretsInFrontendBundle, vercelVar("VITE_SUPABASE_ANON_KEY", false, false), { allow: ["VITE_SUPABASE_ANON_KEY"] })).toEqual([]);
    const dev = container("frontend-server", "frontend", "service", { env: { VITE_API_URL: "http://localhost:3000" }, secretEnv: { VITE_ADMIN_TOKEN: "t" } });
    expect(check(noSecretsInFrontendBundle, dev)).toEqual(["VITE_ADMIN_TOKEN is compiled into the public bundle but holds a credential"]);
  });

  it("generated secrets are long enough and generated as secrets", () => {
    expect(check(generatedSecretLength, resource(TYPES.randomPassword, "jwt-secret", { length: 48 }))).toEqual([]);
    expect(check(generatedSecretLength, resource(TYPES.randomPassword, "jwt-secret", { length: 16 }))).toEqual(["length 16 is below 32"]);
    expect(check(generatedSecretLength, resource(TYPES.randomPassword, "jwt-secret", { length: 40 }), { minLength: 64 })).toHaveLength(1);
    expect(check(generatedSecretLength, resource(TYPES.randomString, "session-secret", { length: 64 }))[0]).toMatch(/RandomPassword/);
    expect(check(generatedSecretLength, resource(TYPES.randomString, "suffix", { length: 6 }))).toEqual([]);
  });
});

describe("policy rules: API and frontend", () => {
  it("CORS is one origin, not a wildcard, and the frontend URL", () => {
    expect(check(corsRestricted, readyApi())).toEqual([]);
    expect(check(corsRestricted, readyApi({ env: { CORS_ORIGIN: "*" } }))[0]).toContain('"*"');
    expect(check(corsRestricted, readyApi({ env: { CORS_ORIGIN: "https://*.example.com", FRONTEND_URL: "https://*.example.com" } }))).toHaveLength(1);
    expect(check(corsRestricted, readyApi({ env: { CORS_ORIGIN: "https://a.example.com,https://b.example.com" } }))[0]).toMatch(/single origin/);
    expect(check(corsRestricted, readyApi({ env: { CORS_ORIGIN: "https://staging.example.com" } }))[0]).toMatch(/differs from FRONTEND_URL/);
    const without = container("api-1", "api", "service", { env: { PORT: "3000" } });
    expect(check(corsRestricted, without)[0]).toMatch(/not set/);
  });

  it("public URLs are https", () => {
    expect(check(httpsPublicUrls, readyApi())).toEqual([]);
    const dev = readyApi({ env: { CORS_ORIGIN: "http://localhost:8080", FRONTEND_URL: "http://localhost:8080" } });
    expect(check(httpsPublicUrls, dev)).toHaveLength(2);
    const apiUrl = (value: string) => resource(TYPES.vercelEnv, "frontend-env-VITE_API_URL", { key: "VITE_API_URL", value, sensitive: false }, { secretPaths: new Set() });
    expect(check(httpsPublicUrls, apiUrl("https://api.example.com"))).toEqual([]);
    expect(check(httpsPublicUrls, apiUrl("http://api.example.com"))).toEqual(['VITE_API_URL "http://api.example.com" is not an https:// URL']);
  });

  it("the config the edge's job applies health-checks the API containers it routes to", () => {
    const edgeConfig = (caddyfile?: string) =>
      container("edge-config-run", "edge", "job", { props: { uploads: caddyfile === undefined ? [] : [{ file: "/etc/caddy/Caddyfile.applied", content: caddyfile }] } });
    expect(check(edgeChecksApiHealth, edgeConfig("api.example.com {\n\treverse_proxy api-1:3000 {\n\t\thealth_uri /api/v1/health/ready\n\t}\n}\n"))).toEqual([]);
    expect(check(edgeChecksApiHealth, edgeConfig("api.example.com {\n\treverse_proxy api-1:3000\n}\n"))[0]).toMatch(/without an active health check/);
    expect(check(edgeChecksApiHealth, edgeConfig("api.example.com {\n\trespond 200\n}\n"))[0]).toMatch(/no reverse_proxy/);
    expect(check(edgeChecksApiHealth, edgeConfig())[0]).toMatch(/applies no \/etc\/caddy\/Caddyfile.applied/);
    // The proxy container's bootstrap config routes nowhere; the rule looks at the applied one.
    expect(check(edgeChecksApiHealth, container("edge-proxy", "edge", "service", { props: { uploads: [{ file: "/etc/caddy/Caddyfile", content: "respond 503" }] } }))).toEqual([]);
    expect(check(edgeChecksApiHealth, readyApi())).toEqual([]);
  });

  it("Node services run with NODE_ENV=production", () => {
    expect(check(nodeEnvProduction, readyApi())).toEqual([]);
    expect(check(nodeEnvProduction, readyApi({ env: { NODE_ENV: "development" } }))[0]).toContain('"development"');
    expect(check(nodeEnvProduction, container("api-1", "api", "service", { env: { PORT: "1" } }))[0]).toMatch(/not set/);
    expect(check(nodeEnvProduction, postgres())).toEqual([]);
  });
});

describe("policy rules: the stack as a whole", () => {
  const store = postgres();
  const job = { ...migrate(), dependencies: [store.urn] };
  const api = { ...readyApi(), dependencies: [job.urn] };
  const w = { ...worker(), dependencies: [api.urn] };
  // The edge's config job switches the edge to the API containers; the proxy container itself waits for nothing.
  const edge = { ...container("edge-config-run", "edge", "job"), dependencies: [api.urn] };
  const deployment = resource("vercel:index/deployment:Deployment", "frontend-deployment", {}, { dependencies: [w.urn, edge.urn] });

  it("each stage waits for the ones before: data stores, migrations, API, worker and the edge's config, frontend", () => {
    expect(checkStack(rolloutOrder, [store, job, api, w, edge, deployment])).toEqual([]);
    const early = { ...job, dependencies: [] };
    expect(checkStack(rolloutOrder, [store, early, api])).toEqual([
      { urn: early.urn, message: expect.stringContaining("api-migrate does not wait for the data stores (postgres-server)") },
      // The API waits for the migrations, but they no longer wait for Postgres: neither does the API.
      { urn: api.urn, message: expect.stringContaining("api-1 does not wait for the data stores (postgres-server)") },
    ]);
    const eager = { ...api, dependencies: [store.urn] };
    expect(checkStack(rolloutOrder, [store, job, eager])).toEqual([{ urn: eager.urn, message: expect.stringContaining("does not wait for the migrations (api-migrate)") }]);
    const hasty = { ...deployment, dependencies: [edge.urn] };
    expect(checkStack(rolloutOrder, [store, job, api, w, edge, hasty])[0].message).toContain("the worker and the edge's config (worker-1)");
  });

  it("a missing stage is skipped: without migrations the API waits for the data stores; a backup job, when present, comes before migrations", () => {
    expect(checkStack(rolloutOrder, [store, { ...api, dependencies: [store.urn] }])).toEqual([]);
    expect(checkStack(rolloutOrder, [store, { ...api, dependencies: [] }])).toHaveLength(1);
    const backup = { ...container("db-backup", "backup", "job"), dependencies: [store.urn] };
    expect(checkStack(rolloutOrder, [store, backup, job, api])[0].message).toContain("api-migrate does not wait for the backup (db-backup)");
    expect(checkStack(rolloutOrder, [store, backup, { ...job, dependencies: [backup.urn] }, api])).toEqual([]);
  });

  it("the backup waits for Postgres alone; the migrations still wait for every data store", () => {
    const redis = container("redis-server", "redis", "service");
    const backup = { ...container("backup-dump-run", "backup", "job"), dependencies: [store.urn] };
    const migrations = { ...job, dependencies: [backup.urn, redis.urn] };
    expect(checkStack(rolloutOrder, [store, redis, backup, migrations, { ...api, dependencies: [migrations.urn] }])).toEqual([]);
    const [late] = checkStack(rolloutOrder, [store, redis, backup, { ...job, dependencies: [backup.urn] }, { ...api, dependencies: [job.urn] }]);
    expect(late.message).toContain("api-migrate does not wait for the data stores (redis-server)");
    expect(checkStack(rolloutOrder, [store, redis, { ...backup, dependencies: [redis.urn] }, migrations])[0].message).toContain(
      "backup-dump-run does not wait for the data stores (postgres-server)",
    );
  });

  it("the API's CORS origin is a URL the frontend is served from", () => {
    const domain = resource(TYPES.vercelDomain, "frontend-domain-1", { domain: "app.example.com" });
    const project = resource(TYPES.vercelProject, "frontend-project", { name: "acme-web" });
    expect(checkStack(corsMatchesFrontend, [api, project, domain])).toEqual([]);
    const other = { ...api, props: readyApi({ env: { CORS_ORIGIN: "https://old.example.com", FRONTEND_URL: "https://old.example.com" } }).props };
    const [mismatch] = checkStack(corsMatchesFrontend, [other, project, domain]);
    expect(mismatch.urn).toBe(api.urn);
    expect(mismatch.message).toContain('"https://old.example.com" is none of the frontend\'s URLs');
    expect(mismatch.message).toContain("https://app.example.com");
    const devFrontend = container("frontend-server", "frontend", "service", { props: { ports: [{ internal: 8080, external: 8080, ip: "127.0.0.1" }] } });
    const devApi = readyApi({ env: { CORS_ORIGIN: "http://localhost:8080", FRONTEND_URL: "http://localhost:8080" } });
    expect(checkStack(corsMatchesFrontend, [devApi, devFrontend])).toEqual([]);
    expect(checkStack(corsMatchesFrontend, [api])).toEqual([]);
  });

  const caddy = (body: string) => ({ uploads: [{ file: "/etc/caddy/Caddyfile", content: body }] });
  const edgeFor = (domain: string, headers = ["Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"]) =>
    container("edge-proxy", "edge", "service", { props: caddy(`{\n\temail ops@example.com\n}\n\n${domain} {\n\theader {\n${headers.map((h) => `\t\t${h} "x"`).join("\n")}\n\t}\n}\n`) });
  const apiUrlVar = (value: string) =>
    resource(TYPES.vercelEnv, "frontend-env-VITE_API_URL", { key: "VITE_API_URL", value, sensitive: false }, { secretPaths: new Set(["value"]) });

  it("the frontend's API URL points at the API's public address", () => {
    expect(checkStack(frontendApiUrlMatchesApi, [edgeFor("api.example.com"), apiUrlVar("https://api.example.com")])).toEqual([]);
    expect(checkStack(frontendApiUrlMatchesApi, [edgeFor("api.example.com"), apiUrlVar("https://api.example.com/api/v1")])).toEqual([]);
    const [wrong] = checkStack(frontendApiUrlMatchesApi, [edgeFor("api.example.com"), apiUrlVar("https://api.staging.example.com")]);
    // Vercel values are secrets: the variable is named, its value not shown.
    expect(wrong.message).toBe("VITE_API_URL does not point at the API (https://api.example.com)");
    const devApi = readyApi({ props: { ports: [{ internal: 3000, external: 3000, ip: "127.0.0.1" }] } });
    const devFrontend = container("frontend-server", "frontend", "service", { env: { VITE_API_URL: "http://localhost:3001" } });
    expect(checkStack(frontendApiUrlMatchesApi, [devApi, devFrontend])[0].message).toBe('VITE_API_URL "http://localhost:3001" does not point at the API (http://localhost:3000)');
  });

  it("every public entry point sends the security headers", () => {
    expect(checkStack(securityHeaders, [edgeFor("api.example.com")])).toEqual([]);
    expect(checkStack(securityHeaders, [edgeFor("api.example.com", ["X-Frame-Options"])])[0].message).toBe(
      "edge-proxy does not send X-Content-Type-Options, Referrer-Policy, Strict-Transport-Security",
    );
    const project = resource(TYPES.vercelProject, "frontend-project", { name: "acme-web" });
    const route = (headers: Record<string, string>) =>
      resource("vercel:index/projectRoute:ProjectRoute", "frontend-security-headers", { route: { src: "/(.*)", headers } }, { dependencies: [project.urn] });
    const all = { "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "strict-origin-when-cross-origin" };
    expect(checkStack(securityHeaders, [project, route(all)])).toEqual([]);
    expect(checkStack(securityHeaders, [project])[0].message).toContain("has no route that sends X-Content-Type-Options, X-Frame-Options, Referrer-Policy");
    expect(checkStack(securityHeaders, [project, route({ "X-Frame-Options": "DENY" })])[0].message).toContain("X-Content-Type-Options, Referrer-Policy");
  });
});

describe("policy rules: the pack", () => {
  it("names are unique kebab-case and every rule cites its reason and its fix", () => {
    const names = RULES.map((r) => r.name);
    expect(new Set(names).size).toBe(names.length);
    for (const r of RULES) {
      expect(r.name).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
      expect(r.name).not.toBe("all");
      expect(r.description.length).toBeGreaterThan(60);
      expect(r.description).toMatch(/seeds/);
      expect(r.remediationSteps.length).toBeGreaterThan(10);
    }
  });
});

describe("policy rules: the Docker transport", () => {
  const provider = (props: Record<string, unknown>) => resource("pulumi:providers:docker", "appstack-docker", props);
  const pemProps = { caMaterial: "-----BEGIN CERTIFICATE-----", certMaterial: "-----BEGIN CERTIFICATE-----", keyMaterial: "-----BEGIN PRIVATE KEY-----" };

  it("ssh with safe options, and tcp with all three TLS materials, pass", () => {
    expect(check(dockerTransportSecure, provider({ host: "ssh://deploy@prod.example.com", sshOpts: '["-o","StrictHostKeyChecking=yes","-o","ServerAliveInterval=30"]' }))).toEqual([]);
    expect(check(dockerTransportSecure, provider({ host: "ssh://deploy@prod.example.com", sshOpts: ["-o", "StrictHostKeyChecking=yes"] }))).toEqual([]);
    expect(check(dockerTransportSecure, provider({ host: "tcp://prod.example.com:2376", ...pemProps }))).toEqual([]);
  });

  it("plain tcp, tcp with part of the TLS material, a local socket, or no host: reported", () => {
    expect(check(dockerTransportSecure, provider({ host: "tcp://prod.example.com:2375" }))[0]).toContain("plain TCP");
    expect(check(dockerTransportSecure, provider({ host: "tcp://prod.example.com:2376", caMaterial: pemProps.caMaterial }))[0]).toContain("plain TCP");
    expect(check(dockerTransportSecure, provider({ host: "unix:///var/run/docker.sock" }))[0]).toContain("local Docker engine");
    expect(check(dockerTransportSecure, provider({}))[0]).toContain("no host");
  });

  it("StrictHostKeyChecking=no, a ProxyCommand and an unknown option are each reported, in either list form", () => {
    const bad = ["-o", "StrictHostKeyChecking=no", "-o", "ProxyCommand=nc %h %p", "-F", "/tmp/x"];
    for (const sshOpts of [bad, JSON.stringify(bad)]) {
      const found = check(dockerTransportSecure, provider({ host: "ssh://deploy@prod.example.com", sshOpts }));
      expect(found).toHaveLength(4);
      expect(found[0]).toContain("sshOpts[1]: StrictHostKeyChecking=no");
      expect(found[1]).toContain("sshOpts[3]: ssh option ProxyCommand is not allowed");
      expect(found[2]).toContain('sshOpts[4]: "-F" is not an ssh option');
    }
  });

  it("a value only a deploy knows is not judged; other providers and resources are left alone", () => {
    expect(check(dockerTransportSecure, provider({ host: UNKNOWN }))).toEqual([]);
    expect(check(dockerTransportSecure, resource("pulumi:providers:vercel", "v", { host: "tcp://x:2375" }))).toEqual([]);
    expect(check(dockerTransportSecure, postgres())).toEqual([]);
  });
});

describe("policy rules: what a container may do on its host", () => {
  const hardened = (service: string, more: Record<string, unknown> = {}) => ({
    capabilities: { drops: ["ALL"], adds: [] },
    securityOpts: ["no-new-privileges:true"],
    readOnly: true,
    tmpfs: { "/tmp": "rw,nosuid,nodev,mode=1777" },
    cgroupParent: `appstack-production-${service}.slice`,
    ...more,
  });
  const rules = [containerDropsCapabilities, containerNoNewPrivileges, containerReadOnlyRootfs, containerPidsLimit, dataStoreNonRoot];

  it("hardened containers pass: the edge may add NET_BIND_SERVICE, the data stores run as their users", () => {
    const ok = [
      readyApi({ props: hardened("api") }),
      migrate(hardened("migrate")),
      postgres(hardened("postgres", { user: "postgres" })),
      container("edge-proxy", "edge", "service", { props: hardened("edge", { capabilities: { drops: ["ALL"], adds: ["NET_BIND_SERVICE"] } }) }),
    ];
    for (const c of ok) for (const rule of rules) expect(check(rule, c), `${rule.name} on ${c.name}`).toEqual([]);
  });

  it("capabilities: all must be dropped, and only an allowed one added, by a service and never by a job", () => {
    expect(check(containerDropsCapabilities, readyApi({ props: hardened("api", { capabilities: undefined }) }))[0]).toContain('does not hold "ALL"');
    expect(check(containerDropsCapabilities, readyApi({ props: hardened("api", { capabilities: { drops: ["NET_RAW"] } }) }))[0]).toContain('does not hold "ALL"');
    expect(check(containerDropsCapabilities, readyApi({ props: hardened("api", { capabilities: { drops: ["ALL"], adds: ["NET_BIND_SERVICE"] } }) }))[0]).toBe(
      "adds NET_BIND_SERVICE, which api does not need (allowed: none)",
    );
    const job = container("edge-config-run", "edge", "job", { props: hardened("edge", { capabilities: { drops: ["all"], adds: ["CAP_NET_BIND_SERVICE"] } }) });
    expect(check(containerDropsCapabilities, job)).toEqual(["adds CAP_NET_BIND_SERVICE, which edge does not need (allowed: none)"]);
    // The policy config may allow more, per service.
    const api = readyApi({ props: hardened("api", { capabilities: { drops: ["ALL"], adds: ["NET_BIND_SERVICE"] } }) });
    expect(check(containerDropsCapabilities, api, { allow: { api: ["NET_BIND_SERVICE"] } })).toEqual([]);
  });

  it("no-new-privileges, a read-only root filesystem (unless exempt), the service's slice, a non-root data store", () => {
    expect(check(containerNoNewPrivileges, worker(hardened("worker", { securityOpts: ["seccomp=unconfined"] })))).toHaveLength(1);
    expect(check(containerNoNewPrivileges, worker(hardened("worker", { securityOpts: ["no-new-privileges"] })))).toEqual([]);
    expect(check(containerReadOnlyRootfs, worker(hardened("worker", { readOnly: false })))).toHaveLength(1);
    // The edge is exempt by default (its uploads), and only it.
    expect(check(containerReadOnlyRootfs, container("edge-proxy", "edge", "service", { props: hardened("edge", { readOnly: false }) }))).toEqual([]);
    expect(check(containerReadOnlyRootfs, container("edge-proxy", "edge", "service", { props: hardened("edge", { readOnly: false }) }), { exempt: [] })).toHaveLength(1);
    expect(check(containerReadOnlyRootfs, worker(hardened("worker", { readOnly: false })), { exempt: ["worker"] })).toEqual([]);
    // Swarm mode's jobs: writable only for their secret files in /run/secrets (the provider uploads through /).
    const secretFiles = (files: string[]) => migrate(hardened("migrate", { readOnly: false, uploads: files.map((file) => ({ file, content: "x" })) }));
    expect(check(containerReadOnlyRootfs, secretFiles(["/run/secrets/DATABASE_URL"]))).toEqual([]);
    expect(check(containerReadOnlyRootfs, secretFiles(["/run/secrets/DATABASE_URL", "/app/config.json"]))).toHaveLength(1);
    expect(check(containerReadOnlyRootfs, secretFiles([]))).toHaveLength(1);
    expect(check(containerPidsLimit, worker(hardened("worker", { cgroupParent: "appstack-production-api.slice" })))[0]).toContain("not appstack-production-worker.slice");
    for (const user of [undefined, "root", "0", "0:0"]) expect(check(dataStoreNonRoot, postgres(hardened("postgres", { user }))), String(user)).toHaveLength(1);
    expect(check(dataStoreNonRoot, worker(hardened("worker")))).toEqual([]);
  });

  it("the edge shares no network with a data store, and its config job joins none; unknown network names are not judged", () => {
    const withNets = (c: ResourceView, names: unknown) => ({ ...c, props: { ...c.props, networksAdvanced: names } });
    const pg = withNets(postgres(), [{ name: "appstack-production" }]);
    const edge = (nets: unknown) => withNets(container("edge-proxy", "edge", "service"), nets);
    const job = (nets: unknown) => withNets(container("edge-config-run", "edge", "job"), nets);
    const messages = (rs: ResourceView[]) => checkStack(edgeIsolatedFromDataStores, rs).map((v) => v.message);
    expect(messages([pg, edge([{ name: "appstack-production-edge" }]), job(undefined)])).toEqual([]);
    expect(messages([pg, edge([{ name: "appstack-production-edge" }, { name: "appstack-production" }]), job(undefined)])).toEqual([
      "edge-proxy shares network appstack-production with postgres: the edge could reach the data store",
    ]);
    expect(messages([pg, edge([{ name: "appstack-production-edge" }]), job([{ name: "appstack-production-edge" }])])[0]).toContain("config job joins");
    expect(checkStack(edgeIsolatedFromDataStores, [pg, edge([{ name: UNKNOWN }])])).toEqual([]);
  });
});
