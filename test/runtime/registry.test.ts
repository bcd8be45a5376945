import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { release } from "../../ops/cli/release";
import { resolveDigest } from "../../ops/operations/registry";
import { EXIT, UserError } from "../../ops/shared/errors";
import { ROOT } from "../helpers/cli";
import { tempProject } from "../helpers/project";
import { busyboxImage, docker } from "./busybox-image";

/**
 * `release --tag` against a real registry: the reference implementation
 * (CNCF distribution 3.1.2, built from its Go module by setup/registry.sh) on
 * 127.0.0.1, with an image this machine's Docker engine pushed to it. The
 * digest must be the one Docker recorded for the push. The registry runs
 * without authentication, so the bearer-token exchange is not exercised here.
 */

const REGISTRY_BIN = path.join(ROOT, ".cache", "bin", "registry");
let registry: ChildProcess;
let host = "";
let pushed = "";
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-registry-"));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

async function answers(url: string): Promise<boolean> {
  try {
    return (await fetch(url)).ok;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  if (!fs.existsSync(REGISTRY_BIN)) throw new Error(`no ${REGISTRY_BIN}: run bash test/runtime/setup/registry.sh (npm run test:runtime does)`);
  const port = await freePort();
  host = `127.0.0.1:${port}`;
  const config = path.join(dir, "config.yml");
  fs.writeFileSync(config, `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: ${host}\nlog:\n  level: warn\n`);
  registry = spawn(REGISTRY_BIN, ["serve", config], { stdio: "ignore" });
  const until = Date.now() + 20_000;
  while (!(await answers(`http://${host}/v2/`))) {
    if (Date.now() > until) throw new Error("the registry did not answer /v2/");
    await new Promise((r) => setTimeout(r, 200));
  }
  const tag = `${host}/acme/api:1.5.0`;
  for (const args of [["tag", busyboxImage(), tag], ["push", tag]]) {
    const r = docker(args);
    if (r.code !== 0) throw new Error(`docker ${args.join(" ")}: ${r.stderr}`);
  }
  const digests = JSON.parse(docker(["inspect", "--format", "{{json .RepoDigests}}", tag]).stdout) as string[];
  pushed = digests.find((d) => d.startsWith(`${host}/acme/api@`))!.split("@")[1];
}, 120_000);

afterAll(() => {
  registry?.kill();
  docker(["image", "rm", `${host}/acme/api:1.5.0`]);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("runtime: release --tag against a real registry", () => {
  it("resolves the tag to the digest Docker recorded when it pushed the image", async () => {
    expect(pushed).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await resolveDigest(`${host}/acme/api`, "1.5.0")).toBe(pushed);
  });

  it("a tag the registry does not have: exit 17, the tag and the repository named", async () => {
    const err = await resolveDigest(`${host}/acme/api`, "9.9.9").catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.exitCode).toBe(EXIT.registry);
    expect(err.message).toContain(`The registry at ${host} has no tag "9.9.9" of acme/api.`);
  });

  it("npm run release --tag writes repo:tag@digest on the image line", async () => {
    const stack = fs.readFileSync(path.join(ROOT, "Pulumi.staging.yaml"), "utf8");
    const root = tempProject({ "Pulumi.staging.yaml": stack });
    const lines: string[] = [];
    expect(await release({ root, stack: "staging", service: "api", image: `${host}/acme/api`, tag: "1.5.0", diff: false, log: (l) => lines.push(l) })).toBe(EXIT.ok);
    expect(lines[0]).toBe(`${host}/acme/api:1.5.0 is ${pushed} at its registry.`);
    expect(fs.readFileSync(path.join(root, "Pulumi.staging.yaml"), "utf8")).toBe(stack.replace("image: ghcr.io/acme/appstack-api:1.5.0-rc.1", `image: ${host}/acme/api:1.5.0@${pushed}`));
    fs.rmSync(root, { recursive: true, force: true });
  });
});
