import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { OutputMap } from "@pulumi/pulumi/automation";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserError } from "../ops/shared/errors";
import { endpointsFromOutputs, probe, probeAll, renderStatusTable, smokeCheck, type Endpoint } from "../ops/operations/health";

/** A real server on 127.0.0.1: /ok 200, /down 503, /hang never answers, /flaky 503 twice then 200, /stall sends headers then stalls. */
let server: http.Server;
let base: string;
let refusedUrl: string;
let flakyHits = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url === "/ok") res.end("ok");
    else if (req.url === "/down") {
      res.statusCode = 503;
      res.end("unavailable");
    } else if (req.url === "/flaky") {
      flakyHits++;
      res.statusCode = flakyHits <= 2 ? 503 : 200;
      res.end();
    } else if (req.url === "/stall") {
      res.writeHead(200, { "content-length": "100" });
      res.write("partial");
    } else if (req.url === "/hang") {
      // never answers
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // A port that was just free: nothing listens there, so the connection is refused.
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
  refusedUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/health`;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const ep = (service: string, healthUrl: string, image?: string): Endpoint => ({ service, healthUrl, image });

describe("health probe against real HTTP servers", () => {
  it("200 is healthy, with status and latency", async () => {
    const r = await probe(ep("api", `${base}/ok`, "ghcr.io/example/api:1.4.2"), 2000);
    expect(r).toMatchObject({ healthy: true, status: 200, image: "ghcr.io/example/api:1.4.2" });
    expect(r.latencyMs).toBeGreaterThanOrEqual(0);
    expect(r.latencyMs).toBeLessThan(2000);
  });

  it("503 is unhealthy and reports the status", async () => {
    expect(await probe(ep("api", `${base}/down`), 2000)).toMatchObject({ healthy: false, status: 503 });
  });

  it("a server that hangs past the timeout is unhealthy within the timeout", async () => {
    const started = Date.now();
    const r = await probe(ep("api", `${base}/hang`), 300);
    expect(r).toMatchObject({ healthy: false, error: "timeout after 300 ms" });
    expect(r.status).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("headers then a stalled body is unhealthy too", async () => {
    const r = await probe(ep("api", `${base}/stall`), 300);
    expect(r).toMatchObject({ healthy: false, error: "timeout after 300 ms" });
  });

  it("connection refused is unhealthy at once", async () => {
    const r = await probe(ep("api", refusedUrl), 2000);
    expect(r).toMatchObject({ healthy: false, error: "connection refused" });
    expect(r.latencyMs).toBeLessThan(2000);
  });

  it("probes every service in parallel: one hang does not delay the others' verdicts", async () => {
    const started = Date.now();
    const rs = await probeAll([ep("api", `${base}/ok`), ep("frontend", `${base}/hang`)], 400);
    expect(rs.map((r) => r.healthy)).toEqual([true, false]);
    expect(Date.now() - started).toBeLessThan(1500);
  });
});

describe("smoke check: the same probe, retried over a bounded time", () => {
  it("waits out a service that needs a few seconds after the update", async () => {
    flakyHits = 0;
    const log: string[] = [];
    const rs = await smokeCheck([ep("api", `${base}/flaky`), ep("frontend", `${base}/ok`)], { timeoutMs: 1000, budgetMs: 2000, intervalMs: 50, log: (l) => log.push(l) });
    expect(rs.every((r) => r.healthy)).toBe(true);
    expect(flakyHits).toBe(3);
    expect(log).toHaveLength(2);
    expect(log[0]).toContain("api 503");
  });

  it("gives up when the budget runs out and returns the last verdicts", async () => {
    const started = Date.now();
    const rs = await smokeCheck([ep("api", `${base}/down`), ep("frontend", refusedUrl), ep("web", `${base}/ok`)], {
      timeoutMs: 200,
      budgetMs: 600,
      intervalMs: 100,
      log: () => {},
    });
    expect(rs.map((r) => [r.service, r.healthy, r.status ?? r.error])).toEqual([
      ["api", false, 503],
      ["frontend", false, "connection refused"],
      ["web", true, 200],
    ]);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("a hang costs at most the per-request timeout per round, and the rounds stop at the budget", async () => {
    const started = Date.now();
    const rs = await smokeCheck([ep("api", `${base}/hang`)], { timeoutMs: 200, budgetMs: 500, intervalMs: 100, log: () => {} });
    expect(rs[0]).toMatchObject({ healthy: false, error: "timeout after 200 ms" });
    expect(Date.now() - started).toBeLessThan(2500);
  });
});

describe("status rows from stack outputs", () => {
  const outputs: OutputMap = {
    version: { value: "1.4.2", secret: false },
    endpoints: {
      value: {
        api: { url: "https://api.example.com", healthUrl: "https://api.example.com/api/v1/health", image: "ghcr.io/example/api:1.4.2" },
        frontend: { url: "https://app.example.com", healthUrl: "https://app.example.com" },
      },
      secret: false,
    },
    connections: { value: { databaseUrl: "a secret output the status command never reads" }, secret: true },
  };

  it("reads every service with a health URL, its image, and the version", () => {
    const { endpoints, version } = endpointsFromOutputs(outputs, "staging");
    expect(version).toBe("1.4.2");
    expect(endpoints).toEqual([
      { service: "api", url: "https://api.example.com", healthUrl: "https://api.example.com/api/v1/health", image: "ghcr.io/example/api:1.4.2" },
      { service: "frontend", url: "https://app.example.com", healthUrl: "https://app.example.com", image: undefined },
    ]);
  });

  it("a stack without endpoints says to deploy it", () => {
    expect(() => endpointsFromOutputs({}, "staging")).toThrow(UserError);
    expect(() => endpointsFromOutputs({}, "staging")).toThrow(/npm run deploy -- --stack staging/);
  });

  it("prints one row per service: URL, status, latency, image, version", async () => {
    const rs = await probeAll([ep("api", `${base}/ok`, "ghcr.io/example/api:1.4.2"), ep("frontend", refusedUrl)], 1000);
    const table = renderStatusTable(rs, "1.4.2").split("\n");
    expect(table[0]).toMatch(/^SERVICE\s+HEALTH URL\s+STATUS\s+LATENCY\s+IMAGE\s+VERSION$/);
    expect(table[1]).toMatch(new RegExp(`^ok +api +${base}/ok +200 +\\d+ ms +ghcr.io/example/api:1.4.2 +1.4.2$`));
    expect(table[2]).toMatch(/^FAIL frontend .* connection refused +\d+ ms +- +1.4.2$/);
  });
});
