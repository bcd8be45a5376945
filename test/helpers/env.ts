import { afterAll } from "vitest";

/**
 * Puts these environment variables back as they were once the calling test
 * file ends. A worker runs file after file in one process (vitest.config.mts),
 * so a file that sets or deletes a variable would change it for the next one.
 */
export function restoreEnvAfterFile(...names: string[]): void {
  const saved = new Map(names.map((n) => [n, process.env[n]]));
  afterAll(() => {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
}
