/**
 * Throwaway Postgres and Redis servers for the contract tests: Debian's
 * packages (installed by .ci/run), each on a free port of 127.0.0.1 in its own
 * temporary directory, started and stopped by the test that owns them.
 *
 * A missing server is a failure, never a skip: the contract tests are the only
 * place where the commands the stack declares meet the real programs.
 */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

const INSTALL_HINT = "Install them with: apt-get install postgresql redis-server (as .ci/run does).";

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion with a time limit; never throws on a non-zero exit. */
export function run(cmd: string, args: string[], opts: SpawnOptions & { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 20_000);
    child.stdout!.on("data", (d) => (stdout += d));
    child.stderr!.on("data", (d) => (stderr += d));
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    // A program that exits without reading its stdin closes the pipe first: not an error of the run.
    child.stdin!.on("error", () => undefined);
    child.stdin!.end(opts.input ?? "");
  });
}

/** A port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Polls until `check` resolves true, or fails with `what` after the deadline. */
export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
  });
}

function onPath(program: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const file = path.join(dir, program);
    if (dir && fs.existsSync(file)) return file;
  }
  return undefined;
}

/** Debian installs the server programs in /usr/lib/postgresql/<major>/bin, off PATH; the newest major wins. */
export function postgresBin(program: string): string {
  const base = "/usr/lib/postgresql";
  const majors = fs.existsSync(base) ? fs.readdirSync(base).filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const major of majors) {
    const file = path.join(base, major, "bin", program);
    if (fs.existsSync(file)) return file;
  }
  const found = onPath(program);
  if (!found) throw new Error(`Postgres's ${program} is not installed (looked in ${base}/<major>/bin and PATH). ${INSTALL_HINT}`);
  return found;
}

export function redisBin(program: "redis-server" | "redis-cli"): string {
  const found = onPath(program);
  if (!found) throw new Error(`${program} is not installed. ${INSTALL_HINT}`);
  return found;
}

/**
 * Postgres refuses to run as root. As root (CI), the server runs as the
 * `postgres` account that Debian's package creates; otherwise as ourselves.
 */
function serverAccount(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const entry = fs
    .readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .map((l) => l.split(":"))
    .find((f) => f[0] === "postgres");
  if (!entry) throw new Error(`running as root, but there is no "postgres" account to run the server as. ${INSTALL_HINT}`);
  return { uid: Number(entry[2]), gid: Number(entry[3]) };
}

function tempDir(prefix: string, owner?: { uid: number; gid: number }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  if (owner) fs.chownSync(dir, owner.uid, owner.gid);
  return dir;
}

function stopProcess(child: ChildProcess, signal: NodeJS.Signals, timeoutMs = 15_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    child.kill(signal);
  });
}

export interface PostgresServer {
  port: number;
  /** Directory of the server's unix socket (trusted local connections, as in the image). */
  socketDir: string;
  /** Runs a server-side program (psql, pg_isready) as the server's account. */
  asServer(program: string, args: string[], opts?: { input?: string; env?: NodeJS.ProcessEnv }): Promise<RunResult>;
  stop(): Promise<void>;
  /** Stops the server if running and removes its files. */
  destroy(): Promise<void>;
}

/**
 * Creates a cluster the way the official postgres image's docker-entrypoint.sh
 * does from POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB:
 * `initdb --username=$POSTGRES_USER --pwfile=<password>`, then
 * `CREATE DATABASE :"db"` through psql on the local socket.
 *
 * One deliberate difference: the image trusts 127.0.0.1 inside the container
 * and asks a password (scram-sha-256) of every other host. Our clients come
 * from 127.0.0.1 on the host where the API comes from the network, so here
 * every TCP connection needs the password, which is what the API sees.
 */
export async function startPostgres(env: Record<string, string>, port: number): Promise<PostgresServer> {
  for (const key of ["POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"]) {
    if (!env[key]) throw new Error(`the declared Postgres env has no ${key}`);
  }
  const account = serverAccount();
  const root = tempDir("appstack-pg-", account);
  const dataDir = path.join(root, "data");
  const socketDir = path.join(root, "sock");
  const pwfile = path.join(root, "pwfile");
  const spawnAs: SpawnOptions = { ...(account ?? {}), env: { PATH: process.env.PATH, LANG: "C.UTF-8" }, cwd: root };
  const runAs = (program: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}) =>
    run(program, args, { ...spawnAs, env: { ...spawnAs.env, ...opts.env }, input: opts.input });

  fs.mkdirSync(socketDir);
  fs.writeFileSync(pwfile, `${env.POSTGRES_PASSWORD}\n`, { mode: 0o600 });
  if (account) {
    fs.chownSync(socketDir, account.uid, account.gid);
    fs.chownSync(pwfile, account.uid, account.gid);
  }
  const init = await runAs(postgresBin("initdb"), [
    "-D", dataDir, `--username=${env.POSTGRES_USER}`, `--pwfile=${pwfile}`,
    "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--no-sync",
  ]);
  fs.rmSync(pwfile);
  if (init.code !== 0) throw new Error(`initdb failed (${init.code}): ${init.stderr}`);

  let server: ChildProcess | undefined;
  const start = async () => {
    const log: string[] = [];
    server = spawn(
      postgresBin("postgres"),
      ["-D", dataDir, "-p", String(port), "-c", "listen_addresses=127.0.0.1", "-c", `unix_socket_directories=${socketDir}`, "-c", "fsync=off"],
      { ...spawnAs, stdio: ["ignore", "pipe", "pipe"] },
    );
    server.stderr!.on("data", (d) => log.push(String(d)));
    const exited = () => server!.exitCode !== null;
    await waitUntil(`postgres on 127.0.0.1:${port}`, async () => {
      if (exited()) throw new Error(`postgres exited with ${server!.exitCode}: ${log.join("")}`);
      return (await runAs(postgresBin("pg_isready"), ["-h", socketDir, "-p", String(port)])).code === 0;
    });
  };
  await start();

  const pg: PostgresServer = {
    port,
    socketDir,
    asServer: runAs,
    async stop() {
      if (server) await stopProcess(server, "SIGINT");
    },
    async destroy() {
      await pg.stop();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };

  // As the image's docker_setup_db: psql over the socket, the name passed as a variable so any identifier is quoted right.
  if (env.POSTGRES_DB !== "postgres") {
    const sql = await runAs(
      postgresBin("psql"),
      ["-v", "ON_ERROR_STOP=1", "--username", env.POSTGRES_USER, "--no-password", "--no-psqlrc", "--dbname", "postgres",
        "--set", `db=${env.POSTGRES_DB}`, "-h", socketDir, "-p", String(port)],
      { input: 'CREATE DATABASE :"db" ;\n' },
    );
    if (sql.code !== 0) {
      await pg.destroy();
      throw new Error(`CREATE DATABASE failed: ${sql.stderr}`);
    }
  }
  return pg;
}

export interface RedisServer {
  port: number;
  pid: number;
  /** The server's working directory: the container's /data. */
  dir: string;
  stop(): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * Runs a container command on the host, with the container's env plus PATH,
 * in a fresh directory that stands for the image's working directory (/data
 * for redis) and serves as TMPDIR (the container's private /tmp).
 */
export async function startRedis(command: string[], env: Record<string, string>, port: number): Promise<RedisServer> {
  redisBin("redis-server");
  const dir = tempDir("appstack-redis-");
  const log: string[] = [];
  const child = spawn(command[0], command.slice(1), {
    cwd: dir,
    env: { ...env, PATH: process.env.PATH, TMPDIR: dir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (d) => log.push(String(d)));
  child.stderr!.on("data", (d) => log.push(String(d)));
  await waitUntil(`redis-server on 127.0.0.1:${port}`, async () => {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}: ${log.join("")}`);
    return accepts(port);
  });
  const redis: RedisServer = {
    port,
    pid: child.pid!,
    dir,
    async stop() {
      await stopProcess(child, "SIGTERM");
    },
    async destroy() {
      await redis.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return redis;
}

/** The argv of a running process, as `ps` and `docker top` show it. */
export function processArgv(pid: number): string[] {
  return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
}

/**
 * Runs a declared Docker health check (`healthcheck.tests`) on the host the way
 * Docker runs it in the container: `CMD` as argv, `CMD-SHELL` through /bin/sh -c.
 * `rewrite` adapts a container port to the host's; it must match exactly once,
 * so a changed health check fails here instead of silently testing something else.
 * `cwd` stands for the image's WORKDIR.
 */
export function runHealthcheck(
  tests: string[],
  env: Record<string, string>,
  rewrite?: { from: string; to: string },
  cwd?: string,
): Promise<RunResult> {
  const [kind, ...rest] = tests;
  let argv: string[];
  if (kind === "CMD") argv = rest;
  else if (kind === "CMD-SHELL" && rest.length === 1) argv = ["/bin/sh", "-c", rest[0]];
  else throw new Error(`not a runnable health check: ${JSON.stringify(tests)}`);
  if (rewrite) {
    const count = argv.map((a) => a.split(rewrite.from).length - 1).reduce((x, y) => x + y, 0);
    if (count !== 1) throw new Error(`expected "${rewrite.from}" exactly once in ${JSON.stringify(tests)}`);
    argv = argv.map((a) => a.replace(rewrite.from, rewrite.to));
  }
  return run(argv[0], argv.slice(1), { cwd, env: { ...env, PATH: process.env.PATH }, timeoutMs: 10_000 });
}

export interface ServiceProcess {
  child: ChildProcess;
  /** Everything the process printed so far. */
  output(): string;
  /** Sends a signal and resolves with the exit code (SIGKILL after the timeout). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

/** Starts a Node program of the example app with exactly `env` (plus PATH), as its container would. */
export function startNodeService(script: string, env: Record<string, string>, cwd: string): ServiceProcess {
  return startProgram([process.execPath, script], { ...env, PATH: process.env.PATH ?? "" }, cwd);
}

/** Starts a long-running program with exactly `env`, collecting what it prints. */
export function startProgram(argv: string[], env: Record<string, string>, cwd?: string): ServiceProcess {
  const chunks: string[] = [];
  const child = spawn(argv[0], argv.slice(1), { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.on("data", (d) => chunks.push(String(d)));
  child.stderr!.on("data", (d) => chunks.push(String(d)));
  return {
    child,
    output: () => chunks.join(""),
    stop: (signal = "SIGTERM", timeoutMs = 15_000) => stopProcess(child, signal, timeoutMs),
  };
}

/**
 * The HEALTHCHECK of a Dockerfile as Docker's `tests` array (`["CMD", ...]` or
 * `["CMD-SHELL", "..."]`): the image's own check, for when the stack declares none.
 */
export function dockerfileHealthcheck(dockerfile: string): string[] {
  const text = fs.readFileSync(dockerfile, "utf8").replace(/\\\r?\n/g, " ");
  const line = text.split(/\r?\n/).find((l) => /^\s*HEALTHCHECK\s/i.test(l));
  if (!line) throw new Error(`${dockerfile} has no HEALTHCHECK`);
  const cmd = /\sCMD\s+(.*)$/i.exec(line)?.[1]?.trim();
  if (!cmd) throw new Error(`${dockerfile}: HEALTHCHECK without CMD`);
  return cmd.startsWith("[") ? ["CMD", ...(JSON.parse(cmd) as string[])] : ["CMD-SHELL", cmd];
}

export interface SftpServer {
  port: number;
  /** The account the repository is written as (this process's). */
  user: string;
  /** A directory the account may write: repositories go below it. */
  root: string;
  /** The server's host key as a known_hosts line for 127.0.0.1:<port>. */
  knownHostsLine: string;
  /** A throwaway private key the server accepts (OpenSSH format). */
  clientKey: string;
  stop(): Promise<void>;
  /** Stops the server and removes its files, repositories included. */
  destroy(): Promise<void>;
}

/**
 * An sftp server for the off-host backup tests: Debian's sshd (openssh-server,
 * installed by .ci/run) run by the test itself on a free port of 127.0.0.1,
 * with its own config, a throwaway host key and one throwaway client key;
 * never the system's sshd. As root, sshd needs its privilege-separation
 * directory (/run/sshd), which it creates at boot when installed as a service.
 */
export async function startSftpServer(): Promise<SftpServer> {
  const sshd = "/usr/sbin/sshd";
  if (!fs.existsSync(sshd)) throw new Error(`sshd is not installed (${sshd}). Install it with: apt-get install openssh-server (as .ci/run does).`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-sftp-"));
  const keygen = async (file: string) => {
    const r = await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "appstack-test", "-f", file]);
    if (r.code !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  };
  await keygen(path.join(dir, "host_key"));
  await keygen(path.join(dir, "client_key"));
  fs.copyFileSync(path.join(dir, "client_key.pub"), path.join(dir, "authorized_keys"));
  const root = path.join(dir, "repos");
  fs.mkdirSync(root);
  const port = await freePort();
  const user = os.userInfo().username;
  fs.writeFileSync(
    path.join(dir, "sshd_config"),
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${dir}/host_key`,
      `PidFile ${dir}/sshd.pid`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      // The key files live under the test's temporary directory, whose parents are not the account's.
      "StrictModes no",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "PermitRootLogin prohibit-password",
      `AllowUsers ${user}`,
      "Subsystem sftp internal-sftp",
      "",
    ].join("\n"),
  );
  if (process.getuid?.() === 0) fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const log: string[] = [];
  const child = spawn(sshd, ["-D", "-e", "-f", path.join(dir, "sshd_config")], { stdio: ["ignore", "ignore", "pipe"] });
  child.stderr!.on("data", (d) => log.push(String(d)));
  await waitUntil(`sshd on 127.0.0.1:${port}`, async () => {
    if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}: ${log.join("")}`);
    return accepts(port);
  });
  const hostKey = fs.readFileSync(path.join(dir, "host_key.pub"), "utf8").trim().split(" ").slice(0, 2).join(" ");
  const server: SftpServer = {
    port,
    user,
    root,
    knownHostsLine: `[127.0.0.1]:${port} ${hostKey}`,
    clientKey: fs.readFileSync(path.join(dir, "client_key"), "utf8"),
    async stop() {
      await stopProcess(child, "SIGTERM");
    },
    async destroy() {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** The programs of the Alpine-based images' busybox that the backup scripts use. */
const BUSYBOX_APPLETS = [
  "sh", "ls", "find", "xargs", "sed", "grep", "tail", "head", "cut", "date", "wc", "mv", "rm", "mkdir", "cat", "touch",
  "tr", "sleep", "printf", "chmod", "base64", "sort", "dirname", "env",
];

/**
 * A PATH that stands for an Alpine-based image's userland: busybox's applets
 * (Debian's busybox-static, the same multi-call binary Alpine ships), plus the
 * image's own programs from this machine (`extra`: pg_dump, restic, ssh...).
 * The backup scripts run under it with `busybox sh`, as in the containers,
 * so a GNU-only option or a bash-ism fails here too.
 */
export function alpineUserland(extra: Record<string, string>): { dir: string; path: string; destroy(): void } {
  const busybox = "/bin/busybox";
  if (!fs.existsSync(busybox)) throw new Error(`busybox is not installed (${busybox}). Install it with: apt-get install busybox-static (as .ci/run does).`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-userland-"));
  for (const applet of BUSYBOX_APPLETS) fs.symlinkSync(busybox, path.join(dir, applet));
  for (const [name, target] of Object.entries(extra)) fs.symlinkSync(target, path.join(dir, name));
  return { dir, path: dir, destroy: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Where a program is on this machine's PATH; an error naming the package when it is not. */
export function programOnPath(program: string, installHint: string): string {
  const found = onPath(program);
  if (!found) throw new Error(`${program} is not installed. ${installHint}`);
  return found;
}
