import * as fs from "node:fs";
import * as path from "node:path";
import Redis from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { containerEnv, evaluateStack, resource, SETUP_TIMEOUT_MS, type Declared, type DeclaredResource } from "../helpers/declared-stack";
import { freePort, processArgv, redisBin, runHealthcheck, startRedis, type RedisServer } from "./servers";

/**
 * The Redis container of the dev stack, run for real: Debian's redis-server
 * with the command, env and health check the stack declares, and a password
 * generated as the stack generates it. Host adaptations, and nothing else:
 * `--port <free port> --bind 127.0.0.1` appended to the server's flags, the
 * health check's `-p 6379` rewritten to that port, and a fresh directory as the
 * working directory and TMPDIR (the image's /data and the container's /tmp).
 */

let declared: Declared;
let container: DeclaredResource;
let env: Record<string, string>;
let server: RedisServer;
let port: number;

/** The declared redis-url with the container's host and port replaced by ours. */
function hostUrl(url: string, password?: string): string {
  const u = new URL(url);
  u.hostname = "127.0.0.1";
  u.port = String(port);
  if (password !== undefined) u.password = password;
  return u.toString();
}

beforeAll(async () => {
  redisBin("redis-server");
  redisBin("redis-cli");
  declared = await evaluateStack({ stack: "dev", values: "contract" });
  container = resource(declared, "redis-server");
  env = containerEnv(container);
  port = await freePort();
  const [shell, flag, script] = container.inputs.command as string[];
  expect([shell, flag]).toEqual(["sh", "-c"]);
  // The script ends by exec'ing redis-server with its flags; ours go last.
  expect(script).toMatch(/; exec redis-server "\$conf" [^;]*$/);
  server = await startRedis([shell, flag, `${script} --port ${port} --bind 127.0.0.1`], env, port);
}, SETUP_TIMEOUT_MS);

afterAll(async () => {
  await server?.destroy();
});

describe("contract: the declared Redis container", () => {
  it("turns healthy: the declared health check passes with the declared env", async () => {
    const tests = (container.inputs.healthcheck as { tests: string[] }).tests;
    const result = await runHealthcheck(tests, env, { from: "-p 6379", to: `-p ${port}` });
    expect(result.code, result.stderr).toBe(0);
  });

  it("the health check fails with a wrong password and with none", async () => {
    const tests = (container.inputs.healthcheck as { tests: string[] }).tests;
    const rewrite = { from: "-p 6379", to: `-p ${port}` };
    const wrong = await runHealthcheck(tests, { ...env, REDISCLI_AUTH: `${env.REDISCLI_AUTH}x` }, rewrite);
    expect(wrong.code).not.toBe(0);
    const { REDISCLI_AUTH: _omit, ...withoutAuth } = env;
    const none = await runHealthcheck(tests, withoutAuth, rewrite);
    expect(none.code).not.toBe(0);
  });

  it("the declared REDIS_URL connects, stores and reads a value", async () => {
    const url = (declared.outputs.connections as { redisUrl: string }).redisUrl;
    expect(new URL(url).password).toBe(env.REDIS_PASSWORD);
    const client = new Redis(hostUrl(url), { lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await client.connect();
      await client.set("appstack:contract", "it works");
      expect(await client.get("appstack:contract")).toBe("it works");
    } finally {
      client.disconnect();
    }
  });

  it("refuses a client with a wrong password", async () => {
    const url = (declared.outputs.connections as { redisUrl: string }).redisUrl;
    const client = new Redis(hostUrl(url, "not-the-password"), { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    const errors: string[] = [];
    client.on("error", (err: Error) => errors.push(err.message));
    try {
      await expect(client.connect().then(() => client.ping())).rejects.toThrow();
      expect(errors.join("\n")).toMatch(/WRONGPASS/);
    } finally {
      client.disconnect();
    }
  });

  it("keeps the password out of the server's argv, and its config file private", async () => {
    const argv = processArgv(server.pid);
    expect(argv.join(" ")).toMatch(/redis-server/);
    expect(argv.join(" ")).not.toContain(env.REDIS_PASSWORD);
    expect(JSON.stringify(container.inputs.command)).not.toContain(env.REDIS_PASSWORD);
    // The script writes the password to a mktemp file (mode 0600) that only the server's account reads.
    const confs = fs.readdirSync(server.dir).filter((f) => f.startsWith("tmp."));
    expect(confs).toHaveLength(1);
    const conf = path.join(server.dir, confs[0]);
    expect(fs.statSync(conf).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(conf, "utf8")).toBe(`requirepass ${env.REDIS_PASSWORD}\n`);
  });

  it("runs with the declared memory cap, eviction policy and append-only persistence", async () => {
    const client = new Redis(hostUrl((declared.outputs.connections as { redisUrl: string }).redisUrl), { maxRetriesPerRequest: 0 });
    try {
      const cfg = async (key: string) => ((await client.config("GET", key)) as string[])[1];
      expect(await cfg("maxmemory")).toBe(String(192 * 1024 * 1024));
      expect(await cfg("maxmemory-policy")).toBe("noeviction");
      expect(await cfg("appendonly")).toBe("yes");
      expect(await cfg("appendfsync")).toBe("everysec");
      await client.set("appstack:persisted", "1");
      expect(fs.existsSync(path.join(server.dir, "appendonlydir"))).toBe(true);
    } finally {
      client.disconnect();
    }
  });
});
