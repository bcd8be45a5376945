import * as fs from "node:fs";
import * as path from "node:path";
import semver from "semver";
import { describe, expect, it } from "vitest";
import { ROOT } from "./helpers/cli";

/**
 * The Node requirement the README states is the real one: package.json's
 * `engines` is as strict as every installed package's own, the pinned Node
 * (the `node` devDependency) meets it.
 */
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { engines: { node: string }; devDependencies: Record<string, string> };
const lock = JSON.parse(fs.readFileSync(path.join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, { engines?: { node?: string } }> };

describe("the Node requirement", () => {
  it("engines.node admits no Node version that an installed package refuses", () => {
    const stricter = Object.entries(lock.packages)
      .filter(([at, p]) => at !== "" && typeof p.engines?.node === "string" && fs.existsSync(path.join(ROOT, at)))
      .filter(([, p]) => !semver.subset(pkg.engines.node, p.engines!.node!))
      .map(([at, p]) => `${at}: ${p.engines!.node}`);
    expect(stricter).toEqual([]);
  });

  it("is what the README says, and the pinned Node meets it", () => {
    const min = semver.minVersion(pkg.engines.node)!;
    expect(fs.readFileSync(path.join(ROOT, "README.md"), "utf8")).toContain(`Node.js ${min.major}.${min.minor} or later`);
    expect(semver.satisfies(pkg.devDependencies.node, pkg.engines.node)).toBe(true);
    expect(fs.readFileSync(path.join(ROOT, ".nvmrc"), "utf8").trim()).toBe(String(semver.major(pkg.devDependencies.node)));
  });

});
