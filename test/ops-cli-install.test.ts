import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CLI_DIR, localAutomation, SDK_VERSION } from "../ops/operations/automation";
import { EXIT, UserError } from "../ops/shared/errors";

/**
 * The Pulumi CLI that installs itself, in-process with the real SDK calls
 * (`PulumiCommand.get`): an earlier install in the project is used, and a
 * user who declines gets the manual command. The download itself, which
 * fails on this machine, is tested through the CLI in test/ops-cli.test.ts.
 */

let root: string;
const savedPath = process.env.PATH;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-cli-install-"));
  // No pulumi on PATH; `sh` stays reachable for the stand-in CLI below.
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-path-"));
  fs.symlinkSync("/bin/sh", path.join(bin, "sh"));
  process.env.PATH = bin;
});
afterEach(() => {
  process.env.PATH = savedPath;
  fs.rmSync(root, { recursive: true, force: true });
});

describe("a Pulumi CLI that installs itself", () => {
  it("declined: nothing is installed; exit 7 with the manual command for the SDK's version", async () => {
    const lines: string[] = [];
    const questions: string[] = [];
    const auto = localAutomation({ root, log: (l) => lines.push(l), consent: async (q) => (questions.push(q), false) });
    const err = await auto.cliVersion().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(EXIT.prerequisite);
    expect((err as UserError).message).toBe(
      "No Pulumi CLI on PATH, and none was installed.\n" +
        `Install it yourself, then run the command again: curl -fsSL https://get.pulumi.com | sh -s -- --version ${SDK_VERSION} ` +
        "(or see https://www.pulumi.com/docs/iac/download-install/), and check `pulumi version` in a new shell.",
    );
    expect(lines[0]).toMatch(/^No Pulumi CLI on PATH\. appstack can install Pulumi CLI \d+\.\d+\.\d+ /);
    expect(questions).toEqual([`Install Pulumi CLI ${SDK_VERSION} into ${CLI_DIR}/${SDK_VERSION}/?`]);
    expect(fs.existsSync(path.join(root, CLI_DIR))).toBe(false);
  });

  it("an earlier install in the project's folder is used without asking", async () => {
    const bin = path.join(root, CLI_DIR, SDK_VERSION, "bin");
    fs.mkdirSync(bin, { recursive: true });
    fs.writeFileSync(path.join(bin, "pulumi"), `#!/bin/sh\necho v${SDK_VERSION}\n`, { mode: 0o755 });
    const questions: string[] = [];
    const auto = localAutomation({ root, log: () => undefined, consent: async (q) => (questions.push(q), true) });
    expect(await auto.cliVersion()).toBe(SDK_VERSION);
    expect(questions).toEqual([]);
  });

  it("without the install option (tests, library use) it only says how to install", async () => {
    const err = await localAutomation().cliVersion().catch((e: unknown) => e);
    expect((err as UserError).message).toMatch(/^No Pulumi CLI on PATH\.\nInstall the Pulumi CLI/);
  });
});
