import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MIN_DOCKER_ENGINE, NEWER_API_INPUTS, containerInputPaths } from "../../config";
import { freePort } from "../contract/servers";
import { evaluateStack, type Declared, type DeclaredResource } from "../helpers/declared-stack";
import { UNKNOWN } from "../../ops/offline/plan";
import { Engine, requireTestImages, TEST_IMAGES, uniquePrefix } from "./engine";
import { goDurationNs, notStored, providerCreate, providerRequests, type CreatedContainer } from "./provider-container";

/**
 * Docker Engine compatibility, on a real engine of the oldest version appstack
 * supports (Debian 12's docker.io: Docker 20.10, Engine API 1.41).
 *
 * Every container of the dev and production plans is created through the
 * Engine API at the version the daemon negotiates, with the Docker provider's
 * own mapping of each input (provider-container.ts), in the order the plan's
 * dependencies give, and waited on as the provider waits: services until
 * healthy (`wait`), jobs until they exit (`attach`), which must be 0. The
 * plan's networks and volumes are created first, as the provider creates them.
 *
 * Substituted, and nothing else: each image (the plan's references are
 * registry images; appstack-test/* stand in for them, built by
 * test/runtime/setup/images.sh), and what belongs to this host: names of
 * containers, networks, volumes and cgroup slices get this run's prefix, published host ports
 * a free port, the edge-config job's EDGE_CONTAINER the real proxy's ID, and
 * the off-host repository a directory in the shipper's own container.
 * The production network is created internal: the edge would otherwise ask an
 * ACME CA for a certificate for the stack's domain (this machine reaches no
 * one), and its published ports 80/443 are accepted but not bound there. The
 * applied Caddyfile names the API containers by their declared names, which
 * carry no prefix here; routing through the edge is zero-downtime.test.ts's.
 *
 * The provider's Go client refuses a health check's startInterval before any
 * request when the engine speaks API < 1.44, so no engine ever sees it: that
 * is asserted on the plan, where it must be absent (see the first test, which
 * shows that Docker 20.10 itself would silently drop it).
 */

const SERVICE_IMAGE: Record<string, keyof typeof TEST_IMAGES> = {
  postgres: "postgres",
  backup: "postgres",
  "backup-schedule": "postgres",
  "backup-offsite": "restic",
  redis: "redis",
  api: "exampleApp",
  migrate: "exampleApp",
  worker: "exampleApp",
  edge: "caddy",
  frontend: "exampleFrontend",
};

/** Where the production plan's off-host shipper keeps its repository here: a directory in its own container. */
const OFFSITE_REPOSITORY = "/tmp/appstack-compat-repository";

const CONTAINER = "docker:index/container:Container";
const label = (r: DeclaredResource, key: string) => (r.inputs.labels as { label: string; value: string }[] | undefined)?.find((l) => l.label === key)?.value;

interface PlanRun {
  declared: Declared;
  prefix: string;
  created: Map<string, CreatedContainer>;
  /** Resource name -> host port the test gave each published port, by internal port. */
  hostPorts: Map<string, Record<number, number>>;
  order: string[][];
}

let engine: Engine;
let images: Record<string, string>;

beforeAll(async () => {
  engine = await Engine.connect();
  images = await requireTestImages(engine, ["postgres", "redis", "exampleApp", "exampleFrontend", "caddy", "restic"]);
});

/** Containers in waves: each wave's containers depend only on earlier waves' (the plan's dependsOn). */
function waves(declared: Declared): string[][] {
  const containers = declared.plan.resources.filter((r) => r.type === CONTAINER);
  const byUrn = new Map(containers.map((c) => [c.urn, c.name]));
  const deps = new Map(containers.map((c) => [c.name, c.options.dependsOn.map((u) => byUrn.get(u)).filter((n): n is string => n !== undefined)]));
  const done = new Set<string>();
  const order: string[][] = [];
  while (done.size < containers.length) {
    const wave = containers.map((c) => c.name).filter((n) => !done.has(n) && deps.get(n)!.every((d) => done.has(d)));
    if (!wave.length) throw new Error(`dependency cycle among ${containers.map((c) => c.name).filter((n) => !done.has(n)).join(", ")}`);
    wave.forEach((n) => done.add(n));
    order.push(wave);
  }
  return order;
}

/** Every string in the inputs that still holds a value only a deploy knows. */
function unknownPaths(value: unknown, at = ""): string[] {
  if (typeof value === "string") return value.includes(UNKNOWN) ? [at] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => unknownPaths(v, `${at}[${i}]`));
  if (value !== null && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => unknownPaths(v, at ? `${at}.${k}` : k));
  return [];
}

async function deployPlan(stack: string, prefix: string): Promise<PlanRun> {
  // As an update, not a preview: the edge-config job's EDGE_CONTAINER holds the proxy's ID, which a preview does not know.
  const declared = await evaluateStack({ stack, values: "contract", preview: false });
  const run: PlanRun = { declared, prefix, created: new Map(), hostPorts: new Map(), order: waves(declared) };
  const ours = (name: string) => `${prefix}-${name}`;

  for (const net of declared.resources.filter((r) => r.type === "docker:index/network:Network")) {
    const labels = Object.fromEntries((net.inputs.labels as { label: string; value: string }[]).map((l) => [l.label, l.value]));
    // docker_network: Name, Driver, Labels; IPAM driver "default" (the schema's default); CheckDuplicate as the Go client sends it below API 1.44.
    await engine.json("POST", "/networks/create", {
      Name: ours(net.inputs.name as string),
      Driver: net.inputs.driver,
      Labels: labels,
      IPAM: { Driver: "default" },
      CheckDuplicate: true,
      Internal: stack !== "dev",
    });
  }
  for (const vol of declared.resources.filter((r) => r.type === "docker:index/volume:Volume")) {
    const labels = Object.fromEntries((vol.inputs.labels as { label: string; value: string }[]).map((l) => [l.label, l.value]));
    await engine.json("POST", "/volumes/create", { Name: ours(vol.inputs.name as string), Labels: labels });
  }

  const declaredByName = new Map(declared.resources.filter((r) => r.type === CONTAINER).map((r) => [r.name, r]));
  for (const wave of run.order) {
    const results = await Promise.all(
      wave.map(async (name) => {
        const c = declaredByName.get(name)!;
        const inputs = structuredClone(c.inputs);
        const service = label(c, "appstack.service")!;
        inputs.image = images[SERVICE_IMAGE[service]];
        if (inputs.name) inputs.name = ours(inputs.name as string);
        else inputs.name = ours(c.name); // the provider's auto-name, with this run's prefix
        for (const net of (inputs.networksAdvanced as { name: string }[] | undefined) ?? []) net.name = ours(net.name);
        for (const vol of (inputs.volumes as { volumeName: string }[] | undefined) ?? []) vol.volumeName = ours(vol.volumeName);
        // The service's cgroup slice, under this run's name: the engine creates it, removeByPrefix removes it.
        if (inputs.cgroupParent) inputs.cgroupParent = ours(inputs.cgroupParent as string);
        const ports: Record<number, number> = {};
        for (const p of (inputs.ports as { internal: number; external?: number; protocol?: string }[] | undefined) ?? []) {
          if (p.external === undefined) continue;
          ports[p.internal] ??= await freePort();
          p.external = ports[p.internal];
        }
        run.hostPorts.set(name, ports);
        if (inputs.envs) {
          inputs.envs = (inputs.envs as string[]).map((e) => (e.startsWith("EDGE_CONTAINER=") ? `EDGE_CONTAINER=${run.created.get("edge-proxy")!.id}` : e));
        }
        // The off-host repository (a secret file) is a local one in the shipper's container: this machine reaches no S3.
        for (const u of (inputs.uploads as { file: string; content: string }[] | undefined) ?? []) {
          if (u.file.endsWith("/RESTIC_REPOSITORY")) u.content = OFFSITE_REPOSITORY;
        }
        const left = unknownPaths(inputs);
        if (left.length) throw new Error(`${name}: inputs known only after a deploy, not substituted: ${left.join(", ")}`);
        return [name, await providerCreate(engine, providerRequests(inputs))] as const;
      }),
    );
    for (const [name, created] of results) run.created.set(name, created);
  }
  return run;
}

describe("Docker Engine compatibility: every declared container on the oldest supported engine", () => {
  it(`the engine under test is the oldest supported, Docker ${MIN_DOCKER_ENGINE.version} (API ${MIN_DOCKER_ENGINE.apiVersion}), and requests go at the API version it negotiates`, () => {
    expect(engine.info.Version.startsWith(`${MIN_DOCKER_ENGINE.version}.`)).toBe(true);
    expect(engine.info.ApiVersion).toBe(MIN_DOCKER_ENGINE.apiVersion);
    expect(engine.apiVersion).toBe(MIN_DOCKER_ENGINE.apiVersion);
  });

  it("Docker 20.10 silently drops a health check's startInterval: only the provider's client refuses it, so the plans must not carry it", async () => {
    const prefix = uniquePrefix("compat-probe");
    try {
      const sent = { Test: ["CMD", "true"], Interval: goDurationNs("5s"), StartPeriod: goDurationNs("30s"), StartInterval: goDurationNs("1s") };
      const created = await engine.json<{ Id: string }>("POST", `/containers/create?name=${prefix}-c`, { Image: images.redis, Cmd: ["true"], Healthcheck: sent });
      const stored = (await engine.inspectContainer(created.Id)).Config.Healthcheck!;
      expect(stored).toMatchObject({ Test: sent.Test, Interval: sent.Interval, StartPeriod: sent.StartPeriod });
      expect(stored.StartInterval).toBeUndefined();
      expect(notStored({ Healthcheck: sent }, { Healthcheck: stored })).toEqual([`Healthcheck.StartInterval: sent ${sent.StartInterval}, stored undefined`]);
    } finally {
      await engine.removeByPrefix(prefix);
    }
  });

  for (const stack of ["dev", "production"]) {
    describe(`the ${stack} plan`, () => {
      const prefix = uniquePrefix(`compat-${stack}`);
      let run: PlanRun;
      const created = () => [...run.created.values()];
      const declaredContainers = () => run.declared.resources.filter((r) => r.type === CONTAINER);

      beforeAll(async () => {
        run = await deployPlan(stack, prefix);
        const rows = run.order.flat().map((name) => {
          const c = run.created.get(name)!;
          return `${name.padEnd(24)} ${c.requests.wait ? "healthy" : `exit ${c.exitCode}`} after ${((c.readyMs ?? 0) / 1000).toFixed(1)} s`;
        });
        console.log(`[engine-compat] ${stack} on Docker ${engine.info.Version} (API ${engine.apiVersion}):\n  ${rows.join("\n  ")}`);
      }, 900_000);

      // Also after a failed deploy: whatever it created carries the prefix.
      afterAll(async () => {
        await engine.removeByPrefix(prefix);
      });

      it("sets no input the provider's client refuses, or the engine ignores, below Engine API 1.44 (asserted on the plan: no engine ever sees those requests)", () => {
        const newer = new Set(NEWER_API_INPUTS.map((n) => n.input));
        expect(newer.has("healthcheck.startInterval")).toBe(true);
        const found = declaredContainers().flatMap((c) => containerInputPaths(c.inputs).filter((p) => newer.has(p)).map((p) => `${c.name}: ${p}`));
        expect(found).toEqual([]);
      });

      it("creates every declared container, with no warning from the engine", () => {
        const names = declaredContainers().map((c) => c.name).sort();
        expect(names.length).toBeGreaterThanOrEqual(stack === "dev" ? 7 : 10);
        expect([...run.created.keys()].sort()).toEqual(names);
        for (const c of created()) expect(c.warnings, c.name).toEqual([]);
      });

      it("the engine stores every field the provider sends: Config, HostConfig, and the network aliases", () => {
        for (const c of created()) {
          const { HostConfig, NetworkingConfig: _n, ...config } = c.requests.create;
          expect(notStored(config, c.stored.Config, "Config"), c.name).toEqual([]);
          expect(notStored(HostConfig, c.stored.HostConfig, "HostConfig"), c.name).toEqual([]);
          const networks = c.stored.NetworkSettings.Networks;
          // Without networksAdvanced a container is on its NetworkMode's network ("none" for the edge's config job).
          const expected = c.requests.networks.length ? c.requests.networks.map((n) => n.name) : [c.requests.create.HostConfig.NetworkMode as string];
          expect(Object.keys(networks).sort(), c.name).toEqual(expected.sort());
          for (const net of c.requests.networks) {
            expect(networks[net.name].Aliases ?? [], c.name).toEqual(expect.arrayContaining(net.endpointConfig.Aliases ?? []));
          }
        }
      });

      it("every service turns healthy and every job exits 0, each after what it depends on", () => {
        for (const name of run.order.flat()) {
          const c = run.created.get(name)!;
          if (c.requests.wait) {
            expect(c.final.State.Health?.Status, name).toBe("healthy");
          } else {
            expect(c.requests.attach, name).toBe(true);
            expect({ name, exit: c.exitCode, logs: c.exitCode === 0 ? "" : c.logs }).toEqual({ name, exit: 0, logs: "" });
          }
        }
        const wave = (name: string) => run.order.findIndex((w) => w.includes(name));
        for (const c of run.declared.plan.resources.filter((r) => r.type === CONTAINER)) {
          for (const dep of c.options.dependsOn) {
            const depName = run.declared.plan.resources.find((r) => r.urn === dep && r.type === CONTAINER)?.name;
            if (depName) expect(wave(depName), `${c.name} after ${depName}`).toBeLessThan(wave(c.name));
          }
        }
      });

      it("with no startInterval, every service probes every 5 s and counts as healthy within three probes of its start", () => {
        for (const c of created().filter((x) => x.requests.wait)) {
          const interval = (c.requests.create.Healthcheck as { Interval: number }).Interval / 1e6;
          expect(interval, c.name).toBe(5000);
          // Not before the first probe, one interval after the start; the margin is the probe itself and the provider's 1 s poll on a busy machine.
          expect(c.readyMs!, c.name).toBeGreaterThanOrEqual(interval);
          expect(c.readyMs!, c.name).toBeLessThanOrEqual(3 * interval + 3000);
        }
      });

      if (stack === "dev") {
        it("dev publishes on 127.0.0.1 only, and the API and frontend answer there", async () => {
          for (const c of created()) {
            for (const bindings of Object.values(c.final.NetworkSettings.Ports ?? {})) {
              for (const b of bindings ?? []) expect(b.HostIp, c.name).toBe("127.0.0.1");
            }
          }
          const api = run.hostPorts.get("api-1")![3000];
          const ready = await fetch(`http://127.0.0.1:${api}/api/v1/health/ready`);
          expect(ready.status).toBe(200);
          expect(await ready.json()).toMatchObject({ checks: { postgres: "ok", redis: "ok" } });
          const frontend = run.hostPorts.get("frontend-server")![8080];
          expect((await fetch(`http://127.0.0.1:${frontend}/healthz`)).status).toBe(200);
        });
      }
    });
  }
});
