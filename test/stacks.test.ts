import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { CONTAINER_INPUT_AUDIT, containerInputPaths, NEWER_API_INPUTS } from "../config";
import { exampleBlock, exampleById, renderExample } from "../ops/cli/docs";
import { renderPlanMarkdown, type Plan, type PlanResource } from "../ops/offline/plan";
import { longestWaitChain, renderWaitChains } from "../ops/offline/rollout-waits";
import { SECURE_PLACEHOLDER } from "../ops/offline/stack-files";
import { portablePlan, repoStacks, ROOT, runOps, runOpsInProcess, sharedOps, STACK_TRACE, type CliResult } from "./helpers/cli";
import { SETUP_TIMEOUT_MS } from "./helpers/declared-stack";
import { logicalName, planInProcess } from "./helpers/pulumi";

/**
 * The plan of one stack: `npm run plan -- <args> --format json` in its own
 * process, which loads index.ts the way the language host does; run once per
 * `npm test` and shared with the other test files that read it.
 */
async function plan(args: string[]): Promise<{ plan: Plan; raw: string; run: CliResult }> {
  const r = await sharedOps(["plan", ...args, "--format", "json"]);
  if (r.code !== 0 || r.stderr !== "") throw new Error(`plan ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return { plan: JSON.parse(r.stdout) as Plan, raw: r.stdout, run: r };
}

const byName = (p: Plan, name: string): PlanResource => {
  const found = p.resources.find((r) => r.name === name || logicalName(r.name) === name);
  if (!found) throw new Error(`${name} not in plan: ${p.resources.map((r) => r.name).join(", ")}`);
  return found;
};

const label = (r: PlanResource, key: string) => (r.inputs.labels as { label: string; value: string }[] | undefined)?.find((l) => l.label === key)?.value;

const containers = (p: Plan) => p.resources.filter((r) => r.type === "docker:index/container:Container");

/** Leaks: the mock's generated passwords and the stand-in for secure values must never print. */
function expectNoSecretValues(raw: string): void {
  expect(raw).not.toMatch(/mock-[a-z-]+-password/);
  expect(raw).not.toContain(SECURE_PLACEHOLDER);
  expect(raw).not.toMatch(/(postgresql|redis):\/\/[^"\s]*:[^"\s@]+@/);
}

/**
 * Every wait between the parts of a stack, with its reason (the README's
 * "Rollout order" says each): a plan may hold no edge between two parts that
 * is not listed here, so a new one needs a reason first.
 */
const ROLLOUT_EDGES: Record<string, string> = {
  "backup job -> postgres": "pg_dump needs the server healthy, and nothing else",
  "backup-schedule -> postgres": "the scheduled dumps need the server healthy, and nothing else",
  "backup-offsite -> backup-schedule": "the shipper starts with a dump to ship, so its first round turns it healthy",
  "migrate job -> postgres": "the migrations change the schema",
  "migrate job -> redis": "they run with the API's env; an app that connects to Redis as it starts must find it",
  "migrate job -> backup job": "a migration that damages data must have a dump to restore",
  "api -> migrate job": "new API code runs only on the migrated schema (a failed migration stops it)",
  "worker -> api": "the new worker runs once the same release's API is ready",
  "edge job -> api": "the edge is switched to the new API containers once they are ready",
  "edge job -> edge": "the config is applied to the running proxy",
  "frontend -> api": "last: the frontend calls the API",
  "frontend -> worker": "last: it may rely on what this release added behind the API",
  "vercel deployment -> api": "last: the frontend calls the API",
  "vercel deployment -> worker": "last: it may rely on what this release added behind the API",
  "vercel deployment -> edge job": "the frontend reaches the API through the switched edge",
  "vercel deployment -> vercel variable": "the build reads the variables",
  "vercel deployment -> vercel route": "its first response carries the security headers",
  "vercel deployment -> vercel project": "a deployment of that project",
  "vercel variable -> vercel project": "a variable of that project",
  "vercel route -> vercel project": "a route of that project",
  "vercel domain -> vercel project": "a domain of that project",
};

/** A part of the stack: an appstack container by its service label (a job says so), a Vercel resource by its kind. */
function partOf(r: PlanResource): string | undefined {
  if (r.type === "docker:index/container:Container") {
    const service = label(r, "appstack.service");
    return service && (label(r, "appstack.role") === "job" ? `${service} job` : service);
  }
  const vercel: Record<string, string> = {
    "vercel:index/deployment:Deployment": "vercel deployment",
    "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable": "vercel variable",
    "vercel:index/projectRoute:ProjectRoute": "vercel route",
    "vercel:index/project:Project": "vercel project",
    "vercel:index/projectDomain:ProjectDomain": "vercel domain",
  };
  return vercel[r.type];
}

describe("every stack file in the repository", () => {
  const stacks = repoStacks();
  // All of them at once: each is its own process.
  beforeAll(() => Promise.all(stacks.map((stack) => plan(["--stack", stack]))), SETUP_TIMEOUT_MS);

  it("the repository has the three environments", () => {
    expect(stacks).toEqual(expect.arrayContaining(["dev", "staging", "production"]));
  });

  for (const stack of stacks) {
    describe(`stack ${stack}`, () => {
      let p: Plan;
      let raw: string;
      beforeAll(async () => {
        ({ plan: p, raw } = await plan(["--stack", stack]));
      });

      it("validates", async () => {
        const r = await runOpsInProcess(["validate", "--stack", stack]);
        expect(r.code).toBe(0);
        expect(r.stdout).toContain("configuration is valid");
        // The repository's staging/production files carry placeholders, never real ciphertext; validate names each.
        if (stack !== "dev") expect(r.stdout).toContain(`pulumi config set -s ${stack} --secret OPENAI_API_KEY`);
      });

      it("its plan is the reviewed one in test/fixtures/plans (after a change on purpose: npx vitest run test/stacks.test.ts -u)", async () => {
        // Every change to what a stack declares shows up in review as a diff of this file; swarm mode left all three as they were.
        await expect(portablePlan(raw)).toMatchFileSnapshot(path.join(ROOT, "test", "fixtures", "plans", `${stack}.json`));
      });

      it("every long-running container has a health check, restart policy, memory limit, log rotation and waits healthy", () => {
        const servers = containers(p).filter((c) => label(c, "appstack.role") === "service");
        expect(servers.map((c) => logicalName(c.name))).toEqual(expect.arrayContaining(["postgres-server", "redis-server", "api-1", "worker-1"]));
        for (const c of servers) {
          const hc = c.inputs.healthcheck as { tests: string[] };
          expect(hc.tests.length).toBeGreaterThan(1);
          expect(c.inputs.restart).toBe("unless-stopped");
          expect(c.inputs.memory).toBeGreaterThan(0);
          expect(c.inputs.wait).toBe(true);
          expect(c.inputs.logOpts).toMatchObject({ "max-size": expect.any(String) });
        }
      });

      it("every container input is in the engine audit, and none needs a newer Docker Engine API than the oldest supported", () => {
        const audited = new Set(CONTAINER_INPUT_AUDIT.map((a) => a.input));
        const newer = new Set(NEWER_API_INPUTS.map((n) => n.input));
        const found = containers(p).flatMap((c) => containerInputPaths(c.inputs).map((input) => `${logicalName(c.name)}: ${input}`));
        expect(found.length).toBeGreaterThan(20);
        expect(found.filter((f) => !audited.has(f.split(": ")[1]))).toEqual([]);
        expect(found.filter((f) => newer.has(f.split(": ")[1]))).toEqual([]);
      });

      it("no secret appears in plain text; every credential path is listed", () => {
        expectNoSecretValues(raw);
        for (const c of containers(p)) {
          const envs = (c.inputs.envs as string[] | undefined) ?? [];
          envs.forEach((e, i) => {
            if (/PASSWORD|AUTH|_URL=.*@/.test(e) || e === "[secret]") {
              expect(e).toBe("[secret]");
              expect(c.secretPaths).toContain(`envs[${i}]`);
            }
          });
        }
        expect(p.outputs).toMatchObject({ connections: { databaseUrl: "[secret]", redisUrl: "[secret]" } });
        expect(p.outputSecretPaths).toEqual(expect.arrayContaining(["connections.databaseUrl", "connections.redisUrl"]));
      });

      it("publishes ports only on 127.0.0.1 in dev, and only from the edge proxy elsewhere", () => {
        for (const c of containers(p)) {
          const ports = (c.inputs.ports as { ip?: string }[] | undefined) ?? [];
          if (stack === "dev") for (const port of ports) expect(port.ip).toBe("127.0.0.1");
          else if (c.name !== "edge-proxy") expect(ports).toEqual([]);
        }
      });

      it("one-shot jobs never restart", () => {
        for (const c of containers(p).filter((x) => label(x, "appstack.role") === "job")) {
          expect(c.inputs).toMatchObject({ restart: "no", mustRun: false, attach: true });
        }
      });

      it("rolls out in order: data stores healthy -> migrations -> API -> worker -> frontend", () => {
        const deps = (name: string) => byName(p, name).options.dependsOn;
        const urn = (name: string) => byName(p, name).urn;
        expect(deps("api-migrate-run")).toEqual(expect.arrayContaining([urn("postgres-server"), urn("redis-server")]));
        // The pre-deploy dump waits for Postgres and for no other container: a slow Redis must not delay it.
        const backup = p.resources.find((r) => r.name === "backup-dump-run");
        if (backup) expect(containers(p).filter((c) => backup.options.dependsOn.includes(c.urn)).map((c) => c.name)).toEqual(["postgres-server"]);
        expect(deps("api-1")).toContain(urn("api-migrate-run"));
        expect(deps("worker-1")).toContain(urn("api-1"));
        const frontend = p.resources.find((r) => r.name === "frontend-deployment" || r.name === "frontend-server")!;
        expect(frontend.options.dependsOn).toEqual(expect.arrayContaining([urn("api-1"), urn("worker-1")]));
        if (stack !== "dev") {
          // The edge is switched to the new API containers once they are ready, and the frontend waits for that.
          expect(deps("edge-config-run")).toEqual(expect.arrayContaining([urn("api-1"), urn("edge-proxy")]));
          expect(frontend.options.dependsOn).toContain(urn("edge-config-run"));
        }
      });

      it("every wait between two parts of the stack has a stated reason", () => {
        const byUrn = new Map(p.resources.map((r) => [r.urn, r]));
        const edges = new Set<string>();
        for (const r of p.resources) {
          const from = partOf(r);
          for (const dep of from ? r.options.dependsOn : []) {
            const to = byUrn.has(dep) ? partOf(byUrn.get(dep)!) : undefined;
            if (to) edges.add(`${from} -> ${to}`);
          }
        }
        expect(edges.size).toBeGreaterThan(5);
        expect([...edges].filter((e) => !(e in ROLLOUT_EDGES)), "edges with no reason in ROLLOUT_EDGES").toEqual([]);
      });

      it("the API's CORS origin is the frontend's public URL", () => {
        const endpoints = p.outputs.endpoints as { api: { url: string }; frontend: { url: string } };
        const envs = byName(p, "api-1").inputs.envs as string[];
        expect(envs).toContain(`CORS_ORIGIN=${endpoints.frontend.url}`);
        if (stack !== "dev") expect(endpoints.api.url).toMatch(/^https:\/\//);
        if (stack !== "dev") expect(endpoints.frontend.url).toMatch(/^https:\/\//);
      });

      it("every child is parented to its component and uses the stack's Docker provider", () => {
        for (const r of p.resources.filter((x) => x.type.startsWith("docker:index/"))) {
          expect(r.parent).not.toBe("");
        }
        expect(byName(p, "appstack-docker").inputs.host).toMatch(stack === "dev" ? /^unix:\/\// : /^ssh:\/\//);
      });
    });
  }

  it("the README states each stack's longest chain of health-gated waits and its worst case, as the plans declare them", async () => {
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    const chains = await Promise.all(stacks.map(async (stack) => longestWaitChain((await plan(["--stack", stack])).plan)));
    expect(readme).toContain(renderWaitChains(chains));
  });

  it("production shows the API, worker, migrations job, data stores and the Vercel project, variables and deployment", async () => {
    const { plan: p } = await plan(["--stack", "production"]);
    for (const name of ["api-1", "api-2", "worker-1", "api-migrate-run", "postgres-server", "redis-server", "edge-proxy", "frontend-project", "frontend-env-VITE_API_URL", "frontend-deployment"]) {
      expect(byName(p, name)).toBeDefined();
    }
    expect(byName(p, "frontend-vercel").inputs.apiToken).toBe("[secret]");
  });

  it("production protects and retains its data volumes", async () => {
    const { plan: p } = await plan(["--stack", "production"]);
    for (const name of ["postgres-data", "redis-data"]) {
      expect(byName(p, name).options).toMatchObject({ protect: true, retainOnDelete: true });
    }
  });

  it("the data-store servers are replaced delete-first, so two never share a data directory", async () => {
    const { plan: p } = await plan(["--stack", "production"]);
    expect(byName(p, "postgres-server").options.deleteBeforeReplace).toBe(true);
    expect(byName(p, "redis-server").options.deleteBeforeReplace).toBe(true);
  });

  it("servers depend on their volume, password and the stack network", async () => {
    const { plan: p } = await plan(["--stack", "staging"]);
    const deps = byName(p, "postgres-server").options.dependsOn;
    for (const name of ["postgres-data", "postgres-password", "appstack-network", "postgres-image"]) {
      expect(deps).toContain(byName(p, name).urn);
    }
  });
});

describe("plan", () => {
  // The fixture's plan in this process (planInProcess): the command's own process is the repository stacks' above.
  it("never decrypts secure values: they print as [secret] and their paths are listed", async () => {
    const r = await planInProcess({ stackFile: path.join(ROOT, "test/fixtures/Pulumi.external.yaml") });
    const { plan: p, raw } = { plan: JSON.parse(r.stdout) as Plan, raw: r.stdout };
    expectNoSecretValues(raw);
    expect(raw).not.toContain("c2VjcmV0LWNpcGhlcnRleHQ");
    expect(containers(p)).toEqual([]);
    expect(p.outputs).toMatchObject({
      connections: { databaseUrl: "[secret]", redisUrl: "[secret]" },
      postgres: { host: "[secret]" },
    });
  });

  it("prints values only a deploy knows as [unknown]", async () => {
    const { plan: p } = await plan(["--stack", "dev"]);
    expect(byName(p, "postgres-server").inputs.image).toBe("[unknown]");
  });

  // The markdown of the staging plan: `--format markdown` prints renderPlanMarkdown of the same plan
  // (test/cli-output.test.ts holds the command to that, through a real pipe).
  it("renders a markdown table for people", async () => {
    const { plan: p, run } = await plan(["--stack", "staging"]);
    const markdown = renderPlanMarkdown(p);
    expect(run.code).toBe(0);
    expect(markdown).toContain("# Plan: appstack / staging");
    expect(markdown).toMatch(/\| \d+ \| `postgres-server` \| `docker:index\/container:Container` \| postgres \|/);
    expectNoSecretValues(markdown);
  });
});

/**
 * Refusals come from the CLI's own entry (`runCliOutcome`, what the process
 * runs), called in this process; one of them, the plan of an invalid stack,
 * runs as its own process: that nothing reaches stdout is the process's.
 */
describe("bad input: a clear message, a non-zero exit, no stack trace, no partial plan", () => {
  it("validate names all three mistakes of a stack file, exactly as the README's example shows", async () => {
    const example = exampleById("validate-three-mistakes");
    const r = await runOpsInProcess(example.argv);
    expect(exampleBlock(fs.readFileSync(path.join(ROOT, example.file), "utf8"), example.id), "stale example: run npm run docs").toBe(renderExample(example, r));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("has 3 problems");
    expect(r.stderr).toContain('appstack:postgres.image = "postgres:latest"');
    expect(r.stderr).toContain("appstack:postgres.versoin");
    expect(r.stderr).toContain("appstack:redis.hostPort = 6379");
    expect(r.stderr).not.toMatch(STACK_TRACE);
  });

  it("plan of an invalid stack prints the errors and no plan", () => {
    const r = runOps(["plan", "--stack-file", path.join(ROOT, "test/fixtures/Pulumi.three-mistakes.yaml"), "--format", "json"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("nothing was deployed");
    expect(r.stderr).not.toMatch(STACK_TRACE);
  });

  it("an unknown stack name lists the stacks there are", async () => {
    const r = await runOpsInProcess(["plan", "--stack", "prod"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Unknown stack "prod"');
    expect(r.stderr).toContain("dev, production, staging");
    expect(r.stderr).not.toMatch(STACK_TRACE);
  });

  it("a stack file that does not exist", async () => {
    const r = await runOpsInProcess(["validate", "--stack-file", "nope/Pulumi.x.yaml"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Stack file not found: nope/Pulumi.x.yaml");
  });

  it("malformed YAML names the line", async () => {
    const r = await runOpsInProcess(["validate", "--stack-file", path.join(ROOT, "test/fixtures/Pulumi.malformed.yaml")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Pulumi\.malformed\.yaml is not valid YAML at line \d+/);
    expect(r.stderr).not.toMatch(STACK_TRACE);
  });

  it("an unknown option or format", async () => {
    expect(await runOpsInProcess(["plan", "--stack", "dev", "--format", "xml"])).toMatchObject({ code: 2, stdout: "" });
    const r = await runOpsInProcess(["plan", "--stak", "dev"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Usage: npm run plan --");
    expect((await runOpsInProcess(["plna"])).stderr).toContain('Unknown command "plna"');
  });
});
