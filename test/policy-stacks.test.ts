import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { exampleBlock, exampleById, renderExample } from "../ops/cli/docs";
import { exitCodeOf, renderPolicyJson, runPolicy } from "../ops/offline/policy";
import { EXIT } from "../ops/shared/errors";
import type { RecordedResource } from "../ops/offline/offline-runtime";
import { loadPolicyConfig } from "../policy/config";
import { evaluateRules } from "../policy/evaluate";
import { RULES } from "../policy/rules";
import { label, TYPES, viewFromWire, type ResourceView } from "../policy/view";
import { repoStacks, ROOT, runOps, STACK_TRACE } from "./helpers/cli";
import { stackResources } from "./helpers/policy";
import { exclusiveEvaluation, importProgram } from "./helpers/pulumi";

const production = () => loadPolicyConfig(path.join(ROOT, "policy/config.production.json"), RULES);

/** Sets (or with value undefined, removes) one env entry of a container view, plain or secret. */
function setEnv(r: ResourceView, name: string, value: string | undefined, secret = false): void {
  const envs = (r.props.envs as string[]).filter((e) => !e.startsWith(`${name}=`));
  const secrets = new Set<string>();
  (r.props.envs as string[]).forEach((e, i) => {
    if (!e.startsWith(`${name}=`) && r.secretPaths?.has(`envs[${i}]`)) secrets.add(e);
  });
  if (value !== undefined) envs.push(`${name}=${value}`);
  if (secret && value !== undefined) secrets.add(`${name}=${value}`);
  r.props.envs = envs;
  const paths = new Set([...(r.secretPaths ?? [])].filter((p) => !p.startsWith("envs[")));
  envs.forEach((e, i) => secrets.has(e) && paths.add(`envs[${i}]`));
  r.secretPaths = paths;
}

describe("the rules over the real production stack", () => {
  let recorded: RecordedResource[];
  beforeAll(async () => {
    recorded = await stackResources("production");
  }, 60_000);

  /** Fresh views of the production stack, one mutation applied, judged with production's policy config. */
  const violatedBy = (mutate: (byName: (n: string) => ResourceView, all: ResourceView[]) => void): string[] => {
    const views = recorded.map(viewFromWire);
    // Outside dev the API's containers are named by their release slot: api-<slot>-<i>.
    const byName = (n: string) => {
      const found = views.find((v) => v.name === n || v.name.replace(/^api-[0-9a-f]{8}-/, "api-") === n);
      if (!found) throw new Error(`no ${n} in ${views.map((v) => v.name).join(", ")}`);
      return found;
    };
    mutate(byName, views);
    return [...new Set(evaluateRules(views, RULES, production()).violations.map((v) => v.rule))].sort();
  };

  it("as declared, it breaks no rule", () => {
    expect(violatedBy(() => {})).toEqual([]);
  });

  // Each change a transform, a component edit or a hand-written resource could make, and the rules that must catch it.
  const cases: [string, string[], (byName: (n: string) => ResourceView, all: ResourceView[]) => void][] = [
    ["an API replica without a health check", ["service-health-check"], (n) => void delete n("api-1").props.healthcheck],
    ["a worker the deploy does not wait for", ["service-waits-healthy"], (n) => void (n("worker-1").props.wait = false)],
    ["an edge proxy that stays down after a crash", ["service-restart-policy"], (n) => void (n("edge-proxy").props.restart = "no")],
    ["a migration job without memory or CPU limits", ["container-cpu-limit", "container-memory-limit"], (n) => {
      delete n("api-migrate-run").props.memory;
      delete n("api-migrate-run").props.cpus;
    }],
    ["unbounded logs", ["container-log-rotation"], (n) => void delete n("postgres-server").props.logOpts],
    ["a privileged container", ["container-not-privileged"], (n) => void (n("redis-server").props.privileged = true)],
    ["a migration that re-runs", ["job-runs-once"], (n) => void (n("api-migrate-run").props.mustRun = true)],
    ["a worker killed mid-job", ["worker-graceful-stop"], (n) => void (n("worker-2").props.stopTimeout = 10)],
    ["an API container removed with its requests in flight", ["api-graceful-stop"], (n) => void delete n("api-2").props.destroyGraceSeconds],
    ["a transform that gives the worker's health check a startInterval (Docker 25+ only)", ["container-engine-compatible"], (n) => {
      n("worker-1").props.healthcheck = { ...(n("worker-1").props.healthcheck as object), startInterval: "1s" };
    }],
    ["a container without a role", ["container-declares-role"], (n) => {
      const w = n("worker-1");
      w.props.labels = (w.props.labels as { label: string }[]).filter((l) => l.label !== "appstack.role");
    }],
    ["a moving API tag", ["pinned-images"], (n) => void (n("api-image").props.name = "ghcr.io/acme/appstack-api:latest")],
    ["a published Postgres port", ["data-store-no-host-port"], (n) => void (n("postgres-server").props.ports = [{ internal: 5432, external: 5432 }])],
    ["a published API port", ["only-edge-publishes-ports"], (n) => void (n("api-2").props.ports = [{ internal: 3000, external: 3000 }])],
    ["an unprotected database volume", ["protected-data-volumes"], (n) => void (n("postgres-data").protect = false)],
    ["dumps that never leave the database's host", ["offsite-backups"], (_, all) => void all.splice(all.findIndex((v) => v.name === "backup-offsite"), 1)],
    ["no scheduled dumps between deploys", ["offsite-backups"], (_, all) => {
      for (const name of ["backup-offsite", "backup-schedule"]) all.splice(all.findIndex((v) => v.name === name), 1);
    }],
    ["a worker without REDIS_URL", ["required-env-wired"], (n) => setEnv(n("worker-1"), "REDIS_URL", undefined)],
    ["an API key in plain text", ["secret-env-is-secret"], (n) => setEnv(n("api-1"), "OPENAI_API_KEY", "sk-test", false)],
    ["a container whose state keeps its credentials readable", ["secret-env-is-secret"], (n) => void (n("worker-2").additionalSecretOutputs = [])],
    ["a credential in the browser bundle", ["frontend-secret-env-sensitive", "no-secrets-in-frontend-bundle"], (n) => {
      n("frontend-env-VITE_API_URL").props.key = "VITE_OPENAI_API_KEY";
    }],
    ["a short generated JWT secret", ["generated-secret-length"], (n) => void (n("appstack-secret-jwt-secret").props.length = 16)],
    ["CORS open to every site", ["cors-matches-frontend", "cors-restricted-to-frontend", "https-public-urls"], (n) => setEnv(n("api-1"), "CORS_ORIGIN", "*")],
    ["CORS for another frontend", ["cors-matches-frontend", "cors-restricted-to-frontend"], (n) => setEnv(n("api-2"), "CORS_ORIGIN", "https://old.example.com")],
    ["the frontend calling the staging API", ["frontend-api-url-matches-api"], (n) => void (n("frontend-env-VITE_API_URL").props.value = "https://api.staging.example.com")],
    ["an http frontend URL", ["cors-restricted-to-frontend", "https-public-urls"], (n) => setEnv(n("api-1"), "FRONTEND_URL", "http://app.example.com")],
    ["development mode in production", ["node-env-production"], (n) => setEnv(n("worker-1"), "NODE_ENV", "development")],
    ["an API that starts before its migrations", ["rollout-order"], (n, all) => {
      const job = all.find((v) => v.name === "api-migrate-run")!;
      n("api-1").dependencies = n("api-1").dependencies.filter((d) => d !== job.urn);
    }],
    ["an edge proxy that routes to replicas without checking them", ["edge-checks-api-health"], (n) => {
      const uploads = n("edge-config-run").props.uploads as { content: string }[];
      uploads[0].content = uploads[0].content.replace(/^\s*health_uri .*$/m, "");
    }],
    ["a worker that keeps Docker's default capabilities", ["container-drops-capabilities"], (n) => void delete n("worker-1").props.capabilities],
    ["an edge proxy that may chown any file", ["container-drops-capabilities"], (n) => {
      n("edge-proxy").props.capabilities = { drops: ["ALL"], adds: ["NET_BIND_SERVICE", "CHOWN"] };
    }],
    ["a migration a setuid binary could raise to root", ["container-no-new-privileges"], (n) => void (n("api-migrate-run").props.securityOpts = [])],
    ["an API whose image files can be rewritten", ["container-read-only-rootfs"], (n) => void (n("api-1").props.readOnly = false)],
    ["a Redis outside its process-limited slice", ["container-pids-limit"], (n) => void delete n("redis-server").props.cgroupParent],
    ["Postgres as root", ["data-store-non-root"], (n) => void delete n("postgres-server").props.user],
    ["an edge proxy on the data stores' network", ["edge-isolated-from-data-stores"], (n) => {
      n("edge-proxy").props.networksAdvanced = [{ name: "appstack-production-edge" }, { name: "appstack-production" }];
    }],
    ["an edge config job on a network", ["edge-isolated-from-data-stores"], (n) => {
      n("edge-config-run").props.networksAdvanced = [{ name: "appstack-production-edge" }];
    }],
    ["a Docker host over plain tcp", ["docker-transport-secure"], (n) => void (n("appstack-docker").props.host = "tcp://prod.example.com:2375")],
    ["ssh that accepts any host key", ["docker-transport-secure"], (n) => {
      n("appstack-docker").props.sshOpts = JSON.stringify(["-o", "StrictHostKeyChecking=no", "-o", "ProxyCommand=nc %h %p"]);
    }],
    ["a Vercel project without the headers route", ["security-headers"], (_, all) => {
      all.splice(all.findIndex((v) => v.type === "vercel:index/projectRoute:ProjectRoute"), 1);
    }],
  ];

  for (const [what, rules, mutate] of cases) {
    it(`catches ${what}: ${rules.join(", ")}`, () => {
      expect(violatedBy(mutate)).toEqual(rules);
    });
  }

  it("every rule is exercised by at least one of these changes (the swarm-only ones below, over the swarm example)", () => {
    const exercised = new Set([...cases, ...SWARM_CASES].flatMap(([, rules]) => rules));
    expect(RULES.map((r) => r.name).filter((n) => !exercised.has(n))).toEqual([]);
  });

  it("the production stack has what the rules look for (they are not vacuously true)", () => {
    const views = recorded.map(viewFromWire);
    const services = views.filter((v) => v.type === TYPES.container).map((v) => `${label(v, "appstack.service")}/${label(v, "appstack.role")}`);
    expect(new Set(services)).toEqual(
      new Set(["postgres/service", "redis/service", "backup/job", "backup-schedule/service", "backup-offsite/service", "migrate/job", "api/service", "worker/service", "edge/service", "edge/job"]),
    );
    expect(views.some((v) => v.type === TYPES.vercelEnv)).toBe(true);
    expect(views.some((v) => v.type === "vercel:index/projectRoute:ProjectRoute")).toBe(true);
  });
});

type Mutation = (byName: (n: string) => ResourceView, all: ResourceView[]) => void;

/** Changes to the swarm example's services, and the swarm-only rules that must catch each. */
const SWARM_CASES: [string, string[], Mutation][] = [
  ["an API service that stops a task before its successor is healthy", ["service-rolling-update"], (n) => void ((n("api-service").props.updateConfig as { order: string }).order = "stop-first")],
  ["a worker service that pauses on a failed update", ["service-rollback-on-failure"], (n) => void ((n("worker-service").props.updateConfig as { failureAction: string }).failureAction = "pause")],
  ["a secret in a service's env", ["service-secrets-as-files"], (n) => {
    const spec = (n("api-service").props.taskSpec as { containerSpec: { env: Record<string, string> } }).containerSpec;
    spec.env.OPENAI_API_KEY = "sk-test";
  }],
  ["a Postgres service Swarm may move", ["data-store-pinned"], (n) => void ((n("postgres-service").props.taskSpec as { placement: { constraints: string[] } }).placement.constraints = [])],
];

describe("the swarm-only rules over the swarm example", () => {
  let recorded: RecordedResource[];
  beforeAll(async () => {
    recorded = await stackResources("production", path.join(ROOT, "examples/Pulumi.swarm-example.yaml"));
  }, 60_000);

  const violatedBy = (mutate: Mutation): string[] => {
    const views = recorded.map(viewFromWire);
    const byName = (n: string) => views.find((v) => v.name === n)!;
    mutate(byName, views);
    return [...new Set(evaluateRules(views, RULES, production()).violations.map((v) => v.rule))].sort();
  };

  it("as declared, it breaks no rule", () => {
    expect(violatedBy(() => {})).toEqual([]);
  });

  for (const [what, rules, mutate] of SWARM_CASES) {
    it(`catches ${what}: ${rules.join(", ")}`, () => {
      expect(violatedBy(mutate)).toEqual(rules);
    });
  }
});

describe("npm run policy over the repository's stacks and the unready fixture", () => {
  // One `policy --all` (the CI entry point) checks every stack file with its own policy config, one process each.
  let all: ReturnType<typeof runOps>;
  beforeAll(() => {
    all = runOps(["policy", "--all"], { timeout: 180_000 });
  }, 200_000);

  it("--all passes: every stack file in the repository is ready under its own policy config", () => {
    expect(all.stderr).not.toMatch(STACK_TRACE);
    expect(all.code).toBe(EXIT.ok);
  });

  for (const stack of repoStacks()) {
    it(`stack ${stack} passes with policy/config.${stack}.json`, () => {
      const section = all.stdout.split(/(?=^Policy pack )/m).find((s) => s.includes(`on stack "${stack}" `));
      expect(section).toContain(`Policy pack appstack-readiness on stack "${stack}" (Pulumi.${stack}.yaml), config policy/config.${stack}.json`);
      expect(section).toMatch(/No violations\.|Advisory only: the deploy may proceed\./);
    });
  }

  const UNREADY = "test/fixtures/Pulumi.unready.yaml";

  it(`the unready fixture fails production's policy with exit ${EXIT.policy}, naming each rule it breaks, as docs/readiness.md shows`, () => {
    const example = exampleById("policy-unready");
    expect(example.argv).toEqual(["policy", "--stack", "production", "--stack-file", UNREADY]);
    const r = runOps(example.argv);
    expect(exampleBlock(fs.readFileSync(path.join(ROOT, example.file), "utf8"), example.id), "stale example: run npm run docs").toBe(renderExample(example, r));
    expect(r.code).toBe(EXIT.policy);
    expect(r.stderr).toBe("");
    const broken = [
      "data-store-no-host-port",
      "docker-transport-secure",
      "https-public-urls",
      "node-env-production",
      "offsite-backups",
      "only-edge-publishes-ports",
      "pinned-images",
      "protected-data-volumes",
      "worker-graceful-stop",
    ];
    const named = [...r.stdout.matchAll(/^MANDATORY (\S+)\s+(\S+) \(/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect([...new Set(named.map((n) => n.split(" ")[0]))].sort()).toEqual(broken);
    expect(named).toEqual(
      expect.arrayContaining([
        "pinned-images api-image",
        "pinned-images postgres-image",
        "pinned-images redis-image",
        "data-store-no-host-port postgres-server",
        "data-store-no-host-port redis-server",
        "only-edge-publishes-ports api-1",
        "protected-data-volumes postgres-data",
        "protected-data-volumes redis-data",
        "https-public-urls api-1",
        "node-env-production api-1",
        "node-env-production worker-1",
        "node-env-production api-migrate-run",
        "worker-graceful-stop worker-1",
        "offsite-backups postgres-server",
        "docker-transport-secure appstack-docker",
      ]),
    );
    expect(r.stdout).toContain(`Not ready to deploy: `);
    for (const rule of broken) expect(r.stdout.trimEnd().split("\n").at(-1)).toContain(rule);
  });

  // The json format in this process: what `policy --format json` prints is renderPolicyJson of runPolicy's report, and
  // its exit code exitCodeOf (the command's own process, its exit code and a real pipe: the test above and cli-output).
  it("json output carries every violation with its rule, level and resource, and never a secret value", async () => {
    const unready = await exclusiveEvaluation(() => runPolicy({ root: ROOT, stack: "production", stackFile: path.join(ROOT, UNREADY), load: importProgram }));
    const r = { code: exitCodeOf(unready), stdout: renderPolicyJson(unready) };
    expect(r.code).toBe(EXIT.policy);
    const report = JSON.parse(r.stdout) as { mandatory: number; violations: { rule: string; level: string; resourceName: string; urn: string; message: string }[] };
    expect(report.mandatory).toBe(report.violations.length);
    expect(report.violations.every((v) => v.level === "mandatory" && v.urn.startsWith("urn:pulumi:production::appstack::"))).toBe(true);
    expect(r.stdout).not.toMatch(/mock-[a-z-]+-password|(postgresql|redis):\/\/[^"\s]*:[^"\s@]+@/);
  });

  it("under its own environment's policy (dev, advisory) the same stack only warns", async () => {
    const views = (await stackResources("dev", path.join(ROOT, UNREADY))).map(viewFromWire);
    const { violations } = evaluateRules(views, RULES, loadPolicyConfig(path.join(ROOT, "policy/config.dev.json"), RULES));
    expect(violations.map((v) => `${v.level} ${v.rule}`)).toEqual(["advisory worker-graceful-stop", "advisory offsite-backups"]);
  }, 60_000);
});
