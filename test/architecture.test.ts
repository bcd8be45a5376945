import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(__dirname, "..");

/** Which top-level parts each part may import (ops/README.md). */
const ALLOWED: Record<string, string[]> = {
  "ops/cli": ["ops/operations", "ops/diff", "ops/offline", "ops/shared", "config", "components", "policy"],
  "ops/operations": ["ops/offline", "ops/shared", "config", "components"],
  "ops/diff": ["ops/offline", "ops/shared", "config", "components"],
  "ops/offline": ["ops/shared", "config", "components", "policy"],
  "ops/shared": [],
  policy: ["config", "policy"],
  components: ["config"],
  config: [],
};

function partOf(file: string): string | undefined {
  const rel = path.relative(ROOT, file).split(path.sep).join("/");
  return Object.keys(ALLOWED).find((p) => rel === p || rel.startsWith(`${p}/`));
}

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === "node_modules" ? [] : sources(p);
    return /\.(ts|js)$/.test(e.name) ? [p] : [];
  });
}

const IMPORT = /(?:from\s+|import\(\s*|require\(\s*|load<typeof import\(\s*)["'](\.{1,2}\/[^"']+)["']/g;

describe("architecture: stack file -> config -> components -> ops, never backwards", () => {
  const files = ["ops", "config", "components", "policy"].flatMap((d) => sources(path.join(ROOT, d)));

  it("finds the parts the README names", () => {
    for (const part of ["ops/cli", "ops/operations", "ops/diff", "ops/offline", "ops/shared"]) {
      expect(fs.statSync(path.join(ROOT, part)).isDirectory(), part).toBe(true);
    }
    expect(files.length).toBeGreaterThan(40);
  });

  it("every relative import stays inside its part or points to a part it may use", () => {
    const bad: string[] = [];
    for (const file of files) {
      const from = partOf(file);
      if (!from) continue;
      for (const m of fs.readFileSync(file, "utf8").matchAll(IMPORT)) {
        const target = partOf(path.resolve(path.dirname(file), m[1]));
        if (!target || target === from) continue;
        if (!ALLOWED[from].includes(target)) bad.push(`${path.relative(ROOT, file)} imports ${m[1]} (${from} -> ${target})`);
      }
    }
    expect(bad).toEqual([]);
  });

  it("the program never imports ops", () => {
    const program = fs.readFileSync(path.join(ROOT, "index.ts"), "utf8");
    expect(program).not.toMatch(/from ["']\.\/ops/);
  });
});
