/**
 * An error the user can fix: printed as its message alone (no stack trace),
 * and the process exits with `exitCode`.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.usage,
  ) {
    super(message);
    this.name = "UserError";
  }
}

/** Exit codes the ops commands share, so scripts and workflows can tell failures apart. */
export const EXIT = {
  ok: 0,
  /** The stack's configuration does not validate. */
  invalidConfig: 1,
  /** Bad arguments, unknown stack, unreadable stack file. */
  usage: 2,
  /** The program failed while it was evaluated. */
  programError: 3,
  /** `diff`: the change deletes or replaces stateful resources (and `--allow-destructive` was not given). */
  destructive: 4,
  /** The policy pack found a mandatory violation: the stack is not ready to deploy. */
  policy: 5,
  /** `diff`: the base ref names no commit, or this is not a git checkout. */
  badBaseRef: 6,
  /** `diff`: the program does not evaluate at the base ref (invalid config there, or a program error). */
  baseDoesNotEvaluate: 7,
  /** `diff`: the stack exists on one side only. */
  stackOnOneSide: 8,
} as const;
