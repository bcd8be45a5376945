import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stackSecretEnv } from "../../config";
import { engineVersion } from "../../ops/operations/docker-engine";
import { dockerPreflight } from "../../ops/operations/preflight";
import { diagnoseUnhealthy, unhealthyServices } from "../../ops/operations/unhealthy";
import { EXIT, UserError } from "../../ops/shared/errors";
import { busyboxImage, docker } from "./busybox-image";

/**
 * The deploy preflight and the unhealthy-container diagnosis against the
 * Docker engine of this machine (its unix socket), and through
 * `docker system dial-stdio`, the command an ssh:// host runs at the far end.
 */

const LOCAL = { host: "unix:///var/run/docker.sock" };
const stack = `rt${randomBytes(4).toString("hex")}`;
const DB_PASSWORD = `pw-${randomBytes(8).toString("hex")}`;
const API_KEY = `sk-${randomBytes(12).toString("hex")}`;

/** Runs a container labelled as a service of `stack`, as the components label them. */
function service(name: string, labels: Record<string, string>, args: string[]): void {
  const labelArgs = Object.entries({ "appstack.stack": stack, "appstack.role": "service", ...labels }).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
  const r = docker(["run", "-d", "--name", `appstack-${stack}-${name}`, ...labelArgs, ...args]);
  if (r.code !== 0) throw new Error(`docker run ${name}: ${r.stderr}`);
}

/** Creates and starts a container through the Engine API: the only way to give it an exec-form (CMD) health check, as the provider does. */
async function serviceViaApi(name: string, labels: Record<string, string>, body: Record<string, unknown>): Promise<void> {
  const call = (method: string, p: string, payload?: unknown) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request({ socketPath: "/var/run/docker.sock", method, path: p, headers: { "content-type": "application/json" } }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", reject);
      req.end(payload === undefined ? undefined : JSON.stringify(payload));
    });
  const full = `appstack-${stack}-${name}`;
  expect(await call("POST", `/containers/create?name=${full}`, { ...body, Labels: { "appstack.stack": stack, "appstack.role": "service", ...labels } })).toBe(201);
  expect(await call("POST", `/containers/${full}/start`)).toBe(204);
}

beforeAll(async () => {
  const image = busyboxImage();
  const env = ["-e", `DATABASE_URL=postgresql://app:${DB_PASSWORD}@postgres:5432/app`, "-e", `OPENAI_API_KEY=${API_KEY}`, "-e", "LOG_LEVEL=info"];
  const fast = ["--health-interval", "1s", "--health-timeout", "2s", "--health-retries", "1"];
  // A worker whose check fails and prints secrets it was given.
  service("worker-1", { "appstack.service": "worker", "appstack.image": "ghcr.io/acme/api:1.4.2" }, [
    ...env, ...fast, "--health-cmd", 'echo "cannot reach $DATABASE_URL with key $OPENAI_API_KEY"; exit 1', image, "sleep", "600",
  ]);
  // An API whose image has no node for appstack's default probe (exec form, as declared).
  await serviceViaApi("api-1", { "appstack.service": "api" }, {
    Image: image,
    Cmd: ["sleep", "600"],
    Healthcheck: { Test: ["CMD", "node", "-e", "fetch('http://127.0.0.1:3000/health')"], Interval: 1e9, Timeout: 2e9, Retries: 1 },
  });
  // A second worker that exits at once, over and over.
  service("worker-2", { "appstack.service": "worker" }, [...fast, "--health-cmd", "true", "--restart", "unless-stopped", image, "sh", "-c", "echo boom; exit 3"]);
  // A healthy one, which the report leaves out.
  service("redis-server", { "appstack.service": "redis" }, [...fast, "--health-cmd", "true", image, "sleep", "600"]);
}, 120_000);

afterAll(() => {
  const ids = docker(["ps", "-aq", "--filter", `label=appstack.stack=${stack}`]).stdout.split("\n").filter(Boolean);
  if (ids.length) docker(["rm", "-f", ...ids]);
});

describe("runtime: the Docker engine of this machine", () => {
  it("engineVersion reads the engine and API versions docker version reports, over the socket and over dial-stdio", async () => {
    const cli = docker(["version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}"]).stdout.trim();
    const local = await engineVersion(LOCAL);
    expect(`${local.version} ${local.apiVersion}`).toBe(cli);
    const dialed = await engineVersion({ host: "ssh://deploy@stand-in.invalid" }, { dialCommand: () => ["docker", "-H", LOCAL.host, "system", "dial-stdio"] });
    expect(dialed).toEqual(local);
  });

  it("the preflight passes against it, in well under a second, and names it", async () => {
    const started = Date.now();
    const r = await dockerPreflight(LOCAL, { stack: "dev" });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(r.line).toMatch(/^Docker engine at unix:\/\/\/var\/run\/docker\.sock: Docker \S+, API 1\.\d+ \(linux\/\w+\)\.$/);
  });

  it("the preflight fails with exit 15 on a socket path where no engine is", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-rt-"));
    const err = await dockerPreflight({ host: `unix://${dir}/docker.sock` }, { stack: "dev" }).catch((e: unknown) => e);
    fs.rmSync(dir, { recursive: true });
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(EXIT.dockerHost);
  });
});

describe("runtime: why a waited-on container is not healthy", () => {
  const isSecret = stackSecretEnv({ api: { secretEnv: ["OPENAI_API_KEY"] } } as never);

  beforeAll(async () => {
    // Health logs need a few intervals; the crash loop a few restarts.
    const until = Date.now() + 30_000;
    for (;;) {
      const reports = await unhealthyServices(LOCAL, stack, isSecret);
      const worker = reports.find((r) => r.container.endsWith("worker-1"));
      const crashing = reports.find((r) => r.container.endsWith("worker-2"));
      const healthy = docker(["inspect", "--format", "{{.State.Health.Status}}", `appstack-${stack}-redis-server`]).stdout.trim() === "healthy";
      if (healthy && (worker?.checks.length ?? 0) >= 1 && (crashing?.restarts ?? 0) >= 1) return;
      if (Date.now() > until) throw new Error(`health logs did not fill: ${JSON.stringify(reports)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }, 60_000);

  it("names each unhealthy service, its check and its last output, with every secret masked", async () => {
    const text = await diagnoseUnhealthy(LOCAL, stack, isSecret);
    expect(text).not.toContain(DB_PASSWORD);
    expect(text).not.toContain(API_KEY);
    expect(text).not.toContain("redis-server");
    expect(text).toMatch(new RegExp(`- worker: container appstack-${stack}-worker-1 \\(\\w{12}, image ghcr.io/acme/api:1.4.2\\), running, health (unhealthy|starting)`));
    expect(text).toContain('health check: CMD-SHELL "echo \\"cannot reach $DATABASE_URL with key $OPENAI_API_KEY\\"; exit 1"');
    expect(text).toMatch(/last check \(exit 1, [^)]+\): cannot reach \[secret\] with key \[secret\]/);
    // The API is the first stuck step of the rollout: what it left is said once.
    expect(text).toContain("What this deploy left behind (it stopped at api): The backup and the migrations ran");
  });

  it("an image without the check's program: says which program, and the setting to change", async () => {
    const api = (await unhealthyServices(LOCAL, stack, isSecret)).find((r) => r.service === "api")!;
    expect(api.checks.at(-1)!.output).toMatch(/executable file not found|no such file/i);
    expect(api.hint).toMatch(/^the image has no .* to run the check: set api\.health to a check the image can run \(api\.health\.command\)/);
  });

  it("a container that keeps exiting: its restarts, its exit code, and where its logs are", async () => {
    const crashing = (await unhealthyServices(LOCAL, stack, isSecret)).find((r) => r.container.endsWith("worker-2"))!;
    expect(crashing.restarts).toBeGreaterThanOrEqual(1);
    // While it is up between two restarts, Docker reports exit code 0; while it is down, 3.
    expect([0, 3]).toContain(crashing.exitCode);
    expect(crashing.hint).toMatch(new RegExp(`^the container exits( \\(exit code 3\\))? and is restarted.*docker -H unix:///var/run/docker.sock logs --tail 50 ${crashing.id}$`));
    expect(docker(["logs", crashing.id]).stdout).toContain("boom");
  });
});
