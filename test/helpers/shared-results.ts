import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { inject } from "vitest";

declare module "vitest" {
  export interface ProvidedContext {
    /** This run's folder for results the workers share (test/helpers/global-setup.ts). */
    sharedResultsDir: string;
  }
}

/**
 * One computation per `npm test`, whichever worker and test file asks first:
 * the plan of a repository stack, a declared evaluation. The first caller
 * computes and writes the result (JSON) to the run's folder; callers in the
 * other worker wait for that file, callers in the same worker for the same
 * promise. Each caller gets its own copy, free to change.
 *
 * Only for what does not depend on the caller: the key must name everything
 * the result depends on.
 */
export async function sharedResult<T>(key: string, compute: () => Promise<T>): Promise<T> {
  let text = inWorker.get(key);
  if (!text) {
    text = computeOnce(key, compute);
    inWorker.set(key, text);
  }
  return JSON.parse(await text) as T;
}

/** Kept on globalThis: vi.resetModules() (a fresh program per evaluation) must not drop it. */
const inWorker: Map<string, Promise<string>> = ((globalThis as Record<symbol, unknown>)[Symbol.for("appstack.sharedResults")] ??= new Map()) as Map<
  string,
  Promise<string>
>;

const WAIT_MS = 300_000;

async function computeOnce<T>(key: string, compute: () => Promise<T>): Promise<string> {
  const dir = inject("sharedResultsDir");
  // Without the global setup (another config): computed once per worker.
  if (!dir) return JSON.stringify(await compute());
  const base = path.join(dir, createHash("sha256").update(key).digest("hex").slice(0, 24));
  try {
    fs.mkdirSync(`${base}.computing`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    return waitFor(base, key);
  }
  try {
    const text = JSON.stringify(await compute());
    fs.writeFileSync(`${base}.tmp`, text);
    fs.renameSync(`${base}.tmp`, `${base}.json`);
    return text;
  } catch (err) {
    fs.writeFileSync(`${base}.error`, String((err as Error)?.stack ?? err));
    throw err;
  }
}

async function waitFor(base: string, key: string): Promise<string> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    if (fs.existsSync(`${base}.json`)) return fs.readFileSync(`${base}.json`, "utf8");
    if (fs.existsSync(`${base}.error`)) throw new Error(`${key} failed in another worker:\n${fs.readFileSync(`${base}.error`, "utf8")}`);
    if (Date.now() > deadline) throw new Error(`${key}: no result from another worker after ${WAIT_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
