/**
 * The edge as a stack declares it, run for real on loopback: Caddy at the edge
 * image's version (built from its Go module by test/runtime/setup/caddy.sh),
 * started from the declared bootstrap config and switched by the declared
 * `caddy reload` of the edge-config job, in front of real example API
 * processes; plus a bounded load and the provider's replacement sequence.
 *
 * Host adaptations, and nothing else: the site address becomes
 * https://127.0.0.1:<port> with a certificate from Caddy's local CA (`tls
 * internal`, not installed into the machine's trust store) instead of an
 * ACME one, each upstream container name becomes 127.0.0.1:<its process's
 * port>, the admin socket and the internal health site move to a temporary
 * directory and a free port. Each rewrite must
 * match exactly as often as expected, so a changed config fails here instead
 * of silently testing something else.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as http2 from "node:http2";
import { performance } from "node:perf_hooks";
import { Agent, fetch } from "undici";
import { containerEnv, PROJECT_ROOT, type Declared, type DeclaredResource } from "../helpers/declared-stack";
import { freePort, run, runHealthcheck, startNodeService, waitUntil, type ServiceProcess } from "../contract/servers";

export const CADDY = path.join(PROJECT_ROOT, ".cache", "bin", "caddy");
export const APP = path.join(PROJECT_ROOT, "examples", "app");

/** Docker's durations ("2s", "1m30s") in milliseconds. */
export function durationMs(d: string): number {
  let ms = 0;
  for (const [, n, unit] of d.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(n) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as "ms"];
  return ms;
}

/** A copy of a stack file, in `dir`, with another API image: the next release. */
export function nextRelease(stack: string, dir: string): string {
  const file = path.join(PROJECT_ROOT, `Pulumi.${stack}.yaml`);
  const text = fs.readFileSync(file, "utf8");
  const next = text.replace(/^(\s+image: ghcr\.io\/acme\/appstack-api:)(\S+)$/m, "$1$2-next");
  if (next === text) throw new Error(`no API image line in ${file}`);
  const out = path.join(dir, `Pulumi.${stack}.yaml`);
  fs.writeFileSync(out, next);
  return out;
}

/** The API containers of a declared stack, in replica order. */
export function apiContainers(d: Declared): DeclaredResource[] {
  const api = d.resources.filter((r) => /^api-([0-9a-f]{8}-)?\d+$/.test(r.name) && r.type === "docker:index/container:Container");
  return api.sort((a, b) => Number(a.name.split("-").at(-1)) - Number(b.name.split("-").at(-1)));
}

/** The declared config the edge-config job applies, and the bootstrap the proxy starts from. */
export function edgeFiles(d: Declared): { applied: string; bootstrap: string; reload: string[]; upstreams: string[] } {
  const job = d.resources.find((r) => r.name === "edge-config-run");
  const proxy = d.resources.find((r) => r.name === "edge-proxy");
  if (!job || !proxy) throw new Error("the stack declares no edge (edge-config-run, edge-proxy)");
  const upload = (r: DeclaredResource) => (r.inputs.uploads as { file: string; content: string }[])[0];
  const applied = upload(job).content;
  const upstreams = [...applied.matchAll(/^\treverse_proxy (.+) \{$/gm)].flatMap((m) => m[1].split(" "));
  return { applied, bootstrap: upload(proxy).content, reload: job.inputs.command as string[], upstreams };
}

export interface LoopbackMap {
  siteAddress: string;
  adminSocket: string;
  internalHealthPort: number;
  /** Declared upstream (`name:port`) -> 127.0.0.1:<port>. */
  upstreams: Record<string, number>;
}

function replaceExactly(text: string, from: string | RegExp, to: string, times: number, what: string): string {
  const count = typeof from === "string" ? text.split(from).length - 1 : [...text.matchAll(new RegExp(from, "g"))].length;
  if (count !== times) throw new Error(`expected ${what} ${times} time(s) in the declared Caddyfile, found ${count}`);
  return typeof from === "string" ? text.split(from).join(to) : text.replace(new RegExp(from, "g"), to);
}

/** The declared Caddyfile with only the loopback adaptations (see the module comment). */
export function toLoopback(caddyfile: string, domain: string, map: LoopbackMap): string {
  // HTTPS as declared, with a certificate from Caddy's own local CA instead of the ACME one for the domain.
  let text = replaceExactly(caddyfile, `\n${domain} {\n`, `\n${map.siteAddress} {\n\ttls internal\n`, 1, `the site ${domain}`);
  // Caddy must not add its local CA to this machine's trust store.
  text = replaceExactly(text, /admin unix\/\/config\/admin\.sock/, `admin unix/${map.adminSocket}\n\tskip_install_trust`, 1, "the admin socket");
  text = replaceExactly(text, "http://127.0.0.1:8081 {", `http://127.0.0.1:${map.internalHealthPort} {`, 1, "the internal health site");
  for (const [upstream, port] of Object.entries(map.upstreams)) {
    const count = text.split(upstream).length - 1;
    if (count > 1) throw new Error(`upstream ${upstream} appears ${count} times`);
    text = text.split(upstream).join(`127.0.0.1:${port}`);
  }
  return text;
}

export interface Edge {
  port: number;
  /** The root of Caddy's local CA, which signs the loopback site's certificate. */
  rootCertificate(): Buffer;
  /** Applies a config the way the edge-config job does: `caddy reload` through the admin socket. */
  apply(caddyfile: string): Promise<void>;
  output(): string;
  stop(): Promise<void>;
}

/** Starts Caddy from the (loopback-mapped) bootstrap config, as the edge container does. */
export async function startEdge(dir: string, bootstrap: string, reload: string[], map: LoopbackMap, port: number): Promise<Edge> {
  const bootstrapFile = path.join(dir, "Caddyfile");
  fs.writeFileSync(bootstrapFile, bootstrap);
  const log: string[] = [];
  // XDG dirs in the temporary directory: its autosave and certificates stay out of the machine's.
  const env = { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: path.join(dir, "config"), XDG_DATA_HOME: path.join(dir, "data") };
  const child: ChildProcess = spawn(CADDY, ["run", "--config", bootstrapFile, "--adapter", "caddyfile", "--resume"], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.on("data", (d) => log.push(String(d)));
  child.stderr!.on("data", (d) => log.push(String(d)));
  await waitUntil("caddy's internal health site", async () => {
    if (child.exitCode !== null) throw new Error(`caddy exited with ${child.exitCode}: ${log.join("")}`);
    return (await fetch(`http://127.0.0.1:${map.internalHealthPort}/healthz`).catch(() => undefined))?.status === 200;
  });
  let applied = 0;
  return {
    port,
    rootCertificate: () => fs.readFileSync(path.join(env.XDG_DATA_HOME, "caddy", "pki", "authorities", "local", "root.crt")),
    async apply(caddyfile: string) {
      const file = path.join(dir, `Caddyfile.applied.${++applied}`);
      fs.writeFileSync(file, caddyfile);
      // The job's own argv, with the file and the socket at their loopback places.
      const argv = reload.map((a) => (a === "/etc/caddy/Caddyfile.applied" ? file : a === "unix//config/admin.sock" ? `unix/${map.adminSocket}` : a));
      if (argv[0] !== "caddy" || argv.filter((a, i) => a !== reload[i]).length !== 2) throw new Error(`unexpected edge-config command: ${JSON.stringify(reload)}`);
      const r = await run(CADDY, argv.slice(1), { cwd: dir, env, timeoutMs: 30_000 });
      if (r.code !== 0) throw new Error(`caddy reload failed (${r.code}): ${r.stderr}`);
    },
    output: () => log.join(""),
    async stop() {
      if (child.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      });
    },
  };
}

/** One API container, emulated: the example API as a process with the container's env. */
export interface Replica {
  name: string;
  port: number;
  process: ServiceProcess;
}

/**
 * Starts a replica and waits, as the provider's `wait: true` does, until the
 * declared health check passes. Docker runs it as declared: the first probe
 * one `interval` after the start, then every `interval` (no health check sets
 * startInterval, which Docker 20.10 does not have). Rejects after `timeoutMs`
 * with the last check's output, as `pulumi up` fails.
 */
export async function createReplica(c: DeclaredResource, env: Record<string, string>, timeoutMs: number): Promise<Replica> {
  const port = await freePort();
  const declaredPort = env.PORT;
  const proc = startNodeService("api/server.js", { ...env, PORT: String(port) }, APP);
  const { tests, interval } = c.inputs.healthcheck as { tests: string[]; interval?: string };
  const intervalMs = durationMs(interval ?? "30s");
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    await new Promise((r) => setTimeout(r, intervalMs));
    const r = await runHealthcheck(tests, env, { from: `:${declaredPort}/`, to: `:${port}/` }, APP);
    if (r.code === 0) return { name: c.name, port, process: proc };
    last = (r.stdout + r.stderr).trim() || `exit ${r.code}`;
    if (Date.now() > deadline) {
      const err = new Error(`${c.name}: container failed to be in healthy state within ${timeoutMs / 1000} s; last health check: ${last}`);
      (err as Error & { replica?: Replica }).replica = { name: c.name, port, process: proc };
      throw err;
    }
  }
}

/** The provider's delete with `destroyGraceSeconds`: the stop signal, up to the grace period, then SIGKILL. */
export async function deleteReplica(c: DeclaredResource, replica: Replica): Promise<number | null> {
  const signal = (c.inputs.stopSignal as NodeJS.Signals | undefined) ?? "SIGTERM";
  const grace = Number(c.inputs.destroyGraceSeconds ?? 0);
  return replica.process.stop(signal, grace * 1000);
}

/** A container's declared env with its service URLs pointed at local servers. */
export function localEnv(c: DeclaredResource, ports: Record<string, number>): Record<string, string> {
  const env = containerEnv(c);
  for (const key of ["DATABASE_URL", "REDIS_URL"]) {
    if (!env[key]) continue;
    const u = new URL(env[key]);
    const port = ports[u.hostname];
    if (port === undefined) throw new Error(`no local server for host ${u.hostname}`);
    u.hostname = "127.0.0.1";
    u.port = String(port);
    env[key] = u.toString();
  }
  return env;
}

export interface LoadResult {
  protocol: "h2" | "http/1.1";
  /** HTTP/2 requests sent again because the server said it never processed them (GOAWAY, REFUSED_STREAM). */
  resent: number;
  requests: number;
  failed: number;
  p99Ms: number;
  /** The first few failures, for the assertion message. */
  samples: string[];
  /** When each failure happened (Date.now()). */
  failedAt: number[];
}

/**
 * A bounded load through the edge: `concurrency` loops, half GET of the
 * liveness path and half POST of a job, for `durationMs`, each request with a
 * 15 s timeout. A request fails on a network error or an unexpected status.
 */
interface Response {
  status: number;
}

/** One request's outcome: a status, or the error that ended it. */
type Send = (method: "GET" | "POST", path: string, body?: string) => Promise<Response>;

/**
 * An HTTP/2 client as browsers behave (RFC 9113 §8.7): a stream the server
 * refused, or one above the last stream id of its GOAWAY, was never processed
 * and is sent again on a new connection, whatever its method; any other error
 * is a failure. Node's own http2 module, so nothing is retried that the
 * protocol does not say was unprocessed.
 */
function http2Client(origin: string, ca: Buffer): { send: Send; close(): void; resent(): number } {
  let resent = 0;
  let session: http2.ClientHttp2Session | undefined;
  const sessions: http2.ClientHttp2Session[] = [];
  const open = () => {
    if (session && !session.closed && !session.destroyed && !(session as { goingAway?: boolean }).goingAway) return session;
    const s = http2.connect(origin, { ca });
    s.on("error", () => undefined);
    s.on("goaway", () => ((s as { goingAway?: boolean }).goingAway = true));
    sessions.push(s);
    session = s;
    return s;
  };
  const once = (method: string, path: string, body?: string) =>
    new Promise<Response>((resolve, reject) => {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = open().request({ ":method": method, ":path": path, ...(body ? { "content-type": "application/json" } : {}) });
      } catch (err) {
        reject(Object.assign(err as Error, { unprocessed: true }));
        return;
      }
      let status = 0;
      stream.setTimeout(15_000, () => stream.close(http2.constants.NGHTTP2_CANCEL));
      stream.on("response", (headers) => (status = Number(headers[":status"])));
      stream.on("data", () => undefined);
      stream.on("end", () => resolve({ status }));
      stream.on("error", (err) => reject(err));
      stream.on("close", () => {
        if (status) return;
        const refused = stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM;
        reject(Object.assign(new Error(`stream closed (code ${stream.rstCode})`), { unprocessed: refused }));
      });
      stream.end(body);
    });
  return {
    async send(method, path, body) {
      for (let attempt = 0; ; attempt++) {
        try {
          return await once(method, path, body);
        } catch (err) {
          const e = err as Error & { unprocessed?: boolean; code?: string };
          const unprocessed = e.unprocessed || e.code === "ERR_HTTP2_GOAWAY_SESSION" || /REFUSED_STREAM/.test(e.message);
          if (!unprocessed || attempt >= 3) throw err;
          resent++;
          session = undefined;
        }
      }
    },
    close: () => sessions.forEach((s) => s.close()),
    resent: () => resent,
  };
}

/** An HTTP/1.1 client with kept-alive connections (undici, as Node's fetch); it retries nothing. */
function http1Client(origin: string, ca: Buffer): { send: Send; close(): Promise<void>; resent(): number } {
  const dispatcher = new Agent({ connect: { ca, ALPNProtocols: ["http/1.1"] } });
  return {
    async send(method, path, body) {
      const res = await fetch(`${origin}${path}`, {
        method,
        body,
        headers: body ? { "content-type": "application/json" } : {},
        signal: AbortSignal.timeout(15_000),
        dispatcher,
      });
      await res.arrayBuffer();
      return { status: res.status };
    },
    close: () => dispatcher.close(),
    resent: () => 0,
  };
}

/**
 * A bounded load through the edge: `concurrency` loops, half GET of the
 * liveness path and half POST of a job, for `durationMs`. A request fails on
 * an unexpected status or an error its client does not recover from.
 */
export async function load(edge: Pick<Edge, "port" | "rootCertificate">, protocol: "h2" | "http/1.1", durationMs: number, concurrency = 2): Promise<LoadResult> {
  const origin = `https://127.0.0.1:${edge.port}`;
  const client = protocol === "h2" ? http2Client(origin, edge.rootCertificate()) : http1Client(origin, edge.rootCertificate());
  const latencies: number[] = [];
  const samples: string[] = [];
  const failedAt: number[] = [];
  let failed = 0;
  const start = Date.now();
  const end = start + durationMs;
  const loop = async (worker: number) => {
    for (let i = 0; Date.now() < end; i++) {
      const post = (i + worker) % 2 === 0;
      const started = performance.now();
      let outcome = "";
      try {
        const res = post
          ? await client.send("POST", "/api/v1/jobs", JSON.stringify({ message: `load ${worker}-${i}` }))
          : await client.send("GET", "/api/v1/health/live");
        if (res.status !== (post ? 202 : 200)) outcome = `${post ? "POST" : "GET"} ${res.status}`;
      } catch (err) {
        outcome = `${post ? "POST" : "GET"} ${(err as Error).cause ? String((err as Error & { cause: unknown }).cause) : (err as Error).message}`;
      }
      latencies.push(performance.now() - started);
      if (outcome) {
        failed++;
        failedAt.push(Date.now());
        if (samples.length < 5) samples.push(`${outcome} at ${((Date.now() - start) / 1000).toFixed(2)} s`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => loop(w)));
  await client.close();
  latencies.sort((a, b) => a - b);
  return { protocol, failedAt, resent: client.resent(), requests: latencies.length, failed, p99Ms: Math.round(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))] ?? 0), samples };
}

export function report(scenario: string, r: LoadResult): string {
  const detail = r.protocol === "h2" ? (r.resent ? ` (HTTP/2 clients; ${r.resent} re-sent after a GOAWAY)` : " (HTTP/2 clients)") : " (HTTP/1.1 clients)";
  const line = `zero-downtime: ${scenario}: ${r.requests} requests, ${r.failed} failed, p99 ${r.p99Ms} ms${detail}`;
  console.log(line);
  return line;
}
