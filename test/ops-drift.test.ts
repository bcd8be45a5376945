import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { drift, driftCounts, renderDriftSummary } from "../ops/operations/drift";
import { EXIT } from "../ops/shared/errors";
import { commandError, FakeAutomation, testContext } from "./helpers/automation";
import { STAGING_STACK, tempProject } from "./helpers/project";

const REFRESH_OUTPUT = `Refreshing (staging):
    ~  docker:index/container:Container api-1 updated [diff: ~memory]
       - memory: 512
       + memory: 1024
Resources:
    ~ 1 updated
    12 unchanged
`;

describe("drift: refresh --preview-only per stack", () => {
  it("anything but 'same' in the refresh preview is drift", () => {
    expect(driftCounts({ same: 12 })).toEqual([]);
    expect(driftCounts({ same: 12, update: 1, delete: 0, refresh: 0 })).toEqual([["update", 1]]);
  });

  it(`drift fails (exit ${EXIT.drift}) and writes the counts and the refresh output to the job summary`, async () => {
    const root = tempProject({ "Pulumi.staging.yaml": STAGING_STACK });
    const summary = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "summary-")), "step-summary.md");
    const auto = new FakeAutomation(() => ({
      previewRefresh: (onOutput) => {
        onOutput(REFRESH_OUTPUT);
        return { same: 12, update: 1 };
      },
    }));
    const ctx = testContext(root, auto);
    expect(await drift(ctx, { stack: "staging", summaryFile: summary })).toBe(EXIT.drift);
    const md = fs.readFileSync(summary, "utf8");
    expect(md).toContain("### :warning: Drift: stack `staging`");
    expect(md).toContain("| update | 1 |");
    expect(md).toContain("~  docker:index/container:Container api-1 updated [diff: ~memory]");
    expect(ctx.lines.join("\n")).toContain('Drift on stack "staging": 1 to update');
    expect(auto.ops()).toEqual(["cliVersion", "openStack", "previewRefresh"]);
  });

  it(`no drift exits ${EXIT.ok} and says so in the summary`, async () => {
    const root = tempProject({ "Pulumi.staging.yaml": STAGING_STACK });
    const summary = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "summary-")), "step-summary.md");
    const auto = new FakeAutomation(() => ({}));
    expect(await drift(testContext(root, auto), { stack: "staging", summaryFile: summary })).toBe(EXIT.ok);
    expect(fs.readFileSync(summary, "utf8")).toContain("No drift");
  });

  it("a refresh that cannot run is a failure of its own, not 'no drift'", async () => {
    const root = tempProject({ "Pulumi.staging.yaml": STAGING_STACK });
    const auto = new FakeAutomation(() => ({
      previewRefresh: () => {
        throw commandError("error: ssh: connect to host staging.example.com port 22: Connection refused");
      },
    }));
    const summary = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "summary-")), "step-summary.md");
    const err = await drift(testContext(root, auto), { stack: "staging", summaryFile: summary }).catch((e) => e);
    expect(err.exitCode).toBe(EXIT.updateFailed);
    expect(err.message).toContain("Connection refused");
    expect(fs.readFileSync(summary, "utf8")).toContain("Drift check failed: stack `staging`");
  });

  it("the summary's code fence survives backticks in the output", () => {
    const md = renderDriftSummary("staging", [["update", 1]], "a ```fenced``` line");
    expect(md).toContain("````\na ```fenced``` line\n````");
  });
});
