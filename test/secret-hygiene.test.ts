import * as fs from "node:fs";
import * as path from "node:path";
import * as os from "node:os";
import { parse, stringify } from "yaml";
import { beforeAll, describe, expect, it } from "vitest";
import { renderPlanMarkdown } from "../ops/offline/plan";
import { listStacks } from "../ops/offline/stack-files";
import { evaluateStack, PROJECT_ROOT, SETUP_TIMEOUT_MS, type Declared } from "./helpers/declared-stack";

/**
 * Secret hygiene, proven on every stack file: stack files hold no secret in
 * plain text, and no secret value reaches the plan, a non-secret output, any
 * argv (container command, entrypoint, health check, image build args) or a
 * non-sensitive Vercel variable. Every generated password and every secure
 * config value is replaced by a distinctive canary, and the canaries are
 * searched for everywhere they must not be.
 */

// --- stack files: no plaintext secrets -------------------------------------

const SECRET_NAME = /(pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential|dsn)$/i;
/** Keys that hold the *names* of secure keys or env vars, never a secret value. */
const NAME_KEYS = new Set(["urlSecret", "secretEnv", "generatedSecrets"]);
const CREDENTIAL_URL = /\b[a-z][a-z0-9+.-]*:\/\/[^\s/:@]+:[^\s/@]+@/i;
const isSecure = (v: unknown) => v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 1 && "secure" in v;

/** Paths of a stack file's config that hold a secret in plain text. */
function plaintextSecrets(config: Record<string, unknown>): string[] {
  const found: string[] = [];
  const walk = (value: unknown, at: string, key: string) => {
    if (isSecure(value)) return;
    if (NAME_KEYS.has(key)) {
      const names = Array.isArray(value) ? value : [value];
      if (!names.every((n) => typeof n === "string" && /^[A-Za-z_][A-Za-z0-9_]*$/.test(n))) found.push(at);
      return;
    }
    if (typeof value === "string" || typeof value === "number") {
      if (SECRET_NAME.test(key) || CREDENTIAL_URL.test(String(value))) found.push(at);
      return;
    }
    if (Array.isArray(value)) value.forEach((v, i) => walk(v, `${at}[${i}]`, key));
    else if (value !== null && typeof value === "object") {
      for (const [k, v] of Object.entries(value)) walk(v, `${at}.${k}`, k);
    }
  };
  for (const [fullKey, value] of Object.entries(config)) walk(value, fullKey, fullKey.slice(fullKey.indexOf(":") + 1));
  return found;
}

const stackFiles = [
  ...listStacks(PROJECT_ROOT).map((s) => path.join(PROJECT_ROOT, `Pulumi.${s}.yaml`)),
  path.join(PROJECT_ROOT, "test", "fixtures", "Pulumi.external.yaml"),
  path.join(PROJECT_ROOT, "examples", "Pulumi.swarm-example.yaml"),
];

describe("secret hygiene: stack files", () => {
  it("the check finds a plaintext secret by key name and a URL with credentials anywhere", () => {
    expect(
      plaintextSecrets({
        "appstack:OPENAI_API_KEY": "sk-live-123",
        "appstack:vercelApiToken": { secure: "v1:abc" },
        "appstack:api": { env: { DB_PASSWORD: "hunter2", FEATURE: true }, secretEnv: ["OPENAI_API_KEY"] },
        "appstack:postgres": { mode: "external", urlSecret: "postgresUrl" },
        // secretlint-disable-next-line @secretlint/secretlint-rule-database-connection-string -- a made-up credential the detector must find
        "appstack:notes": "see postgresql://admin:s3cret@db.example.com/app",
        "appstack:redis": { urlSecret: "redis://u:p@h" },
      }),
    ).toEqual(["appstack:OPENAI_API_KEY", "appstack:api.env.DB_PASSWORD", "appstack:notes", "appstack:redis.urlSecret"]);
  });

  for (const file of stackFiles) {
    it(`${path.relative(PROJECT_ROOT, file)} holds every secret as {secure: ...}`, () => {
      const doc = parse(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> };
      expect(plaintextSecrets(doc.config ?? {})).toEqual([]);
    });
  }
});

// --- evaluated stacks: no secret value where it must not be ----------------

type Found = { where: string; source: string };

/** Every canary (by its source) that occurs in `text`. */
function canariesIn(d: Declared, text: string): string[] {
  return d.secrets.filter((s) => text.includes(s.value)).map((s) => s.source);
}

/** Paths under `value` whose string contains a canary. */
function leaks(d: Declared, value: unknown, at: string, out: Found[] = []): Found[] {
  if (typeof value === "string") {
    for (const source of canariesIn(d, value)) out.push({ where: at, source });
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => leaks(d, v, `${at}[${i}]`, out));
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) leaks(d, v, at ? `${at}.${k}` : k, out);
  }
  return out;
}

const evaluations = new Map<string, Declared>();

/**
 * Staging plus a secret for the frontend build: the repository's stacks give
 * the Vercel frontend none, and the sensitive-variable check must see one.
 */
const FRONTEND_SECRET_STACK = "staging with a frontend secret";
function frontendSecretStack(): string {
  const doc = parse(fs.readFileSync(path.join(PROJECT_ROOT, "Pulumi.staging.yaml"), "utf8")) as { config: Record<string, unknown> };
  (doc.config["appstack:frontend"] as { secretEnv?: string[] }).secretEnv = ["SENTRY_AUTH_TOKEN"];
  doc.config["appstack:SENTRY_AUTH_TOKEN"] = { secure: "v1:placeholder" };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-hygiene-"));
  const file = path.join(dir, "Pulumi.staging.yaml");
  fs.writeFileSync(file, stringify(doc));
  return file;
}

beforeAll(async () => {
  const extra = frontendSecretStack();
  evaluations.set(FRONTEND_SECRET_STACK, await evaluateStack({ stackFile: extra, values: "canary" }));
  fs.rmSync(path.dirname(extra), { recursive: true, force: true });
  // Two at a time: each is a process loading the SDK and the compiler.
  const names = stackFiles.map((f) => path.relative(PROJECT_ROOT, f));
  for (let i = 0; i < names.length; i += 2) {
    await Promise.all(
      names.slice(i, i + 2).map(async (stackFile) => evaluations.set(stackFile, await evaluateStack({ stackFile, values: "canary" }))),
    );
  }
}, SETUP_TIMEOUT_MS);

describe("secret hygiene: no secret value escapes", () => {
  it("the Vercel check sees a real one: the frontend's secret goes to a sensitive variable", () => {
    const d = evaluations.get(FRONTEND_SECRET_STACK)!;
    const sensitive = d.resources.filter((r) => r.type.includes("ProjectEnvironmentVariable") && r.inputs.sensitive === true);
    expect(sensitive.map((r) => r.inputs.key)).toContain("SENTRY_AUTH_TOKEN");
    expect(sensitive.flatMap((r) => leaks(d, r.inputs, r.name)).map((f) => f.source)).toContain("config appstack:SENTRY_AUTH_TOKEN");
  });

  for (const name of [...stackFiles.map((f) => path.relative(PROJECT_ROOT, f)), FRONTEND_SECRET_STACK]) {
    describe(name, () => {
      const d = () => evaluations.get(name)!;

      it("has secrets to look for (generated passwords and secure config values)", () => {
        expect(d().secrets.length).toBeGreaterThan(0);
        for (const s of d().secrets) expect(s.value).toMatch(/^CANARY/);
      });

      it("the plan, as JSON and as markdown, holds none of them", () => {
        expect(canariesIn(d(), JSON.stringify(d().plan))).toEqual([]);
        expect(canariesIn(d(), renderPlanMarkdown(d().plan))).toEqual([]);
      });

      it("every input that carries one is a secret input", () => {
        const unmarked = d().resources.flatMap((r) =>
          leaks(d(), r.inputs, "")
            .filter((f) => !r.secretPaths.some((p) => f.where === p || f.where.startsWith(`${p}.`) || f.where.startsWith(`${p}[`)))
            .map((f) => `${r.name}.${f.where} (${f.source})`),
        );
        expect(unmarked).toEqual([]);
      });

      it("every output that carries one is a secret output", () => {
        const secretPaths = d().plan.outputSecretPaths;
        const unmarked = leaks(d(), d().outputs, "").filter((f) => !secretPaths.some((p) => f.where === p || f.where.startsWith(`${p}.`)));
        expect(unmarked).toEqual([]);
      });

      it("no container command, entrypoint or health check, no image build arg, and no part of a Swarm service's spec holds one", () => {
        const argv = d().resources.flatMap((r) => {
          if (r.type === "docker:index/container:Container") {
            const hc = r.inputs.healthcheck as { tests?: unknown } | undefined;
            return [
              ...leaks(d(), r.inputs.command, `${r.name}.command`),
              ...leaks(d(), r.inputs.entrypoints, `${r.name}.entrypoints`),
              ...leaks(d(), hc?.tests, `${r.name}.healthcheck.tests`),
            ];
          }
          if (r.type === "docker:index/image:Image") return leaks(d(), (r.inputs.build as { args?: unknown } | undefined)?.args, `${r.name}.build.args`);
          // Swarm mode: a service's spec (argv, health check, env, all of it) holds no secret: secrets are Swarm secrets it mounts.
          if (r.type === "docker:index/service:Service") return leaks(d(), r.inputs, r.name);
          return [];
        });
        expect(argv).toEqual([]);
      });

      it("a Vercel variable that carries one is sensitive", () => {
        const exposed = d()
          .resources.filter((r) => r.type.startsWith("vercel:") && r.type.includes("ProjectEnvironmentVariable") && r.inputs.sensitive !== true)
          .flatMap((r) => leaks(d(), r.inputs, r.name));
        expect(exposed).toEqual([]);
      });
    });
  }
});
