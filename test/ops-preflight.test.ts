import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dockerPreflight, sshHostKey, stackDockerTarget } from "../ops/operations/preflight";
import { EXIT } from "../ops/shared/errors";
import { freePort } from "./contract/servers";
import { ROOT } from "./helpers/cli";
import { rejection } from "./helpers/errors";

/**
 * The deploy's Docker preflight without a Docker engine: sockets that lead
 * nowhere, an HTTP server on a unix socket standing in for the engine's
 * /version, and ssh host keys in a known_hosts file of the test's own (ssh -G
 * and ssh-keygen -F read it; nothing connects anywhere but 127.0.0.1). The
 * real engine is test/runtime/docker-preflight.test.ts.
 */

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-preflight-"));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));


/** An HTTP server on a unix socket that answers like an engine's /version (Debian 12's by default), or with `status`. */
async function fakeEngine(status = 200, version = { Version: "20.10.24+dfsg1", ApiVersion: "1.41", MinAPIVersion: "1.12" }): Promise<{ host: string; close(): Promise<void> }> {
  const socket = path.join(tmp, `engine-${status}-${version.ApiVersion}.sock`);
  const server = http.createServer((req, res) => {
    res.statusCode = req.url === "/version" ? status : 404;
    res.setHeader("content-type", "application/json");
    res.end(status === 200 ? JSON.stringify({ ...version, Os: "linux", Arch: "amd64" }) : JSON.stringify({ message: "engine is sad" }));
  });
  await new Promise<void>((r) => server.listen(socket, r));
  return { host: `unix://${socket}`, close: () => new Promise((r) => server.close(() => r())) };
}

describe("deploy preflight: the Docker host", () => {
  it("names the engine and its API version when it answers", async () => {
    const engine = await fakeEngine();
    try {
      const r = await dockerPreflight({ host: engine.host }, { stack: "dev" });
      expect(r.engine).toEqual({ version: "20.10.24+dfsg1", apiVersion: "1.41", minApiVersion: "1.12", os: "linux", arch: "amd64" });
      expect(r.line).toBe(`Docker engine at ${engine.host}: Docker 20.10.24+dfsg1, API 1.41 (linux/amd64).`);
    } finally {
      await engine.close();
    }
  });

  it("an unreachable socket path: exit 15, what to start, and the setting to change", async () => {
    const host = `unix://${path.join(tmp, "no-such.sock")}`;
    const started = Date.now();
    const err = await rejection(dockerPreflight({ host }, { stack: "dev" }));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err.exitCode).toBe(EXIT.dockerHost);
    expect(err.message).toContain(`The Docker engine at docker.host (${host}) does not answer`);
    expect(err.message).toContain("nothing was changed");
    expect(err.message).toContain(`No socket at ${path.join(tmp, "no-such.sock")}: start the Docker engine`);
    expect(err.message).toContain("pulumi config set -s dev --path docker.host");
  });

  it("a path where nothing listens (a file, not a socket): exit 15", async () => {
    const file = path.join(tmp, "not-a-socket");
    fs.writeFileSync(file, "");
    const err = await rejection(dockerPreflight({ host: `unix://${file}` }, { stack: "dev" }));
    expect(err.exitCode).toBe(EXIT.dockerHost);
    expect(err.message).toContain(`Nothing answers on ${file}: start the Docker engine`);
  });

  it("an engine that answers with an error: exit 15 with its message", async () => {
    const engine = await fakeEngine(500);
    try {
      const err = await rejection(dockerPreflight({ host: engine.host }, { stack: "dev" }));
      expect(err.exitCode).toBe(EXIT.dockerHost);
      expect(err.message).toContain("the Docker engine answered 500 to GET /version: engine is sad");
    } finally {
      await engine.close();
    }
  });

  it("an engine older than Docker 20.10 (API 1.41) stops the deploy: exit 16, the version found, the minimum, how to upgrade", async () => {
    const engine = await fakeEngine(200, { Version: "19.03.15", ApiVersion: "1.40", MinAPIVersion: "1.12" });
    try {
      const err = await rejection(dockerPreflight({ host: engine.host }, { stack: "production" }));
      expect(err.exitCode).toBe(EXIT.engineTooOld);
      expect(err.exitCode).toBe(16);
      expect(err.message).toBe(
        `The Docker engine at docker.host (${engine.host}) is Docker 19.03.15 with Engine API 1.40; appstack needs Docker 20.10 (API 1.41) or newer; nothing was changed.\n` +
          "Upgrade the Docker Engine on that host, then deploy again: Debian 12's docker.io is new enough (sudo apt-get install docker.io), " +
          "or install Docker Engine from Docker's own packages (https://docs.docker.com/engine/install/). The supported range and why: docs/docker-engine.md.",
      );
    } finally {
      await engine.close();
    }
  });

  it("any engine from API 1.41 on passes, Docker 29 (API 1.52) included; an unreadable API version does not", async () => {
    for (const [Version, ApiVersion] of [["20.10.5+dfsg1", "1.41"], ["25.0.3", "1.44"], ["29.0.4", "1.52"]]) {
      const engine = await fakeEngine(200, { Version, ApiVersion, MinAPIVersion: "1.24" });
      try {
        expect((await dockerPreflight({ host: engine.host }, { stack: "dev" })).line).toContain(`Docker ${Version}, API ${ApiVersion}`);
      } finally {
        await engine.close();
      }
    }
    const odd = await fakeEngine(200, { Version: "20.10.24", ApiVersion: "one-point-41", MinAPIVersion: "1.12" });
    try {
      expect((await rejection(dockerPreflight({ host: odd.host }, { stack: "dev" }))).exitCode).toBe(EXIT.engineTooOld);
    } finally {
      await odd.close();
    }
  });

  it("reads docker.host and docker.sshOpts from the stack file", () => {
    expect(stackDockerTarget(ROOT, "staging")).toEqual({
      host: "ssh://deploy@staging.example.com",
      sshOpts: ["-o", "StrictHostKeyChecking=yes", "-o", "ServerAliveInterval=30"],
    });
    expect(stackDockerTarget(ROOT, "dev")).toEqual({ host: "unix:///var/run/docker.sock" });
  });
});

describe("deploy preflight: an ssh:// host's key", () => {
  let knownHosts: string;
  let port: number;
  const target = (extra: string[] = []) => ({
    host: `ssh://deploy@127.0.0.1:${port}`,
    sshOpts: ["-o", `UserKnownHostsFile=${knownHosts}`, "-o", "GlobalKnownHostsFile=/dev/null", ...extra],
  });

  beforeAll(async () => {
    port = await freePort();
    knownHosts = path.join(tmp, "known_hosts");
    const key = path.join(tmp, "hostkey");
    expect(spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]).status).toBe(0);
    fs.writeFileSync(path.join(tmp, "hostkey.line"), `[127.0.0.1]:${port} ${fs.readFileSync(`${key}.pub`, "utf8").split(" ").slice(0, 2).join(" ")}\n`);
  });

  it("an unknown key stops the deploy before ssh connects: exit 15, and how to check and add the key", async () => {
    fs.writeFileSync(knownHosts, "");
    expect(sshHostKey(target())).toMatchObject({ name: `[127.0.0.1]:${port}`, known: false, files: [knownHosts], strict: "ask" });
    const err = await rejection(dockerPreflight(target(), { stack: "staging" }));
    expect(err.exitCode).toBe(EXIT.dockerHost);
    expect(err.message).toContain(`The ssh host key of [127.0.0.1]:${port} (docker.host ssh://deploy@127.0.0.1:${port}) is not in ${knownHosts}`);
    expect(err.message).toContain(`ssh-keyscan -p ${port} -t ed25519 127.0.0.1 > 127.0.0.1.hostkey && ssh-keygen -lf 127.0.0.1.hostkey`);
    expect(err.message).toContain("cat 127.0.0.1.hostkey >> ~/.ssh/known_hosts");
  });

  it("a known key passes; then an engine that ssh cannot reach is exit 15 with ssh's own reason", async () => {
    fs.copyFileSync(path.join(tmp, "hostkey.line"), knownHosts);
    expect(sshHostKey(target()).known).toBe(true);
    const err = await rejection(dockerPreflight(target(), { stack: "staging", timeoutMs: 5000 }));
    expect(err.exitCode).toBe(EXIT.dockerHost);
    expect(err.message).toMatch(/ssh: connect to host 127\.0\.0\.1 port \d+: Connection refused/);
    expect(err.message).toContain(`docker version`);
  });

  it("with StrictHostKeyChecking=accept-new an unknown key is not a preflight error (ssh will accept it)", async () => {
    fs.writeFileSync(knownHosts, "");
    const t = target(["-o", "StrictHostKeyChecking=accept-new"]);
    expect(sshHostKey(t)).toMatchObject({ known: false, strict: "accept-new" });
    const err = await rejection(dockerPreflight(t, { stack: "staging", timeoutMs: 5000 }));
    expect(err.message).not.toContain("host key");
    expect(err.message).toMatch(/Connection refused/);
  });
});

describe("deploy preflight: a tcp:// host with TLS", () => {
  it("is not dialled in plain text; the line says the provider checks it with the stack's TLS material", async () => {
    // Port 1 on 127.0.0.1: a plain dial would fail with ECONNREFUSED, so reaching it would throw.
    const r = await dockerPreflight({ host: "tcp://127.0.0.1:1", tls: true }, { stack: "production" });
    expect(r.engine).toBeUndefined();
    expect(r.line).toBe("Docker engine at tcp://127.0.0.1:1 (TLS): not checked before the update; the Docker provider connects with the stack's TLS material.");
  });
});
