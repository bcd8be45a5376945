import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { EXIT } from "../ops/shared/errors";
import { runOps, STACK_TRACE } from "./helpers/cli";

/** A PATH with nothing on it: no pulumi, wherever the tests run. */
const noTools = { PATH: fs.mkdtempSync(path.join(os.tmpdir(), "empty-path-")) };

describe("ops commands: bad input through the CLI", () => {
  // Each command process loads the Pulumi SDK (seconds); the flows themselves are tested in-process.
  for (const args of [["status", "--stack", "dev"], ["up:dev"]]) {
    it(`${args[0]} without a Pulumi CLI on PATH says how to install it`, () => {
      const r = runOps(args, { env: noTools });
      expect(r.code).toBe(EXIT.prerequisite);
      expect(r.stderr).toContain("No Pulumi CLI on PATH.");
      expect(r.stderr).toContain("https://www.pulumi.com/docs/iac/download-install/");
      expect(r.stderr).not.toMatch(STACK_TRACE);
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
