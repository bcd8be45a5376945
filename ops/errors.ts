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
  /** The policy pack found a mandatory violation: the stack is not ready to deploy. */
  policy: 5,
} as const;
