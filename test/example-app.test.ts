import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "./helpers/declared-stack";
import { freePort, run, waitUntil } from "./contract/servers";

/**
 * The example app's images and frontend, without Docker: what can be checked
 * of a Dockerfile statically (multi-stage, non-root, a health check that needs
 * no curl), and the frontend's build and server run with Node.
 */

const APP = path.join(PROJECT_ROOT, "examples", "app");

/** An ES module of the example app (plain JavaScript, outside the TypeScript project). */
function importExample(rel: string): Promise<unknown> {
  return import(pathToFileURL(path.join(APP, rel)).href);
}
const DOCKERFILES = ["api/Dockerfile", "worker/Dockerfile", "frontend/Dockerfile"];

/** A Dockerfile's instructions, continuation lines joined, comments dropped. */
function instructions(file: string): { op: string; args: string }[] {
  return fs
    .readFileSync(file, "utf8")
    .replace(/\\\r?\n/g, " ")
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op.toUpperCase(), args: rest.join(" ") };
    });
}

describe("example app images", () => {
  for (const rel of DOCKERFILES) {
    describe(rel, () => {
      const ins = instructions(path.join(APP, rel));
      const lastFrom = ins.map((i) => i.op).lastIndexOf("FROM");
      const final = ins.slice(lastFrom);

      it("is multi-stage: build tools stay out of the final image", () => {
        expect(ins.filter((i) => i.op === "FROM").length).toBeGreaterThanOrEqual(2);
        expect(final.some((i) => i.op === "COPY" && i.args.startsWith("--from="))).toBe(true);
      });

      it("runs as a non-root user", () => {
        const users = final.filter((i) => i.op === "USER").map((i) => i.args);
        expect(users.length).toBeGreaterThan(0);
        expect(users[users.length - 1]).not.toMatch(/^(root|0)(:|$)/);
      });

      it("has a health check that needs no curl or wget, and an exec-form command", () => {
        const hc = final.find((i) => i.op === "HEALTHCHECK");
        expect(hc?.args).toMatch(/CMD \["node"/);
        expect(hc?.args).not.toMatch(/\b(curl|wget)\b/);
        const cmd = final.find((i) => i.op === "CMD");
        expect(() => JSON.parse(cmd!.args)).not.toThrow();
      });

      it("copies only files that exist in its build context", () => {
        const context = rel.startsWith("frontend/") ? path.join(APP, "frontend") : APP;
        for (const copy of final.concat(ins.slice(0, lastFrom)).filter((i) => i.op === "COPY" && !i.args.startsWith("--from="))) {
          const sources = copy.args.split(/\s+/).slice(0, -1);
          for (const src of sources) expect(fs.existsSync(path.join(context, src)), `${rel}: COPY ${src}`).toBe(true);
        }
      });
    });
  }

  it("the images install the same driver versions the contract tests run", () => {
    const root = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, "package.json"), "utf8"));
    const app = JSON.parse(fs.readFileSync(path.join(APP, "package.json"), "utf8"));
    const lock = JSON.parse(fs.readFileSync(path.join(APP, "package-lock.json"), "utf8"));
    for (const dep of ["pg", "ioredis"]) {
      expect(app.dependencies[dep]).toBe(root.devDependencies[dep]);
      expect(lock.packages[`node_modules/${dep}`].version).toBe(app.dependencies[dep]);
    }
  });
});

describe("example frontend", () => {
  let out: string;
  let server: ReturnType<typeof spawn> | undefined;
  let port: number;
  const API = "https://api.example.com/api/v1";

  beforeAll(async () => {
    out = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-frontend-"));
    const built = await run(process.execPath, ["build.js"], {
      cwd: path.join(APP, "frontend"),
      env: { PATH: process.env.PATH, VITE_API_URL: `${API}/`, OUT_DIR: out },
    });
    expect(built.code, built.stderr).toBe(0);
    port = await freePort();
    server = spawn(process.execPath, ["serve.js"], {
      cwd: path.join(APP, "frontend"),
      env: { PATH: process.env.PATH, PORT: String(port), DIST_DIR: out },
      stdio: "ignore",
    });
    await waitUntil("the frontend server", async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.ok === true);
  });

  afterAll(() => {
    server?.kill("SIGKILL");
    if (out) fs.rmSync(out, { recursive: true, force: true });
  });

  it("bakes VITE_API_URL into config.js at build, without a trailing slash", () => {
    expect(fs.readFileSync(path.join(out, "config.js"), "utf8")).toBe(`window.APPSTACK_CONFIG = {"apiUrl":"${API}"};\n`);
  });

  it("refuses a VITE_API_URL that is not an http(s) URL, naming it", async () => {
    for (const bad of ["api.example.com", "javascript:alert(1)", "ftp://x"]) {
      const r = await run(process.execPath, ["build.js"], { cwd: path.join(APP, "frontend"), env: { PATH: process.env.PATH, VITE_API_URL: bad, OUT_DIR: out } });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/VITE_API_URL/);
    }
  });

  it("config.js cannot be broken out of: the value is JSON with < escaped", async () => {
    const { configScript } = (await importExample("frontend/config.js")) as { configScript(url: string): string };
    expect(configScript('https://x.example.com/"</script><script>alert(1)</script>')).not.toContain("</script>");
  });

  it("serves the page with security headers, and nothing outside dist/", async () => {
    const page = await fetch(`http://127.0.0.1:${port}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    expect(page.headers.get("x-frame-options")).toBe("DENY");
    expect(page.headers.get("referrer-policy")).toBe("strict-origin-when-cross-origin");
    expect(page.headers.get("permissions-policy")).toContain("camera=()");
    for (const probe of ["/../package.json", "/%2e%2e/serve.js", "/..%2fserve.js"]) {
      const r = await fetch(`http://127.0.0.1:${port}${probe}`);
      expect(await r.text(), probe).not.toContain("appstack-example-frontend");
    }
    expect((await fetch(`http://127.0.0.1:${port}/`, { method: "POST" })).status).toBe(405);
  });

  it("the client calls the API under /api/v1 whether or not VITE_API_URL names it", async () => {
    const { apiBase } = (await importExample("frontend/src/app.js")) as { apiBase(url: string): string };
    expect(apiBase("https://api.example.com")).toBe("https://api.example.com/api/v1");
    expect(apiBase("https://api.example.com/api/v1/")).toBe("https://api.example.com/api/v1");
    expect(apiBase("")).toBe("");
  });
});
