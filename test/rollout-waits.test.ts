import { describe, expect, it } from "vitest";
import { DOCKER_DEFAULT_WAIT_SECONDS, durationSeconds, longestWaitChain, renderWaitChains, waitOf } from "../ops/offline/rollout-waits";
import { plan, resource, TYPES } from "./helpers/plan-fixtures";

const server = (name: string, waitTimeout: number | undefined, dependsOn: string[] = []) =>
  resource(TYPES.container, name, { wait: true, ...(waitTimeout === undefined ? {} : { waitTimeout }) }, { dependsOn });
const job = (name: string, create: string, dependsOn: string[] = []) =>
  resource(TYPES.container, name, { attach: true, restart: "no" }, { dependsOn, customTimeouts: { create } });

describe("the longest chain of waits in a plan", () => {
  it("counts a container that waits healthy for its waitTimeout, or the provider's 60 s without one", () => {
    expect(waitOf(server("api-1", 180))).toEqual({ name: "api-1", part: "api-1", seconds: 180, until: "healthy" });
    const labelled = resource(TYPES.container, "api-1f2e3d4c-1", { wait: true, labels: [{ label: "appstack.service", value: "api" }] });
    expect(waitOf(labelled)).toMatchObject({ name: "api-1f2e3d4c-1", part: "api" });
    expect(waitOf(server("api-1", undefined))?.seconds).toBe(DOCKER_DEFAULT_WAIT_SECONDS);
  });

  it("counts a one-shot job for its create timeout, and nothing that declares no wait", () => {
    expect(waitOf(job("api-migrate-run", "10m"))).toEqual({ name: "api-migrate-run", part: "api-migrate-run", seconds: 600, until: "exits" });
    expect(waitOf(resource(TYPES.container, "plain", { wait: false }))).toBeUndefined();
    expect(waitOf(resource(TYPES.volume, "postgres-data"))).toBeUndefined();
    expect(waitOf(resource(TYPES.deployment, "frontend-deployment"))).toBeUndefined();
  });

  it("reads the engine's duration format", () => {
    expect(durationSeconds("1800s")).toBe(1800);
    expect(durationSeconds("1h30m")).toBe(5400);
    expect(() => durationSeconds("soon")).toThrow(/not a duration/);
  });

  it("adds up waits that follow one another; parallel ones count once, by the longer branch", () => {
    const postgres = server("postgres-server", 180);
    const redis = server("redis-server", 120);
    const backup = job("backup-dump-run", "1800s", [postgres.urn]);
    const migrate = job("api-migrate-run", "600s", [postgres.urn, redis.urn, backup.urn]);
    const api1 = server("api-1", 180, [migrate.urn]);
    const api2 = server("api-2", 180, [migrate.urn]);
    const worker = server("worker-1", 180, [api1.urn, api2.urn]);
    const edge = server("edge-proxy", 120, [api1.urn, api2.urn]);
    const chain = longestWaitChain(plan([postgres, redis, backup, migrate, api1, api2, worker, edge]));
    expect(chain.waits.map((w) => w.name)).toEqual(["postgres-server", "backup-dump-run", "api-migrate-run", "api-1", "worker-1"]);
    expect(chain.seconds).toBe(2940);
  });

  it("follows dependencies through resources that do not wait themselves (an image, a volume)", () => {
    const store = server("postgres-server", 100);
    const volume = resource(TYPES.volume, "data", {}, { dependsOn: [store.urn] });
    const after = server("api-1", 50, [volume.urn]);
    expect(longestWaitChain(plan([store, volume, after])).seconds).toBe(150);
  });

  it("renders one row per stack, each wait by its part of the stack (jobs marked), and the worst case in minutes", () => {
    const a = server("postgres-server", 180);
    const b = job("backup-dump-run", "1800s", [a.urn]);
    expect(renderWaitChains([longestWaitChain(plan([a, b]))])).toBe(
      [
        "| stack | waits | longest chain (each wait's timeout) | worst case |",
        "| --- | --- | --- | --- |",
        "| staging | 2 | `postgres-server` 180 s → `backup-dump-run` job 1,800 s | 1,980 s (33 min) |",
      ].join("\n"),
    );
  });
});
