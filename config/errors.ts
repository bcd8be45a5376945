import * as pulumi from "@pulumi/pulumi";

/** One problem in a stack's configuration, written for the person who fixes it. */
export interface ConfigProblem {
  /** The full key in the stack file's own spelling: `appstack:postgres.image`. */
  key: string;
  /** The offending value as JSON, or undefined when absent or secret. */
  value?: string;
  /** What is wrong and what was expected. */
  problem: string;
  /** The `pulumi config` commands that fix it, joined with `&&`, ready to paste. */
  fix: string;
  /** What the commands cannot say: the value Pulumi will ask for, a choice, an example. */
  note?: string;
}

/**
 * Every problem of a stack's configuration at once. A `RunError`, so the Pulumi
 * language host prints the message without a stack trace.
 */
export class ConfigError extends pulumi.RunError {
  readonly problems: ConfigProblem[];
  readonly stack: string;

  constructor(stack: string, problems: ConfigProblem[], source?: string) {
    super(formatProblems(stack, problems, source));
    this.name = "ConfigError";
    this.problems = problems;
    this.stack = stack;
  }

  static isInstance(err: unknown): err is ConfigError {
    return err instanceof Error && err.name === "ConfigError" && Array.isArray((err as ConfigError).problems);
  }
}

export function formatProblems(stack: string, problems: ConfigProblem[], source = `Pulumi.${stack}.yaml`): string {
  const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
  const lines = [`The configuration of stack "${stack}" (${source}) has ${count}; nothing was deployed.`, ""];
  problems.forEach((p, i) => {
    lines.push(`${i + 1}. ${p.key}${p.value === undefined ? "" : ` = ${p.value}`}`);
    lines.push(`   problem: ${p.problem}`);
    lines.push(`   fix:     ${p.fix}`);
    if (p.note) lines.push(`   note:    ${p.note}`);
  });
  return lines.join("\n");
}
