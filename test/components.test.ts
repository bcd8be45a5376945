import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { Postgres } from "../components/postgres";
import { Redis } from "../components/redis";
import { parseAppConfig, type PostgresConfig, type RedisConfig } from "../config";
import { isSecret, masked, mockStack, promise, registered } from "./helpers/pulumi";

function pgConfig(over: Record<string, unknown> = {}): PostgresConfig {
  return parseAppConfig({ environment: "dev", postgres: { mode: "container", ...over } }).data!.postgres;
}
function redisConfig(over: Record<string, unknown> = {}): RedisConfig {
  return parseAppConfig({ environment: "dev", redis: { mode: "container", ...over } }).data!.redis;
}

describe("Postgres component", () => {
  it("declares a health-checked, limited, log-rotated server on the stack network", async () => {
    const rt = await mockStack("staging");
    new Postgres("postgres", { config: pgConfig({ memoryMb: 1024 }), environment: "staging", stack: "staging", network: "net" });
    const server = await registered(rt, "postgres-server");
    const { inputs, secretPaths } = masked(server);
    expect(inputs.healthcheck).toMatchObject({
      tests: ["CMD", "pg_isready", "-h", "127.0.0.1", "-p", "5432", "-U", "app", "-d", "app"],
    });
    expect(inputs).toMatchObject({
      restart: "unless-stopped",
      memory: 1024,
      cpus: "1",
      wait: true,
      waitTimeout: 120,
      logDriver: "json-file",
      logOpts: { "max-size": "10m", "max-file": "5" },
      networksAdvanced: [{ name: "net", aliases: ["postgres"] }],
      volumes: [{ containerPath: "/var/lib/postgresql/data", volumeName: "appstack-staging-postgres-data" }],
    });
    expect(inputs.ports).toBeUndefined();
    expect(inputs.envs).toEqual(["POSTGRES_USER=app", "POSTGRES_DB=app", "[secret]"]);
    expect(secretPaths).toEqual(["envs[2]"]);
    expect(inputs.labels).toEqual(
      expect.arrayContaining([
        { label: "appstack.stack", value: "staging" },
        { label: "appstack.service", value: "postgres" },
        { label: "appstack.version", value: "17.6-alpine" },
      ]),
    );
    // Two servers on one data directory corrupt it.
    expect(server.options.deleteBeforeReplace).toBe(true);
    expect(server.parent).toMatch(/Postgres::postgres$/);
  });

  it("generates the password with @pulumi/random and keeps every path to it secret", async () => {
    const rt = await mockStack("dev");
    const pg = new Postgres("postgres", { config: pgConfig(), environment: "dev", stack: "dev", network: "net" });
    const password = await registered(rt, "postgres-password");
    expect(password.type).toBe("random:index/randomPassword:RandomPassword");
    expect(password.inputs).toMatchObject({ length: 32, special: true });
    expect(password.options.additionalSecretOutputs).toContain("result");
    expect(await isSecret(pg.url)).toBe(true);
    const url = new URL(await promise(pg.url));
    expect([url.protocol, url.username, decodeURIComponent(url.password), url.host, url.pathname]).toEqual([
      "postgresql:",
      "app",
      "mock-postgres-password-password",
      "postgres:5432",
      "/app",
    ]);
    expect(await promise(pg.host)).toBe("postgres");
    expect(await promise(pg.port)).toBe(5432);
  });

  it("encodes a password with URL-special characters in the connection URL", async () => {
    const nasty = "p@ss:w/rd?#[]%&=+ !*'()";
    await mockStack("dev", {}, {}, (type) => (type.startsWith("random:") ? { result: nasty } : {}));
    const pg = new Postgres("postgres", { config: pgConfig(), environment: "dev", stack: "dev", network: "net" });
    const url = new URL(await promise(pg.url));
    expect(decodeURIComponent(url.password)).toBe(nasty);
    expect(url.hostname).toBe("postgres");
    expect(url.pathname).toBe("/app");
  });

  it("publishes a host port only when configured, and only on 127.0.0.1", async () => {
    const rt = await mockStack("dev");
    new Postgres("postgres", { config: pgConfig({ hostPort: 15432 }), environment: "dev", stack: "dev", network: "net" });
    const { inputs } = masked(await registered(rt, "postgres-server"));
    expect(inputs.ports).toEqual([{ internal: 5432, external: 15432, ip: "127.0.0.1" }]);
  });

  it("protects and retains the data volume in production, not in dev", async () => {
    for (const [env, expected] of [["production", true], ["dev", false]] as const) {
      const rt = await mockStack(env);
      new Postgres("postgres", { config: pgConfig(), environment: env, stack: env, network: "net" });
      const volume = await registered(rt, "postgres-data");
      expect(volume.options.protect).toBe(expected);
      expect(volume.options.retainOnDelete).toBe(expected);
    }
  });

  it("external mode creates no container and exposes the managed URL as a secret", async () => {
    const rt = await mockStack("staging");
    const url = pulumi.secret("postgresql://svc:pw@db.example.com:6543/prod");
    const pg = new Postgres("postgres", {
      config: parseAppConfig({ environment: "staging", postgres: { mode: "external" } }).data?.postgres ?? { mode: "external", urlSecret: "postgresUrl" },
      environment: "staging",
      stack: "staging",
      externalUrl: url,
    });
    expect(await promise(pg.url)).toBe("postgresql://svc:pw@db.example.com:6543/prod");
    expect(await isSecret(pg.url)).toBe(true);
    expect(await promise(pg.host)).toBe("db.example.com");
    expect(await promise(pg.port)).toBe(6543);
    expect(await promise(pg.database)).toBe("prod");
    expect(rt.resources.map((r) => r.type)).toEqual(["appstack:components:Postgres"]);
  });

  it("a transform adjusts the container args without forking the component", async () => {
    const rt = await mockStack("dev");
    new Postgres("postgres", {
      config: pgConfig(),
      environment: "dev",
      stack: "dev",
      network: "net",
      transform: { container: (a) => ({ ...a, shmSize: 512 }) },
    });
    expect((await registered(rt, "postgres-server")).inputs.shmSize).toBe(512);
  });
});

describe("Redis component", () => {
  it("passes the password by environment: never in argv nor in the health check", async () => {
    const rt = await mockStack("dev");
    new Redis("redis", { config: redisConfig(), environment: "dev", stack: "dev", network: "net" });
    const server = await registered(rt, "redis-server");
    const { inputs, secretPaths } = masked(server);
    expect(secretPaths).toEqual(["envs[0]", "envs[1]"]);
    const raw = JSON.stringify(server.inputs.command) + JSON.stringify(server.inputs.healthcheck);
    expect(raw).not.toContain("mock-redis-password");
    expect(inputs.command).toEqual(["sh", "-c", expect.stringContaining("printf 'requirepass %s\\n' \"$REDIS_PASSWORD\"")]);
    expect(inputs.healthcheck).toMatchObject({ tests: ["CMD-SHELL", "redis-cli -p 6379 ping | grep -q PONG"] });
  });

  it("persists with AOF and applies the maxmemory policy from config", async () => {
    const rt = await mockStack("dev");
    new Redis("redis", {
      config: redisConfig({ maxmemoryMb: 100, maxmemoryPolicy: "allkeys-lru" }),
      environment: "dev",
      stack: "dev",
      network: "net",
    });
    const { inputs } = masked(await registered(rt, "redis-server"));
    const script = (inputs.command as string[])[2];
    expect(script).toContain("--maxmemory 100mb --maxmemory-policy allkeys-lru --appendonly yes --appendfsync everysec");
    expect(inputs).toMatchObject({ restart: "unless-stopped", memory: 512, wait: true, user: "redis" });
    expect(inputs.volumes).toEqual([{ containerPath: "/data", volumeName: "appstack-dev-redis-data" }]);
  });

  it("exposes a secret redis:// URL", async () => {
    await mockStack("dev");
    const redis = new Redis("redis", { config: redisConfig(), environment: "dev", stack: "dev", network: "net" });
    expect(await isSecret(redis.url)).toBe(true);
    expect(await promise(redis.url)).toBe("redis://default:mock-redis-password-password@redis:6379/0");
  });

  it("external mode creates no container", async () => {
    const rt = await mockStack("production");
    const redis = new Redis("redis", {
      config: { mode: "external", urlSecret: "redisUrl" },
      environment: "production",
      stack: "production",
      externalUrl: pulumi.secret("rediss://default:pw@cache.example.com:16379"),
    });
    expect(await promise(redis.port)).toBe(16379);
    expect(await isSecret(redis.url)).toBe(true);
    expect(rt.resources).toHaveLength(1);
  });
});
