import { spawn } from "node:child_process";
import * as http from "node:http";
import { Duplex } from "node:stream";

/**
 * A small client for the Docker Engine API at a stack's `docker.host`, the
 * way the Docker provider reaches it: a unix socket (or Windows named pipe)
 * directly, `tcp://` over HTTP, and `ssh://` through
 * `ssh <host> docker system dial-stdio`, whose stdin and stdout carry the API.
 * No docker CLI is needed on this machine (over ssh, the host's own docker
 * CLI answers, as it does for the provider).
 */

export interface DockerTarget {
  /** `unix:///var/run/docker.sock`, `ssh://deploy@host[:port]`, `tcp://host:2375`, `npipe:////./pipe/docker_engine`. */
  host: string;
  /** Extra ssh options (`docker.sshOpts`). */
  sshOpts?: string[];
  /** A `tcp://` host that speaks TLS (`docker.tls`); its material is in the stack's secure config. */
  tls?: boolean;
}

export interface EngineOptions {
  /** Per request, connection included. */
  timeoutMs?: number;
  /** The command whose stdio carries the API for an ssh:// host; default `ssh ... docker system dial-stdio`. */
  dialCommand?: (target: DockerTarget) => string[];
}

export interface EngineResponse {
  status: number;
  body: string;
}

/** What a request could not do, in terms a message can act on. */
export class EngineUnreachable extends Error {
  constructor(
    message: string,
    /** ENOENT, EACCES, ECONNREFUSED, ETIMEDOUT, SSH, HTTP... */
    readonly reason: string,
  ) {
    super(message);
    this.name = "EngineUnreachable";
  }
}

/** `ssh://user@host:port` as ssh's arguments. */
export function sshDestination(host: string): { destination: string; port?: string } {
  const url = new URL(host);
  const user = url.username ? `${decodeURIComponent(url.username)}@` : "";
  return { destination: `${user}${url.hostname.replace(/^\[|\]$/g, "")}`, port: url.port || undefined };
}

/** The dial command for an ssh:// host: never prompts (BatchMode), gives up connecting after the timeout. */
export function sshDialCommand(target: DockerTarget, timeoutMs = 10_000): string[] {
  const { destination, port } = sshDestination(target.host);
  return [
    "ssh",
    "-o",
    "BatchMode=yes",
    "-o",
    `ConnectTimeout=${Math.max(1, Math.ceil(timeoutMs / 1000))}`,
    ...(target.sshOpts ?? []),
    ...(port ? ["-p", port] : []),
    "--",
    destination,
    "docker",
    "system",
    "dial-stdio",
  ];
}

/**
 * The dial command's stdout and stdin as one socket for the HTTP client. Its
 * stdout ending is the connection's end; nothing else closes it early (a
 * stream-composing Duplex reports "Premature close" when the child's stdio
 * closes in an order it does not expect, and a response is then cut short).
 */
function stdioSocket(stdout: NodeJS.ReadableStream, stdin: NodeJS.WritableStream): Duplex {
  const socket = new Duplex({
    read() {
      stdout.resume();
    },
    write(chunk: Buffer, _encoding, done) {
      stdin.write(chunk, done);
    },
    final(done) {
      stdin.end();
      done();
    },
  });
  stdout.on("data", (d: Buffer) => {
    if (!socket.push(d)) stdout.pause();
  });
  stdout.on("end", () => socket.push(null));
  // A write after ssh has gone (EPIPE) surfaces as the request's error, with ssh's reason.
  (stdin as NodeJS.WritableStream & { on(e: "error", l: (err: Error) => void): void }).on("error", (err) => socket.destroy(err));
  return socket;
}

interface Connection {
  options: http.RequestOptions;
  /** What the dial command printed, once it has exited (ssh's reason for a failed connection). */
  stderr: () => Promise<string>;
  close: () => void;
}

const direct = (options: http.RequestOptions): Connection => ({ options, stderr: async () => "", close: () => undefined });

function connection(target: DockerTarget, opts: EngineOptions): Connection {
  const url = new URL(target.host);
  switch (url.protocol) {
    case "unix:":
      return direct({ socketPath: url.pathname });
    case "npipe:":
      return direct({ socketPath: url.pathname.replace(/^\/\//, "\\\\").replace(/\//g, "\\") });
    case "tcp:":
      return direct({ host: url.hostname, port: Number(url.port || 2375) });
    case "ssh:": {
      const [cmd, ...args] = (opts.dialCommand ?? ((t) => sshDialCommand(t, opts.timeoutMs)))(target);
      const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
      let err = "";
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      child.on("error", (e) => (err += `${e.message}\n`));
      // stdin may break (EPIPE) before ssh's reason reaches stderr: read it once ssh has exited.
      const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
      const socket = stdioSocket(child.stdout, child.stdin);
      return {
        options: { createConnection: () => socket as unknown as import("node:net").Socket },
        stderr: async () => {
          await Promise.race([exited, new Promise((r) => setTimeout(r, 2000).unref())]);
          return err.trim();
        },
        close: () => child.kill("SIGTERM"),
      };
    }
    default:
      throw new EngineUnreachable(`docker.host ${target.host}: appstack does not know how to reach a ${url.protocol}// host`, "PROTOCOL");
  }
}

export interface EngineCall {
  method: string;
  path: string;
  /** A JSON body (serialized here), or raw bytes such as a tar archive. */
  body?: unknown;
  contentType?: string;
  /**
   * Streams the response body: each chunk as it arrives, and the timeout
   * covers only the wait for the response's headers (a followed log or a
   * container's wait can last as long as the container runs).
   */
  onData?(chunk: Buffer): void;
  /** Ends the request (a followed log stream, on Ctrl-C). */
  signal?: AbortSignal;
}

/** One request to the engine; a failure to reach it is an EngineUnreachable that says why. */
export function engineCall(target: DockerTarget, call: EngineCall, opts: EngineOptions = {}): Promise<EngineResponse> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const conn = connection(target, opts);
  const payload =
    call.body === undefined ? undefined : Buffer.isBuffer(call.body) ? call.body : Buffer.from(JSON.stringify(call.body), "utf8");
  const headers: Record<string, string | number> = { Host: "docker" };
  if (payload) {
    headers["Content-Type"] = call.contentType ?? (Buffer.isBuffer(call.body) ? "application/x-tar" : "application/json");
    headers["Content-Length"] = payload.length;
  }
  return new Promise<EngineResponse>((resolve, reject) => {
    // A fresh connection per request; over ssh, the request's own stream (no agent) is the connection.
    const agent = conn.options.createConnection ? undefined : false;
    const req = http.request({ ...conn.options, method: call.method, path: call.path, headers, agent }, (res) => {
      if (call.onData) clearTimeout(timer);
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => (call.onData && res.statusCode! < 300 ? call.onData(d) : chunks.push(d)));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      // An aborted stream ends the way the caller asked for: without an error.
      res.on("error", (err) => (call.signal?.aborted ? resolve({ status: res.statusCode ?? 0, body: "" }) : reject(err)));
    });
    const timer = setTimeout(() => req.destroy(Object.assign(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`), { code: "ETIMEDOUT" })), timeoutMs);
    const abort = () => req.destroy();
    call.signal?.addEventListener("abort", abort, { once: true });
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (call.signal?.aborted) return resolve({ status: 0, body: "" });
      void conn.stderr().then((ssh) => reject(new EngineUnreachable(ssh ? `${err.message}: ${ssh}` : err.message, ssh ? "SSH" : (err.code ?? "ERROR"))));
    });
    req.on("close", () => {
      clearTimeout(timer);
      call.signal?.removeEventListener("abort", abort);
    });
    req.end(payload);
  }).finally(() => conn.close());
}

/** One GET or bodiless request to the engine, its whole answer at once. */
export function engineRequest(target: DockerTarget, method: string, path: string, opts: EngineOptions = {}): Promise<EngineResponse> {
  return engineCall(target, { method, path }, opts);
}

/** The engine's own message in an error answer (`{"message": ...}`), else the body as it came. */
export function engineMessage(body: string): string {
  try {
    return (JSON.parse(body) as { message?: string }).message ?? body.trim();
  } catch {
    return body.trim();
  }
}

/** A JSON answer from the engine; a non-2xx status is an error with the engine's message. */
export async function engineJson<T>(target: DockerTarget, path: string, opts: EngineOptions = {}): Promise<T> {
  const res = await engineRequest(target, "GET", path, opts);
  if (res.status < 200 || res.status >= 300) {
    throw new EngineUnreachable(`the Docker engine answered ${res.status} to GET ${path}: ${engineMessage(res.body)}`, "HTTP");
  }
  return JSON.parse(res.body) as T;
}

/** What the engine says it is. */
export interface EngineVersion {
  /** The engine's version, e.g. `20.10.24+dfsg1`. */
  version: string;
  /** The newest Engine API version it speaks, e.g. `1.41`. */
  apiVersion: string;
  /** The oldest API version it accepts. */
  minApiVersion?: string;
  os?: string;
  arch?: string;
}

/**
 * The engine's version and API version (`GET /version`): the one question
 * every check of the engine's capabilities (a minimum engine version, a
 * health-check field an old API refuses) starts from.
 */
export async function engineVersion(target: DockerTarget, opts: EngineOptions = {}): Promise<EngineVersion> {
  const v = await engineJson<{ Version?: string; ApiVersion?: string; MinAPIVersion?: string; Os?: string; Arch?: string }>(target, "/version", opts);
  if (!v.Version || !v.ApiVersion) throw new EngineUnreachable(`the Docker engine at ${target.host} answered /version without a version`, "HTTP");
  return { version: v.Version, apiVersion: v.ApiVersion, minApiVersion: v.MinAPIVersion, os: v.Os, arch: v.Arch };
}
