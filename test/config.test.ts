import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { ConfigError, isPinnedImage, loadConfig, vercelOutputDirectory, type ConfigProblem } from "../config";
import { workerHealthNote } from "../ops/offline/validate";
import { parseFix } from "./helpers/pulumi-config-cli";
import { problemsOf } from "./helpers/config-problems";
import { mockStack, isSecret, promise } from "./helpers/pulumi";

const keys = (ps: ConfigProblem[]) => ps.map((p) => p.key).sort();
/** How staging and production reach their Docker host. */
const SSH = { host: "ssh://deploy@prod.example.com" };

describe("config: the one schema", () => {
  it("accepts a minimal dev stack and fills defaults", async () => {
    await mockStack("dev", { environment: "dev" });
    const cfg = loadConfig(new pulumi.Config("appstack"));
    expect(cfg.postgres).toMatchObject({ mode: "container", image: "postgres:17.6-alpine", database: "app", user: "app" });
    expect(cfg.redis).toMatchObject({ mode: "container", maxmemoryPolicy: "noeviction", appendonly: true });
    expect(cfg.docker.host).toBe("unix:///var/run/docker.sock");
  });

  it("requires appstack:environment and says how to set it", async () => {
    const ps = await problemsOf("dev", {});
    expect(ps).toHaveLength(1);
    expect(ps[0].key).toBe("appstack:environment");
    expect(ps[0].problem).toMatch(/required/);
    expect(ps[0].fix).toBe("pulumi config set -s dev environment dev");
    expect(ps[0].note).toBe("or one of dev, staging, production");
  });

  it("rejects an unknown key with its full path and a did-you-mean", async () => {
    const ps = await problemsOf("dev", { environment: "dev", postgres: { mode: "container", imgae: "postgres:17.6" } });
    expect(ps).toHaveLength(1);
    expect(ps[0].key).toBe("appstack:postgres.imgae");
    expect(ps[0].problem).toContain('did you mean "image"');
    expect(ps[0].fix).toContain("pulumi config rm -s dev --path postgres.imgae");
  });

  it("rejects an unknown top-level key and a foreign namespace", async () => {
    const ps = await problemsOf("dev", { environment: "dev", postgress: { mode: "container" }, "docker:host": "unix:///x" });
    expect(keys(ps)).toEqual(["appstack:postgress", "docker:host"]);
    expect(ps.find((p) => p.key === "appstack:postgress")!.problem).toContain('did you mean "postgres"');
  });

  it("reports every problem at once, each with key, value, problem and fix", async () => {
    const ps = await problemsOf("production", {
      environment: "production", docker: SSH,
      postgres: { mode: "container", image: "postgres:latest", memoryMb: "lots" },
      redis: { mode: "container", hostPort: 6379 },
    });
    expect(keys(ps)).toEqual(["appstack:postgres.image", "appstack:postgres.memoryMb", "appstack:redis.hostPort"]);
    const mem = ps.find((p) => p.key === "appstack:postgres.memoryMb")!;
    expect(mem.value).toBe('"lots"');
    expect(mem.problem).toMatch(/expected number/);
    expect(mem.fix).toBe("pulumi config set -s production --path postgres.memoryMb");
    expect(mem.note).toBe("Pulumi asks for the value: integer, 16 to 1048576; without the key it is 512");
  });

  it("production rejects an image without a digest or a major.minor version tag", async () => {
    for (const image of ["postgres", "postgres:latest", "postgres:17", "postgres:alpine"]) {
      const ps = await problemsOf("production", { environment: "production", docker: SSH, postgres: { mode: "container", image } });
      expect(ps.map((p) => p.key)).toEqual(["appstack:postgres.image"]);
      expect(ps[0].problem).toMatch(/immutable image/);
    }
  });

  it("production accepts a version tag or a digest", async () => {
    const digest = `postgres@sha256:${"a".repeat(64)}`;
    for (const image of ["postgres:17.6", "postgres:17.6-alpine", "registry.example.com:5000/team/pg:v1.2.3", digest]) {
      await mockStack("production", { environment: "production", docker: SSH, postgres: { mode: "container", image } });
      expect(() => loadConfig(new pulumi.Config("appstack"))).not.toThrow();
    }
    expect(isPinnedImage("ghcr.io/acme/api:latest")).toBe(false);
    expect(isPinnedImage("localhost:5000/api")).toBe(false);
  });

  it("dev may use a moving tag", async () => {
    await mockStack("dev", { environment: "dev", redis: { mode: "container", image: "redis:latest" } });
    expect(loadConfig(new pulumi.Config("appstack")).redis).toMatchObject({ image: "redis:latest" });
  });

  it("rejects something that is not an image reference anywhere", async () => {
    const ps = await problemsOf("dev", { environment: "dev", redis: { mode: "container", image: "Redis Latest!" } });
    expect(ps[0]).toMatchObject({ key: "appstack:redis.image", value: '"Redis Latest!"' });
  });

  it("production volumes cannot be unprotected", async () => {
    const ps = await problemsOf("production", { environment: "production", docker: SSH, redis: { mode: "container", protectVolume: false } });
    expect(ps[0]).toMatchObject({ key: "appstack:redis.protectVolume", fix: "pulumi config rm -s production --path redis.protectVolume" });
  });

  it("data stores publish no host port outside dev", async () => {
    const ps = await problemsOf("staging", { environment: "staging", docker: SSH, postgres: { mode: "container", hostPort: 5432 } });
    expect(ps[0].key).toBe("appstack:postgres.hostPort");
    expect(ps[0].problem).toContain("outside dev");
  });

  it("behind the edge, an API stop timeout shorter than the edge needs to notice a draining replica is refused, naming the minimum", async () => {
    const api = (stopTimeoutSeconds: number) => ({
      image: "ghcr.io/acme/api:1.4.2",
      domain: "api.example.com",
      health: { path: "/live" },
      stopTimeoutSeconds,
    });
    const staging = (s: number) => ({ environment: "staging", docker: SSH, api: api(s), edge: { acmeEmail: "ops@example.com" } });
    const [p] = await problemsOf("staging", staging(5));
    expect(p.key).toBe("appstack:api.stopTimeoutSeconds");
    expect(p.problem).toContain("shorter than the 10 s");
    expect(p.problem).toContain("within 6 s");
    expect(p.fix).toBe("pulumi config set -s staging --path api.stopTimeoutSeconds 10");
    await mockStack("staging", staging(10));
    expect(loadConfig(new pulumi.Config("appstack")).api!.stopTimeoutSeconds).toBe(10);
    // In dev there is no edge: a short stop timeout is the developer's choice.
    await mockStack("dev", { environment: "dev", api: { image: "api:dev", health: { path: "/live" }, stopTimeoutSeconds: 2 } });
    expect(loadConfig(new pulumi.Config("appstack")).api!.stopTimeoutSeconds).toBe(2);
  });

  it("redis maxmemory must stay below the container limit", async () => {
    const ps = await problemsOf("dev", { environment: "dev", redis: { mode: "container", memoryMb: 256, maxmemoryMb: 256 } });
    expect(ps[0].key).toBe("appstack:redis.maxmemoryMb");
    expect(ps[0].fix).toBe("pulumi config set -s dev --path redis.maxmemoryMb 192");
  });

  it("rejects out-of-range ports and an unknown mode", async () => {
    const ps = await problemsOf("dev", { environment: "dev", postgres: { mode: "container", hostPort: 70000 }, redis: { mode: "cluster" } });
    expect(keys(ps)).toEqual(["appstack:postgres.hostPort", "appstack:redis.mode"]);
  });
});

describe("config: secrets", () => {
  it("external mode needs its URL as a secret, with the exact set command", async () => {
    const ps = await problemsOf("staging", { environment: "staging", docker: SSH, postgres: { mode: "external" } });
    expect(ps).toEqual([
      {
        key: "appstack:postgresUrl",
        problem: "is not set; postgres (external mode) needs this secret",
        fix: "pulumi config set -s staging --secret postgresUrl",
        note: "Pulumi asks for the value without echoing it, and stores it encrypted",
      },
    ]);
  });

  it("a secret stored in plain text is an error, and its value is never printed", async () => {
    const ps = await problemsOf("staging", {
      environment: "staging", docker: SSH,
      redis: { mode: "external" },
      redisUrl: "redis://default:hunter2hunter2@cache.example.com:6379",
    });
    expect(ps).toHaveLength(1);
    expect(ps[0].key).toBe("appstack:redisUrl");
    expect(ps[0].problem).toContain("plain text");
    expect(JSON.stringify(ps)).not.toContain("hunter2");
    expect(new ConfigError("staging", ps).message).not.toContain("hunter2");
  });

  it("a secret no service uses is reported (a misspelt name)", async () => {
    const ps = await problemsOf("dev", { environment: "dev" }, { postgresURL: "postgresql://a:b@c/d" });
    expect(ps[0]).toMatchObject({ key: "appstack:postgresURL" });
    expect(JSON.stringify(ps)).not.toContain("a:b@c");
  });

  it("a settings object stored as a secret is rejected", async () => {
    const ps = await problemsOf("dev", { environment: "dev" }, { postgres: JSON.stringify({ mode: "container" }) });
    expect(ps[0].key).toBe("appstack:postgres");
    expect(ps[0].problem).toContain("secure value");
  });

  it("secure values stay secret Outputs", async () => {
    await mockStack("staging", { environment: "staging", docker: SSH, postgres: { mode: "external" } }, { postgresUrl: "postgresql://u:p@db.example.com:5432/app" });
    const cfg = loadConfig(new pulumi.Config("appstack"));
    expect(await isSecret(cfg.secrets.postgresUrl)).toBe(true);
    expect(await promise(cfg.secrets.postgresUrl)).toBe("postgresql://u:p@db.example.com:5432/app");
  });

  it("the error message is one screen: numbered, key = value, problem, fix", async () => {
    const ps = await problemsOf("dev", { environment: "prod" });
    const msg = new ConfigError("dev", ps).message;
    expect(msg).toMatch(/^The configuration of stack "dev" \(Pulumi\.dev\.yaml\) has 1 problem; nothing was deployed\./);
    expect(msg).toContain('1. appstack:environment = "prod"');
    expect(msg).toContain("fix:     pulumi config set -s dev environment dev\n   note:    or one of dev, staging, production");
  });
});

describe("config: what an adopter writes first", () => {
  const staging = (over: Record<string, unknown>) => ({
    environment: "staging", docker: SSH,
    api: { image: "ghcr.io/acme/api:1.0.0", health: { path: "/health" }, domain: "api.acme.dev" },
    edge: { acmeEmail: "ops@acme.dev" },
    ...over,
  });
  const vercel = (v: Record<string, unknown>) => ({ frontend: { vercel: { projectName: "web", gitRepository: { repo: "acme/web" }, ...v } } });
  const load = async (config: Record<string, unknown>, secrets: Record<string, string> = {}) => {
    await mockStack("staging", config, secrets);
    return loadConfig(new pulumi.Config("appstack"));
  };

  it("a Vite frontend's output directory defaults to dist, create-react-app's to build; Next.js leaves it to Vercel", async () => {
    const vc = async (v: Record<string, unknown>) => (await load(staging(vercel(v)), { vercelApiToken: "t" })).frontend!.vercel!;
    expect(vercelOutputDirectory(await vc({}))).toBe("dist");
    expect(vercelOutputDirectory(await vc({ framework: "create-react-app" }))).toBe("build");
    expect(vercelOutputDirectory(await vc({ framework: "nextjs" }))).toBeUndefined();
    expect(vercelOutputDirectory(await vc({ framework: "vite", outputDirectory: "web/dist" }))).toBe("web/dist");
  });

  it("a framework with no known output directory must name one", async () => {
    const ps = await problemsOf("staging", staging(vercel({ framework: "angular" })), { vercelApiToken: "t" });
    expect(ps).toEqual([
      expect.objectContaining({
        key: "appstack:frontend.vercel.outputDirectory",
        fix: "pulumi config set -s staging --path frontend.vercel.outputDirectory",
        note: "Pulumi asks for the directory the build writes, e.g. dist",
      }),
    ]);
  });

  it("a domain given with a scheme is one problem, fixed with its host name; not also 'api.domain is required'", async () => {
    const ps = await problemsOf("staging", staging({ api: { image: "ghcr.io/acme/api:1.0.0", health: { path: "/health" }, domain: "https://api.x.dev" } }));
    expect(ps).toEqual([
      {
        key: "appstack:api.domain",
        value: '"https://api.x.dev"',
        problem: "expected a lower-case DNS host name such as api.example.com (no scheme, port or path)",
        fix: "pulumi config set -s staging --path api.domain api.x.dev",
      },
    ]);
  });

  it("DATABASE_URL in api.secretEnv points at postgres.mode external and postgres.urlSecret, and asks for no DATABASE_URL secret", async () => {
    const ps = await problemsOf("staging", staging({ api: { image: "ghcr.io/acme/api:1.0.0", health: { path: "/health" }, domain: "api.acme.dev", secretEnv: ["DATABASE_URL", "OPENAI_API_KEY"] } }), {
      OPENAI_API_KEY: "k",
    });
    expect(ps).toHaveLength(1);
    expect(ps[0].key).toBe("appstack:api.secretEnv[0]");
    expect(ps[0].problem).toContain("set postgres.mode to external and put its URL in the secret that postgres.urlSecret names (postgresUrl)");
    expect(ps[0].fix).toBe(
      "pulumi config rm -s staging --path api.secretEnv && pulumi config set -s staging --path 'api.secretEnv[0]' OPENAI_API_KEY" +
        " && pulumi config rm -s staging postgres && pulumi config set -s staging --path postgres.mode external && pulumi config set -s staging --secret postgresUrl",
    );
  });

  it("a misspelt list setting is one problem, whose fix moves the list element by element", async () => {
    const ps = await problemsOf("staging", staging({ worker: { commnd: ["node", "dist/worker.js"] } }));
    expect(ps).toEqual([
      expect.objectContaining({
        key: "appstack:worker.commnd",
        problem: 'unknown setting (did you mean "command"?)',
        fix:
          "pulumi config rm -s staging --path worker.commnd && pulumi config set -s staging --path 'worker.command[0]' node" +
          " && pulumi config set -s staging --path 'worker.command[1]' dist/worker.js",
      }),
    ]);
  });

  it("a missing list is set element by element, never as one value", async () => {
    const ps = await problemsOf("staging", staging({ worker: { replicas: 1 } }));
    expect(ps).toEqual([
      expect.objectContaining({ key: "appstack:worker.command", problem: "is required: a list of string", fix: "pulumi config set -s staging --path 'worker.command[0]'" }),
    ]);
  });

  it("cpus may be a number: `pulumi config set --path api.cpus 2` stores an integer", async () => {
    const cfg = await load(staging({ api: { image: "ghcr.io/acme/api:1.0.0", health: { path: "/health" }, domain: "api.acme.dev", cpus: 2 } }));
    expect(cfg.api!.cpus).toBe("2");
  });
});

describe("validate's note on a worker that may have no Node for its default check", () => {
  const staging = (worker: Record<string, unknown>) => ({
    environment: "staging", docker: SSH,
    worker: { image: "ghcr.io/acme/worker:1.0.0", ...worker },
  });
  const note = async (worker: Record<string, unknown>) => {
    await mockStack("staging", staging(worker));
    return workerHealthNote(loadConfig(new pulumi.Config("appstack")), JSON.stringify(staging(worker).worker));
  };

  it("a Python worker on the default check is told what to set, as pasteable commands", async () => {
    const text = await note({ command: ["python", "-m", "worker"] });
    expect(text).toContain('the worker runs "python"');
    const fix = /check the image can run: (.*?) {2}\(/.exec(text!)![1];
    expect(parseFix(fix).map((c) => [c.stack, c.path])).toEqual([
      ["staging", ["worker", "health", "type"]],
      ["staging", ["worker", "health", "command", 0]],
    ]);
  });

  it("a Node worker, or one with a check of its own, gets no note", async () => {
    expect(await note({ command: ["node", "dist/worker.js"] })).toBeUndefined();
    expect(await note({ command: ["/usr/local/bin/npm", "run", "worker"] })).toBeUndefined();
    expect(await note({ command: ["python", "-m", "worker"], health: { type: "process", pattern: "worker" } })).toBeUndefined();
  });
});

describe("config: how the stack reaches its Docker engine", () => {
  const prod = (docker: Record<string, unknown>) => ({ environment: "production", docker });
  const only = async (config: Record<string, unknown>, secrets: Record<string, string> = {}) => {
    const ps = await problemsOf("production", config, secrets);
    return ps.filter((p) => p.key.startsWith("appstack:docker"));
  };
  const pem = (what: string) => `-----BEGIN ${what}-----\nMIIB${"A".repeat(40)}\n-----END ${what}-----\n`;
  const tlsSecrets = { dockerTlsCa: pem("CERTIFICATE"), dockerTlsCert: pem("CERTIFICATE"), dockerTlsKey: pem("PRIVATE KEY") };

  it("production refuses plain tcp://, with the ssh fix and the TLS alternative", async () => {
    const [p, ...rest] = await only(prod({ host: "tcp://prod.example.com:2375" }));
    expect(rest).toEqual([]);
    expect(p.key).toBe("appstack:docker.host");
    expect(p.problem).toContain("tcp://prod.example.com:2375 is plain TCP");
    // No placeholder in the command: Pulumi asks for the host; the note names the TLS alternative.
    expect(p.fix).toBe("pulumi config set -s production --path docker.host");
    expect(p.note).toContain("e.g. ssh://deploy@prod.example.com");
    expect(p.note).toContain("pulumi config set --path docker.tls true");
    expect(p.note).toContain("pulumi config set --secret <key> < <file>.pem");
  });

  it("outside dev a local socket is refused too; dev may use one, or plain tcp://", async () => {
    const [p] = await only({ environment: "staging", docker: { host: "unix:///var/run/docker.sock" } });
    expect(p.problem).toBe("the local Docker engine (unix:///var/run/docker.sock) is for dev; outside dev the Docker host is reached over ssh://, or tcp:// with TLS (this stack is staging)");
    await mockStack("dev", { environment: "dev", docker: { host: "tcp://127.0.0.1:2375" } });
    expect(loadConfig(new pulumi.Config("appstack")).docker.host).toBe("tcp://127.0.0.1:2375");
  });

  it("tcp:// with TLS needs the CA, certificate and key as secrets, and passes them to the provider only", async () => {
    const missing = await problemsOf("production", prod({ host: "tcp://prod.example.com:2376", tls: true }));
    expect(keys(missing).filter((k) => k.includes("dockerTls"))).toEqual(["appstack:dockerTlsCa", "appstack:dockerTlsCert", "appstack:dockerTlsKey"]);
    expect(missing.find((p) => p.key === "appstack:dockerTlsKey")!.fix).toBe("pulumi config set -s production --secret dockerTlsKey");
    await mockStack("production", prod({ host: "tcp://prod.example.com:2376", tls: true }), tlsSecrets);
    const cfg = loadConfig(new pulumi.Config("appstack"));
    expect(cfg.docker.tls).toBe(true);
    expect(await isSecret(cfg.secrets.dockerTlsKey)).toBe(true);
  });

  it("docker.tls on a host that is not tcp:// is an error", async () => {
    const ps = await only(prod({ host: "ssh://deploy@prod.example.com", tls: true }), tlsSecrets);
    expect(ps.map((p) => [p.key, p.problem, p.fix])).toEqual([
      ["appstack:docker.tls", "applies to a tcp:// Docker host only (docker.host is ssh://deploy@prod.example.com)", "pulumi config rm -s production --path docker.tls"],
    ]);
  });

  it("StrictHostKeyChecking=no and a ProxyCommand are refused, with the commands that rewrite the list safely", async () => {
    const ps = await only(
      prod({ host: "ssh://deploy@prod.example.com", sshOpts: ["-o", "StrictHostKeyChecking=no", "-o", "ProxyCommand=nc -x proxy %h %p", "-o", "ServerAliveInterval=30"] }),
    );
    expect(ps.map((p) => p.key)).toEqual(["appstack:docker.sshOpts[1]", "appstack:docker.sshOpts[3]"]);
    expect(ps[0].problem).toContain('only "yes" is allowed');
    expect(ps[1].problem).toContain("ssh option ProxyCommand is not allowed");
    expect(ps[0].fix).toBe(
      "pulumi config rm -s production --path docker.sshOpts" +
        " && pulumi config set -s production --path -- 'docker.sshOpts[0]' -o" +
        " && pulumi config set -s production --path 'docker.sshOpts[1]' StrictHostKeyChecking=yes" +
        " && pulumi config set -s production --path -- 'docker.sshOpts[2]' -o" +
        " && pulumi config set -s production --path 'docker.sshOpts[3]' ServerAliveInterval=30",
    );
    expect(ps[1].fix).toBe(ps[0].fix);
    expect(ps[0].note).toBe("ssh settings this list does not allow belong in ~/.ssh/config, and the host's key, checked out of band, in ~/.ssh/known_hosts");
  });

  it("the allow-list holds in every environment, dev included, and in every spelling", async () => {
    for (const sshOpts of [["-oStrictHostKeyChecking=no"], ["-o", "stricthostkeychecking no"], ["-o", "UserKnownHostsFile=/dev/null"], ["-o", "LocalCommand=id"], ["-F", "/tmp/cfg"]]) {
      const ps = await problemsOf("dev", { environment: "dev", docker: { host: "ssh://me@devbox", sshOpts } });
      expect(ps.length, sshOpts.join(" ")).toBeGreaterThan(0);
      expect(ps.every((p) => p.key.startsWith("appstack:docker.sshOpts[")), sshOpts.join(" ")).toBe(true);
    }
    await mockStack("production", prod({ host: "ssh://deploy@prod.example.com", sshOpts: ["-o", "StrictHostKeyChecking=yes", "-oServerAliveInterval=30", "-o", "IdentityFile=~/.ssh/deploy"] }));
    expect(loadConfig(new pulumi.Config("appstack")).docker.sshOpts).toHaveLength(5);
  });

  it("sshOpts on a host that is not ssh:// is an error", async () => {
    const ps = await only(prod({ host: "tcp://prod.example.com:2376", tls: true, sshOpts: ["-o", "StrictHostKeyChecking=yes"] }), tlsSecrets);
    expect(ps.map((p) => p.key)).toEqual(["appstack:docker.sshOpts"]);
  });
});
