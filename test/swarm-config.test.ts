import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { problemsOf } from "./helpers/config-problems";
import { loadConfig, SWARM_OBJECT_NAME, SWARM_OBJECT_NAME_MAX, swarmSecretName, swarmServiceName, SWARM_SERVICE_NAME, SWARM_SERVICE_NAME_MAX, type ConfigProblem } from "../config";
import { parseFix } from "./helpers/pulumi-config-cli";
import { mockStack } from "./helpers/pulumi";

/**
 * The config rules of swarm mode (config/swarm.ts): each bad input is a
 * ConfigError naming the key, with a fix that pastes, and nothing is
 * registered. That Swarm itself accepts and refuses the names these rules
 * allow and refuse is the runtime test's (test/runtime/swarm.test.ts).
 */

/** The problems, each with a fix that parses as pulumi config commands. */
async function problemsWithFixes(stack: string, config: Record<string, unknown>, secrets: Record<string, string> = {}): Promise<ConfigProblem[]> {
  const problems = await problemsOf(stack, config, secrets);
  for (const p of problems) expect(() => parseFix(p.fix), p.fix).not.toThrow();
  return problems;
}

const API = { image: "ghcr.io/acme/api:1.4.2", health: { path: "/health" }, domain: "api.example.com" };
const SWARM = { host: "ssh://deploy@manager.example.com", mode: "swarm" };
const production = (over: Record<string, unknown> = {}) => ({
  environment: "production",
  docker: SWARM,
  postgres: { mode: "container", image: "postgres:17.6-alpine", node: "data-1" },
  redis: { mode: "container", image: "redis:7.4.6-alpine", node: "data-1" },
  api: API,
  edge: { acmeEmail: "ops@example.com" },
  ...over,
});

describe("swarm mode config", () => {
  it("a production swarm stack with its data nodes loads; docker.mode defaults to host", async () => {
    await mockStack("production", production());
    expect(loadConfig(new pulumi.Config("appstack")).docker.mode).toBe("swarm");
    await mockStack("dev", { environment: "dev" });
    expect(loadConfig(new pulumi.Config("appstack")).docker.mode).toBe("host");
  });

  it("outside dev, each data store in container mode needs its node label, with the command and the node label to add", async () => {
    const ps = await problemsWithFixes("production", production({ postgres: { mode: "container", image: "postgres:17.6-alpine" }, redis: { mode: "external" } }), { redisUrl: "redis://u:p@h:6379" });
    expect(ps.map((p) => p.key)).toEqual(["appstack:postgres.node"]);
    expect(ps[0].problem).toBe("is required in swarm mode outside dev: postgres must run on the node that holds its data volume, never move to one without it");
    expect(ps[0].fix).toBe("pulumi config set -s production --path postgres.node");
    expect(ps[0].note).toBe("Pulumi asks for the label value, e.g. db-1; then label that node: docker node update --label-add appstack.node=db-1 <node>");
  });

  it("in dev no node label is needed: the data stores run on a manager", async () => {
    await mockStack("dev", { environment: "dev", docker: { mode: "swarm" } });
    expect(loadConfig(new pulumi.Config("appstack")).postgres).not.toHaveProperty("node");
  });

  it("swarm settings in host mode are errors naming each key", async () => {
    const ps = await problemsWithFixes("staging", {
      environment: "staging",
      docker: { host: "ssh://deploy@staging.example.com" },
      postgres: { mode: "container", node: "data-1" },
      redis: { mode: "container", node: "data-1" },
      api: { ...API, secretFiles: { uid: 1000, gid: 1000 } },
      worker: { command: ["node", "w.js"], secretFiles: { uid: 1000 } },
      edge: { acmeEmail: "ops@example.com" },
    });
    expect(ps.map((p) => p.key).sort()).toEqual(["appstack:api.secretFiles", "appstack:postgres.node", "appstack:redis.node", "appstack:worker.secretFiles"]);
    const node = ps.find((p) => p.key === "appstack:postgres.node")!;
    expect(node).toMatchObject({ problem: "applies to docker.mode swarm only: in host mode every container runs on docker.host", fix: "pulumi config rm -s staging --path postgres.node", note: "or set docker.mode to swarm" });
  });

  it("a data store with replicas > 1 is refused, in either mode", async () => {
    for (const docker of [SWARM, { host: "ssh://deploy@prod.example.com" }]) {
      const ps = await problemsWithFixes("production", production({ docker, postgres: { mode: "container", image: "postgres:17.6-alpine", node: docker === SWARM ? "data-1" : undefined, replicas: 2 } }));
      const p = ps.find((x) => x.key === "appstack:postgres.replicas")!;
      expect(p.problem).toBe("a data store runs exactly one server: two postgres servers on one data volume corrupt it");
      expect(p.fix).toBe("pulumi config rm -s production --path postgres.replicas");
    }
    await mockStack("production", production({ redis: { mode: "container", image: "redis:7.4.6-alpine", node: "data-1", replicas: 1 } }));
    expect(() => loadConfig(new pulumi.Config("appstack"))).not.toThrow();
  });

  it("api.hostPort is refused in swarm mode, in dev too", async () => {
    const dev = await problemsWithFixes("dev", { environment: "dev", docker: { mode: "swarm" }, api: { image: "acme/api:dev", health: { path: "/h" }, hostPort: 13000 } });
    expect(dev.map((p) => p.key)).toEqual(["appstack:api.hostPort"]);
    expect(dev[0].problem).toContain("Swarm publishes a task's port on every address of the node, not on 127.0.0.1");
    expect(dev[0].fix).toBe("pulumi config rm -s dev --path api.hostPort");
  });

  it("a secret name too long for Swarm is refused at its key, with the fix that removes it and the length that fits", async () => {
    const long = "A_THIRD_PARTY_SERVICE_API_KEY_FOR_PRODUCTION";
    const ps = await problemsWithFixes("production", production({ api: { ...API, secretEnv: ["OPENAI_API_KEY", long] } }), { OPENAI_API_KEY: "x", [long]: "y" });
    expect(ps.map((p) => p.key)).toEqual(["appstack:api.secretEnv[1]"]);
    const name = swarmSecretName("production", long, "00000000");
    expect(ps[0].problem).toBe(`${long} is too long for a Swarm secret name: ${name} has ${name.length} characters, Swarm takes ${SWARM_OBJECT_NAME_MAX}`);
    expect(ps[0].fix).toBe("pulumi config rm -s production --path api.secretEnv && pulumi config set -s production --path 'api.secretEnv[0]' OPENAI_API_KEY");
    expect(ps[0].note).toContain(`then add it again under a name of at most ${long.length - (name.length - SWARM_OBJECT_NAME_MAX)} characters`);
  });

  it("a stack whose name Swarm cannot take is refused at docker.mode", async () => {
    const ps = await problemsWithFixes("prod.eu", production());
    expect(ps.map((p) => p.key)).toEqual(["appstack:docker.mode"]);
    expect(ps[0].problem).toBe('the stack name "prod.eu" cannot be part of a Swarm service name (appstack-prod.eu-postgres): Swarm takes letters, digits, - and _ only');
    const long = await problemsWithFixes("production-europe-west-1-blue", production());
    expect(long[0].problem).toMatch(/^the stack name "production-europe-west-1-blue" is too long for Swarm: the secret appstack-production-europe-west-1-blue-POSTGRES_PASSWORD-00000000 has 65 characters, Swarm takes 64$/);
  });

  it("a <NAME>_FILE that swarm mode wires for a secret may not be set in env", async () => {
    const ps = await problemsWithFixes("production", production({ generatedSecrets: ["JWT_SECRET"], api: { ...API, env: { JWT_SECRET_FILE: "/x" } } }));
    expect(ps.map((p) => p.key)).toEqual(["appstack:api.env.JWT_SECRET_FILE"]);
    expect(ps[0].fix).toBe("pulumi config rm -s production --path api.env.JWT_SECRET_FILE");
  });

  it("the names these rules allow are what Swarm's own patterns allow", () => {
    const service = swarmServiceName("production", "postgres");
    expect(SWARM_SERVICE_NAME.test(service) && service.length <= SWARM_SERVICE_NAME_MAX).toBe(true);
    const secret = swarmSecretName("production", "OPENAI_API_KEY", "0a1b2c3d");
    expect(SWARM_OBJECT_NAME.test(secret) && secret.length <= SWARM_OBJECT_NAME_MAX).toBe(true);
  });
});
