import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { compareApiVersions, containerInputPaths, isSupportedApiVersion, MIN_DOCKER_ENGINE } from "../config";
import { GENERATED, generatedBlock } from "../ops/cli/docs";
import { ROOT } from "./helpers/cli";

describe("the supported Docker Engine range", () => {
  it("starts at Docker 20.10, Engine API 1.41 (Debian 12's docker.io)", () => {
    expect(MIN_DOCKER_ENGINE).toMatchObject({ version: "20.10", apiVersion: "1.41" });
  });

  it("orders API versions numerically, not as text", () => {
    expect(compareApiVersions("1.41", "1.44")).toBeLessThan(0);
    expect(compareApiVersions("1.9", "1.41")).toBeLessThan(0);
    expect(compareApiVersions("1.100", "1.52")).toBeGreaterThan(0);
    expect(compareApiVersions("1.41", "1.41")).toBe(0);
  });

  it("takes every engine from API 1.41 on, and nothing older or unreadable", () => {
    for (const v of ["1.41", "1.43", "1.44", "1.52", "2.0"]) expect(isSupportedApiVersion(v), v).toBe(true);
    for (const v of ["1.40", "1.39", "1.24", "", "1.41-rc1", "x"]) expect(isSupportedApiVersion(v), v).toBe(false);
  });

  it("spells a container's inputs as paths: nested fields, list items as [], a map as one input", () => {
    const paths = containerInputPaths({
      image: "sha256:abc",
      healthcheck: { tests: ["CMD", "true"], interval: "5s" },
      ports: [{ internal: 80, external: 80 }, { internal: 443, protocol: "udp" }],
      logOpts: { "max-size": "10m" },
      labels: [{ label: "a", value: "b" }],
      envs: ["A=1"],
      mounts: [{ volumeOptions: { subpath: "x" } }],
      unset: undefined,
    });
    expect(paths).toEqual([
      "envs",
      "healthcheck.interval",
      "healthcheck.tests",
      "image",
      "labels[].label",
      "labels[].value",
      "logOpts",
      "mounts[].volumeOptions.subpath",
      "ports[].external",
      "ports[].internal",
      "ports[].protocol",
    ]);
  });
});

describe("docs/docker-engine.md", () => {
  it("shows the audit as config/docker-engine.ts has it: after a change there, npm run docs", () => {
    for (const g of GENERATED) {
      expect(generatedBlock(fs.readFileSync(path.join(ROOT, g.file), "utf8"), g.id), `${g.file} is stale: run npm run docs`).toBe(g.render());
    }
  });
});
