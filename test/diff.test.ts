import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { compareStacks, destructiveChanges, hasChanges, relocate, type ResourceChange, type StackDiff } from "../ops/diff/diff";
import { renderDiffJson, renderDiffMarkdown } from "../ops/diff/diff-render";
import { renderRulesTable } from "../ops/diff/replacement-rules";
import { labels, plan, postgresStack, resource, TYPES } from "./helpers/plan-fixtures";

const SIDES = { baseRef: "main", baseCommit: "0123456789abcdef0123456789abcdef01234567", head: "the working tree" };

function change(d: StackDiff, name: string): ResourceChange {
  const found = d.resources.find((r) => r.name === name);
  if (!found) throw new Error(`${name} does not change; changed: ${d.resources.map((r) => r.name).join(", ") || "(none)"}`);
  return found;
}

const unchanged = (d: StackDiff, name: string) => expect(d.resources.map((r) => r.name)).not.toContain(name);

describe("compare: identical plans", () => {
  it("reports no changes and nothing destructive", () => {
    const d = compareStacks(plan(postgresStack().all), plan(postgresStack().all));
    expect(hasChanges(d)).toBe(false);
    expect(d.unchanged).toBe(5);
    expect(renderDiffMarkdown(d, SIDES)).toContain("no changes");
  });
});

describe("compare: Docker containers follow the provider's ForceNew rules", () => {
  it("a new image tag replaces the image and, through its computed image ID, the container", () => {
    const d = compareStacks(plan(postgresStack().all), plan(postgresStack({ image: "postgres:17.7-alpine" }).all));
    expect(change(d, "postgres-image").action).toBe("replace");
    const server = change(d, "postgres-server");
    expect(server.action).toBe("replace");
    const image = server.changes.find((c) => c.path === "image");
    expect(image).toMatchObject({ old: "[unknown]", new: "[unknown]", replaces: true });
    expect(image?.because).toContain("postgres-image");
    expect(server.changes.find((c) => c.path === "labels[3].value")).toMatchObject({ old: "17.6-alpine", new: "17.7-alpine", replaces: true });
  });

  it("memory and the restart policy update in place; cpus replaces", () => {
    const base = plan(postgresStack().all);
    const memory = change(compareStacks(base, plan(postgresStack({ memory: 2048 }).all)), "postgres-server");
    expect(memory.action).toBe("update");
    expect(memory.destructive).toBeUndefined();
    expect(memory.changes).toEqual([expect.objectContaining({ path: "memory", old: 1024, new: 2048, replaces: false })]);
    expect(change(compareStacks(base, plan(postgresStack({ restart: "always" }).all)), "postgres-server").action).toBe("update");
    expect(change(compareStacks(base, plan(postgresStack({ cpus: "2" }).all)), "postgres-server").action).toBe("replace");
  });

  it("an unseen input of a resource that does not change stays unchanged", () => {
    // image is "[unknown]" on both sides; postgres-image is the same, so the container is too.
    const d = compareStacks(plan(postgresStack().all), plan(postgresStack({ memory: 2048 }).all));
    unchanged(d, "postgres-image");
    expect(change(d, "postgres-server").changes.map((c) => c.path)).toEqual(["memory"]);
  });

  it("an env var change replaces an API container, and it is not destructive", () => {
    const api = resource(TYPES.api, "api");
    const mk = (flag: string) => plan([api, resource(TYPES.container, "api-1", { envs: [`FEATURE=${flag}`], labels: labels("api", "1.5.0") }, { parent: api })]);
    const d = compareStacks(mk("off"), mk("on"));
    expect(change(d, "api-1").action).toBe("replace");
    expect(destructiveChanges(d)).toEqual([]);
  });
});

describe("compare: destructive changes", () => {
  it("a postgres server replacement is destructive; a renamed data volume is too", () => {
    const version = compareStacks(plan(postgresStack().all), plan(postgresStack({ image: "postgres:18.0-alpine" }).all));
    expect(destructiveChanges(version).map((r) => r.name)).toEqual(["postgres-server"]);
    expect(change(version, "postgres-server").destructive).toMatch(/postgres server/);

    const volume = compareStacks(plan(postgresStack().all), plan(postgresStack({ volumeName: "appstack-staging-pg" }).all));
    expect(change(volume, "postgres-data")).toMatchObject({ action: "replace" });
    expect(change(volume, "postgres-data").destructive).toMatch(/holds the postgres data/);
    // The container mounts the volume by name: it is replaced too.
    expect(change(volume, "postgres-server").action).toBe("replace");
  });

  it("a new password length rotates the database password and replaces the server that uses it", () => {
    const d = compareStacks(plan(postgresStack().all), plan(postgresStack({ passwordLength: 40 }).all));
    expect(change(d, "postgres-password")).toMatchObject({ action: "replace" });
    expect(change(d, "postgres-password").destructive).toMatch(/rotates the postgres password/);
    const env = change(d, "postgres-server").changes.find((c) => c.path === "envs[2]");
    expect(env).toMatchObject({ secret: true, old: "[secret]", new: "[secret]", replaces: true });
    expect(env?.because).toContain("postgres-password");
  });

  it("deleting a data volume or a protected resource is destructive; deleting a stateless one is not", () => {
    const pg = postgresStack();
    const cert = resource(TYPES.volume, "edge-data", { labels: labels("edge") }, { protect: true });
    const scratch = resource(TYPES.volume, "scratch", { labels: labels("worker") });
    const d = compareStacks(plan([...pg.all, cert, scratch]), plan([pg.component, pg.image, pg.password, pg.server]));
    expect(change(d, "postgres-data")).toMatchObject({ action: "delete" });
    expect(change(d, "postgres-data").destructive).toMatch(/postgres data/);
    expect(change(d, "edge-data").destructive).toMatch(/protected/);
    expect(change(d, "scratch").action).toBe("delete");
    expect(change(d, "scratch").destructive).toBeUndefined();
  });

  it("a resource is stateful through its Postgres/Redis component parent when it has no service label", () => {
    const redis = resource(TYPES.redis, "redis");
    const mk = (name: string) => plan([redis, resource(TYPES.volume, "redis-data", { name }, { parent: redis })]);
    expect(change(compareStacks(mk("a"), mk("b")), "redis-data").destructive).toMatch(/redis data/);
  });

  it("a Vercel project is destructive to delete or move to another team; a rename updates it", () => {
    const mk = (inputs: Record<string, unknown>) => plan([resource(TYPES.project, "frontend-project", inputs)]);
    const renamed = compareStacks(mk({ name: "web", teamId: "t1" }), mk({ name: "web-2", teamId: "t1" }));
    expect(change(renamed, "frontend-project").action).toBe("update");
    expect(change(renamed, "frontend-project").destructive).toBeUndefined();
    const moved = compareStacks(mk({ name: "web", teamId: "t1" }), mk({ name: "web", teamId: "t2" }));
    expect(change(moved, "frontend-project").destructive).toMatch(/Vercel project/);
    expect(change(compareStacks(mk({ name: "web" }), plan([])), "frontend-project").destructive).toMatch(/Vercel project/);
  });
});

describe("compare: Vercel and random follow their providers' RequiresReplace", () => {
  const one = (type: string, name: string, inputs: Record<string, unknown>) => plan([resource(type, name, inputs)]);
  const actionOf = (type: string, before: Record<string, unknown>, after: Record<string, unknown>) =>
    change(compareStacks(one(type, "r", before), one(type, "r", after)), "r").action;

  it.each([
    [TYPES.envVar, { key: "A", value: "1", targets: ["production"] }, { key: "A", value: "2", targets: ["production"] }, "update"],
    [TYPES.envVar, { key: "A", value: "1" }, { key: "B", value: "1" }, "replace"],
    [TYPES.envVar, { key: "A", sensitive: false }, { key: "A", sensitive: true }, "replace"],
    [TYPES.domain, { domain: "a.example.com" }, { domain: "b.example.com" }, "replace"],
    [TYPES.domain, { domain: "a.example.com", redirect: "" }, { domain: "a.example.com", redirect: "b.example.com" }, "update"],
    [TYPES.deployment, { files: { a: "1" } }, { files: { a: "2" } }, "replace"],
    [TYPES.deployment, { deleteOnDestroy: false }, { deleteOnDestroy: true }, "update"],
    [TYPES.password, { length: 32 }, { length: 33 }, "replace"],
    [TYPES.network, { name: "a" }, { name: "b" }, "replace"],
    [TYPES.image, { name: "x", keepLocally: false }, { name: "x", keepLocally: true }, "update"],
  ])("%s: %j -> %j is %s", (type, before, after, expected) => {
    expect(actionOf(type, before, after)).toBe(expected);
  });

  it("a type without a rule shows as an update, with a note that says so", () => {
    const d = compareStacks(plan([resource("acme:index/thing:Thing", "t", { a: 1 })]), plan([resource("acme:index/thing:Thing", "t", { a: 2 })]));
    expect(change(d, "t").action).toBe("update");
    expect(d.notes.join("\n")).toMatch(/No replacement rule for acme:index\/thing:Thing/);
  });
});

describe("compare: resource options the engine honours", () => {
  const mk = (name: string, o: { replaceOnChanges?: string[]; ignoreChanges?: string[] }) =>
    plan([resource(TYPES.container, "c", { name, memory: 1, restart: "no" }, o)]);

  it("ignoreChanges hides a change; replaceOnChanges makes an update a replacement", () => {
    expect(hasChanges(compareStacks(mk("a", { ignoreChanges: ["name"] }), mk("b", { ignoreChanges: ["name"] })))).toBe(false);
    const base = plan([resource(TYPES.container, "c", { memory: 1 }, { replaceOnChanges: ["memory"] })]);
    const head = plan([resource(TYPES.container, "c", { memory: 2 }, { replaceOnChanges: ["memory"] })]);
    expect(change(compareStacks(base, head), "c").action).toBe("replace");
  });

  it("protect turned on is an option change, not a replacement", () => {
    const a = plan([resource(TYPES.volume, "v", { name: "v" })]);
    const b = plan([resource(TYPES.volume, "v", { name: "v" }, { protect: true })]);
    expect(change(compareStacks(a, b), "v")).toMatchObject({ action: "update", changes: [], optionChanges: ["protect: false -> true"] });
  });

  it("a resource whose parent changes is deleted and created (its URN changes)", () => {
    const pg = resource(TYPES.postgres, "postgres");
    const d = compareStacks(plan([pg, resource(TYPES.password, "p", { length: 1 })]), plan([pg, resource(TYPES.password, "p", { length: 1 }, { parent: pg })]));
    expect(d.resources.map((r) => r.action).sort()).toEqual(["create", "delete"]);
  });
});

describe("compare: secrets are compared by digest and never printed", () => {
  const withSecret = (digest: string) =>
    plan([resource(TYPES.container, "api-1", { envs: ["PORT=3000", "[secret]"] }, { secretPaths: ["envs[1]"], secretDigests: { "envs[1]": digest } })], {
      configSecretDigests: { "appstack:OPENAI_API_KEY": `config-${digest}` },
      outputs: { connections: { databaseUrl: "[secret]" } },
      outputSecretPaths: ["connections.databaseUrl"],
      outputSecretDigests: { "connections.databaseUrl": `out-${digest}` },
    });

  it("a changed secret is reported as changed, masked, and replaces the container", () => {
    const d = compareStacks(withSecret("aaaa1111"), withSecret("bbbb2222"));
    expect(change(d, "api-1").changes).toEqual([{ path: "envs[1]", old: "[secret]", new: "[secret]", secret: true, replaces: true }]);
    expect(d.secureConfig).toEqual([{ key: "appstack:OPENAI_API_KEY", change: "changed" }]);
    expect(d.outputs).toEqual([{ path: "connections.databaseUrl", old: "[secret]", new: "[secret]", secret: true }]);
    for (const out of [renderDiffMarkdown(d, SIDES), renderDiffJson(d, SIDES)]) {
      expect(out).toContain("envs[1]");
      for (const digest of ["aaaa1111", "bbbb2222"]) expect(out).not.toContain(digest);
    }
    expect(renderDiffMarkdown(d, SIDES)).toContain("secret value changed");
  });

  it("the same secret is unchanged", () => {
    expect(hasChanges(compareStacks(withSecret("aaaa1111"), withSecret("aaaa1111")))).toBe(false);
  });

  it("a base plan without digests cannot hide that it cannot compare secrets", () => {
    const old = withSecret("aaaa1111");
    for (const r of old.resources) delete r.secretDigests;
    const d = compareStacks(old, withSecret("bbbb2222"));
    expect(d.notes.join("\n")).toMatch(/Secret values could not be compared/);
  });
});

describe("compare: paths inside the checkout", () => {
  const build = (root: string, extra = "") =>
    plan([resource("docker:index/image:Image", "api-build", { build: { context: `${root}/examples/app`, dockerfile: `${root}/examples/app/api/Dockerfile${extra}` }, imageName: `${root}x/app` })]);

  it("the base's temporary worktree and the working tree compare equal where only the checkout's location differs", () => {
    const d = compareStacks(relocate(build("/tmp/appstack-diff-abc"), ["/tmp/appstack-diff-abc"]), relocate(build("/home/me/appstack"), ["/home/me/appstack"]));
    expect(d.resources.map((r) => r.changes.map((c) => c.path))).toEqual([["imageName"]]);
  });

  it("a real change inside the checkout still shows, relative to it", () => {
    const d = compareStacks(relocate(build("/a"), ["/a"]), relocate(build("/b", ".prod"), ["/b"]));
    expect(change(d, "api-build").changes).toContainEqual(
      expect.objectContaining({ path: "build.dockerfile", old: "<checkout>/examples/app/api/Dockerfile", new: "<checkout>/examples/app/api/Dockerfile.prod" }),
    );
  });
});

describe("render", () => {
  it("puts the destructive banner above the summary and every changed input below", () => {
    const d = compareStacks(plan(postgresStack().all), plan(postgresStack({ image: "postgres:18.0-alpine" }).all));
    const md = renderDiffMarkdown(d, SIDES);
    const banner = md.indexOf("Destructive");
    expect(banner).toBeGreaterThan(0);
    expect(banner).toBeLessThan(md.indexOf("to replace"));
    expect(md).toContain("`labels[3].value`: `\"17.6-alpine\"` -> `\"18.0-alpine\"` **(forces replacement)**");
    expect(md).toContain("replace (delete first, then create)");
    const json = JSON.parse(renderDiffJson(d, SIDES));
    expect(json.destructive).toEqual([expect.objectContaining({ name: "postgres-server", action: "replace" })]);
    expect(json.summary).toMatchObject({ replace: 2, unchanged: 3 });
  });
});

describe("docs/pull-requests.md", () => {
  it("documents the replacement rules exactly as the code applies them", () => {
    const readme = fs.readFileSync(path.join(__dirname, "..", "docs", "pull-requests.md"), "utf8");
    expect(readme).toContain(renderRulesTable());
  });
});
