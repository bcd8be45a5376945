import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { containerEnv, evaluateStack, resource, SETUP_TIMEOUT_MS, URL_SPECIALS, type Declared, type DeclaredResource } from "../helpers/declared-stack";
import { freePort, postgresBin, run, runHealthcheck, startPostgres, type PostgresServer } from "./servers";

/**
 * The Postgres container of the dev stack, run for real: Debian's Postgres,
 * initialised from the declared POSTGRES_* env the way the official image
 * does it (see startPostgres), probed with the declared pg_isready health
 * check, and reached with the declared DATABASE_URL, whose password holds
 * every URL-special character. Host adaptations: the port (5432 -> a free one).
 */

let declared: Declared;
let container: DeclaredResource;
let env: Record<string, string>;
let server: PostgresServer;
let port: number;

const databaseUrl = () => (declared.outputs.connections as { databaseUrl: string }).databaseUrl;

function hostUrl(url: string, password?: string): string {
  const u = new URL(url);
  u.hostname = "127.0.0.1";
  u.port = String(port);
  if (password !== undefined) u.password = encodeURIComponent(password);
  return u.toString();
}

async function selectOne(connectionString: string): Promise<unknown> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return (await client.query("SELECT 1 AS one, current_user AS who, current_database() AS db")).rows[0];
  } finally {
    await client.end();
  }
}

function healthcheck() {
  const tests = (container.inputs.healthcheck as { tests: string[] }).tests;
  // pg_isready lives beside the server in Debian, on PATH in the image.
  const [kind, program, ...args] = tests;
  expect([kind, program]).toEqual(["CMD", "pg_isready"]);
  return runHealthcheck([kind, postgresBin("pg_isready"), ...args], {}, { from: "5432", to: String(port) });
}

beforeAll(async () => {
  declared = await evaluateStack({ stack: "dev", values: "contract" });
  container = resource(declared, "postgres-server");
  env = containerEnv(container);
  port = await freePort();
  server = await startPostgres(env, port);
}, SETUP_TIMEOUT_MS);

afterAll(async () => {
  await server?.destroy();
});

describe("contract: the declared Postgres container", () => {
  it("is tested with a password that holds every URL-special character", () => {
    for (const ch of URL_SPECIALS) expect(env.POSTGRES_PASSWORD).toContain(ch);
  });

  it("turns healthy: the declared pg_isready health check passes", async () => {
    const result = await healthcheck();
    expect(result.code, result.stdout + result.stderr).toBe(0);
  });

  it("the declared DATABASE_URL carries the declared password, user and database", () => {
    const u = new URL(databaseUrl());
    expect(decodeURIComponent(u.password)).toBe(env.POSTGRES_PASSWORD);
    expect(decodeURIComponent(u.username)).toBe(env.POSTGRES_USER);
    expect(u.pathname).toBe(`/${env.POSTGRES_DB}`);
  });

  it("node-postgres connects with the declared DATABASE_URL and runs SELECT 1", async () => {
    expect(await selectOne(hostUrl(databaseUrl()))).toEqual({ one: 1, who: env.POSTGRES_USER, db: env.POSTGRES_DB });
  });

  it("libpq (psql) accepts the same URL", async () => {
    // By argv here only because the server and its password are this test's own and die with it.
    const result = await run(postgresBin("psql"), ["-X", "-A", "-t", "-d", hostUrl(databaseUrl()), "-c", "SELECT current_user"], {
      env: { PATH: process.env.PATH },
    });
    expect(result.stderr).toBe("");
    expect(result.stdout.trim()).toBe(env.POSTGRES_USER);
  });

  it("refuses the declared user with a wrong password", async () => {
    await expect(selectOne(hostUrl(databaseUrl(), `${env.POSTGRES_PASSWORD}x`))).rejects.toThrow(/password authentication failed/);
  });

  it("the health check fails once the server is down", async () => {
    await server.stop();
    const result = await healthcheck();
    expect(result.code).not.toBe(0);
  });
});
