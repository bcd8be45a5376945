import * as fs from "node:fs";
import * as path from "node:path";
import type { ConcurrentUpdateError, ConfigMap, Deployment, OpMap, OutputMap, UpdateSummary } from "@pulumi/pulumi/automation";
import type { Automation, OpenStackOptions, StackHandle } from "../../ops/operations/automation";
import type { OpsContext } from "../../ops/operations/context";
import { localGit } from "../../ops/shared/git";
import type { Clock } from "../../ops/operations/lock-wait";

const FIXTURES = path.join(__dirname, "../fixtures/automation");

/** Parses `pulumi stack history --json` text exactly as Stack.history() does (dates revived). */
export function parseHistory(json: string): UpdateSummary[] {
  return JSON.parse(json, (key, value) => (key === "startTime" || key === "endTime" ? new Date(value) : value)) as UpdateSummary[];
}

/** One `update` entry as Stack.history() returns it; version N started on 2025-06-N. */
export function updateEntry(version: number, result: UpdateSummary["result"], commit: string | undefined, config: ConfigMap = {}): UpdateSummary {
  return {
    version,
    kind: "update",
    result,
    message: "",
    startTime: new Date(Date.UTC(2025, 5, version)),
    endTime: new Date(Date.UTC(2025, 5, version, 0, 1)),
    environment: commit ? { "git.head": commit, "git.dirty": "false", "exec.kind": "auto.local" } : {},
    config,
  };
}

export function historyFixture(name = "stack-history.staging.json"): UpdateSummary[] {
  return parseHistory(fs.readFileSync(path.join(FIXTURES, name), "utf8"));
}

/**
 * The SDK's own ConcurrentUpdateError, made the way the SDK makes it: from a
 * failed command's stderr (errors.js createCommandError). Both helpers are
 * internal in the SDK's typings, hence the require.
 */
export function concurrentUpdateError(stderr: string): ConcurrentUpdateError {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createCommandError } = require("@pulumi/pulumi/automation/errors");
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { CommandResult } = require("@pulumi/pulumi/automation/cmd");
  return createCommandError(new CommandResult("", stderr, 255));
}

/** A failed command that is not a lock conflict, as the SDK raises it. */
export function commandError(stderr: string): Error {
  return concurrentUpdateError(stderr) as unknown as Error;
}

export const DIY_LOCK_STDERR =
  "error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or delete the lock file with `pulumi cancel`.\n" +
  "  file:///home/ci/.pulumi/locks/organization/appstack/staging/8f1c.json: created by ci@runner-7 (pid 4242) at 2025-06-03T09:00:00Z";

export interface Call {
  op: string;
  workDir: string;
  detail?: unknown;
}

/** Scripted behaviour per working directory; unscripted calls succeed with empty results. */
export interface FakeStackScript {
  history?: UpdateSummary[];
  outputs?: OutputMap;
  /** Config values by key, secure ones as `pulumi config get` decrypts them. */
  config?: Record<string, string>;
  state?: Deployment | Error;
  /** Called for each up(); throw to fail it. */
  up?(attempt: number, workDir: string): { outputs?: OutputMap; version?: number };
  preview?(attempt: number, workDir: string): OpMap;
  previewRefresh?(onOutput: (s: string) => void): OpMap;
}

/** An Automation that records every call in order and runs the script instead of the CLI. */
export class FakeAutomation implements Automation {
  readonly calls: Call[] = [];
  cli: string | Error = "3.170.0";
  constructor(private readonly script: (workDir: string) => FakeStackScript) {}

  async cliVersion(): Promise<string> {
    this.calls.push({ op: "cliVersion", workDir: "" });
    if (this.cli instanceof Error) throw this.cli;
    return this.cli;
  }

  async openStack(opts: OpenStackOptions): Promise<StackHandle> {
    this.calls.push({ op: "openStack", workDir: opts.workDir, detail: opts });
    const s = this.script(opts.workDir);
    const record = (op: string, detail?: unknown) => this.calls.push({ op, workDir: opts.workDir, detail });
    let ups = 0;
    let previews = 0;
    return {
      name: opts.stackName,
      whoAmI: async () => ({ user: "ci", url: "file://~" }),
      exportState: async () => {
        record("exportState");
        if (s.state instanceof Error) throw s.state;
        return s.state ?? { version: 3, deployment: { manifest: {}, resources: [] } };
      },
      history: async () => {
        record("history");
        return s.history ?? [];
      },
      outputs: async () => {
        record("outputs");
        return s.outputs ?? {};
      },
      setAllConfig: async (config: ConfigMap) => {
        record("setAllConfig", config);
      },
      configValues: async (keys: string[]) => {
        // Which keys, never their values: a test's record of calls must not hold a secret.
        record("configValues", keys);
        const missing = keys.filter((k) => s.config?.[k] === undefined);
        if (missing.length) throw new Error(`error: configuration key '${missing[0]}' not found for stack`);
        return Object.fromEntries(keys.map((k) => [k, s.config![k]]));
      },
      preview: async ({ onOutput }) => {
        record("preview");
        onOutput("Previewing update (fake)\n");
        return { changeSummary: s.preview?.(++previews, opts.workDir) ?? { same: 3 } };
      },
      up: async ({ onOutput, message }) => {
        record("up", { message });
        onOutput("Updating (fake)\n");
        const r = s.up?.(++ups, opts.workDir) ?? {};
        return {
          outputs: r.outputs ?? s.outputs ?? {},
          summary: { version: r.version ?? 1, kind: "update", result: "succeeded" } as UpdateSummary,
        };
      },
      previewRefresh: async ({ onOutput }) => {
        record("previewRefresh");
        return { changeSummary: s.previewRefresh?.(onOutput) ?? { same: 3 } };
      },
    };
  }

  ops(): string[] {
    return this.calls.map((c) => c.op);
  }
}

/** A clock whose sleep only advances time, so waits cost nothing; every pause is recorded. */
export class FakeClock implements Clock {
  readonly sleeps: number[] = [];
  constructor(public t = Date.parse("2025-06-03T09:00:00Z")) {}
  now(): number {
    return this.t;
  }
  async sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.t += ms;
  }
}

export interface TestContext extends OpsContext {
  lines: string[];
  streamed: string[];
  questions: string[];
}

export function testContext(root: string, automation: Automation, over: Partial<OpsContext> = {}): TestContext {
  const lines: string[] = [];
  const streamed: string[] = [];
  const questions: string[] = [];
  return {
    root,
    automation,
    log: (l) => lines.push(l),
    stream: (c) => streamed.push(c),
    confirm: async (q) => {
      questions.push(q);
      return false;
    },
    clock: new FakeClock(),
    git: localGit,
    ...over,
    lines,
    streamed,
    questions,
  };
}
