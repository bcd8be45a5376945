import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(__dirname, "..");

function markdownFiles(): string[] {
  const docs = fs.existsSync(path.join(ROOT, "docs")) ? fs.readdirSync(path.join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`) : [];
  const ops = ["ops/README.md", ...fs.readdirSync(path.join(ROOT, "ops"), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => `ops/${e.name}/README.md`)];
  return ["README.md", ...docs, ...ops].filter((f) => fs.existsSync(path.join(ROOT, f)));
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  let fence = false;
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) fence = !fence;
    const m = !fence && /^#{1,6}\s+(.*)$/.exec(line);
    if (m) out.add(m[1].trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, "").replace(/ /g, "-"));
  }
  return out;
}

function relativeLinks(markdown: string): string[] {
  const withoutCode = markdown.replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");
  return [...withoutCode.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]).filter((l) => !/^[a-z]+:/i.test(l));
}

describe("documentation links", () => {
  const files = markdownFiles();

  it("covers the README, every page under docs/ and the ops folders", () => {
    expect(files).toContain("README.md");
    expect(files.filter((f) => f.startsWith("docs/")).length).toBeGreaterThanOrEqual(6);
  });

  it("every relative link in the README and docs/ resolves to a file (and heading) that exists", () => {
    const broken: string[] = [];
    for (const file of files) {
      for (const link of relativeLinks(fs.readFileSync(path.join(ROOT, file), "utf8"))) {
        const [target, hash] = link.split("#");
        const resolved = target ? path.resolve(path.dirname(path.join(ROOT, file)), target) : path.join(ROOT, file);
        if (!fs.existsSync(resolved)) {
          broken.push(`${file}: ${link} (no such file)`);
          continue;
        }
        if (hash && resolved.endsWith(".md") && !anchors(fs.readFileSync(resolved, "utf8")).has(hash)) {
          broken.push(`${file}: ${link} (no such heading)`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it("the README stays a short entry point (under 300 lines)", () => {
    expect(fs.readFileSync(path.join(ROOT, "README.md"), "utf8").split("\n").length).toBeLessThan(300);
  });
});
