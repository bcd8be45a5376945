import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../contract/servers";
import { evaluateStack, resource, type Declared, type DeclaredResource } from "../helpers/declared-stack";
import { apiContainers, edgeFiles, load, nextRelease, report, type LoadResult } from "./edge-harness";
import { dockerCli, Engine, requireTestImages, uniquePrefix } from "./engine";
import { providerCreate, providerRequests, type CreatedContainer } from "./provider-container";

/**
 * The zero-downtime scenarios of zero-downtime.test.ts on a real Docker engine
 * (Debian's 20.10), with the production plan's containers created as the
 * Docker provider creates them (provider-container.ts). What only the engine
 * can show: Docker's DNS resolving each API container by its own name for
 * the edge, the admin socket shared through the edge's config volume, the
 * declared `caddy reload` run as a job container, and the provider's delete
 * (stop with `destroyGraceSeconds`, then remove) delivering SIGTERM to the API.
 *
 * Substituted, and nothing else: the images (appstack-test/* stand-ins from
 * test/runtime/setup/images.sh; the example API for the team's API image),
 * names of containers, networks and volumes (this run's prefix, also in the
 * Caddyfile's upstream names), published ports (free ports on 127.0.0.1), the
 * real proxy ID for EDGE_CONTAINER, and in both Caddyfiles the site: HTTPS for
 * 127.0.0.1 with a certificate from Caddy's local CA (`tls internal`,
 * `default_sni 127.0.0.1`, `skip_install_trust`) instead of ACME for the
 * stack's domain. A new release's containers get the first release's
 * connection URLs, as on a real stack whose passwords do not change with the
 * image.
 */

const LOAD_MS = 16_000;
const DEPLOY_AT_MS = 2_000;
const NEVER_READY_WAIT_SECONDS = 20;
const SERVICE_IMAGE: Record<string, "postgres" | "redis" | "exampleApp" | "caddy"> = {
  postgres: "postgres",
  redis: "redis",
  api: "exampleApp",
  migrate: "exampleApp",
  edge: "caddy",
};

let engine: Engine;
let images: Record<string, string>;
let tmp: string;
const prefix = uniquePrefix("zd-docker");
const ours = (name: string) => `${prefix}-${name}`;

const label = (r: DeclaredResource, key: string) => (r.inputs.labels as { label: string; value: string }[] | undefined)?.find((l) => l.label === key)?.value;

/** The declared Caddyfile with this run's substitutions (see the module comment). */
function forThisRun(caddyfile: string, domain: string, upstreams: string[]): string {
  const site = `\n${domain} {\n`;
  if (caddyfile.split(site).length !== 2) throw new Error(`expected the site ${domain} once`);
  let text = caddyfile.replace(site, "\nhttps://127.0.0.1 {\n\ttls internal\n");
  text = text.replace(/^\tadmin (\S+)$/m, "\tadmin $1\n\tdefault_sni 127.0.0.1\n\tskip_install_trust");
  for (const u of upstreams) {
    if (text.split(u).length !== 2) throw new Error(`expected upstream ${u} once`);
    text = text.replace(u, ours(u));
  }
  return text;
}

interface Run {
  a: Declared;
  b: Declared;
  domain: string;
  proxy: CreatedContainer;
  edgePort: number;
  rootCertificate: Buffer;
  redis: CreatedContainer;
  /** The release serving now. */
  current: { declared: Declared; containers: CreatedContainer[] };
  switches: { from: number; to: number }[];
  extraEnv: string[];
}
let run: Run;

/** Creates one declared container as the provider would, with this run's substitutions. */
async function create(d: Declared, c: DeclaredResource, over: { env?: (e: string) => string; extraEnv?: string[]; name?: string; waitTimeout?: number; ports?: Record<number, number> } = {}): Promise<CreatedContainer> {
  const inputs = structuredClone(c.inputs);
  inputs.image = images[SERVICE_IMAGE[label(c, "appstack.service")!]];
  inputs.name = ours(over.name ?? (inputs.name as string | undefined) ?? c.name);
  for (const net of (inputs.networksAdvanced as { name: string }[] | undefined) ?? []) net.name = ours(net.name);
  for (const vol of (inputs.volumes as { volumeName: string }[] | undefined) ?? []) vol.volumeName = ours(vol.volumeName);
  if (inputs.cgroupParent) inputs.cgroupParent = ours(inputs.cgroupParent as string);
  for (const p of (inputs.ports as { internal: number; external?: number; ip?: string }[] | undefined) ?? []) {
    p.external = over.ports?.[p.internal] ?? (await freePort());
    p.ip = "127.0.0.1";
  }
  if (inputs.envs) inputs.envs = [...(inputs.envs as string[]).map(over.env ?? ((e) => e)), ...(over.extraEnv ?? [])];
  if (over.waitTimeout !== undefined) inputs.waitTimeout = over.waitTimeout;
  return providerCreate(engine, providerRequests(inputs));
}

/** The upstream names of a release's API containers, in replica order, as its edge config names them. */
const upstreamNames = (d: Declared) => edgeFiles(d).upstreams.map((u) => u.replace(/:\d+$/, ""));

/** A release's API containers: the release's own env, the first release's connection URLs. */
async function createRelease(d: Declared, waitTimeout?: number, broken = false): Promise<CreatedContainer[]> {
  const urls = Object.fromEntries(
    (apiContainers(run.a)[0].inputs.envs as string[]).filter((e) => /^(DATABASE_URL|REDIS_URL)=/.test(e)).map((e) => [e.split("=")[0], e]),
  );
  const names = upstreamNames(d);
  return Promise.all(
    apiContainers(d).map(async (c, i) => {
      const created = await create(d, c, {
        name: names[i],
        waitTimeout,
        extraEnv: run.extraEnv,
        env: (e) => {
          const key = e.split("=")[0];
          if (!urls[key]) return e;
          if (broken && key === "DATABASE_URL") {
            const u = new URL(urls[key].slice(key.length + 1));
            u.password = "not-the-password";
            return `${key}=${u}`;
          }
          return urls[key];
        },
      }).catch((err: Error) => {
        throw new Error(`${c.name}: ${err.message}`);
      });
      graceOf.set(created.id, Number(c.inputs.destroyGraceSeconds ?? 0));
      return created;
    }),
  );
}

/** The edge-config job of a release: the declared job, its Caddyfile with this run's substitutions. */
async function switchEdge(d: Declared): Promise<void> {
  const job = resource(d, "edge-config-run");
  const from = Date.now();
  const inputs = structuredClone(job.inputs);
  const upload = (inputs.uploads as { content: string }[])[0];
  upload.content = forThisRun(upload.content, run.domain, edgeFiles(d).upstreams.map((u) => u.replace(/:\d+$/, "")));
  const created = await create(d, { ...job, inputs }, {
    name: `edge-config-${from}`,
    env: (e) => (e.startsWith("EDGE_CONTAINER=") ? `EDGE_CONTAINER=${run.proxy.id}` : e),
  });
  run.switches.push({ from, to: Date.now() });
  if (created.exitCode !== 0) throw new Error(`edge-config job exited ${created.exitCode}: ${created.logs}`);
}

/** Each created container's declared destroyGraceSeconds (the provider's delete reads it from the resource). */
const graceOf = new Map<string, number>();

/** How each deleted container ended, read between the stop and the removal. */
const stopped = new Map<string, { exitCode: number; logs: string }>();

/** The provider's delete of a container: stop with destroyGraceSeconds as the timeout (0 when unset), then remove. */
async function deleteContainer(c: CreatedContainer): Promise<void> {
  const grace = graceOf.get(c.id) ?? 0;
  await engine.request("POST", `/containers/${c.id}/stop?t=${grace}`, { timeoutMs: (grace + 30) * 1000 });
  stopped.set(c.id, { exitCode: (await engine.inspectContainer(c.id)).State.ExitCode, logs: await engine.logs(c.id, 20) });
  await engine.request("DELETE", `/containers/${c.id}?force=1`);
}

/** `pulumi up` for a release: its containers created and healthy, the edge switched, then the old release deleted. */
async function deploy(next: Declared, waitTimeout?: number, broken = false): Promise<void> {
  const containers = await createRelease(next, waitTimeout, broken);
  await switchEdge(next);
  const old = run.current;
  await Promise.all(old.containers.map(deleteContainer));
  run.current = { declared: next, containers };
}

async function underLoad(scenario: string, action: () => Promise<void>): Promise<{ h2: LoadResult; h1: LoadResult }> {
  const edge = { port: run.edgePort, rootCertificate: () => run.rootCertificate };
  const loads = Promise.all([load(edge, "h2", LOAD_MS), load(edge, "http/1.1", LOAD_MS)]);
  await new Promise((r) => setTimeout(r, DEPLOY_AT_MS));
  await action();
  const [h2, h1] = await loads;
  report(`docker: ${scenario}`, h2);
  report(`docker: ${scenario}`, h1);
  return { h2, h1 };
}

const onlyClosedAtSwitch = (r: LoadResult) =>
  r.failedAt.flatMap((at, i) => (run.switches.some((w) => at >= w.from && at <= w.to + 250) ? [] : [r.samples[i] ?? `failure at ${at}`]));

beforeAll(async () => {
  engine = await Engine.connect();
  images = await requireTestImages(engine, ["postgres", "redis", "exampleApp", "caddy"]);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-zd-docker-"));
  // Updates, not previews: the edge-config job's EDGE_CONTAINER holds the proxy's ID.
  const [a, b] = await Promise.all([
    evaluateStack({ stack: "production", values: "contract", preview: false }),
    evaluateStack({ stackFile: nextRelease("production", tmp), values: "contract", preview: false }),
  ]);
  const domain = /^([a-z0-9.-]+) \{$/m.exec(edgeFiles(a).bootstrap)![1];
  run = { a, b, domain, proxy: undefined!, edgePort: await freePort(), rootCertificate: Buffer.alloc(0), redis: undefined!, current: { declared: a, containers: [] }, switches: [], extraEnv: [] };

  for (const net of a.resources.filter((r) => r.type === "docker:index/network:Network")) {
    await engine.json("POST", "/networks/create", { Name: ours(net.inputs.name as string), Driver: net.inputs.driver, IPAM: { Driver: "default" }, CheckDuplicate: true });
  }
  for (const vol of a.resources.filter((r) => r.type === "docker:index/volume:Volume")) {
    await engine.json("POST", "/volumes/create", { Name: ours(vol.inputs.name as string) });
  }
  const [, redis] = await Promise.all([create(a, resource(a, "postgres-server")), create(a, resource(a, "redis-server"))]);
  run.redis = redis;
  // The declared migrations job; its command is the team's (npm run db:migrate), the example API's is node api/migrate.js.
  const migrateJob = resource(a, "api-migrate-run");
  const migrate = await create(a, { ...migrateJob, inputs: { ...migrateJob.inputs, command: ["node", "api/migrate.js"] } }, { name: "migrate" });
  if (migrate.exitCode !== 0) throw new Error(`migrations exited ${migrate.exitCode}: ${migrate.logs}`);
  // A readiness check gives up after 500 ms here (2 s by default), so a 1 s Redis pause is a real readiness failure; 500 ms, not less, so that a busy machine alone does not fail it.
  run.extraEnv = ["READINESS_TIMEOUT_MS=500"];
  const proxyInputs = structuredClone(resource(a, "edge-proxy").inputs);
  const bootstrap = (proxyInputs.uploads as { content: string }[])[0];
  bootstrap.content = forThisRun(bootstrap.content, domain, []);
  run.proxy = await create(a, { ...resource(a, "edge-proxy"), inputs: proxyInputs }, { ports: { 443: run.edgePort } });
  run.rootCertificate = Buffer.from(dockerCli(["exec", run.proxy.id, "cat", "/data/caddy/pki/authorities/local/root.crt"]).stdout);
  run.current = { declared: a, containers: await createRelease(a) };
  await switchEdge(a);
  const first = await load({ port: run.edgePort, rootCertificate: () => run.rootCertificate }, "h2", 500, 1);
  if (first.failed > 0 || first.requests === 0) throw new Error(`the edge does not serve the first release: ${first.samples.join("; ")}`);
}, 600_000);

afterAll(async () => {
  if (engine) await engine.removeByPrefix(prefix);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe("zero downtime on a real Docker engine: production (two replicas)", () => {
  it("the edge dials each API container by its own Docker name, and the provider's delete sends it SIGTERM with the declared grace", async () => {
    for (const c of run.current.containers) {
      expect(c.name).toMatch(new RegExp(`^${prefix}-api-[0-9a-f]{8}-\\d-[0-9a-f]{7}$`));
      expect(c.requests.create.StopSignal).toBe("SIGTERM");
    }
    expect(apiContainers(run.a).every((c) => c.inputs.destroyGraceSeconds === 30)).toBe(true);
  });

  it("all replicas replaced in one update under load: no failed request from HTTP/2 clients", async () => {
    const old = run.current.containers;
    const { h2, h1 } = await underLoad("all replicas replaced", () => deploy(run.b));
    expect(h2.requests).toBeGreaterThan(100);
    expect(h2.failed, h2.samples.join("; ")).toBe(0);
    expect(onlyClosedAtSwitch(h1)).toEqual([]);
    // Each old container drained on SIGTERM and exited 0 by itself within its grace period, not by SIGKILL (137).
    for (const c of old) {
      const end = stopped.get(c.id)!;
      expect(end.exitCode, end.logs).toBe(0);
      expect(end.logs).toMatch(/"message":"draining","signal":"SIGTERM"/);
      expect(end.logs).toMatch(/"message":"stopped"/);
    }
  }, 180_000);

  it("an API that never becomes ready fails the deploy, and the old release keeps serving every request", async () => {
    const serving = run.current.declared;
    const next = serving === run.a ? run.b : run.a;
    let outcome = "";
    const { h2, h1 } = await underLoad("never ready", async () => {
      outcome = await deploy(next, NEVER_READY_WAIT_SECONDS, true).then(
        () => "deployed",
        (err: Error) => err.message,
      );
    });
    expect(outcome).toMatch(/healthy/);
    expect(run.current.declared).toBe(serving);
    expect(h2.failed, h2.samples.join("; ")).toBe(0);
    expect(h1.failed, h1.samples.join("; ")).toBe(0);
    // The provider leaves the container that never turned healthy; the next update removes it.
    await engine.removeByPrefix(ours(upstreamNames(next)[0].replace(/-1-[0-9a-f]{7}$/, "")));
  }, 180_000);

  it("a readiness blip on every replica (Redis paused 1 s), with status probes through the edge: no failed request", async () => {
    let probeStatus: number[] = [];
    const { h2, h1 } = await underLoad("readiness blip with status probes", async () => {
      await new Promise((r) => setTimeout(r, 1_000));
      await engine.request("POST", `/containers/${run.redis.id}/pause`);
      const paused = Date.now();
      const { Agent, fetch } = await import("undici");
      const probe = new Agent({ connect: { ca: run.rootCertificate } });
      const probes = [0, 1].map(() => fetch(`https://127.0.0.1:${run.edgePort}/api/v1/health/ready`, { dispatcher: probe }).then((res) => res.status));
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - paused))));
      await engine.request("POST", `/containers/${run.redis.id}/unpause`);
      probeStatus = await Promise.all(probes);
      await probe.close();
    });
    console.log(`zero-downtime: docker: readiness blip: the probes through the edge got ${probeStatus.join(", ")} while Redis was paused`);
    // The blip was real: the readiness probes through the edge saw it.
    expect(probeStatus).toContain(503);
    expect(h2.failed, h2.samples.join("; ")).toBe(0);
    expect(h1.failed, h1.samples.join("; ")).toBe(0);
  }, 180_000);
});
