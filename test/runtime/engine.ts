/**
 * The real Docker engine, for runtime tests: its HTTP API over the unix socket
 * at the version the daemon negotiates, the local appstack-test/* images
 * (test/runtime/setup/images.sh), unique name prefixes and cleanup.
 *
 * Plain HTTP over the socket rather than a client library: a contract test
 * must control the exact JSON body the engine receives, field by field, as
 * the Docker provider's Go client sends it.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as http from "node:http";

/** The engine's socket: DOCKER_HOST when it is a unix:// URL, else Docker's default. */
export const DOCKER_SOCKET = process.env.DOCKER_HOST?.startsWith("unix://") ? process.env.DOCKER_HOST.slice("unix://".length) : "/var/run/docker.sock";

/** The images test/runtime/setup/images.sh builds (and stamps with the label appstack-test.key). */
export const TEST_IMAGES = {
  base: "appstack-test/base:test",
  postgres: "appstack-test/postgres:test",
  redis: "appstack-test/redis:test",
  node: "appstack-test/node:test",
  exampleApp: "appstack-test/example-app:test",
  exampleFrontend: "appstack-test/example-frontend:test",
  caddy: "appstack-test/caddy:test",
  restic: "appstack-test/restic:test",
} as const;

/**
 * The highest Engine API version this helper speaks (the version the Docker Go
 * client v25 defaults to). Against an older daemon the lower version wins, as
 * with the Docker client's version negotiation.
 */
export const CLIENT_API_VERSION = "1.44";

export interface EngineVersion {
  Version: string;
  ApiVersion: string;
  MinAPIVersion: string;
  Os: string;
  Arch: string;
}

export class EngineError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly body: string,
  ) {
    let message = body.trim();
    try {
      message = (JSON.parse(body) as { message?: string }).message ?? message;
    } catch {
      // not JSON: as it came
    }
    super(`${method} ${path}: ${status} ${message}`);
    this.name = "EngineError";
  }
}

export interface EngineResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

const versionLess = (a: string, b: string) => {
  const [am, an] = a.split(".").map(Number);
  const [bm, bn] = b.split(".").map(Number);
  return am !== bm ? am < bm : an < bn;
};

function rawRequest(
  method: string,
  path: string,
  opts: { body?: Buffer | string; contentType?: string; timeoutMs?: number } = {},
): Promise<EngineResponse> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { Host: "docker" };
    if (opts.body !== undefined) {
      headers["Content-Type"] = opts.contentType ?? "application/json";
      headers["Content-Length"] = Buffer.byteLength(opts.body);
    }
    const req = http.request({ socketPath: DOCKER_SOCKET, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.setTimeout(opts.timeoutMs ?? 120_000, () => req.destroy(new Error(`${method} ${path}: no answer within ${opts.timeoutMs ?? 120_000} ms`)));
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** The Engine API at one negotiated version. */
export class Engine {
  private constructor(
    readonly info: EngineVersion,
    /** The API version every request is made at (`/v<apiVersion>/...`). */
    readonly apiVersion: string,
  ) {}

  /** Asks the daemon its version and negotiates: the lower of its API version and CLIENT_API_VERSION. */
  static async connect(): Promise<Engine> {
    const res = await rawRequest("GET", "/version");
    if (res.status !== 200) throw new EngineError("GET", "/version", res.status, res.body.toString());
    const info = JSON.parse(res.body.toString()) as EngineVersion;
    return new Engine(info, versionLess(info.ApiVersion, CLIENT_API_VERSION) ? info.ApiVersion : CLIENT_API_VERSION);
  }

  /** One request at the negotiated version; a non-2xx answer is an EngineError. */
  async request(method: string, path: string, opts: { json?: unknown; body?: Buffer; contentType?: string; timeoutMs?: number } = {}): Promise<EngineResponse> {
    const versioned = `/v${this.apiVersion}${path}`;
    const body = opts.json !== undefined ? JSON.stringify(opts.json) : opts.body;
    const res = await rawRequest(method, versioned, { body, contentType: opts.contentType, timeoutMs: opts.timeoutMs });
    if (res.status < 200 || res.status >= 300) throw new EngineError(method, versioned, res.status, res.body.toString());
    return res;
  }

  async json<T>(method: string, path: string, json?: unknown, timeoutMs?: number): Promise<T> {
    const res = await this.request(method, path, { json, timeoutMs });
    const text = res.body.toString();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** `GET /containers/{id}/json`. */
  inspectContainer(id: string): Promise<ContainerInspect> {
    return this.json<ContainerInspect>("GET", `/containers/${encodeURIComponent(id)}/json`);
  }

  /** The image's ID, or undefined when the engine has no such image. */
  async imageId(ref: string): Promise<string | undefined> {
    try {
      return (await this.json<{ Id: string }>("GET", `/images/${encodeURIComponent(ref)}/json`)).Id;
    } catch (err) {
      if (err instanceof EngineError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** A container's stdout and stderr (the multiplexed log stream, demultiplexed). */
  async logs(id: string, tail = 40): Promise<string> {
    const res = await this.request("GET", `/containers/${encodeURIComponent(id)}/logs?stdout=1&stderr=1&tail=${tail}`);
    return demultiplex(res.body);
  }

  /**
   * Removes every container, network and volume whose name starts with
   * `prefix` (containers first, forcibly). Returns what it removed.
   */
  async removeByPrefix(prefix: string): Promise<string[]> {
    const removed: string[] = [];
    const filter = encodeURIComponent(JSON.stringify({ name: [prefix] }));
    const containers = await this.json<{ Id: string; Names: string[] }[]>("GET", `/containers/json?all=1&filters=${filter}`);
    for (const c of containers.filter((x) => x.Names.some((n) => n.replace(/^\//, "").startsWith(prefix)))) {
      await this.request("DELETE", `/containers/${c.Id}?force=1&v=1`).catch(ignoreNotFound);
      removed.push(`container ${c.Names[0]}`);
    }
    const networks = await this.json<{ Id: string; Name: string }[]>("GET", `/networks?filters=${filter}`);
    for (const n of networks.filter((x) => x.Name.startsWith(prefix))) {
      await this.request("DELETE", `/networks/${n.Id}`).catch(ignoreNotFound);
      removed.push(`network ${n.Name}`);
    }
    const volumes = await this.json<{ Volumes: { Name: string }[] | null }>("GET", `/volumes?filters=${filter}`);
    for (const v of (volumes.Volumes ?? []).filter((x) => x.Name.startsWith(prefix))) {
      await this.request("DELETE", `/volumes/${encodeURIComponent(v.Name)}?force=1`).catch(ignoreNotFound);
      removed.push(`volume ${v.Name}`);
    }
    removed.push(...removeCgroupsByPrefix(prefix));
    return removed;
  }
}

/**
 * The cgroup slices the engine made for containers whose `CgroupParent` had
 * the prefix (the cgroupfs driver leaves a parent behind when its last
 * container goes): every controller's folder of that name, deepest first.
 */
function removeCgroupsByPrefix(prefix: string): string[] {
  const removed: string[] = [];
  const root = "/sys/fs/cgroup";
  if (!fs.existsSync(root)) return removed;
  const hierarchies = [root, ...fs.readdirSync(root).map((d) => path.join(root, d))];
  const rmTree = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmTree(path.join(dir, e.name));
    fs.rmdirSync(dir);
  };
  for (const h of hierarchies) {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(h, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries.filter((x) => x.isDirectory() && x.name.startsWith(prefix))) {
      try {
        rmTree(path.join(h, e.name));
        removed.push(`cgroup ${path.join(h, e.name)}`);
      } catch {
        // still in use, or not ours to remove: left as it is
      }
    }
  }
  return removed;
}

function ignoreNotFound(err: unknown): void {
  if (!(err instanceof EngineError && err.status === 404)) throw err;
}

/** What `GET /containers/{id}/json` returns, as far as the tests read it. */
export interface ContainerInspect {
  Id: string;
  Name: string;
  Config: Record<string, unknown> & { Healthcheck?: Record<string, unknown>; Env?: string[]; Labels?: Record<string, string> };
  HostConfig: Record<string, unknown>;
  State: {
    Status: string;
    Running: boolean;
    ExitCode: number;
    StartedAt: string;
    FinishedAt: string;
    Health?: { Status: string; FailingStreak: number; Log: { Start: string; End: string; ExitCode: number; Output: string }[] };
  };
  NetworkSettings: { Networks: Record<string, { Aliases: string[] | null; IPAddress: string }>; Ports: Record<string, { HostIp: string; HostPort: string }[] | null> };
}

/** Docker's multiplexed stream (8-byte frame headers) as text. */
export function demultiplex(buf: Buffer): string {
  const out: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length && (buf[i] === 1 || buf[i] === 2) && buf[i + 1] === 0) {
    const size = buf.readUInt32BE(i + 4);
    out.push(buf.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  return i === 0 ? buf.toString() : Buffer.concat(out).toString();
}

/**
 * A prefix for the names of everything a test creates on the shared engine:
 * `appstack-test-<label>-<random>`, so runs never collide and cleanup never
 * touches what another test or person made.
 */
export function uniquePrefix(label: string): string {
  return `appstack-test-${label}-${randomBytes(3).toString("hex")}`;
}

/** The docker CLI, for what the tests do not do through the API (it negotiates its version itself). */
export function dockerCli(args: string[], input?: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync("docker", args, { encoding: "utf8", input, timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: (r.stderr ?? "") + (r.error ? String(r.error) : "") };
}

/** The images the runtime setup builds, checked before a test relies on them; the message says how to build them. */
export async function requireTestImages(engine: Engine, names: (keyof typeof TEST_IMAGES)[]): Promise<Record<string, string>> {
  const ids: Record<string, string> = {};
  const missing: string[] = [];
  for (const name of names) {
    const id = await engine.imageId(TEST_IMAGES[name]);
    if (id) ids[name] = id;
    else missing.push(TEST_IMAGES[name]);
  }
  if (missing.length) throw new Error(`missing test images ${missing.join(", ")}: run bash test/runtime/setup/images.sh (npm run test:runtime runs it)`);
  return ids;
}

/** Polls until `check` returns a value (not undefined) or the deadline passes. */
export async function pollUntil<T>(what: string, timeoutMs: number, intervalMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${Math.round(timeoutMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
