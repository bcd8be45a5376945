import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Plan } from "../ops/offline/plan";
import { validateStack } from "../ops/offline/validate";
import { ROOT, type CliResult } from "./helpers/cli";
import { ThrowawayRepo } from "./helpers/git-repo";

/**
 * docs/adopting.md's worked example, as written: this repository copied,
 * the guide's rename commands run in the copy, its three stack files put in
 * place, then `validate` and `plan` on each. The app's checkouts next to the
 * copy are stand-ins (a Dockerfile each): plan declares the builds, it does
 * not run them.
 */

const GUIDE = fs.readFileSync(path.join(ROOT, "docs", "adopting.md"), "utf8");
const block = (marker: string, lang: string) => {
  const m = new RegExp(`<!-- ${marker.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} -->\\n\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``).exec(GUIDE);
  if (!m) throw new Error(`docs/adopting.md has no ${lang} block after <!-- ${marker} -->`);
  return m[1];
};
const STACKS = ["dev", "staging", "production"] as const;

const parent = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-adopt-"));
const project = path.join(parent, "appstack");
let plans: Record<string, { result: CliResult; plan?: Plan }> = {};

/** `npm run plan -- --stack <s> --format json` in the copy, as its own process. */
function planIn(stack: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(path.join(ROOT, "node_modules", ".bin", "node"), [path.join("ops", "run.js"), "plan", "--stack", stack, "--format", "json"], { cwd: project });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

beforeAll(async () => {
  fs.mkdirSync(project);
  new ThrowawayRepo(project);
  for (const [dir, files] of Object.entries({ "luma-backend": ["Dockerfile", "Dockerfile.worker"], "luma-web": ["Dockerfile"] })) {
    fs.mkdirSync(path.join(parent, dir));
    for (const f of files) fs.writeFileSync(path.join(parent, dir, f), "FROM node:24-alpine\n");
  }
  const rename = spawnSync("bash", ["-e", "-o", "pipefail", "-c", block("adoption-rename", "bash")], { cwd: project, encoding: "utf8" });
  if (rename.status !== 0) throw new Error(`the guide's rename failed: ${rename.stderr}`);
  for (const stack of STACKS) fs.writeFileSync(path.join(project, `Pulumi.${stack}.yaml`), block(`adoption-example: Pulumi.${stack}.yaml`, "yaml"));
  const results = await Promise.all(STACKS.map((s) => planIn(s)));
  plans = Object.fromEntries(
    STACKS.map((s, i) => [s, { result: results[i], plan: results[i].code === 0 ? (JSON.parse(results[i].stdout) as Plan) : undefined }]),
  );
}, 180_000);

afterAll(() => fs.rmSync(parent, { recursive: true, force: true }));

const resource = (stack: string, name: string) => plans[stack].plan!.resources.find((r) => r.name === name || r.name.startsWith(`${name}-`));

describe("docs/adopting.md: the worked example, as written", () => {
  it("the rename makes the project luma, in Pulumi.yaml and package.json", () => {
    expect(fs.readFileSync(path.join(project, "Pulumi.yaml"), "utf8")).toMatch(/^name: luma$/m);
    expect(JSON.parse(fs.readFileSync(path.join(project, "package.json"), "utf8")).name).toBe("luma");
  });

  for (const stack of STACKS) {
    it(`Pulumi.${stack}.yaml validates`, async () => {
      const text = await validateStack({ root: project, stack });
      expect(text).toMatch(new RegExp(`^Stack "${stack}" \\(.*Pulumi\\.${stack}\\.yaml\\): configuration is valid\\. environment=${stack}`));
      // The secrets are the placeholders until step 6 sets them, and validate says which.
      expect(text).toContain(`not yet deployable: luma:OPENAI_API_KEY holds the repository's placeholder; set it: pulumi config set -s ${stack} --secret OPENAI_API_KEY`);
    });

    it(`Pulumi.${stack}.yaml plans`, () => {
      const { result, plan } = plans[stack];
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      expect(plan!.project).toBe("luma");
      expect(plan!.resources.every((r) => r.urn.startsWith(`urn:pulumi:${stack}::luma::`))).toBe(true);
    });
  }

  it("staging and production: Supabase and Redis Cloud from secrets, no data-store container; DIRECT_URL reaches the migrations; the worker's own image; Vercel", () => {
    for (const stack of ["staging", "production"]) {
      const plan = plans[stack].plan!;
      expect(plan.resources.filter((r) => /postgres|redis/.test(r.name) && r.type === "docker:index/container:Container")).toEqual([]);
      // Secret env entries print as [secret], one secret path each: DATABASE_URL, REDIS_URL,
      // JWT_SECRET and OPENAI_API_KEY for both; DIRECT_URL for the API and its migrations only.
      const secretEnvs = (name: string) => resource(stack, name)!.secretPaths.filter((p) => p.startsWith("envs[")).length;
      expect(secretEnvs("api-migrate-run")).toBe(5);
      expect(secretEnvs("worker-1")).toBe(4);
      expect(JSON.stringify(resource(stack, "api-migrate-run")!.inputs.envs)).not.toContain("DIRECT_URL");
      const worker = resource(stack, "worker-1")!;
      expect(worker.inputs.labels).toContainEqual({ label: "appstack.image", value: "ghcr.io/acme/luma-backend-worker:0.9.0" });
      expect(resource(stack, "frontend-project")!.inputs).toMatchObject({ name: stack === "production" ? "luma-web" : "luma-web-staging", framework: "vite" });
      expect(resource(stack, "edge-proxy")).toBeDefined();
    }
  });

  it("dev: the API, worker and frontend built from the checkouts next to the project", () => {
    const builds = plans.dev.plan!.resources.filter((r) => r.type === "docker:index/image:Image").map((r) => (r.inputs.build as { context: string }).context);
    expect(builds.sort()).toEqual([path.join(parent, "luma-backend"), path.join(parent, "luma-backend"), path.join(parent, "luma-web")]);
  });
});
