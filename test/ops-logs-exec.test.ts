import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import type { Automation } from "../ops/operations/automation";
import { StackNotInBackend } from "../ops/operations/automation";
import { exec } from "../ops/operations/exec";
import { Demuxer, LineSplitter, sinceSeconds, splitTimestamp, type StreamName } from "../ops/operations/log-stream";
import { logs } from "../ops/operations/logs";
import { EXIT } from "../ops/shared/errors";
import { FakeAutomation, testContext } from "./helpers/automation";
import { rejection } from "./helpers/errors";
import { tempProject } from "./helpers/project";

/**
 * logs and exec up to the Docker host: what they refuse, with which message
 * and exit code, before any container is touched. What they do with real
 * containers is tested against a Docker engine in test/runtime/logs-exec.test.ts.
 */

const STACK = (env: string, host = "unix:///var/run/docker.sock") => `config:
  appstack:environment: ${env}
  appstack:docker:
    host: ${host}
  appstack:postgres:
    mode: external
  appstack:redis:
    mode: container
    image: redis:7.4.6-alpine
  appstack:api:
    image: ghcr.io/acme/api:1.4.2
    domain: api.example.com
    health:
      path: /health
  appstack:edge:
    acmeEmail: ops@example.com
  appstack:postgresUrl:
    secure: v1:Zm9vYmFyYmF6cXV4:c2VjcmV0LWNpcGhlcnRleHQtcG9zdGdyZXM=
`;

const noSocket = `unix://${path.join(fs.mkdtempSync(path.join(os.tmpdir(), "appstack-nosock-")), "docker.sock")}`;
const root = tempProject({
  "Pulumi.staging.yaml": STACK("staging"),
  "Pulumi.production.yaml": STACK("production"),
  "Pulumi.away.yaml": STACK("staging", noSocket),
});
const deployed = () => new FakeAutomation(() => ({ outputs: { images: { value: { api: "ghcr.io/acme/api:1.4.2" }, secret: false } } }));


describe("logs: what it refuses", () => {
  it("an unknown service: exit 2, naming the services the stack has", async () => {
    const err = await rejection(logs(testContext(root, deployed()), { stack: "staging", service: "db", follow: false }));
    expect(err.exitCode).toBe(EXIT.usage);
    expect(err.message).toBe('Unknown service "db". Stack "staging" has: redis, api, edge.');
  });

  it("a service the stack does not run: exit 2, and why", async () => {
    const err = await rejection(logs(testContext(root, deployed()), { stack: "staging", service: "postgres", follow: false }));
    expect(err.exitCode).toBe(EXIT.usage);
    expect(err.message).toContain("it uses an external Postgres (postgres.mode: external): see your provider's logs");
    const worker = await rejection(logs(testContext(root, deployed()), { stack: "staging", service: "worker", follow: false }));
    expect(worker.message).toContain("it declares no worker (worker)");
  });

  it("a stack the backend does not have: exit 16, never deployed", async () => {
    const missing: Automation = {
      cliVersion: async () => "3.270.0",
      openStack: async () => {
        throw new StackNotInBackend('Stack "staging" does not exist in the backend');
      },
    };
    const err = await rejection(logs(testContext(root, missing), { stack: "staging", service: "api", follow: false }));
    expect(err.exitCode).toBe(EXIT.notDeployed);
    expect(err.message).toBe('Stack "staging" was never deployed: the backend this checkout uses has no such stack.\nDeploy it first: npm run deploy -- --stack staging');
  });

  it("a stack with no outputs yet: exit 16", async () => {
    const err = await rejection(logs(testContext(root, new FakeAutomation(() => ({ outputs: {} }))), { stack: "staging", follow: false }));
    expect(err.exitCode).toBe(EXIT.notDeployed);
    expect(err.message).toContain("it has no outputs (no update of it has succeeded)");
  });

  it("a Docker host that does not answer: exit 15, with what to do", async () => {
    const err = await rejection(logs(testContext(root, deployed()), { stack: "away", service: "api", follow: false }));
    expect(err.exitCode).toBe(EXIT.dockerHost);
    expect(err.message).toContain(`The Docker engine at docker.host (${noSocket}) does not answer`);
    expect(err.message).toContain("start the Docker engine");
  });

  it("a --since it cannot read: exit 2, with the forms it takes", async () => {
    const err = await rejection(logs(testContext(root, deployed()), { stack: "staging", since: "yesterday", follow: false }));
    expect(err.exitCode).toBe(EXIT.usage);
    expect(err.message).toContain("--since takes a duration back from now (30s, 10m, 2h, 1h30m, 7d) or an RFC 3339 time");
  });
});

describe("exec: what it refuses before anything runs", () => {
  it("production without --yes: exit 2, the command to re-run, and no call to Pulumi or Docker", async () => {
    const auto = deployed();
    const err = await rejection(exec(testContext(root, auto), { stack: "production", service: "api", command: ["npm", "run", "db:seed"], yes: false }));
    expect(err.exitCode).toBe(EXIT.usage);
    expect(err.message).toContain('Stack "production" is production');
    expect(err.message).toContain("npm run exec -- --stack production --service api --yes -- npm run db:seed");
    expect(auto.calls).toEqual([]);
  });

  it("no command, or a one-shot job as the service: exit 2", async () => {
    expect((await rejection(exec(testContext(root, deployed()), { stack: "staging", service: "api", command: [], yes: false }))).message).toContain(
      "Name the command after --",
    );
    const job = await rejection(exec(testContext(root, deployed()), { stack: "staging", service: "migrate", command: ["true"], yes: false }));
    expect(job.exitCode).toBe(EXIT.usage);
    expect(job.message).toBe('Unknown service "migrate". Stack "staging" has: redis, api, edge.');
  });
});

describe("reading Docker's log stream", () => {
  const frame = (type: number, text: string) => {
    const payload = Buffer.from(text);
    const header = Buffer.alloc(8);
    header[0] = type;
    header.writeUInt32BE(payload.length, 4);
    return Buffer.concat([header, payload]);
  };

  it("frames split anywhere, headers included, come out whole and on their stream", () => {
    const got: [StreamName, string][] = [];
    const demux = new Demuxer((s, p) => got.push([s, p.toString()]));
    const stream = Buffer.concat([frame(1, "out one\n"), frame(2, "err one\n"), frame(1, "out two\n")]);
    for (let i = 0; i < stream.length; i += 3) demux.push(stream.subarray(i, i + 3));
    expect(got.map(([s, t]) => [s, t])).toEqual([
      ["stdout", "out one\n"],
      ["stderr", "err one\n"],
      ["stdout", "out two\n"],
    ]);
  });

  it("a TTY container's stream has no frames: all of it is stdout", () => {
    const got: string[] = [];
    new Demuxer((s, p) => got.push(`${s}:${p}`), true).push(Buffer.from("raw\n"));
    expect(got).toEqual(["stdout:raw\n"]);
  });

  it("lines survive a split inside a line and inside a UTF-8 character; a last line without newline comes out at the end", () => {
    const text = Buffer.from("héllo\r\nwörld\nlast");
    const s = new LineSplitter();
    const lines = [...s.push(text.subarray(0, 2)), ...s.push(text.subarray(2, 9)), ...s.push(text.subarray(9)), ...s.flush()];
    expect(lines).toEqual(["héllo", "wörld", "last"]);
  });

  it("Docker's timestamps sort by time whatever their precision", () => {
    const a = splitTimestamp("2025-06-03T09:00:00.1Z first");
    const b = splitTimestamp("2025-06-03T09:00:00.12Z second");
    expect(a).toEqual({ key: "2025-06-03T09:00:00.100000000", text: "first" });
    expect(a.key < b.key).toBe(true);
    expect(splitTimestamp("no timestamp")).toEqual({ key: "", text: "no timestamp" });
  });

  it("--since: durations back from now, compound durations, RFC 3339 times", () => {
    const now = Date.parse("2025-06-03T10:00:00Z");
    expect(sinceSeconds("10m", now)).toBe(now / 1000 - 600);
    expect(sinceSeconds("1h30m", now)).toBe(now / 1000 - 5400);
    expect(sinceSeconds("2025-06-03T09:00:00Z", now)).toBe(now / 1000 - 3600);
    expect(sinceSeconds("2025-06-03T11:00:00+02:00", now)).toBe(now / 1000 - 3600);
    expect(() => sinceSeconds("10 minutes", now)).toThrow(/--since takes/);
  });
});
