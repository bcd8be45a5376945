import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { containerEnv, evaluateStack, resource, type Declared, type DeclaredResource } from "../helpers/declared-stack";
import { freePort, run, startPostgres, startRedis, type PostgresServer, type RedisServer } from "../contract/servers";
import {
  apiContainers,
  APP,
  CADDY,
  createReplica,
  deleteReplica,
  edgeFiles,
  load,
  localEnv,
  nextRelease,
  report,
  startEdge,
  toLoopback,
  type Edge,
  type LoadResult,
  type LoopbackMap,
  type Replica,
} from "./edge-harness";
import { Agent, fetch } from "undici";

/**
 * Zero-downtime API deploys, measured: the staging and production stacks'
 * declared edge config in front of the real example API, under a bounded load
 * of GET and POST requests, through the sequence `pulumi up` runs for a new API
 * release (components/api.ts, components/edge.ts):
 *
 *   1. the new release's containers are created beside the old ones, and the
 *      provider waits (`wait: true`) until their declared health check passes;
 *   2. the edge-config job applies the new config (`caddy reload` through the
 *      admin socket): the edge now routes to the new containers only;
 *   3. at the end of the update the old release's containers, no longer
 *      declared, are deleted: the stop signal, `destroyGraceSeconds`, removal.
 *
 * The API image of the stack files is the team's own; the example API stands
 * in for it, with each container's declared env. A new release's containers
 * get the same generated passwords as the old ones, as on a real stack, where
 * the password resources do not change with the image.
 */

const LOAD_MS = 16_000;
const DEPLOY_AT_MS = 2_000;
/** The never-ready scenario waits this long instead of the declared 180 s. */
const NEVER_READY_WAIT_MS = 12_000;

interface StackRun {
  a: Declared;
  b: Declared;
  domain: string;
  pg: PostgresServer;
  redis: RedisServer;
  edge: Edge;
  map: LoopbackMap;
  /** Containers serving now, by declared name. */
  current: { declared: Declared; replicas: Replica[] };
  extraEnv: Record<string, string>;
  /** When the edge's config was switched (the reload), for attributing HTTP/1.1 failures. */
  switches: { from: number; to: number }[];
}

const runs: StackRun[] = [];
const spare: Replica[] = [];
let tmp: string;

/** The declared env of a container, its data-store URLs and passwords those of the servers started for `a`. */
function envFor(s: StackRun, c: DeclaredResource): Record<string, string> {
  const local = localEnv(resource(s.a, apiContainers(s.a)[0].name), { postgres: s.pg.port, redis: s.redis.port });
  const own = containerEnv(c);
  return { ...own, DATABASE_URL: local.DATABASE_URL, REDIS_URL: local.REDIS_URL, ...s.extraEnv };
}

async function startStack(stack: string, extraEnv: Record<string, string> = {}): Promise<StackRun> {
  const [a, b] = await Promise.all([evaluateStack({ stack, values: "contract" }), evaluateStack({ stackFile: nextRelease(stack, tmp), values: "contract" })]);
  const [pgPort, redisPort, edgePort, healthPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const pg = await startPostgres(containerEnv(resource(a, "postgres-server")), pgPort);
  const redisContainer = resource(a, "redis-server");
  const [sh, c, script] = redisContainer.inputs.command as string[];
  const redis = await startRedis([sh, c, `${script} --port ${redisPort} --bind 127.0.0.1`], containerEnv(redisContainer), redisPort);
  const dir = fs.mkdtempSync(path.join(tmp, `${stack}-edge-`));
  const domain = /^([a-z0-9.-]+) \{$/m.exec(edgeFiles(a).applied.split("\n").filter((l) => !l.startsWith("\t") && !l.startsWith("(")).join("\n"))![1];
  const map: LoopbackMap = { siteAddress: `https://127.0.0.1:${edgePort}`, adminSocket: path.join(dir, "admin.sock"), internalHealthPort: healthPort, upstreams: {} };
  const { bootstrap, reload } = edgeFiles(a);
  const edge = await startEdge(dir, toLoopback(bootstrap, domain, map), reload, map, edgePort);
  const s: StackRun = { a, b, domain, pg, redis, edge, map, current: { declared: a, replicas: [] }, extraEnv, switches: [] };
  runs.push(s);

  // The first deploy: migrations, then the first release's containers, then the edge's config.
  const migrate = await run(process.execPath, ["api/migrate.js"], { cwd: APP, env: { ...envFor(s, apiContainers(a)[0]), PATH: process.env.PATH } });
  if (migrate.code !== 0) throw new Error(`migrations failed: ${migrate.stdout}${migrate.stderr}`);
  const replicas = await Promise.all(apiContainers(a).map((c) => createReplica(c, envFor(s, c), 60_000)));
  await applyRelease(s, a, replicas);
  s.current = { declared: a, replicas };
  const first = await load(edge, "h2", 500, 1);
  if (first.failed > 0 || first.requests === 0) throw new Error(`the edge does not serve the first release: ${first.samples.join("; ")}`);
  return s;
}

/** The edge-config job for a release: its declared Caddyfile, each upstream mapped to its process. */
async function applyRelease(s: StackRun, d: Declared, replicas: Replica[]): Promise<void> {
  const { applied, upstreams } = edgeFiles(d);
  const containers = apiContainers(d);
  expect(upstreams).toHaveLength(containers.length);
  for (const [i, upstream] of upstreams.entries()) {
    // The upstream is the container's own name (autonamed <resource>-<7 hex>) and port: health is kept per container.
    expect(upstream).toMatch(new RegExp(`^${containers[i].name}-[0-9a-f]{7}:\\d+$`));
    s.map.upstreams[upstream] = replicas[i].port;
  }
  await s.edge.apply(toLoopback(applied, s.domain, { ...s.map, upstreams: Object.fromEntries(upstreams.map((u) => [u, s.map.upstreams[u]])) }));
}

/** `pulumi up` for the next release: create and wait, switch the edge, then delete the old release at the end. */
async function deploy(s: StackRun, next: Declared, waitMs: number, envOf: (c: DeclaredResource) => Record<string, string> = (c) => envFor(s, c)): Promise<void> {
  const created = await Promise.allSettled(apiContainers(next).map((c) => createReplica(c, envOf(c), waitMs)));
  const failed = created.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed.length > 0) {
    // The provider leaves a container that never turned healthy running; the update stops here.
    for (const f of failed) if (f.reason.replica) spare.push(f.reason.replica);
    for (const r of created) if (r.status === "fulfilled") spare.push(r.value);
    throw new Error(failed.map((f) => (f.reason as Error).message).join("\n"));
  }
  const replicas = created.map((r) => (r as PromiseFulfilledResult<Replica>).value);
  const switchStarted = Date.now();
  await applyRelease(s, next, replicas);
  s.switches.push({ from: switchStarted, to: Date.now() });
  const old = s.current;
  await Promise.all(old.replicas.map((r) => deleteReplica(resource(old.declared, r.name), r)));
  s.current = { declared: next, replicas };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `action` under load from HTTP/2 clients (as browsers connect to the
 * edge's HTTPS) and HTTP/1.1 clients at once, and prints a line for each.
 */
async function underLoad(s: StackRun, scenario: string, action: () => Promise<void>): Promise<{ h2: LoadResult; h1: LoadResult }> {
  const loads = Promise.all([load(s.edge, "h2", LOAD_MS), load(s.edge, "http/1.1", LOAD_MS)]);
  await sleep(DEPLOY_AT_MS);
  await action();
  const [h2, h1] = await loads;
  report(scenario, h2);
  report(scenario, h1);
  return { h2, h1 };
}

/**
 * A config reload closes the edge's idle HTTP/1.1 client connections (HTTP/2
 * ones get a GOAWAY and finish): a request sent on such a connection at that
 * instant fails. Anything else, at any other time, is a real failure.
 */
function onlyClosedAtSwitch(s: StackRun, r: LoadResult): string[] {
  return r.failedAt.flatMap((at, i) => (s.switches.some((w) => at >= w.from && at <= w.to + 250) ? [] : [r.samples[i] ?? `failure at ${at}`]));
}

beforeAll(async () => {
  if (!fs.existsSync(CADDY)) throw new Error(`${CADDY} is missing: run bash test/runtime/setup/caddy.sh (as .ci/run does)`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-zero-downtime-"));
}, 60_000);

afterAll(async () => {
  for (const s of runs) {
    await Promise.allSettled(s.current.replicas.map((r) => r.process.stop("SIGKILL")));
    await s.edge.stop();
    await Promise.allSettled([s.pg.destroy(), s.redis.destroy()]);
  }
  await Promise.allSettled(spare.map((r) => r.process.stop("SIGKILL")));
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe("zero downtime: staging (one replica)", () => {
  let s: StackRun;
  beforeAll(async () => {
    s = await startStack("staging");
  }, 180_000);

  it("the declared edge config keeps per-container upstreams, and the API containers stop gracefully", () => {
    const [api] = apiContainers(s.a);
    expect(api.name).toMatch(/^api-[0-9a-f]{8}-1$/);
    expect(api.inputs).toMatchObject({ stopSignal: "SIGTERM", destroyGraceSeconds: 30 });
    expect(apiContainers(s.b)[0].name).not.toBe(api.name);
  });

  it("one replica replaced under load: no failed request from HTTP/2 clients", async () => {
    const { h2, h1 } = await underLoad(s, "one replica replaced", () => deploy(s, s.b, 60_000));
    expect(h2.requests).toBeGreaterThan(100);
    expect(h2.failed, h2.samples.join("; ")).toBe(0);
    expect(onlyClosedAtSwitch(s, h1)).toEqual([]);
  }, 120_000);

  it("an API that never becomes ready fails the deploy, and the old release keeps serving every request", async () => {
    const serving = s.current.declared;
    const next = serving === s.a ? s.b : s.a;
    const broken = (c: DeclaredResource) => {
      const env = envFor(s, c);
      const u = new URL(env.DATABASE_URL);
      u.password = "not-the-password";
      return { ...env, DATABASE_URL: u.toString() };
    };
    let outcome = "";
    const { h2, h1 } = await underLoad(s, "never ready", async () => {
      outcome = await deploy(s, next, NEVER_READY_WAIT_MS, broken).then(
        () => "deployed",
        (err: Error) => err.message,
      );
    });
    expect(outcome).toMatch(new RegExp(`${apiContainers(next)[0].name}: container failed to be in healthy state`));
    expect(s.current.declared).toBe(serving);
    // The edge was never switched: no request of either kind failed.
    expect(h2.failed, h2.samples.join("; ")).toBe(0);
    expect(h1.failed, h1.samples.join("; ")).toBe(0);
  }, 120_000);
});

describe("zero downtime: production (two replicas)", () => {
  let s: StackRun;
  beforeAll(async () => {
    // A readiness check gives up after 500 ms here (2 s by default), so a 1 s Redis stall is a real readiness failure; 500 ms, not less, so that a busy machine alone does not fail it.
    s = await startStack("production", { READINESS_TIMEOUT_MS: "500" });
  }, 180_000);

  it("all replicas replaced in one update under load: no failed request from HTTP/2 clients", async () => {
    expect(s.current.replicas).toHaveLength(2);
    const { h2, h1 } = await underLoad(s, "all replicas replaced", () => deploy(s, s.b, 60_000));
    expect(h2.requests).toBeGreaterThan(100);
    expect(h2.failed, h2.samples.join("; ")).toBe(0);
    expect(onlyClosedAtSwitch(s, h1)).toEqual([]);
  }, 120_000);

  it("a readiness blip on every replica, with status probes through the edge: no failed request", async () => {
    let directStatus = 0;
    let probeStatus: number[] = [];
    const { h2, h1 } = await underLoad(s, "readiness blip with status probes", async () => {
      await sleep(1_000);
      // Redis stops answering for 1 s: every replica's readiness fails at once, shorter than two of the edge's checks.
      process.kill(s.redis.pid, "SIGSTOP");
      const stalled = Date.now();
      const direct = fetch(`http://127.0.0.1:${s.current.replicas[0].port}/api/v1/health/ready`).then((res) => res.status);
      // What `npm run status` and the deploy's smoke check do: GET the readiness URL through the edge.
      const probe = new Agent({ connect: { ca: s.edge.rootCertificate() } });
      const probes = [0, 1].map(() => fetch(`https://127.0.0.1:${s.edge.port}/api/v1/health/ready`, { dispatcher: probe }).then((res) => res.status));
      await sleep(1000 - (Date.now() - stalled));
      process.kill(s.redis.pid, "SIGCONT");
      [directStatus, ...probeStatus] = await Promise.all([direct, ...probes]);
      await probe.close();
    });
    console.log(`zero-downtime: readiness blip: a replica answered its readiness check ${directStatus} during the stall; the probes through the edge got ${probeStatus.join(", ")}`);
    expect(directStatus).toBe(503);
    // No switch happened: no request of either kind failed.
    expect(h2.failed, h2.samples.join("; ")).toBe(0);
    expect(h1.failed, h1.samples.join("; ")).toBe(0);
  }, 120_000);
});
