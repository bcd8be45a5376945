import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { EXIT } from "../ops/shared/errors";
import { CLI_DIR, SDK_VERSION } from "../ops/operations/automation";
import { ROOT, runOps, STACK_TRACE } from "./helpers/cli";

/** A PATH with nothing on it: no pulumi, wherever the tests run. */
const noTools = { PATH: fs.mkdtempSync(path.join(os.tmpdir(), "empty-path-")) };

/**
 * No Pulumi CLI, and no way to download one: this machine has no internet;
 * the proxy (a closed port, which Node's fetch honours with NODE_USE_ENV_PROXY)
 * makes the download fail the same way on a machine that has.
 */
const noCliNoNetwork = { ...noTools, NODE_USE_ENV_PROXY: "1", HTTPS_PROXY: "http://127.0.0.1:9", HTTP_PROXY: "http://127.0.0.1:9" };

describe("ops commands: bad input through the CLI", () => {
  // Each command process loads the Pulumi SDK (seconds); the flows themselves are tested in-process.
  for (const args of [["status", "--stack", "dev"], ["up:dev"]]) {
    it(`${args[0]} without a Pulumi CLI on PATH tries to install the one the SDK expects; where the download fails it says so, with the manual command, exit 7`, () => {
      const cliDir = path.join(ROOT, CLI_DIR);
      const existed = fs.existsSync(cliDir);
      const r = runOps(args, { env: noCliNoNetwork });
      expect(r.code).toBe(EXIT.prerequisite);
      // What it will do, before it does it (no terminal here: it goes ahead).
      expect(r.stderr).toContain(
        `No Pulumi CLI on PATH. appstack can install Pulumi CLI ${SDK_VERSION} (the version @pulumi/pulumi ${SDK_VERSION} expects) into .pulumi-cli/${SDK_VERSION}/ in this project (git-ignored), with the Automation API's PulumiCommand.install()`,
      );
      // PulumiCommand.install() ran for real and its download failed.
      expect(r.stderr).toContain(
        `No Pulumi CLI on PATH, and installing Pulumi CLI ${SDK_VERSION} into .pulumi-cli/${SDK_VERSION}/ failed: Failed to download https://get.pulumi.com/install.sh: fetch failed\n` +
          "The download needs internet access from this machine.\n" +
          `Install it yourself, then run the command again: curl -fsSL https://get.pulumi.com | sh -s -- --version ${SDK_VERSION} (or see https://www.pulumi.com/docs/iac/download-install/)`,
      );
      expect(r.stderr).not.toMatch(STACK_TRACE);
      if (!existed) expect(fs.existsSync(cliDir)).toBe(false);
    });
  }

  it("an unknown stack names the stacks there are", () => {
    for (const cmd of ["rollback", "restore"]) {
      const r = runOps([cmd, "--stack", "prod"], { env: noTools });
      expect(r.code, cmd).toBe(EXIT.usage);
      expect(r.stderr).toContain('Unknown stack "prod"');
      expect(r.stderr).toContain("Stacks in this project: dev, production, staging.");
      expect(r.stderr).not.toMatch(STACK_TRACE);
    }
  });

  it("options are checked before anything runs", () => {
    const cases: [string[], RegExp][] = [
      [["rollback", "--stack", "staging", "--to", "latest"], /--to must be a whole number/],
      [["deploy", "--stack", "staging", "--lock-timeout", "soon"], /--lock-timeout must be a whole number from 0/],
      [["deploy", "--stack", "staging", "--force"], /Unknown option '--force'/],
    ];
    for (const [args, message] of cases) {
      const r = runOps(args, { env: noTools });
      expect(r.code, args.join(" ")).toBe(EXIT.usage);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(STACK_TRACE);
    }
  });

  it("--help lists the operations commands", () => {
    const r = runOps(["--help"]);
    for (const cmd of ["deploy", "up:dev", "rollback", "status", "drift", "restore"]) expect(r.stdout).toContain(`npm run ${cmd} --`);
  });
});
