import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { appConfigSchema } from "../config";
import { settingsOf } from "../config/schema-walk";
import { docOf, readKeyDocs, REFERENCE_FILE, renderReference } from "../ops/offline/config-reference";
import { ROOT } from "./helpers/cli";

describe("docs/configuration.md is generated from the schema", () => {
  const docs = readKeyDocs(ROOT);
  const settings = settingsOf(appConfigSchema);

  it("and matches it: after a schema change, npm run docs", () => {
    const committed = fs.readFileSync(path.join(ROOT, REFERENCE_FILE), "utf8");
    expect(committed, "docs/configuration.md is stale: run npm run docs").toBe(renderReference(ROOT));
  });

  it("every setting has a description (a JSDoc on its key in config/schema.ts)", () => {
    const undocumented = settings.filter((s) => !docOf(docs, s)?.text).map((s) => s.path.join(".") + (s.when ? ` (${s.when.key}: ${s.when.value})` : ""));
    expect(undocumented).toEqual([]);
  });

  it("a JSDoc @default only where the schema's default is computed: a static one is read from the schema, so it cannot drift", () => {
    const both = settings
      .filter((s) => docOf(docs, s)?.tags.default !== undefined && s.default !== undefined)
      .filter((s) => typeof s.default!.value !== "object" || Array.isArray(s.default!.value))
      .map((s) => `${s.path.join(".")}: @default ${docOf(docs, s)!.tags.default} vs ${JSON.stringify(s.default!.value)}`);
    expect(both).toEqual([]);
  });

  it("lists the settings an adopter could not find in the README's old tables, with their defaults", () => {
    const reference = renderReference(ROOT);
    for (const [key, dflt] of [
      ["worker.env", "none"],
      ["worker.secretEnv", "none"],
      ["worker.replicas", "`1`"],
      ["worker.memoryMb", "`512`"],
      ["api.healthTimeoutSeconds", "`180`"],
      ["api.migrations.timeoutSeconds", "`600`"],
      ["frontend.vercel.gitRepository.productionBranch", "`main`"],
      ["worker.health.type", "`process`"],
    ]) {
      const row = reference.split("\n").find((line) => line.startsWith(`| \`${key}\``));
      const cells = row?.split(/(?<!\\)\|/).map((c) => c.trim());
      expect(cells?.[3], key).toBe(dflt);
    }
  });

  it("the README points at it instead of keeping tables of its own", () => {
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    expect(readme).toContain("(docs/configuration.md)");
    expect(readme).not.toMatch(/^\| `api\.port` /m);
  });
});
