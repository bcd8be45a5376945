import { performance } from "node:perf_hooks";
import * as os from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent, fetch } from "undici";
import { SWARM_OBJECT_NAME_MAX, SWARM_SERVICE_NAME_MAX } from "../../config";
import { probe } from "../../ops/operations/health";
import { diagnoseSwarm, swarmPreflight } from "../../ops/operations/swarm";
import { UserError } from "../../ops/shared/errors";
import { freePort } from "../contract/servers";
import { evaluateStack, PROJECT_ROOT, resource, type Declared, type DeclaredResource } from "../helpers/declared-stack";
import { load, report, type LoadResult } from "./edge-harness";
import { DOCKER_SOCKET, dockerCli, Engine, EngineError, pollUntil, requireTestImages, TEST_IMAGES, uniquePrefix } from "./engine";
import { goDurationNs, providerCreate, providerRequests, type CreatedContainer } from "./provider-container";
import {
  createConfig,
  createNetwork,
  createSecret,
  providerCreateService,
  providerUpdateService,
  removeService,
  serviceSpec,
  type SwarmService,
  type SwarmTask,
} from "./provider-service";

/**
 * Swarm mode on a real single-node swarm (Debian's Docker 20.10): the swarm
 * example stack's plan (examples/Pulumi.swarm-example.yaml) created as the
 * Docker provider creates it (provider-service.ts, provider-container.ts), in
 * the plan's dependency order: the overlay network, the volumes, the secrets
 * and the edge's config, Postgres and Redis (converged), the pre-deploy dump
 * and the migrations (containers on the manager, on the overlay), the API and
 * the worker (converged), the edge (one task on the node labelled edge).
 * Then, under a bounded load through the edge, the plan's own API spec is
 * updated twice: to a new release (start-first, one task at a time), and to
 * an image whose health check fails, which Swarm rolls back by itself.
 *
 * The swarm is this test's: `docker swarm init` on 127.0.0.1 with free ports
 * when the engine is in none, `docker swarm leave --force` at the end (and
 * the docker_gwbridge network it leaves behind removed, when it was not
 * there before). A node with an active swarm is used as it is, and left so.
 *
 * Substituted, and nothing else: the images (appstack-test/* stand-ins from
 * test/runtime/setup/images.sh, tagged for this run; the example API for the
 * team's API image), the `appstack-swarm-example` part of every name (this
 * run's prefix, also in the Caddyfile's `tasks.<service>`), the IDs of what
 * this run created (network, secrets, config) where the plan holds the
 * provider's, the edge's published ports (free ports), and the edge's site:
 * HTTPS for 127.0.0.1 from Caddy's local CA (`tls internal`) instead of ACME
 * for api.example.com, which no certificate authority could reach here.
 */

const STACK_FILE = "examples/Pulumi.swarm-example.yaml";
const STACK_PART = "appstack-swarm-example";
const LOAD_MS = 16_000;

let engine: Engine;
const prefix = uniquePrefix("swarm");
const ours = (text: string) => text.split(STACK_PART).join(prefix);
const label = (r: DeclaredResource, key: string) => (r.inputs.labels as { label: string; value: string }[] | undefined)?.find((l) => l.label === key)?.value;

interface Run {
  declared: Declared;
  /** Swarm state before the test: the swarm and docker_gwbridge are removed at the end only if this test made them. */
  initedSwarm: boolean;
  hadGwBridge: boolean;
  nodeId: string;
  labels: string[];
  images: Record<string, string>;
  /** The plan's IDs (`<resource>-id`) -> this run's. */
  ids: Map<string, string>;
  services: Map<string, { id: string; spec: Record<string, unknown>; readyMs?: number; warnings: string[] }>;
  jobs: Map<string, CreatedContainer>;
  edgePort: number;
  rootCertificate: Buffer;
  timings: string[];
}
let run: Run;

const servicesOf = (d: Declared) => d.resources.filter((r) => r.type === "docker:index/service:Service");

/** A swarm of this node alone, on 127.0.0.1 and free ports: no traffic leaves the machine. True when this test made it. */
async function initSwarm(): Promise<boolean> {
  const info = await engine.json<{ Swarm: { LocalNodeState: string; ControlAvailable: boolean } }>("GET", "/info");
  if (info.Swarm.LocalNodeState === "active") {
    if (!info.Swarm.ControlAvailable) throw new Error("this engine is a swarm worker, not a manager: the test needs a manager");
    console.log("[swarm] the engine is already a swarm manager: using its swarm as it is, and leaving it so");
    return false;
  }
  let dataPort = await freePort();
  while (dataPort > 49151) dataPort = await freePort();
  const listen = await freePort();
  await engine.request("POST", "/swarm/init", {
    json: { ListenAddr: `127.0.0.1:${listen}`, AdvertiseAddr: `127.0.0.1:${listen}`, DataPathPort: dataPort, ForceNewCluster: false },
    timeoutMs: 60_000,
  });
  return true;
}

/** The test's copy of an image, under this run's prefix: other runs' rebuilds of appstack-test/* cannot change it mid-test. */
function tagImage(key: keyof typeof TEST_IMAGES): string {
  const ref = `${prefix}/${key.toLowerCase()}:test`;
  const r = dockerCli(["tag", TEST_IMAGES[key], ref]);
  if (r.code !== 0) throw new Error(`docker tag ${TEST_IMAGES[key]}: ${r.stderr}`);
  return ref;
}

/** What each image must do for swarm mode, checked before anything is created: an old stand-in would fail the test for the wrong reason. */
function checkImageContracts(images: Record<string, string>): void {
  const check = (image: string, script: string, expected: string, why: string) => {
    const r = dockerCli(["run", "--rm", "--entrypoint", "sh", image, "-c", script]);
    if (r.stdout.trim() !== expected) throw new Error(`${image}: ${why} (got "${r.stdout.trim()}${r.stderr.trim()}"): run bash test/runtime/setup/images.sh`);
  };
  check(images.redis, "id -u redis", "999", "the redis user must have the official images' uid 999, which owns the password file");
  check(images.postgres, "id -u postgres", "70", "the postgres user must have the alpine images' uid 70, which owns the password file");
  check(images.exampleApp, "command -v secrets-from-files", "/usr/local/bin/secrets-from-files", "the example API's entrypoint must export <NAME>_FILE");
  check(images.postgres, "grep -q 'cat \"$POSTGRES_PASSWORD_FILE\"' /usr/local/bin/docker-entrypoint.sh && echo reads", "reads", "the postgres stand-in must read POSTGRES_PASSWORD_FILE as the official image does");
}

/** The plan's service inputs with this run's substitutions (see the module comment). */
function forThisRun(r: DeclaredResource, over: { image?: string; ports?: Record<number, number> } = {}): Record<string, unknown> {
  const inputs = JSON.parse(ours(JSON.stringify(r.inputs))) as Record<string, unknown>;
  const task = inputs.taskSpec as { containerSpec: Record<string, unknown>; networksAdvanceds?: { id: string }[] };
  const service = label(r, "appstack.service")!;
  const image = { postgres: "postgres", redis: "redis", api: "exampleApp", worker: "exampleApp", edge: "caddy" }[service]!;
  task.containerSpec.image = over.image ?? run.images[image];
  for (const s of (task.containerSpec.secrets as { secretId: string }[] | undefined) ?? []) s.secretId = idOf(s.secretId);
  for (const c of (task.containerSpec.configs as { configId: string }[] | undefined) ?? []) c.configId = idOf(c.configId);
  for (const n of task.networksAdvanceds ?? []) n.id = idOf(n.id);
  const ports = (inputs.endpointSpec as { ports?: { targetPort: number; publishedPort?: number; protocol?: string }[] } | undefined)?.ports ?? [];
  for (const p of ports) p.publishedPort = over.ports?.[p.targetPort] ?? p.publishedPort;
  return inputs;
}

function idOf(planId: string): string {
  const id = run.ids.get(planId);
  if (!id) throw new Error(`nothing created for ${planId}`);
  return id;
}

/** The swarm Caddyfile with the test's site (see the module comment); each rewrite must match exactly once. */
function edgeCaddyfile(text: string): string {
  const site = "\napi.example.com {\n";
  if (text.split(site).length !== 2) throw new Error("expected the site api.example.com once");
  const email = /^\temail \S+$/m;
  if (!email.test(text)) throw new Error("expected the email option");
  return text.replace(site, "\nhttps://127.0.0.1 {\n\ttls internal\n").replace(email, (line) => `${line}\n\tdefault_sni 127.0.0.1\n\tskip_install_trust`);
}

async function createService(r: DeclaredResource, over: { ports?: Record<number, number> } = {}): Promise<void> {
  const inputs = forThisRun(r, over);
  const converge = inputs.convergeConfig as { timeout: string; delay: string } | undefined;
  const started = performance.now();
  const spec = serviceSpec(inputs);
  const seconds = (d: string) => goDurationNs(d) / 1e9;
  const created = await providerCreateService(engine, spec, converge ? { timeoutSeconds: seconds(converge.timeout), delaySeconds: seconds(converge.delay) } : undefined).catch(async (err: Error) => {
    throw new Error(`${r.name}: ${err.message}\n${await taskErrors(String(spec.Name))}`);
  });
  const readyMs = converge ? performance.now() - started : undefined;
  run.services.set(r.name, { id: created.id, spec, readyMs, warnings: created.warnings });
  if (readyMs !== undefined) run.timings.push(`${r.name.padEnd(16)} converged after ${(readyMs / 1000).toFixed(1)} s`);
}

/** A service's failed tasks, for an error message. */
async function taskErrors(name: string): Promise<string> {
  const filters = encodeURIComponent(JSON.stringify({ service: [name] }));
  const tasks = await engine.json<SwarmTask[]>("GET", `/tasks?filters=${filters}`).catch(() => []);
  return tasks.map((t) => `  task ${t.ID.slice(0, 12)}: ${t.Status.State} ${t.Status.Err ?? ""} ${t.Status.Message ?? ""}`).join("\n");
}

/** A one-shot job of the plan, as the provider creates a container. */
async function createJob(r: DeclaredResource): Promise<CreatedContainer> {
  const inputs = JSON.parse(ours(JSON.stringify(r.inputs))) as Record<string, unknown>;
  inputs.image = run.images[label(r, "appstack.service") === "backup" ? "postgres" : "exampleApp"];
  inputs.name = `${prefix}-${r.name}`;
  const started = performance.now();
  const created = await providerCreate(engine, providerRequests(inputs));
  run.timings.push(`${r.name.padEnd(16)} exit ${created.exitCode} after ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (created.exitCode !== 0) throw new Error(`${r.name} exited ${created.exitCode}:\n${created.logs}`);
  run.jobs.set(r.name, created);
  return created;
}

/** The containers of a service's running tasks on this node. */
async function taskContainers(service: string): Promise<string[]> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`com.docker.swarm.service.id=${run.services.get(service)!.id}`], status: ["running"] }));
  return (await engine.json<{ Id: string }[]>("GET", `/containers/json?filters=${filters}`)).map((c) => c.Id);
}

async function currentService(name: string): Promise<SwarmService> {
  return engine.json<SwarmService>("GET", `/services/${run.services.get(name)!.id}`);
}

/** The API's spec as the plan declares it, with another image and release: what a deploy of a new release sends. */
function nextApiSpec(image: string, version: string): Record<string, unknown> {
  const inputs = forThisRun(resource(run.declared, "api-service"), { image });
  const env = (inputs.taskSpec as { containerSpec: { env: Record<string, string> } }).containerSpec.env;
  env.APP_VERSION = version;
  return serviceSpec(inputs);
}

/**
 * A bounded load of GETs of the liveness path through the edge, each answer's
 * version recorded: for `durationMs`, or until `until` settles (at most 10 minutes).
 */
async function versionLoad(durationMs: number, until?: Promise<unknown>): Promise<{ requests: number; failed: string[]; versions: Map<string, number> }> {
  const dispatcher = new Agent({ connect: { ca: run.rootCertificate } });
  const versions = new Map<string, number>();
  const failed: string[] = [];
  let requests = 0;
  let done = false;
  void until?.finally(() => (done = true));
  const end = Date.now() + (until ? 600_000 : durationMs);
  const loop = async () => {
    while (Date.now() < end && !done) {
      requests++;
      try {
        const res = await fetch(`https://127.0.0.1:${run.edgePort}/api/v1/health/live`, { dispatcher, signal: AbortSignal.timeout(15_000) });
        const body = (await res.json().catch(() => ({}))) as { version?: string };
        if (res.status !== 200) failed.push(`${res.status}`);
        else versions.set(body.version ?? "?", (versions.get(body.version ?? "?") ?? 0) + 1);
      } catch (err) {
        failed.push((err as Error).message);
      }
    }
  };
  await Promise.all([loop(), loop()]);
  await dispatcher.close();
  return { requests, failed, versions };
}

/** Every string the engine returns about the stack's objects, as `docker inspect` and `docker service inspect` print them. */
async function everyInspectOutput(): Promise<{ what: string; text: string }[]> {
  const out: { what: string; text: string }[] = [];
  for (const [name, s] of run.services) {
    out.push({ what: `docker service inspect ${name}`, text: (await engine.request("GET", `/services/${s.id}?insertDefaults=true`)).body.toString() });
    const filters = encodeURIComponent(JSON.stringify({ service: [s.id] }));
    out.push({ what: `docker inspect (tasks of ${name})`, text: (await engine.request("GET", `/tasks?filters=${filters}`)).body.toString() });
  }
  const containers = await engine.json<{ Id: string; Names: string[] }[]>("GET", "/containers/json?all=1");
  for (const c of containers.filter((x) => x.Names.some((n) => n.includes(prefix)))) {
    out.push({ what: `docker inspect ${c.Names[0]}`, text: (await engine.request("GET", `/containers/${c.Id}/json`)).body.toString() });
  }
  for (const kind of ["secrets", "configs"]) {
    const filters = encodeURIComponent(JSON.stringify({ name: [prefix] }));
    out.push({ what: `docker ${kind.slice(0, -1)} inspect`, text: (await engine.request("GET", `/${kind}?filters=${filters}`)).body.toString() });
  }
  return out;
}

beforeAll(async () => {
  engine = await Engine.connect();
  await requireTestImages(engine, ["postgres", "redis", "exampleApp", "caddy"]);
  const networks = await engine.json<{ Name: string }[]>("GET", "/networks");
  run = {
    declared: undefined!,
    initedSwarm: false,
    hadGwBridge: networks.some((n) => n.Name === "docker_gwbridge"),
    nodeId: "",
    labels: [],
    images: {},
    ids: new Map(),
    services: new Map(),
    jobs: new Map(),
    edgePort: await freePort(),
    rootCertificate: Buffer.alloc(0),
    timings: [],
  };
  for (const key of ["postgres", "redis", "exampleApp", "caddy"] as const) run.images[key] = tagImage(key);
  checkImageContracts(run.images);
  // An update, not a preview: the plan's IDs are the mock's `<name>-id`, which this run maps to what it creates.
  run.declared = await evaluateStack({ stackFile: `${PROJECT_ROOT}/${STACK_FILE}`, values: "contract", preview: false });

  run.initedSwarm = await initSwarm();
  run.nodeId = (await engine.json<{ Swarm: { NodeID: string } }>("GET", "/info")).Swarm.NodeID;
  // The node is both the data node and the edge node of the example.
  const postgresNode = /node\.labels\.appstack\.node==([^"]+)/.exec(JSON.stringify(resource(run.declared, "postgres-service").inputs))![1];
  run.labels = ["appstack.node", "appstack.edge"];
  const node = await engine.json<{ Version: { Index: number }; Spec: Record<string, unknown> & { Labels?: Record<string, string> } }>("GET", `/nodes/${run.nodeId}`);
  await engine.request("POST", `/nodes/${run.nodeId}/update?version=${node.Version.Index}`, {
    json: { ...node.Spec, Labels: { ...node.Spec.Labels, "appstack.node": postgresNode, "appstack.edge": "true" } },
  });

  const d = run.declared;
  const byType = (type: string) => d.resources.filter((r) => r.type === type);
  for (const net of byType("docker:index/network:Network")) {
    run.ids.set(`${net.name}-id`, await createNetwork(engine, net.inputs, ours(net.inputs.name as string)));
  }
  for (const vol of byType("docker:index/volume:Volume")) {
    await engine.json("POST", "/volumes/create", { Name: ours(vol.inputs.name as string), Labels: Object.fromEntries((vol.inputs.labels as { label: string; value: string }[]).map((l) => [l.label, l.value])) });
  }
  for (const s of byType("docker:index/secret:Secret")) run.ids.set(`${s.name}-id`, await createSecret(engine, s.inputs, ours(s.inputs.name as string)));
  for (const c of byType("docker:index/serviceConfig:ServiceConfig")) {
    const inputs = { ...c.inputs, dataRaw: ours(edgeCaddyfile(c.inputs.dataRaw as string)) };
    run.ids.set(`${c.name}-id`, await createConfig(engine, inputs, ours(c.inputs.name as string)));
  }
  // The plan's order: the data stores, then the dump and the migrations, the API, then the worker and the edge.
  await Promise.all([createService(resource(d, "postgres-service")), createService(resource(d, "redis-service"))]);
  await createJob(resource(d, "backup-dump-run"));
  await createJob(resource(d, "api-migrate-run"));
  await createService(resource(d, "api-service"));
  const edgePorts = { 80: await freePort(), 443: run.edgePort };
  await Promise.all([createService(resource(d, "worker-service")), createService(resource(d, "edge-service"), { ports: edgePorts })]);
  const [edge] = await pollUntil("the edge task running", 120_000, 1000, async () => ((await taskContainers("edge-service")).length ? taskContainers("edge-service") : undefined));
  const cert = await pollUntil("the edge's local CA", 60_000, 1000, async () => {
    const r = dockerCli(["exec", edge, "cat", "/data/caddy/pki/authorities/local/root.crt"]);
    return r.code === 0 && r.stdout.includes("BEGIN CERTIFICATE") ? r.stdout : undefined;
  });
  run.rootCertificate = Buffer.from(cert);
  let last: string[] = [];
  await pollUntil("the API answering through the edge", 60_000, 1000, async () => {
    last = (await versionLoad(300)).failed;
    return last.length === 0 ? true : undefined;
  }).catch(async (err: Error) => {
    throw new Error(`${err.message}: ${last.slice(0, 3).join("; ")}\nedge logs:\n${await engine.logs(edge, 30)}`);
  });
  console.log(`[swarm] ${STACK_FILE} on Docker ${engine.info.Version} (API ${engine.apiVersion}), one node:\n  ${run.timings.join("\n  ")}`);
}, 900_000);

afterAll(async () => {
  if (!engine || !run) return;
  for (const s of run.services.values()) await removeService(engine, s.id).catch((err: Error) => console.log(`[swarm] cleanup: ${err.message}`));
  await engine.removeByPrefix(prefix).catch((err: Error) => console.log(`[swarm] cleanup: ${err.message}`));
  for (const kind of ["secrets", "configs"]) {
    const filters = encodeURIComponent(JSON.stringify({ name: [prefix] }));
    for (const o of await engine.json<{ ID: string }[]>("GET", `/${kind}?filters=${filters}`).catch(() => [])) {
      await engine.request("DELETE", `/${kind}/${o.ID}`).catch(() => undefined);
    }
  }
  for (const image of [...Object.values(run.images), `${prefix}/api-broken:test`]) dockerCli(["rmi", image]);
  if (run.nodeId && !run.initedSwarm) {
    const node = await engine.json<{ Version: { Index: number }; Spec: { Labels?: Record<string, string> } }>("GET", `/nodes/${run.nodeId}`).catch(() => undefined);
    if (node) {
      const labels = Object.fromEntries(Object.entries(node.Spec.Labels ?? {}).filter(([k]) => !run.labels.includes(k)));
      await engine.request("POST", `/nodes/${run.nodeId}/update?version=${node.Version.Index}`, { json: { ...node.Spec, Labels: labels } }).catch(() => undefined);
    }
  }
  if (run.initedSwarm) {
    await engine.request("POST", "/swarm/leave?force=1", { timeoutMs: 60_000 }).catch((err: Error) => console.log(`[swarm] leave: ${err.message}`));
    if (!run.hadGwBridge) await engine.request("DELETE", "/networks/docker_gwbridge").catch(() => undefined);
  }
}, 300_000);

describe("swarm mode on a real single-node swarm: the swarm example's plan", () => {
  it("the engine is Debian's Docker 20.10 (API 1.41), a swarm manager, and every service of the plan was created without a warning but the registry's", () => {
    expect(engine.apiVersion).toBe("1.41");
    const names = servicesOf(run.declared).map((r) => r.name).sort();
    expect(names).toEqual(["api-service", "edge-service", "postgres-service", "redis-service", "worker-service"]);
    expect([...run.services.keys()].sort()).toEqual(names);
    for (const [name, s] of run.services) {
      // The daemon cannot ask a registry for the local image's digest; nothing else.
      expect(s.warnings.filter((w) => !/could not be accessed on a registry/.test(w)), name).toEqual([]);
    }
  });

  it("the engine stores every field of every service spec the provider sends", async () => {
    for (const [name, s] of run.services) {
      const stored = (await engine.json<SwarmService>("GET", `/services/${s.id}`)).Spec;
      expect(specDifferences(s.spec, stored), name).toEqual([]);
    }
  });

  it("every replicated service converged (its tasks running means healthy), and the edge runs on the node labelled edge", async () => {
    for (const name of ["postgres-service", "redis-service", "api-service", "worker-service"]) {
      const s = await currentService(name);
      expect((await taskContainers(name)).length, name).toBe(s.Spec.Mode.Replicated!.Replicas);
      for (const id of await taskContainers(name)) expect((await engine.inspectContainer(id)).State.Health?.Status, name).toBe("healthy");
    }
    expect((await taskContainers("edge-service")).length).toBe(1);
    expect(run.jobs.get("api-migrate-run")!.exitCode).toBe(0);
    expect(run.jobs.get("backup-dump-run")!.logs).toMatch(/appstack backup: wrote \/backups\//);
  });

  it("every service's task runs hardened: no capability but the edge's NET_BIND_SERVICE, a read-only root, noexec tmpfs where it writes, the data stores as their own users", async () => {
    const expected: Record<string, { bounding: string; user: string; tmpfs: string[] }> = {
      "api-service": { bounding: "0000000000000000", user: "", tmpfs: ["/tmp"] },
      "worker-service": { bounding: "0000000000000000", user: "", tmpfs: ["/tmp"] },
      "postgres-service": { bounding: "0000000000000000", user: "postgres", tmpfs: ["/dev/shm", "/tmp", "/var/run/postgresql"] },
      "redis-service": { bounding: "0000000000000000", user: "redis", tmpfs: ["/tmp"] },
      // CAP_NET_BIND_SERVICE is bit 10.
      "edge-service": { bounding: "0000000000000400", user: "", tmpfs: [] },
    };
    for (const [name, want] of Object.entries(expected)) {
      const [id] = await taskContainers(name);
      const c = (await engine.json<{ HostConfig: { CapDrop: string[] | null; CapAdd: string[] | null; ReadonlyRootfs: boolean }; Config: { User: string } }>("GET", `/containers/${id}/json`));
      expect(c.HostConfig.CapDrop, name).toEqual(["ALL"]);
      expect((c.HostConfig.CapAdd ?? []).map((x) => x.replace(/^CAP_/, "")), name).toEqual(name === "edge-service" ? ["NET_BIND_SERVICE"] : []);
      expect(c.HostConfig.ReadonlyRootfs, name).toBe(true);
      if (want.user) expect(c.Config.User, name).toBe(want.user);
      // What the kernel holds the main process to: its bounding set.
      expect(dockerCli(["exec", id, "sh", "-c", "grep CapBnd /proc/1/status"]).stdout.trim(), name).toBe(`CapBnd:\t${want.bounding}`);
      // Even root in the container cannot write the root filesystem.
      const write = dockerCli(["exec", "--user", "0", id, "sh", "-c", "touch /hardening-probe"]);
      expect(write.code, name).not.toBe(0);
      expect(write.stderr, name).toMatch(/Read-only file system/);
      // /proc/mounts names a mount by its resolved path: /var/run is a link to /run in Debian and Alpine alike.
      const resolved = want.tmpfs.length ? dockerCli(["exec", id, "readlink", "-f", ...want.tmpfs]).stdout.trim().split("\n") : [];
      const mounts = dockerCli(["exec", id, "sh", "-c", "awk '$3 == \"tmpfs\" { print $2, $4 }' /proc/mounts"]).stdout.trim().split("\n");
      const tmpfs = mounts.map((l) => l.split(" ")).filter(([target]) => resolved.includes(target));
      expect(tmpfs.map(([target]) => target).sort(), name).toEqual([...resolved].sort());
      for (const [target, options] of tmpfs) expect(options.split(","), `${name} ${target}`).toEqual(expect.arrayContaining(["rw", "nosuid", "nodev", "noexec"]));
    }
  });

  it("each secret reaches its process as a file of the declared owner and mode 0400, and no secret value is in any inspect output", async () => {
    const stat = async (service: string) => {
      const [id] = await taskContainers(service);
      return dockerCli(["exec", "--user", "0", id, "sh", "-c", "stat -c '%a %u %g %n' /run/secrets/*"]).stdout.trim().split("\n").sort();
    };
    expect(await stat("api-service")).toEqual(["400 1000 1000 /run/secrets/DATABASE_URL", "400 1000 1000 /run/secrets/JWT_SECRET", "400 1000 1000 /run/secrets/OPENAI_API_KEY", "400 1000 1000 /run/secrets/REDIS_URL"]);
    expect(await stat("postgres-service")).toEqual(["400 70 70 /run/secrets/POSTGRES_PASSWORD"]);
    expect(await stat("redis-service")).toEqual(["400 999 999 /run/secrets/REDIS_PASSWORD"]);
    // The process has the value (the entrypoint exported it); the API's readiness reaching Postgres and Redis through the edge shows it works.
    const [api] = await taskContainers("api-service");
    const environ = dockerCli(["exec", api, "sh", "-c", "tr '\\0' '\\n' < /proc/1/environ | cut -d= -f1 | sort"]).stdout;
    expect(environ.split("\n")).toEqual(expect.arrayContaining(["DATABASE_URL", "JWT_SECRET", "OPENAI_API_KEY", "REDIS_URL"]));
    expect(environ).not.toMatch(/_FILE/);
    const dispatcher = new Agent({ connect: { ca: run.rootCertificate } });
    const ready = await fetch(`https://127.0.0.1:${run.edgePort}/api/v1/health/ready`, { dispatcher });
    expect(await ready.json()).toMatchObject({ status: "ready", checks: { postgres: "ok", redis: "ok" } });
    await dispatcher.close();

    const secrets = run.declared.secrets.filter((s) => s.value.length >= 8);
    expect(secrets.length).toBeGreaterThanOrEqual(5);
    const outputs = await everyInspectOutput();
    expect(outputs.length).toBeGreaterThan(10);
    const leaks = outputs.flatMap((o) => secrets.filter((s) => o.text.includes(s.value)).map((s) => `${s.source} in ${o.what}`));
    expect(leaks).toEqual([]);
  });

  it("status's probe (and the deploy's smoke check) answers healthy through the swarm edge", async () => {
    const dispatcher = new Agent({ connect: { ca: run.rootCertificate } });
    const key = Symbol.for("undici.globalDispatcher.1");
    const g = globalThis as Record<symbol, unknown>;
    const previous = g[key];
    g[key] = dispatcher;
    try {
      const result = await probe({ service: "api", healthUrl: `https://127.0.0.1:${run.edgePort}/api/v1/health/ready` }, 5000);
      expect(result).toMatchObject({ healthy: true, status: 200 });
    } finally {
      g[key] = previous;
      await dispatcher.close();
    }
  });

  it("a new release under load: Swarm replaces the API's tasks start-first, one at a time, and every request is answered", async () => {
    const before = await currentService("api-service");
    const spec = nextApiSpec(run.images.exampleApp, "1.4.3");
    const edge = { port: run.edgePort, rootCertificate: () => run.rootCertificate };
    const loads = Promise.all([load(edge, "h2", LOAD_MS), load(edge, "http/1.1", LOAD_MS)]);
    await new Promise((r) => setTimeout(r, 2000));
    const started = performance.now();
    await providerUpdateService(engine, before.ID, spec, 575);
    const updateMs = performance.now() - started;
    const [h2, h1] = (await loads) as [LoadResult, LoadResult];
    console.log(`[swarm] start-first update of ${before.Spec.Mode.Replicated!.Replicas} API tasks: completed after ${(updateMs / 1000).toFixed(1)} s`);
    report("swarm: new release, start-first", h2);
    report("swarm: new release, start-first", h1);
    expect(h2.requests).toBeGreaterThan(100);
    expect(h2.failed, h2.samples.join("; ")).toBe(0);
    expect(h1.failed, h1.samples.join("; ")).toBe(0);
    const after = await versionLoad(1500);
    expect([...after.versions.keys()]).toEqual(["1.4.3"]);
  });

  it("an update to an image whose health check fails: Swarm rolls back by itself, the old version answers throughout, the deploy fails with Swarm's message", async () => {
    const broken = `${prefix}/api-broken:test`;
    // The example API's image with a command that answers every request 503: its readiness check never passes.
    const dockerfile = `FROM ${run.images.exampleApp}\nCMD ["node", "-e", "require('http').createServer((q, s) => { s.statusCode = 503; s.end(); }).listen(Number(process.env.PORT))"]\n`;
    const built = dockerCli(["build", "-q", "-t", broken, "-"], dockerfile);
    expect(built.code, built.stderr).toBe(0);
    const before = await currentService("api-service");
    const started = performance.now();
    const update = providerUpdateService(engine, before.ID, nextApiSpec(broken, "1.4.4"), 575).then(
      () => "completed",
      (err: Error) => err.message,
    );
    // Through the whole update: the new task's start, its failed checks, the rollback and its monitor window.
    const watch = versionLoad(0, update);
    const outcome = await update;
    const rollbackMs = performance.now() - started;
    const seen = await watch;
    console.log(
      `[swarm] never-ready update: "${outcome}" after ${(rollbackMs / 1000).toFixed(1)} s; ` +
        `${seen.requests} requests through the edge, ${seen.failed.length} failed, versions ${JSON.stringify(Object.fromEntries(seen.versions))}`,
    );
    expect(outcome).toMatch(/^service rollback completed: /);
    expect(seen.failed).toEqual([]);
    expect([...seen.versions.keys()]).toEqual(["1.4.3"]);
    const after = await currentService("api-service");
    expect(after.UpdateStatus?.State).toBe("rollback_completed");
    expect((after.Spec.TaskTemplate.ContainerSpec as { Image: string }).Image).toBe(run.images.exampleApp);
    const filters = encodeURIComponent(JSON.stringify({ service: [before.ID] }));
    const failed = (await engine.json<SwarmTask[]>("GET", `/tasks?filters=${filters}`)).filter((t) => t.Status.State === "failed");
    expect(failed.map((t) => t.Status.Err)).toContain("task: non-zero exit (137): dockerexec: unhealthy container");

    // What the deploy prints after this failure, read from this manager.
    const diagnosis = await diagnoseSwarm({ host: `unix://${DOCKER_SOCKET}` }, "swarm-example");
    console.log(`[swarm] the deploy's diagnosis:${diagnosis}`);
    expect(diagnosis).toContain(`- api: service ${prefix}-api, update rollback_completed`);
    expect(diagnosis).toContain("failed");
    expect(diagnosis).toContain(": task: non-zero exit (137): dockerexec: unhealthy container");
    expect(diagnosis).toContain("to change: the new tasks never passed their health check (api.health); Swarm stopped them and rolled back");
  });

  it("the deploy's swarm preflight on this manager: the labelled node passes; a label no node carries, and a host-mode Postgres still running, are refused", async () => {
    const target = { host: `unix://${DOCKER_SOCKET}` };
    const settings = { stack: "swarm-example", dataStores: [{ service: "postgres" as const, node: "data-1" }, { service: "redis" as const, node: "data-1" }], edge: true };
    const hostname = os.hostname();
    expect(await swarmPreflight(target, settings)).toMatch(new RegExp(`^Swarm at unix://.*: a manager of 1 node; postgres on ${hostname}; redis on ${hostname}; the edge on ${hostname}\\.$`));
    const unlabelled = await swarmPreflight(target, { ...settings, dataStores: [{ service: "postgres", node: "data-9" }] }).catch((e: unknown) => e);
    expect(unlabelled).toBeInstanceOf(UserError);
    expect((unlabelled as UserError).message).toContain("No node of the swarm carries the label appstack.node=data-9 (postgres.node)");
    // A host-mode Postgres of another stack name, still running: the switch must not start a second server on its volume.
    const stack = `${prefix}-switch`;
    const c = await providerCreate(
      engine,
      providerRequests({
        name: `${prefix}-old-postgres`,
        image: run.images.redis,
        command: ["sleep", "300"],
        labels: [
          { label: "appstack.stack", value: stack },
          { label: "appstack.service", value: "postgres" },
          { label: "appstack.role", value: "service" },
        ],
      }),
    );
    const blocked = await swarmPreflight(target, { ...settings, stack }).catch((e: unknown) => e);
    expect((blocked as UserError).message).toContain(`Host-mode container of this stack still runs on docker.host (${prefix}-old-postgres)`);
    await engine.request("DELETE", `/containers/${c.id}?force=1`);
  });

  it("the name rules of config/swarm.ts are Swarm's: the longest names it allows are created, one more character is refused", async () => {
    const secretAt = (length: number) => `${prefix}-${"s".repeat(length - prefix.length - 1)}`;
    const ok = await engine.json<{ ID: string }>("POST", "/secrets/create", { Name: secretAt(SWARM_OBJECT_NAME_MAX), Data: Buffer.from("x").toString("base64") });
    await engine.request("DELETE", `/secrets/${ok.ID}`);
    await expect(engine.json("POST", "/secrets/create", { Name: secretAt(SWARM_OBJECT_NAME_MAX + 1), Data: Buffer.from("x").toString("base64") })).rejects.toThrow(EngineError);
    const serviceAt = (length: number) => `${prefix}-${"s".repeat(length - prefix.length - 1)}`;
    const spec = (name: string) => ({ Name: name, TaskTemplate: { ContainerSpec: { Image: run.images.redis } }, Mode: { Replicated: { Replicas: 0 } } });
    const created = await engine.json<{ ID: string }>("POST", "/services/create", spec(serviceAt(SWARM_SERVICE_NAME_MAX)));
    await engine.request("DELETE", `/services/${created.ID}`);
    await expect(engine.json("POST", "/services/create", spec(serviceAt(SWARM_SERVICE_NAME_MAX + 1)))).rejects.toThrow(/63 characters/);
    await expect(engine.json("POST", "/services/create", spec(`${prefix}-a.b`))).rejects.toThrow(/DNS name component/);
  });
});

/**
 * Where what the engine stored differs from what was sent: every field sent
 * must come back the same; a zero or empty value sent may come back absent
 * (Swarm omits empty fields).
 */
function specDifferences(sent: unknown, stored: unknown, at = ""): string[] {
  const empty = (v: unknown) => v === 0 || v === "" || v === false || (Array.isArray(v) && v.length === 0) || (v !== null && typeof v === "object" && Object.keys(v).length === 0);
  if (stored === undefined && (sent === undefined || empty(sent))) return [];
  if (Array.isArray(sent)) {
    if (!Array.isArray(stored) || stored.length !== sent.length) return [`${at}: sent ${JSON.stringify(sent)}, stored ${JSON.stringify(stored)}`];
    return sent.flatMap((v, i) => specDifferences(v, stored[i], `${at}[${i}]`));
  }
  if (sent !== null && typeof sent === "object") {
    if (stored === null || typeof stored !== "object") return [`${at}: sent ${JSON.stringify(sent)}, stored ${JSON.stringify(stored)}`];
    return Object.entries(sent).flatMap(([k, v]) => specDifferences(v, (stored as Record<string, unknown>)[k], at ? `${at}.${k}` : k));
  }
  return sent === stored ? [] : [`${at}: sent ${JSON.stringify(sent)}, stored ${JSON.stringify(stored)}`];
}
