import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deployPreflight } from "../ops/operations/preflight";
import { restore, restoreCommands, restoreTarget, type DockerCli } from "../ops/operations/restore";
import { diagnoseSwarm, swarmPreflight, swarmSettings, type SwarmSettings } from "../ops/operations/swarm";
import { EXIT, UserError } from "../ops/shared/errors";
import { FakeAutomation, testContext } from "./helpers/automation";
import { tempProject } from "./helpers/project";

/**
 * The swarm side of the ops commands without a swarm: an HTTP server on a
 * unix socket standing in for a manager's Engine API, answering with the
 * shapes Docker 20.10 returns (the answers the runtime test reads from a
 * real swarm: test/runtime/swarm.test.ts), and a docker CLI that records
 * what restore asks of it.
 */

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-swarm-ops-"));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const NODE = (hostname: string, role: string, labels: Record<string, string>) => ({ ID: `${hostname}-id-0000000000`, Spec: { Labels: labels, Role: role, Availability: "active" }, Description: { Hostname: hostname }, Status: { State: "ready" } });

interface FakeSwarm {
  swarm?: { LocalNodeState: string; ControlAvailable: boolean };
  nodes?: unknown[];
  containers?: unknown[];
  services?: unknown[];
  tasks?: Record<string, unknown[]>;
}

async function fakeManager(answers: FakeSwarm): Promise<{ host: string; requests: string[]; close(): Promise<void> }> {
  const socket = path.join(tmp, `manager-${Math.random().toString(16).slice(2)}.sock`);
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://docker");
    requests.push(`${url.pathname}${url.search ? ` ${decodeURIComponent(url.searchParams.get("filters") ?? "")}` : ""}`);
    const filters = JSON.parse(url.searchParams.get("filters") ?? "{}") as Record<string, string[]>;
    const body: Record<string, unknown> = {
      "/version": { Version: "20.10.24+dfsg1", ApiVersion: "1.41", MinAPIVersion: "1.12", Os: "linux", Arch: "amd64" },
      "/info": { Swarm: { NodeID: "node-1-id-0000000000", ...(answers.swarm ?? { LocalNodeState: "active", ControlAvailable: true }) } },
      "/nodes": answers.nodes ?? [],
      "/containers/json": answers.containers ?? [],
      "/services": answers.services ?? [],
      "/tasks": answers.tasks?.[filters.service?.[0] ?? ""] ?? [],
    };
    res.setHeader("content-type", "application/json");
    res.statusCode = url.pathname in body ? 200 : 404;
    res.end(JSON.stringify(body[url.pathname] ?? { message: "page not found" }));
  });
  await new Promise<void>((r) => server.listen(socket, r));
  return { host: `unix://${socket}`, requests, close: () => new Promise((r) => server.close(() => r())) };
}

async function refusal(promise: Promise<unknown>): Promise<UserError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UserError);
  return err as UserError;
}

const PRODUCTION: SwarmSettings = { stack: "production", dataStores: [{ service: "postgres", node: "data-1" }, { service: "redis", node: "data-1" }], edge: true };
const LABELLED = [NODE("node-1", "manager", { "appstack.node": "data-1", "appstack.edge": "true" }), NODE("node-2", "worker", {}), NODE("node-3", "worker", {})];

describe("swarm settings of a stack file", () => {
  it("are read in swarm mode only, with each data store's node label and whether the stack has an edge", () => {
    expect(swarmSettings("production", { environment: "production", docker: { host: "ssh://d@h" } })).toBeUndefined();
    expect(
      swarmSettings("production", {
        environment: "production",
        docker: { host: "ssh://d@h", mode: "swarm" },
        postgres: { mode: "container", node: "data-1" },
        redis: { mode: "external" },
        api: { image: "a:1.0", health: { path: "/h" }, domain: "api.example.com" },
        edge: { acmeEmail: "ops@example.com" },
      }),
    ).toEqual({ stack: "production", dataStores: [{ service: "postgres", node: "data-1" }], edge: true });
  });
});

describe("deploy preflight in swarm mode", () => {
  it("names the manager, where each data store runs and the edge nodes", async () => {
    const m = await fakeManager({ nodes: LABELLED });
    try {
      expect(await swarmPreflight({ host: m.host }, PRODUCTION)).toBe(`Swarm at ${m.host}: a manager of 3 nodes; postgres on node-1; redis on node-1; the edge on node-1.`);
    } finally {
      await m.close();
    }
  });

  it(`an engine in no swarm, or a worker: exit ${EXIT.swarm}, and how to make or name a manager`, async () => {
    const inactive = await fakeManager({ swarm: { LocalNodeState: "inactive", ControlAvailable: false } });
    const worker = await fakeManager({ swarm: { LocalNodeState: "active", ControlAvailable: false } });
    try {
      const a = await refusal(swarmPreflight({ host: inactive.host }, PRODUCTION));
      expect(a.exitCode).toBe(EXIT.swarm);
      expect(a.message).toContain("is in no swarm (its state is inactive); nothing was changed");
      expect(a.message).toContain("docker swarm init --advertise-addr");
      expect(a.message).toContain("pulumi config set -s production --path docker.host");
      const b = await refusal(swarmPreflight({ host: worker.host }, PRODUCTION));
      expect(b.message).toContain("is a swarm worker: only a manager takes services");
    } finally {
      await inactive.close();
      await worker.close();
    }
  });

  it("a data store's node label on no node, or on two: refused before Swarm would leave it pending or start it without its data", async () => {
    const none = await fakeManager({ nodes: [NODE("node-1", "manager", { "appstack.edge": "true" }), NODE("node-2", "worker", {})] });
    const two = await fakeManager({ nodes: [NODE("node-1", "manager", { "appstack.node": "data-1", "appstack.edge": "true" }), NODE("node-2", "worker", { "appstack.node": "data-1" })] });
    try {
      const a = await refusal(swarmPreflight({ host: none.host }, PRODUCTION));
      expect(a.message).toBe(
        `No node of the swarm carries the label appstack.node=data-1 (postgres.node), so Swarm would leave postgres pending; nothing was changed.\n` +
          `Label the node that holds the postgres volume (nodes: node-1 (manager), node-2 (worker)):\n  docker -H ${none.host} node update --label-add appstack.node=data-1 <node>\nSee docs/swarm.md.`,
      );
      const b = await refusal(swarmPreflight({ host: two.host }, PRODUCTION));
      expect(b.message).toContain("2 nodes carry the label appstack.node=data-1 (node-1, node-2): postgres could start on one without its data");
    } finally {
      await none.close();
      await two.close();
    }
  });

  it("a data store's label on a node other than the one at docker.host: refused, its volume is created and protected there", async () => {
    const m = await fakeManager({ nodes: [NODE("node-1", "manager", { "appstack.edge": "true" }), NODE("node-2", "worker", { "appstack.node": "data-1" })] });
    try {
      const err = await refusal(swarmPreflight({ host: m.host }, PRODUCTION));
      expect(err.message).toContain("The label appstack.node=data-1 (postgres.node) is on node-2, but docker.host is node-1");
      expect(err.message).toContain(`docker -H ${m.host} node update --label-add appstack.node=data-1 node-1`);
    } finally {
      await m.close();
    }
  });

  it("no edge node: refused, the API would have no public entry", async () => {
    const m = await fakeManager({ nodes: [NODE("node-1", "manager", { "appstack.node": "data-1" })] });
    try {
      expect((await refusal(swarmPreflight({ host: m.host }, PRODUCTION))).message).toContain("No node of the swarm carries the label appstack.edge=true");
      // Without an edge (dev), none is needed.
      expect(await swarmPreflight({ host: m.host }, { ...PRODUCTION, edge: false })).toContain("postgres on node-1; redis on node-1.");
    } finally {
      await m.close();
    }
  });

  it("a host-mode data store still running on the volume its service would mount: refused, with the command that stops it", async () => {
    const containers = [
      { Id: "c1", Names: ["/appstack-production-postgres"], State: "running", Labels: { "appstack.stack": "production", "appstack.service": "postgres", "appstack.role": "service" } },
      // A task of the swarm service itself is not in the way.
      { Id: "c2", Names: ["/appstack-production-redis.1.abc"], State: "running", Labels: { "appstack.stack": "production", "appstack.service": "redis", "appstack.role": "service", "com.docker.swarm.service.id": "s1" } },
    ];
    const m = await fakeManager({ nodes: LABELLED, containers });
    try {
      const err = await refusal(swarmPreflight({ host: m.host }, PRODUCTION));
      expect(err.message).toContain("Host-mode container of this stack still runs on docker.host (appstack-production-postgres): a data store's service would start on the volume");
      expect(err.message).toContain(`docker -H ${m.host} stop appstack-production-postgres`);
      expect(err.message).not.toContain("redis");
      expect(m.requests).toContain(`/containers/json {"label":["appstack.stack=production","appstack.role=service"],"status":["running","restarting"]}`);
      const withEdge = await fakeManager({ nodes: LABELLED, containers: [{ Id: "c3", Names: ["/edge-proxy-1a2b3c4"], State: "running", Labels: { "appstack.stack": "production", "appstack.service": "edge", "appstack.role": "service" } }] });
      try {
        expect((await refusal(swarmPreflight({ host: withEdge.host }, PRODUCTION))).message).toContain("the host-mode edge still holds ports 80 and 443, which the edge service publishes");
      } finally {
        await withEdge.close();
      }
    } finally {
      await m.close();
    }
  });

  it("the deploy runs it after the Docker host's own preflight, for a swarm stack only", async () => {
    const m = await fakeManager({ nodes: [NODE("node-1", "manager", {})] });
    const stackFile = (mode: string) =>
      `config:\n  appstack:environment: dev\n  appstack:docker:\n    host: ${m.host}\n    mode: ${mode}\n`;
    try {
      const swarmRoot = tempProject({ "Pulumi.dev.yaml": stackFile("swarm") });
      expect(await deployPreflight(swarmRoot, "dev")).toBe(
        `Docker engine at ${m.host}: Docker 20.10.24+dfsg1, API 1.41 (linux/amd64).\nSwarm at ${m.host}: a manager of 1 node; postgres on a manager; redis on a manager.`,
      );
      const hostRoot = tempProject({ "Pulumi.dev.yaml": stackFile("host") });
      const before = m.requests.length;
      expect(await deployPreflight(hostRoot, "dev")).toBe(`Docker engine at ${m.host}: Docker 20.10.24+dfsg1, API 1.41 (linux/amd64).`);
      expect(m.requests.slice(before)).toEqual(["/version"]);
    } finally {
      await m.close();
    }
  });
});

describe("after a failed swarm deploy: Swarm's own words", () => {
  it("names the service whose update rolled back, its failed tasks' errors, and what to change", async () => {
    const m = await fakeManager({
      services: [
        { ID: "svc-api", Spec: { Name: "appstack-production-api", Labels: { "appstack.service": "api" } }, UpdateStatus: { State: "rollback_completed", Message: "rollback completed" } },
        { ID: "svc-worker", Spec: { Name: "appstack-production-worker", Labels: { "appstack.service": "worker" } }, UpdateStatus: { State: "completed" } },
        { ID: "svc-pg", Spec: { Name: "appstack-production-postgres", Labels: { "appstack.service": "postgres" } } },
      ],
      tasks: {
        "svc-api": [
          { ID: "t1xxxxxxxxxxxxxx", DesiredState: "shutdown", Status: { State: "failed", Timestamp: "2026-11-30T05:20:01Z", Err: "task: non-zero exit (137): dockerexec: unhealthy container" } },
          { ID: "t2xxxxxxxxxxxxxx", DesiredState: "running", Status: { State: "running", Timestamp: "2026-11-30T05:10:00Z" } },
        ],
        "svc-worker": [{ ID: "t3xxxxxxxxxxxxxx", DesiredState: "running", Status: { State: "running" } }],
        "svc-pg": [
          { ID: "t4xxxxxxxxxxxxxx", DesiredState: "running", Status: { State: "pending", Err: "no suitable node (scheduling constraints not satisfied on 3 nodes)", Timestamp: "2026-11-30T05:19:00Z" } },
        ],
      },
    });
    try {
      const text = await diagnoseSwarm({ host: m.host }, "production");
      expect(text).toBe(
        [
          "",
          "Swarm services of this stack that did not converge (docker service ps):",
          "- api: service appstack-production-api, update rollback_completed: rollback completed",
          "  task t1xxxxxxxxxx failed (2026-11-30T05:20:01Z): task: non-zero exit (137): dockerexec: unhealthy container",
          `  to change: the new tasks never passed their health check (api.health); Swarm stopped them and rolled back: the previous release still serves. Make the check pass, or see the tasks' logs: docker -H ${m.host} service logs --tail 50 appstack-production-api`,
          "- postgres: service appstack-production-postgres",
          "  task t4xxxxxxxxxx pending (2026-11-30T05:19:00Z): no suitable node (scheduling constraints not satisfied on 3 nodes)",
          `  to change: no node satisfies the service's placement: check the node labels (appstack.node, appstack.edge) with docker -H ${m.host} node ls`,
        ].join("\n"),
      );
      expect(m.requests).toContain('/services {"label":["appstack.stack=production"]}');
    } finally {
      await m.close();
    }
  });

  it("an engine that does not answer gives a line, not an error that hides the update's own", async () => {
    const text = await diagnoseSwarm({ host: `unix://${path.join(tmp, "gone.sock")}` }, "production");
    expect(text).toMatch(/^\n\(The services' state could not be read from unix:\/\/.*gone\.sock: /);
  });
});

describe("restore in swarm mode", () => {
  const SWARM_STACK = [
    "config:",
    "  appstack:environment: staging",
    "  appstack:docker:",
    "    host: ssh://deploy@manager.example.com",
    "    mode: swarm",
    "  appstack:postgres:",
    "    mode: container",
    "    image: postgres:17.6-alpine",
    "    node: data-1",
    "",
  ].join("\n");
  const BACKUP = "staging_1.4.2_20250603T090000Z.dump";

  class FakeDocker implements DockerCli {
    readonly runs: string[][] = [];
    async run(args: string[]) {
      this.runs.push(args);
      if (args.includes("--entrypoint")) return { code: 0, stdout: "123456 1748941200\n", stderr: "" };
      if (args[0] === "service" && args[1] === "ls") return { code: 0, stdout: args.includes("label=appstack.service=api") ? "svcapi\n" : "svcworker\n", stderr: "" };
      if (args[0] === "service" && args[1] === "inspect") return { code: 0, stdout: "svcapi 3\nsvcworker 2\n", stderr: "" };
      return { code: 0, stdout: "", stderr: "" };
    }
  }

  it("runs pg_restore on the overlay, with the API and worker services scaled to 0 and back to their replicas", async () => {
    const root = tempProject({ "Pulumi.staging.yaml": SWARM_STACK });
    const target = restoreTarget(root, "staging");
    expect(target).toMatchObject({ mode: "swarm", network: "appstack-staging-overlay", host: "postgres" });
    expect(restoreCommands(target, BACKUP).listApi.slice(0, 3)).toEqual(["service", "ls", "-q"]);
    const docker = new FakeDocker();
    const password = "p@ss";
    const auto = new FakeAutomation(() => ({ outputs: { connections: { value: { databaseUrl: `postgresql://app:${encodeURIComponent(password)}@postgres:5432/app` }, secret: true } } }));
    const ctx = testContext(root, auto);
    expect(await restore(ctx, docker, { stack: "staging", backup: BACKUP, yes: true })).toBe(EXIT.ok);
    const scaled = docker.runs.filter((a) => a[0] === "service" && a[1] === "scale");
    expect(scaled).toEqual([
      ["service", "scale", "--detach=false", "svcapi=0", "svcworker=0"],
      ["service", "scale", "--detach=false", "svcapi=3", "svcworker=2"],
    ]);
    const pgRestore = docker.runs.find((a) => a.includes("pg_restore"))!;
    expect(pgRestore.slice(pgRestore.indexOf("--network"), pgRestore.indexOf("--network") + 2)).toEqual(["--network", "appstack-staging-overlay"]);
    expect(docker.runs.indexOf(pgRestore)).toBeGreaterThan(docker.runs.indexOf(scaled[0]));
    expect(docker.runs.indexOf(pgRestore)).toBeLessThan(docker.runs.indexOf(scaled[1]));
  });
});
