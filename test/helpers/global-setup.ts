import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { TestProject } from "vitest/node";

/**
 * Once per `npm test` (vitest.config.mts `globalSetup`): a folder in which the
 * workers share what several test files need and each would otherwise compute
 * for itself (test/helpers/shared-results.ts), removed when the run ends.
 */
export default function setup(project: TestProject): () => void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-test-run-"));
  project.provide("sharedResultsDir", dir);
  return () => fs.rmSync(dir, { recursive: true, force: true });
}
