import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { swarmCaddyfile } from "../components/edge";
import { compareApiVersions, containerInputPaths, MIN_DOCKER_ENGINE, SWARM_AUDITED_TYPES, SWARM_INPUT_AUDIT } from "../config";
import { compareStacks } from "../ops/diff/diff";
import { type RecordedResource } from "../ops/offline/offline-runtime";
import { SECRET, UNKNOWN, type Plan, type PlanResource } from "../ops/offline/plan";
import { loadPolicyConfig } from "../policy/config";
import { evaluateRules } from "../policy/evaluate";
import { RULES } from "../policy/rules";
import { viewFromWire } from "../policy/view";
import { ROOT, runOps } from "./helpers/cli";
import { planInProcess } from "./helpers/in-process-plan";

/**
 * The swarm example (examples/Pulumi.swarm-example.yaml), evaluated once in
 * this process the way `npm run plan` evaluates it: what swarm mode declares.
 * What Swarm does with it is test/runtime/swarm.test.ts's, on a real swarm.
 */

const STACK_FILE = "examples/Pulumi.swarm-example.yaml";
const SERVICE = "docker:index/service:Service";
const SECRET_TYPE = "docker:index/secret:Secret";

let plan: Plan;
let recorded: RecordedResource[];
const byName = (name: string): PlanResource => {
  const r = plan.resources.find((x) => x.name === name);
  if (!r) throw new Error(`${name} not in the plan: ${plan.resources.map((x) => x.name).join(", ")}`);
  return r;
};
const inputs = (name: string) => byName(name).inputs as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

beforeAll(async () => {
  ({ plan, resources: recorded } = await planInProcess({ stackFile: path.join(ROOT, STACK_FILE) }));
});

describe("the swarm example: what swarm mode declares", () => {
  it("the API and the worker are Swarm services with replicas, start-first rolling updates and rollback on failure", () => {
    for (const [name, replicas] of [["api-service", 3], ["worker-service", 2]] as const) {
      const s = inputs(name);
      expect(byName(name).type).toBe(SERVICE);
      expect(s.mode).toEqual({ replicated: { replicas } });
      expect(s.updateConfig).toMatchObject({ order: "start-first", parallelism: 1, failureAction: "rollback" });
      expect(s.rollbackConfig).toMatchObject({ order: "start-first", parallelism: 1 });
      expect(s.endpointSpec).toEqual({ mode: "dnsrr" });
    }
    // The monitor window outlasts the health check's start period and its retries.
    expect(inputs("api-service").updateConfig.monitor).toBe("35s");
    expect(inputs("api-service").taskSpec.containerSpec.healthcheck).toMatchObject({ startPeriod: "20s", interval: "5s", retries: 3 });
  });

  it("each task template carries the host-mode container's health check, limits, restart and log rotation", () => {
    const task = inputs("api-service").taskSpec;
    expect(task.containerSpec.healthcheck.tests.slice(0, 3)).toEqual(["CMD", "node", "-e"]);
    expect(task.containerSpec.healthcheck.tests[3]).toContain("/api/v1/health/ready");
    expect(task.resources).toEqual({ limits: { memoryBytes: 1024 * 1024 * 1024, nanoCpus: 1e9 } });
    expect(task.restartPolicy).toEqual({ condition: "any", delay: "5s" });
    expect(task.logDriver).toEqual({ name: "json-file", options: { "max-file": "5", "max-size": "10m" } });
    expect(task.containerSpec).toMatchObject({ stopSignal: "SIGTERM", stopGracePeriod: "30s" });
    expect(inputs("worker-service").taskSpec.containerSpec).toMatchObject({ args: ["node", "dist/workers/memory-worker.js"], stopGracePeriod: "90s" });
  });

  it("pulumi up waits until every task runs the new spec (convergeConfig), one task at a time, each up to its health timeout", () => {
    expect(inputs("api-service").convergeConfig).toEqual({ timeout: `${3 * 180 + 35}s`, delay: "5s" });
    // One task: its health timeout, then the update's monitor window (the data stores' start period and five retries).
    expect(inputs("postgres-service").convergeConfig).toEqual({ timeout: `${180 + 30 + 5 * 5}s`, delay: "5s" });
    // A global service cannot converge in the provider: the edge declares no wait.
    expect(inputs("edge-service").convergeConfig).toBeUndefined();
  });

  it("Postgres and Redis are one task each, pinned to the node labelled with their data, replaced stop-first, on the host-mode volume", () => {
    for (const store of ["postgres", "redis"]) {
      const s = inputs(`${store}-service`);
      expect(s.mode).toEqual({ replicated: { replicas: 1 } });
      expect(s.taskSpec.placement).toEqual({ constraints: ["node.labels.appstack.node==data-1"] });
      expect(s.updateConfig).toMatchObject({ order: "stop-first", failureAction: "rollback" });
      expect(s.taskSpec.containerSpec.mounts[0]).toEqual({ type: "volume", source: `appstack-swarm-example-${store}-data`, target: store === "postgres" ? "/var/lib/postgresql/data" : "/data" });
      expect(s.taskSpec.networksAdvanceds[0].aliases).toEqual([store]);
      expect(byName(`${store}-data`).options).toMatchObject({ protect: true, retainOnDelete: true });
    }
  });

  it("every secret is a docker.Secret mounted as a file of the declared owner, mode 0400, named by <NAME>_FILE", () => {
    const secrets = plan.resources.filter((r) => r.type === SECRET_TYPE);
    expect(secrets.map((s) => s.name).sort()).toEqual([
      "appstack-swarm-secret-database-url",
      "appstack-swarm-secret-jwt-secret",
      "appstack-swarm-secret-openai-api-key",
      "appstack-swarm-secret-redis-url",
      "postgres-password-secret",
      "redis-password-secret",
    ]);
    for (const s of secrets) {
      expect(s.inputs.data, s.name).toBe(SECRET);
      expect(s.secretPaths, s.name).toContain("data");
    }
    const api = inputs("api-service").taskSpec.containerSpec;
    expect(api.secrets.map((s: { fileName: string }) => s.fileName)).toEqual(["DATABASE_URL", "JWT_SECRET", "OPENAI_API_KEY", "REDIS_URL"]);
    for (const s of api.secrets) expect(s).toMatchObject({ fileUid: "1000", fileGid: "1000", fileMode: 0o400 });
    expect(api.env).toMatchObject({ DATABASE_URL_FILE: "/run/secrets/DATABASE_URL", REDIS_URL_FILE: "/run/secrets/REDIS_URL", OPENAI_API_KEY_FILE: "/run/secrets/OPENAI_API_KEY" });
    expect(inputs("postgres-service").taskSpec.containerSpec.env).toEqual({ POSTGRES_DB: "app", POSTGRES_PASSWORD_FILE: "/run/secrets/POSTGRES_PASSWORD", POSTGRES_USER: "app" });
    // The redis user (uid 999 in the official images) reads its password file; the server's argv holds only the file's path.
    const redis = inputs("redis-service").taskSpec.containerSpec;
    expect(redis.secrets[0]).toMatchObject({ fileName: "REDIS_PASSWORD", fileUid: "999", fileMode: 0o400 });
    expect(redis.args.join(" ")).toContain('"$(cat /run/secrets/REDIS_PASSWORD)"');
    expect(redis.healthcheck.tests[1]).toBe('REDISCLI_AUTH="$(cat /run/secrets/REDIS_PASSWORD)" redis-cli -p 6379 ping | grep -q PONG');
  });

  it("no secret is in any service's or job's env: services name their files, jobs get theirs uploaded", () => {
    for (const r of plan.resources.filter((x) => x.type === SERVICE)) {
      expect(r.secretPaths.filter((p) => p.includes("env")), r.name).toEqual([]);
      for (const name of Object.keys(r.inputs.taskSpec ? (r.inputs.taskSpec as any).containerSpec.env ?? {} : {})) { // eslint-disable-line @typescript-eslint/no-explicit-any
        expect(name, r.name).not.toMatch(/(?:_KEY|_SECRET|_TOKEN|PASSWORD|_AUTH)$|^(?:DATABASE_URL|REDIS_URL)$/);
      }
    }
    for (const job of ["api-migrate-run", "backup-dump-run"]) {
      const r = byName(job);
      expect(r.secretPaths.filter((p) => p.startsWith("envs")), job).toEqual([]);
      expect((r.inputs.envs as string[]).filter((e) => e === SECRET), job).toEqual([]);
      const uploads = r.inputs.uploads as { file: string; content: string }[];
      expect(uploads.every((u) => u.file.startsWith("/run/secrets/") && u.content === SECRET), job).toBe(true);
      expect(r.options.dependsOn.length).toBeGreaterThan(0);
    }
    expect(inputs("backup-dump-run").envs).toContain("PGPASSWORD_FILE=/run/secrets/PGPASSWORD");
    expect(inputs("backup-dump-run").command[2]).toMatch(/^set -eu\nPGPASSWORD="\$\(cat "\$PGPASSWORD_FILE"\)"\nexport PGPASSWORD\n/);
    expect(inputs("api-migrate-run").envs).toEqual(expect.arrayContaining(["DATABASE_URL_FILE=/run/secrets/DATABASE_URL", "REDIS_URL_FILE=/run/secrets/REDIS_URL"]));
  });

  it("a secret's Swarm name changes with its value (a RandomId kept by it), so a rotated secret is a new one that the services roll to", () => {
    const version = recorded.find((r) => r.name === "appstack-swarm-secret-openai-api-key-version")!;
    expect(version.type).toBe("random:index/randomId:RandomId");
    expect(byName("appstack-swarm-secret-openai-api-key-version").secretPaths).toContain("keepers.value");
    const secret = byName("appstack-swarm-secret-openai-api-key");
    expect(secret.propertyDependencies.name).toEqual([version.urn]);
    expect(byName("api-service").options.dependsOn).toContain(secret.urn);
    expect(byName("worker-service").options.dependsOn).toContain(secret.urn);
  });

  it("the network is an encrypted, attachable overlay; services join it by ID, jobs by name", () => {
    expect(inputs("appstack-overlay")).toMatchObject({ name: "appstack-swarm-example-overlay", driver: "overlay", attachable: true, options: { encrypted: "" } });
    expect(inputs("api-migrate-run").networksAdvanced).toEqual([{ name: "appstack-swarm-example-overlay" }]);
    expect(byName("api-service").options.dependsOn).toContain(byName("appstack-overlay").urn);
  });

  it("the edge is a global service on the nodes labelled edge, its ports published in host mode, routing to the API's tasks through Swarm's DNS", () => {
    const edge = inputs("edge-service");
    expect(edge.mode).toEqual({ global: true });
    expect(edge.taskSpec.placement).toEqual({ constraints: ["node.labels.appstack.edge==true"] });
    expect(edge.endpointSpec.ports).toEqual([
      { targetPort: 80, publishedPort: 80, protocol: "tcp", publishMode: "host" },
      { targetPort: 443, publishedPort: 443, protocol: "tcp", publishMode: "host" },
      { targetPort: 443, publishedPort: 443, protocol: "udp", publishMode: "host" },
    ]);
    expect(edge.updateConfig).toMatchObject({ order: "stop-first", failureAction: "rollback" });
    const caddy = inputs("edge-caddyfile");
    expect(caddy.dataRaw).toBe(swarmCaddyfile({ domain: "api.example.com", acmeEmail: "ops@example.com", apiService: "appstack-swarm-example-api", apiPort: 3000 }));
    expect(caddy.dataRaw).toContain("\t\t\tname tasks.appstack-swarm-example-api\n\t\t\tport 3000\n\t\t\trefresh 1s\n");
    expect(caddy.dataRaw).toContain("\tadmin off\n");
    expect(edge.taskSpec.containerSpec.configs).toEqual([{ configId: UNKNOWN, configName: caddy.name, fileName: "/etc/caddy/Caddyfile", fileUid: "0", fileGid: "0", fileMode: 0o444 }]);
    // The certificates' volume is the host-mode edge's, protected.
    expect(edge.taskSpec.containerSpec.mounts[0]).toEqual({ type: "volume", source: "appstack-swarm-example-edge-data", target: "/data" });
  });

  it("rolls out in order: data stores -> backup -> migrations -> API -> worker and edge -> frontend", () => {
    const deps = (name: string) => byName(name).options.dependsOn;
    const urn = (name: string) => byName(name).urn;
    expect(deps("backup-dump-run")).toContain(urn("postgres-service"));
    expect(deps("api-migrate-run")).toEqual(expect.arrayContaining([urn("postgres-service"), urn("redis-service"), urn("backup-dump-run")]));
    expect(deps("api-service")).toContain(urn("api-migrate-run"));
    expect(deps("worker-service")).toContain(urn("api-service"));
    expect(deps("edge-service")).toContain(urn("api-service"));
    expect(deps("frontend-deployment")).toEqual(expect.arrayContaining([urn("api-service"), urn("worker-service"), urn("edge-service")]));
  });

  it("the outputs status and the smoke check read are those of host mode: the API's health URL behind the edge", () => {
    expect(plan.outputs.endpoints).toMatchObject({ api: { url: "https://api.example.com", healthUrl: "https://api.example.com/api/v1/health/ready" } });
  });

  it("every input of its services, secrets, config and network is in the engine audit, none newer than the oldest supported engine's API", () => {
    const audited = new Set(SWARM_INPUT_AUDIT.map((a) => a.input));
    const found = plan.resources.flatMap((r) => {
      const kind = SWARM_AUDITED_TYPES[r.type];
      if (!kind || (kind === "network" && r.inputs.driver !== "overlay")) return [];
      return containerInputPaths(r.inputs).map((p) => `${kind}: ${p}`);
    });
    expect(found.length).toBeGreaterThan(60);
    expect([...new Set(found.filter((f) => !audited.has(f)))]).toEqual([]);
    const tooNew = SWARM_INPUT_AUDIT.filter((a) => /^\d/.test(a.since) && compareApiVersions(a.since, MIN_DOCKER_ENGINE.apiVersion) > 0);
    expect(tooNew).toEqual([]);
  });

  it("the policy pack passes on it with production's policy config", () => {
    const settings = loadPolicyConfig(path.join(ROOT, "policy", "config.production.json"), RULES, "policy/config.production.json");
    const report = evaluateRules(recorded.map(viewFromWire), RULES, settings);
    expect(report.violations).toEqual([]);
    expect(report.ran.length).toBe(RULES.length);
  });

  it("npm run plan prints it with Service and Secret resources and no secret in any env", () => {
    const r = runOps(["plan", "--stack-file", STACK_FILE, "--format", "json"]);
    expect(r.code, r.stderr).toBe(0);
    const printed = JSON.parse(r.stdout) as Plan;
    const types = (name: string) => printed.resources.find((x) => x.name === name)?.type;
    expect(types("api-service")).toBe(SERVICE);
    expect(types("worker-service")).toBe(SERVICE);
    expect(printed.resources.filter((x) => x.type === SECRET_TYPE)).toHaveLength(6);
    expect(printed.resources.flatMap((x) => x.secretPaths.filter((p) => /env/i.test(p)))).toEqual([]);
  });
});

describe("moving a host stack to swarm mode", () => {
  let host: Plan;
  let swarm: Plan;
  beforeAll(async () => {
    host = (await planInProcess({ stack: "production" })).plan;
    swarm = (
      await planInProcess({
        stack: "production",
        edit: (c) => {
          c["appstack:docker"] = JSON.stringify({ ...JSON.parse(c["appstack:docker"]), mode: "swarm" });
          for (const store of ["postgres", "redis"]) c[`appstack:${store}`] = JSON.stringify({ ...JSON.parse(c[`appstack:${store}`]), node: "data-1" });
        },
      })
    ).plan;
  });

  it("keeps every data volume: the offline diff neither deletes nor replaces one, and flags the data stores' downtime as destructive", () => {
    const d = compareStacks(host, swarm);
    const change = (name: string) => d.resources.find((r) => r.name === name);
    const volumes = host.resources.filter((r) => r.type === "docker:index/volume:Volume");
    expect(volumes.map((v) => v.name).sort()).toEqual(["backup-data", "edge-config", "edge-data", "postgres-data", "redis-data"]);
    for (const volume of volumes) expect(d.resources.find((r) => r.urn === volume.urn), volume.name).toBeUndefined();
    expect(change("postgres-server")).toMatchObject({ action: "delete", destructive: expect.stringContaining("postgres server") });
    expect(change("redis-server")).toMatchObject({ action: "delete", destructive: expect.stringContaining("redis server") });
    expect(change("postgres-service")).toMatchObject({ action: "create" });
    // The generated passwords stay: the data directory keeps the one it was created with.
    expect(change("postgres-password")).toBeUndefined();
    expect(change("redis-password")).toBeUndefined();
  });

  it("a change that did delete a data volume would be flagged destructive", () => {
    const renamed = structuredClone(swarm);
    const volume = renamed.resources.find((r) => r.name === "postgres-data")!;
    volume.urn = volume.urn.replace(/::postgres-data$/, "::postgres-data-v2");
    volume.name = "postgres-data-v2";
    const d = compareStacks(host, renamed);
    expect(d.resources.find((r) => r.name === "postgres-data")).toMatchObject({ action: "delete", destructive: expect.stringContaining("protected") });
    expect(d.resources.find((r) => r.name === "postgres-data-v2")).toMatchObject({ action: "create" });
  });
});
