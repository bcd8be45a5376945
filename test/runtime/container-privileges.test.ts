import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RecordedResource } from "../../ops/offline/offline-runtime";
import { decodeWire } from "../../policy/view";
import { stackResources } from "../helpers/policy";
import { busyboxImage, docker } from "./busybox-image";
import { Engine } from "./engine";
import { oneFileTar } from "./provider-container";

/**
 * What the production stack declares about each container's privileges,
 * applied by this machine's Docker engine to a small busybox container: the
 * capabilities, no-new-privileges, the read-only root filesystem and its
 * tmpfs, the non-root user, the cgroup slice that bounds processes, and the
 * split networks. The declared values are read from the production plan and
 * turned into the `docker run` flags the provider sets; only names that must
 * not collide on a shared engine (slices, networks) get this run's prefix.
 *
 * That the services start and pass their health checks under these settings
 * is engine-compat.test.ts's: it creates every declared container with the
 * provider's mapping of these inputs.
 */

const run = `privtest${randomBytes(3).toString("hex")}`;
let declared: RecordedResource[];
let image: string;

interface Declared {
  capabilities?: { drops?: string[]; adds?: string[] };
  securityOpts?: string[];
  readOnly?: boolean;
  tmpfs?: Record<string, string>;
  user?: string;
  cgroupParent?: string;
  networksAdvanced?: { name: string }[];
  networkMode?: string;
  volumes?: { containerPath: string }[];
  uploads?: { file: string }[];
}

function inputs(name: string): Declared {
  // The API's containers are named by their release slot: api-<slot>-<i>.
  const r = declared.find((x) => x.name === name || x.name.replace(/^api-[0-9a-f]{8}-/, "api-") === name);
  if (!r) throw new Error(`${name} is not in the production plan`);
  return decodeWire(r.inputs).value as Declared;
}

/** The `docker run` flags for what a container declares (the provider sets the same fields of the create request). */
function flags(d: Declared, over: { user?: string; cgroupParent?: string } = {}): string[] {
  return [
    ...(d.capabilities?.drops ?? []).flatMap((c) => ["--cap-drop", c]),
    ...(d.capabilities?.adds ?? []).flatMap((c) => ["--cap-add", c]),
    ...(d.securityOpts ?? []).flatMap((o) => ["--security-opt", o]),
    ...(d.readOnly ? ["--read-only"] : []),
    ...Object.entries(d.tmpfs ?? {}).flatMap(([p, o]) => ["--tmpfs", `${p}:${o}`]),
    ...((over.user ?? d.user) ? ["--user", (over.user ?? d.user)!] : []),
    ...((over.cgroupParent ?? d.cgroupParent) ? ["--cgroup-parent", (over.cgroupParent ?? d.cgroupParent)!] : []),
  ];
}

function sh(args: string[], script: string): { code: number; stdout: string; stderr: string } {
  return docker(["run", "--rm", "--label", `appstack.test=${run}`, ...args, image, "/bin/busybox", "sh", "-c", script]);
}

beforeAll(async () => {
  image = busyboxImage();
  declared = await stackResources("production");
}, 120_000);

afterAll(() => {
  const ids = docker(["ps", "-aq", "--filter", `label=appstack.test=${run}`]).stdout.split("\n").filter(Boolean);
  if (ids.length) docker(["rm", "-f", ...ids]);
  for (const n of docker(["network", "ls", "-q", "--filter", `label=appstack.test=${run}`]).stdout.split("\n").filter(Boolean)) docker(["network", "rm", n]);
  for (const v of docker(["volume", "ls", "-q", "--filter", `label=appstack.test=${run}`]).stdout.split("\n").filter(Boolean)) docker(["volume", "rm", v]);
});

describe("runtime: the edge proxy's declared privileges on this engine", () => {
  it("keeps only NET_BIND_SERVICE: binds port 80 as root, but may not chown; no new privileges", () => {
    const edge = inputs("edge-proxy");
    expect(edge.capabilities).toEqual({ drops: ["ALL"], adds: ["NET_BIND_SERVICE"] });
    const r = sh(flags(edge, { cgroupParent: "" }), [
      "grep -E '^(CapEff|NoNewPrivs):' /proc/self/status",
      "busybox nc -l -p 80 & pid=$!; busybox sleep 0.3; kill $pid && echo bound-80",
      "busybox touch /tmp/f && (busybox chown 1:1 /tmp/f 2>/dev/null && echo chown-allowed || echo chown-refused)",
    ].join("; "));
    expect(r.stderr).toBe("");
    // CAP_NET_BIND_SERVICE is bit 10: 0x400, and nothing else.
    expect(r.stdout).toContain("CapEff:\t0000000000000400");
    expect(r.stdout).toContain("NoNewPrivs:\t1");
    expect(r.stdout).toContain("bound-80");
    expect(r.stdout).toContain("chown-refused");
  });

  it("needs that capability where the engine leaves ports below 1024 privileged (this engine lowers the start to 0 by default)", () => {
    const noCaps = ["--cap-drop", "ALL"];
    expect(sh(noCaps, "cat /proc/sys/net/ipv4/ip_unprivileged_port_start").stdout.trim()).toBe("0");
    const privileged = ["--sysctl", "net.ipv4.ip_unprivileged_port_start=1024"];
    const without = sh([...noCaps, ...privileged], "busybox nc -l -p 80 2>&1 & busybox sleep 0.3; echo done");
    expect(without.stdout).toContain("nc: bind: Permission denied");
    const withCap = sh([...noCaps, "--cap-add", "NET_BIND_SERVICE", ...privileged], "busybox nc -l -p 80 & pid=$!; busybox sleep 0.3; kill $pid && echo bound-80");
    expect(withCap.stdout).toContain("bound-80");
  });

  it("keeps a writable root filesystem: the provider's upload goes through / (PUT archive?path=/), which Docker refuses for a read-only root even for a file on a volume", async () => {
    const edge = inputs("edge-proxy");
    expect(edge.readOnly).toBe(false);
    expect(edge.uploads![0].file).toBe("/etc/caddy/Caddyfile");
    const engine = await Engine.connect();
    const volume = `${run}-config`;
    expect(docker(["volume", "create", "--label", `appstack.test=${run}`, volume]).code).toBe(0);
    const create = (name: string, readOnly: boolean) =>
      engine.json<{ Id: string }>("POST", `/containers/create?name=${run}-${name}`, {
        Image: image, Cmd: ["/bin/busybox", "cat", "/config/x"], Labels: { "appstack.test": run },
        HostConfig: { ReadonlyRootfs: readOnly, Binds: [`${volume}:/config:rw`] },
      });
    // As the provider sends an upload: one tar entry named by the file's full path, extracted at /.
    const upload = (id: string) => engine.request("PUT", `/containers/${id}/archive?path=/`, { body: oneFileTar("/config/x", "uploaded\n", 0o644), contentType: "application/x-tar" });
    const readOnly = await create("ro", true);
    await expect(upload(readOnly.Id)).rejects.toThrow("container rootfs is marked read-only");
    const writable = await create("rw", false);
    await upload(writable.Id);
    expect(docker(["start", "-a", `${run}-rw`]).stdout).toBe("uploaded\n");
  });

  it("every other container of the production plan has a read-only root filesystem, with tmpfs where it writes", () => {
    for (const r of declared.filter((x) => x.type === "docker:index/container:Container")) {
      const d = decodeWire(r.inputs).value as Declared;
      if (d.uploads?.length) continue;
      expect(d.readOnly, r.name).toBe(true);
      expect(Object.keys(d.tmpfs ?? {}).length, r.name).toBeGreaterThan(0);
    }
    // Writes outside the tmpfs fail there.
    const r = sh(flags(inputs("worker-1"), { cgroupParent: "" }), "busybox touch /etc/x 2>&1; busybox touch /tmp/x && echo tmp-ok");
    expect(r.stdout).toContain("touch: /etc/x: Read-only file system");
    expect(r.stdout).toContain("tmp-ok");
  });
});

describe("runtime: a data store's declared privileges on this engine", () => {
  // Like the official images, whose /tmp is mode 1777: a tmpfs over a folder of the image takes that folder's mode (see below).
  const tmp1777 = `appstack-test-busybox:${run}`;
  beforeAll(() => {
    const name = `${run}-tmp1777`;
    expect(docker(["run", "--name", name, image, "/bin/busybox", "chmod", "1777", "/tmp"]).code).toBe(0);
    expect(docker(["commit", name, tmp1777]).code).toBe(0);
    docker(["rm", name]);
  });
  afterAll(() => void docker(["rmi", tmp1777]));

  it("a tmpfs over a folder the image has takes that folder's mode, not mode=; and Docker mounts every tmpfs noexec", () => {
    const r = docker(["run", "--rm", "--read-only", "--tmpfs", "/tmp:rw,mode=1777", "--tmpfs", "/fresh:rw,mode=1777", image, "/bin/busybox", "sh", "-c",
      "busybox stat -c '%n %a' /tmp /fresh; busybox grep -E ' /(tmp|fresh) ' /proc/mounts"]);
    expect(r.stdout).toContain("/tmp 755");
    expect(r.stdout).toContain("/fresh 1777");
    expect(r.stdout).toMatch(/tmpfs \/tmp tmpfs rw,nosuid,nodev,noexec/);
  });

  it("as a non-root user with every capability dropped: writes its tmpfs, nothing else; no capabilities at all", () => {
    const redis = inputs("redis-server");
    expect(redis.user).toBe("redis");
    // The busybox image has no redis user: the alpine image's uid stands in (999).
    const r = docker(["run", "--rm", "--label", `appstack.test=${run}`, ...flags(redis, { user: "999:1000", cgroupParent: "" }), tmp1777, "/bin/busybox", "sh", "-c", [
      "grep -E '^(CapEff|NoNewPrivs):' /proc/self/status",
      "busybox id -u",
      "busybox touch /tmp/conf && echo tmp-ok",
      "busybox touch /data-x 2>&1",
    ].join("; ")]);
    expect(r.stdout).toContain("CapEff:\t0000000000000000");
    expect(r.stdout).toContain("NoNewPrivs:\t1");
    expect(r.stdout).toContain("999");
    expect(r.stdout).toContain("tmp-ok");
    expect(r.stdout).toContain("Read-only file system");
  });
});

describe("runtime: the service's cgroup slice bounds its processes", () => {
  const driver = () => docker(["info", "--format", "{{.CgroupDriver}} {{.CgroupVersion}}"]).stdout.trim();

  it("with a task limit on the slice, a container in it cannot fork past the limit; one outside it can", () => {
    const api = inputs("api-1");
    expect(api.cgroupParent).toBe("appstack-production-api.slice");
    const slice = `appstack-${run}-api.slice`;
    const [cgroupDriver, version] = driver().split(" ");
    if (cgroupDriver !== "cgroupfs") throw new Error(`this test sets the slice's limit through cgroupfs; the engine uses ${cgroupDriver} (set TasksMax with systemctl instead)`);
    const dir = version === "2" ? path.join("/sys/fs/cgroup", slice) : path.join("/sys/fs/cgroup/pids", slice);
    fs.mkdirSync(dir, { recursive: true });
    try {
      fs.writeFileSync(path.join(dir, "pids.max"), "20");
      // Start up to 60 sleepers, printing a count after each: the shell stops at the first fork that fails.
      const script = "i=0; while [ $i -lt 60 ]; do busybox sleep 30 & i=$((i+1)); echo $i; done";
      const limited = sh(flags(api, { cgroupParent: slice }), script);
      const reached = Math.max(0, ...limited.stdout.split("\n").filter(Boolean).map(Number));
      expect(limited.stderr).toContain("can't fork");
      expect(reached).toBeLessThan(20);
      const free = sh(flags(api, { cgroupParent: "" }), `${script}; echo all`);
      expect(free.stdout).toContain("60\nall");
    } finally {
      for (const child of fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory())) fs.rmdirSync(path.join(dir, child.name));
      fs.rmdirSync(dir);
    }
  });
});

describe("runtime: the split networks", () => {
  it("the edge reaches the API by its container name, and neither the name nor the address of a data store; the config job has no network", () => {
    const nets = { data: `${run}-data`, edge: `${run}-edge` };
    for (const n of Object.values(nets)) expect(docker(["network", "create", "--label", `appstack.test=${run}`, n]).code).toBe(0);
    const listen = (name: string, port: number, networks: string[]) => {
      const r = docker(["run", "-d", "--name", `${run}-${name}`, "--label", `appstack.test=${run}`, "--network", networks[0], image, "/bin/busybox", "sh", "-c", `while true; do echo hi | busybox nc -l -p ${port}; done`]);
      expect(r.code, r.stderr).toBe(0);
      for (const extra of networks.slice(1)) expect(docker(["network", "connect", extra, `${run}-${name}`]).code).toBe(0);
    };
    // As the stack wires them: data stores on the data network, the API on both, the edge on its own.
    const netsOf = (n: string) => (inputs(n).networksAdvanced ?? []).map((x) => x.name);
    expect(netsOf("postgres-server")).toEqual(["appstack-production"]);
    expect(netsOf("api-1")).toEqual(["appstack-production", "appstack-production-edge"]);
    expect(netsOf("edge-proxy")).toEqual(["appstack-production-edge"]);
    listen("postgres", 5432, [nets.data]);
    listen("api", 3000, [nets.data, nets.edge]);
    const pgAddress = docker(["inspect", "--format", `{{(index .NetworkSettings.Networks "${nets.data}").IPAddress}}`, `${run}-postgres`]).stdout.trim();
    expect(pgAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    const edge = flags(inputs("edge-proxy"), { cgroupParent: "" });
    const probe = (target: string, port: number) => `busybox nc -w 2 ${target} ${port} </dev/null >/dev/null 2>&1 && echo "${target}:${port} open" || echo "${target}:${port} closed"`;
    const fromEdge = sh([...edge, "--network", nets.edge], [probe(`${run}-api`, 3000), probe(`${run}-postgres`, 5432), probe(pgAddress, 5432)].join("; "));
    expect(fromEdge.stdout).toContain(`${run}-api:3000 open`);
    expect(fromEdge.stdout).toContain(`${run}-postgres:5432 closed`);
    expect(fromEdge.stdout).toContain(`${pgAddress}:5432 closed`);
    // The API, on both, reaches the data store.
    const fromApi = sh(["--network", nets.data], probe(`${run}-postgres`, 5432));
    expect(fromApi.stdout).toContain("open");
    // The edge's config job: networkMode none, loopback only.
    expect(inputs("edge-config-run").networkMode).toBe("none");
    const job = sh(["--network", "none"], "busybox cat /proc/net/dev | busybox tail -n +3 | busybox cut -d: -f1");
    expect(job.stdout.split("\n").map((s) => s.trim()).filter(Boolean)).toEqual(["lo"]);
  });
});
