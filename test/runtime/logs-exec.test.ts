import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exec, execHistory } from "../../ops/operations/exec";
import { auditVolume, type ExecRecord } from "../../ops/operations/exec-audit";
import { logs } from "../../ops/operations/logs";
import type { StreamName } from "../../ops/operations/log-stream";
import { EXIT, UserError } from "../../ops/shared/errors";
import { FakeAutomation, testContext } from "../helpers/automation";
import { tempProject } from "../helpers/project";
import { busyboxImage, docker } from "./busybox-image";

/**
 * `npm run logs` and `npm run exec` against this machine's Docker engine:
 * containers labelled the way the components label a stack's replicas (two
 * API replicas and a worker on the stack's network, a peer to reach over
 * it), with secrets in their env that they print. The Pulumi side (the
 * stack's outputs) is a fake: no engine runs here; the Docker side is real.
 */

const id = randomBytes(4).toString("hex");
const STAGING = `rts${id}`;
const PRODUCTION = `rtp${id}`;
const IMAGE_REF = "ghcr.io/acme/api:1.4.2";
const API_KEY = `sk-canary-${randomBytes(10).toString("hex")}`;
const WEBHOOK = `whsec-canary-${randomBytes(10).toString("hex")}`;
const DB_PASSWORD = `pw${randomBytes(8).toString("hex")}`;

function stackFile(environment: string, docker = "host: unix:///var/run/docker.sock"): string {
  return `config:
  appstack:environment: ${environment}
  appstack:docker:
    ${docker}
  appstack:postgres:
    mode: external
  appstack:redis:
    mode: external
  appstack:api:
    image: ${IMAGE_REF}
    replicas: 2
    domain: api.example.com
    health:
      path: /health
    # STRIPE_WEBHOOK is masked because it is listed here, not by its name.
    secretEnv: [OPENAI_API_KEY, STRIPE_WEBHOOK]
  appstack:worker:
    command: ["node", "worker.js"]
    secretEnv: [OPENAI_API_KEY]
  appstack:edge:
    acmeEmail: ops@example.com
  appstack:postgresUrl:
    secure: v1:Zm9vYmFyYmF6cXV4:c2VjcmV0LWNpcGhlcnRleHQtcG9zdGdyZXM=
  appstack:redisUrl:
    secure: v1:Zm9vYmFyYmF6cXV4:c2VjcmV0LWNpcGhlcnRleHQtcmVkaXM=
  appstack:OPENAI_API_KEY:
    secure: v1:Zm9vYmFyYmF6cXV4:c2VjcmV0LWNpcGhlcnRleHQtcmVkaXM=
  appstack:STRIPE_WEBHOOK:
    secure: v1:Zm9vYmFyYmF6cXV4:c2VjcmV0LWNpcGhlcnRleHQtcmVkaXM=
`;
}

const root = tempProject({ [`Pulumi.${STAGING}.yaml`]: stackFile("staging"), [`Pulumi.${PRODUCTION}.yaml`]: stackFile("production") });
/** The same stack reached as a remote host is: ssh, whose far end runs `docker system dial-stdio` (run here without ssh). */
const sshRoot = tempProject({
  [`Pulumi.${STAGING}.yaml`]: stackFile("staging", 'host: ssh://deploy@stand-in.invalid\n    sshOpts: ["-o", "StrictHostKeyChecking=accept-new"]'),
});
const dialStdio = { dialCommand: () => ["docker", "-H", "unix:///var/run/docker.sock", "system", "dial-stdio"] };
/** The stack's outputs after a deploy, as the CLI returns them. */
const deployed = () => new FakeAutomation(() => ({ outputs: { version: { value: "1.4.2", secret: false }, images: { value: { api: IMAGE_REF, worker: IMAGE_REF }, secret: false } } }));

const ENV = ["-e", `OPENAI_API_KEY=${API_KEY}`, "-e", `STRIPE_WEBHOOK=${WEBHOOK}`, "-e", `DATABASE_URL=postgresql://app:${DB_PASSWORD}@db.internal:5432/app`, "-e", "LOG_LEVEL=debug"];

function run(stack: string, name: string, service: string, args: string[], extra: string[] = []): string {
  const labels = { "appstack.project": "appstack", "appstack.stack": stack, "appstack.service": service, "appstack.role": "service", "appstack.version": "1.4.2", "appstack.image": IMAGE_REF };
  const r = docker([
    "run", "-d", "--name", `${stack}-${name}`, "--network", `${stack}-net`, "--memory", "64m",
    ...Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]), ...ENV, ...extra, busyboxImage(), ...args,
  ]);
  if (r.code !== 0) throw new Error(`docker run ${name}: ${r.stderr}`);
  return r.stdout.trim();
}

/** A replica that prints batch A (secrets included), then batch B once /tmp/go exists, then sleeps. */
const replicaScript = (n: number) => [
  "sh", "-c",
  `echo "api-${n} A1 starting"; echo "api-${n} A2 key=$OPENAI_API_KEY hook=$STRIPE_WEBHOOK"; echo "api-${n} A3 db=$DATABASE_URL" >&2; ` +
    `echo "api-${n} A4 password alone: ${DB_PASSWORD}"; ` +
    `while [ ! -f /tmp/go ]; do sleep 0.1; done; echo "api-${n} B1 after the mark"; exec sleep 600`,
];

function logsOf(container: string): string {
  return docker(["logs", container]).stdout;
}

async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function capture(): { write: (s: StreamName, l: string) => void; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, write: (s, l) => (s === "stderr" ? err : out).push(l) };
}

let markTime = "";

beforeAll(async () => {
  for (const stack of [STAGING, PRODUCTION]) {
    const net = docker(["network", "create", "--label", `appstack.stack=${stack}`, `${stack}-net`]);
    if (net.code !== 0) throw new Error(net.stderr);
  }
  run(STAGING, "api-3f2a1b2c-1", "api", replicaScript(1));
  run(STAGING, "api-3f2a1b2c-2", "api", replicaScript(2));
  run(STAGING, "worker-1", "worker", ["sh", "-c", 'echo "worker ready"; exec sleep 600']);
  // Something else on the stack's network, for a one-off to reach by name.
  run(STAGING, "peer", "redis", ["sh", "-c", "mkdir -p /tmp/www && echo peer-ok > /tmp/www/index.html && exec busybox httpd -f -p 8080 -h /tmp/www"], ["--network-alias", "peer"]);
  run(PRODUCTION, "api-0a1b2c3d-1", "api", ["sleep", "600"]);
  await until("batch A", () => [1, 2].every((n) => logsOf(`${STAGING}-api-3f2a1b2c-${n}`).includes(`api-${n} A4`)));
  // Docker's timestamps have nanoseconds and --since takes them: the mark sits strictly between the batches.
  await new Promise((r) => setTimeout(r, 1100));
  markTime = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  await new Promise((r) => setTimeout(r, 1100));
  for (const n of [1, 2]) docker(["exec", `${STAGING}-api-3f2a1b2c-${n}`, "sh", "-c", ": > /tmp/go"]);
  await until("batch B", () => [1, 2].every((n) => logsOf(`${STAGING}-api-3f2a1b2c-${n}`).includes(`api-${n} B1`)));
}, 120_000);

afterAll(() => {
  for (const stack of [STAGING, PRODUCTION]) {
    const ids = docker(["ps", "-aq", "--filter", `label=appstack.stack=${stack}`]).stdout.split("\n").filter(Boolean);
    if (ids.length) docker(["rm", "-f", ...ids]);
    docker(["network", "rm", `${stack}-net`]);
    docker(["volume", "rm", auditVolume(stack)]);
  }
  for (const dir of [root, sshRoot]) fs.rmSync(dir, { recursive: true, force: true });
});

describe("runtime: npm run logs", () => {
  it("prints every replica's lines, each prefixed with its container, interleaved by time, secrets masked", async () => {
    const io = capture();
    expect(await logs(testContext(root, deployed()), { stack: STAGING, service: "api", follow: false, write: io.write })).toBe(EXIT.ok);
    const all = [...io.out, ...io.err].join("\n");
    for (const n of [1, 2]) {
      const prefix = `${STAGING}-api-3f2a1b2c-${n} | `;
      expect(io.out).toContain(`${prefix}api-${n} A1 starting`);
      expect(io.out).toContain(`${prefix}api-${n} A2 key=[secret] hook=[secret]`);
      // What the container wrote to stderr stays on stderr.
      expect(io.err).toContain(`${prefix}api-${n} A3 db=[secret]`);
      expect(io.out).toContain(`${prefix}api-${n} A4 password alone: [secret]`);
      expect(io.out).toContain(`${prefix}api-${n} B1 after the mark`);
    }
    for (const canary of [API_KEY, WEBHOOK, DB_PASSWORD]) expect(all).not.toContain(canary);
    expect(io.out.some((l) => l.includes("worker ready"))).toBe(false);
    // Each replica's own order holds in the merge.
    const one = io.out.filter((l) => l.startsWith(`${STAGING}-api-3f2a1b2c-1 `));
    expect(one.map((l) => l.split(" | ")[1].split(" ")[1])).toEqual(["A1", "A2", "A4", "B1"]);
  });

  it("--tail N: the last N lines of each replica", async () => {
    const io = capture();
    await logs(testContext(root, deployed()), { stack: STAGING, service: "api", follow: false, tail: 1, write: io.write });
    expect(io.out.sort()).toEqual([`${STAGING}-api-3f2a1b2c-1 | api-1 B1 after the mark`, `${STAGING}-api-3f2a1b2c-2 | api-2 B1 after the mark`]);
    expect(io.err[0]).toContain("last 1 line of each");
  });

  it("--since: only what was printed after that time; a duration back from now covers everything here", async () => {
    const after = capture();
    await logs(testContext(root, deployed()), { stack: STAGING, service: "api", follow: false, since: markTime, write: after.write });
    expect(after.out.sort()).toEqual([`${STAGING}-api-3f2a1b2c-1 | api-1 B1 after the mark`, `${STAGING}-api-3f2a1b2c-2 | api-2 B1 after the mark`]);
    const recent = capture();
    await logs(testContext(root, deployed()), { stack: STAGING, service: "api", follow: false, since: "10m", write: recent.write });
    expect([...recent.out, ...recent.err].filter((l) => l.includes(" | "))).toHaveLength(2 * 5);
  });

  it("without --service: every container of the stack, the worker's too", async () => {
    const io = capture();
    await logs(testContext(root, deployed()), { stack: STAGING, follow: false, write: io.write });
    expect(io.out).toContain(`${STAGING}-worker-1${" ".repeat(`${STAGING}-api-3f2a1b2c-1`.length - `${STAGING}-worker-1`.length)} | worker ready`);
  });

  it("--follow streams new lines as they are printed, until stopped", async () => {
    const io = capture();
    const controller = new AbortController();
    const following = logs(testContext(root, deployed()), { stack: STAGING, service: "worker", follow: true, tail: 0, write: io.write, signal: controller.signal });
    await new Promise((r) => setTimeout(r, 500));
    docker(["exec", `${STAGING}-worker-1`, "sh", "-c", `echo "late line key=$OPENAI_API_KEY" > /proc/1/fd/1`]);
    await until("the followed line", () => io.out.length > 0, 10_000);
    controller.abort();
    expect(await following).toBe(EXIT.ok);
    expect(io.out).toEqual([`${STAGING}-worker-1 | late line key=[secret]`]);
  });

  it("a stack that was never deployed: exit 16, and the command that deploys it", async () => {
    const err = await logs(testContext(root, new FakeAutomation(() => ({ outputs: {} }))), { stack: STAGING, service: "api", follow: false }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.exitCode).toBe(EXIT.notDeployed);
    expect(err.message).toContain(`Stack "${STAGING}" was never deployed`);
    expect(err.message).toContain(`npm run deploy -- --stack ${STAGING}`);
  });
});

describe("runtime: npm run exec", () => {
  const oneOffs = (stack: string) => docker(["ps", "-aq", "--filter", `label=appstack.stack=${stack}`, "--filter", "label=appstack.role=oneoff"]).stdout.trim();
  const records = (stack: string): ExecRecord[] =>
    docker(["run", "--rm", "-v", `${auditVolume(stack)}:/a:ro`, busyboxImage(), "sh", "-c", "cat /a/*.json"])
      .stdout.split(/\n(?=\{)/)
      .filter((t) => t.trim())
      .map((t) => JSON.parse(t) as ExecRecord);
  const who = () => ({ user: "ops@laptop", pulumiUser: "alice", gitEmail: "alice@example.com" });

  it("runs the command in a new container with the replica's env and network, prints its output masked, exits with its code, and removes it", async () => {
    const io = capture();
    const replicas = [1, 2].map((n) => docker(["inspect", "--format", "{{.Id}}", `${STAGING}-api-3f2a1b2c-${n}`]).stdout.trim().slice(0, 12));
    const code = await exec(testContext(root, deployed()), {
      stack: STAGING,
      service: "api",
      command: ["sh", "-c", 'echo "level=$LOG_LEVEL host=$HOSTNAME"; echo "key=$OPENAI_API_KEY" >&2; busybox wget -q -O - http://peer:8080/index.html; exit 7'],
      yes: false,
      write: io.write,
      who,
    });
    expect(code).toBe(7);
    const host = /host=(\w+)/.exec(io.out[0])![1];
    expect(io.out[0]).toBe(`level=debug host=${host}`);
    // Its own container: not one of the replicas.
    expect(replicas).not.toContain(host);
    expect(io.err).toContain("key=[secret]");
    expect(io.out).toContain("peer-ok");
    expect([...io.out, ...io.err].join("\n")).not.toContain(API_KEY);
    expect(io.err.at(-1)).toBe("The command exited with 7.");
    expect(oneOffs(STAGING)).toBe("");
    // The replicas kept running, untouched.
    for (const n of [1, 2]) expect(docker(["inspect", "--format", "{{.State.Running}} {{.RestartCount}}", `${STAGING}-api-3f2a1b2c-${n}`]).stdout.trim()).toBe("true 0");
  });

  it("--replica picks the replica it copies; exit 0 passes through", async () => {
    const io = capture();
    expect(await exec(testContext(root, deployed()), { stack: STAGING, service: "api", replica: 2, command: ["true"], yes: false, write: io.write, who })).toBe(0);
    expect(io.err[0]).toContain(`env and network of ${STAGING}-api-3f2a1b2c-2`);
  });

  it("records every run on the Docker host: who, what (secrets masked), when, the exit code", async () => {
    await exec(testContext(root, deployed()), { stack: STAGING, service: "worker", command: ["echo", API_KEY], yes: false, write: capture().write, who });
    const mine = records(STAGING).find((r) => r.service === "worker")!;
    expect(mine).toMatchObject({
      stack: STAGING,
      service: "worker",
      command: ["echo", "[secret]"],
      image: IMAGE_REF,
      copiedFrom: `${STAGING}-worker-1`,
      ranBy: who(),
      exitCode: 0,
    });
    expect(Date.parse(mine.endedAt!)).toBeGreaterThanOrEqual(Date.parse(mine.startedAt));
    const io = capture();
    expect(await execHistory(testContext(root, deployed()), { stack: STAGING, write: io.write })).toBe(EXIT.ok);
    expect(io.out.find((l) => l.includes("  worker  exit 0  by pulumi:alice alice@example.com ops@laptop  $ echo '[secret]'"))).toBeDefined();
    expect(io.out.find((l) => l.includes("  api  exit 7  "))).toBeDefined();
    expect(JSON.stringify(records(STAGING))).not.toContain(API_KEY);
  });

  it("a command the image cannot run: exit 125 with the engine's reason; nothing is left, the attempt is recorded", async () => {
    const err = await exec(testContext(root, deployed()), { stack: STAGING, service: "api", command: ["no-such-program"], yes: false, write: capture().write, who }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.exitCode).toBe(EXIT.oneOffFailed);
    expect(err.message).toMatch(/could not start the command: .*no-such-program.*(not found|no such file)/i);
    expect(oneOffs(STAGING)).toBe("");
    expect(records(STAGING).find((r) => r.command[0] === "no-such-program")?.error).toMatch(/no-such-program/);
  });

  it("production needs --yes: without it nothing runs and nothing is recorded; with it, it runs", async () => {
    const err = await exec(testContext(root, deployed()), { stack: PRODUCTION, service: "api", command: ["echo", "hi"], yes: false, write: capture().write, who }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.exitCode).toBe(EXIT.usage);
    expect(err.message).toContain(`npm run exec -- --stack ${PRODUCTION} --service api --yes -- echo hi`);
    expect(docker(["volume", "inspect", auditVolume(PRODUCTION)]).code).not.toBe(0);
    const io = capture();
    expect(await exec(testContext(root, deployed()), { stack: PRODUCTION, service: "api", command: ["echo", "hi"], yes: true, write: io.write, who })).toBe(0);
    expect(io.out).toEqual(["hi"]);
    expect(records(PRODUCTION)).toEqual([expect.objectContaining({ command: ["echo", "hi"], exitCode: 0 })]);
    expect(oneOffs(PRODUCTION)).toBe("");
  });
});

describe("runtime: logs and exec on an ssh:// host, through docker system dial-stdio", () => {
  it("logs: the same lines, masked", async () => {
    const io = capture();
    expect(await logs(testContext(sshRoot, deployed()), { stack: STAGING, service: "api", follow: false, write: io.write, engine: dialStdio })).toBe(EXIT.ok);
    const lines = [...io.out, ...io.err].filter((l) => l.includes(" | "));
    expect(lines).toHaveLength(2 * 5);
    for (const n of [1, 2]) {
      expect(io.out).toContain(`${STAGING}-api-3f2a1b2c-${n} | api-${n} A2 key=[secret] hook=[secret]`);
      expect(io.err).toContain(`${STAGING}-api-3f2a1b2c-${n} | api-${n} A3 db=[secret]`);
    }
    for (const canary of [API_KEY, WEBHOOK, DB_PASSWORD]) expect(lines.join("\n")).not.toContain(canary);
    expect(io.err[0]).toContain("on ssh://deploy@stand-in.invalid");
  });

  it("exec: runs, records, exits with the command's code and removes its container", async () => {
    const io = capture();
    const who = () => ({ user: "ci@runner" });
    expect(await exec(testContext(sshRoot, deployed()), { stack: STAGING, service: "api", command: ["sh", "-c", "echo over-ssh; exit 3"], yes: false, write: io.write, engine: dialStdio, who })).toBe(3);
    expect(io.out).toEqual(["over-ssh"]);
    expect(docker(["ps", "-aq", "--filter", `label=appstack.stack=${STAGING}`, "--filter", "label=appstack.role=oneoff"]).stdout.trim()).toBe("");
  });
});
