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
  /** A service failed its health probe (status, the deploy's smoke check). */
  unhealthy: 4,
  /** The engine reported a failed update or preview. */
  updateFailed: 5,
  /** Another update still held the stack's lock when --lock-timeout ran out. */
  locked: 6,
  /** Something the command needs is missing: the Pulumi CLI, git, docker, a passphrase, a clean tree, a commit. */
  prerequisite: 7,
  /** Rollback has nothing to go back to: no earlier successful update, or the target is the current version. */
  noRollbackTarget: 8,
  /** `drift`: the refresh preview found resources that changed outside Pulumi. */
  drift: 9,
  /** The policy pack found a mandatory violation: the stack is not ready to deploy. */
  policy: 10,
  /** `diff`: the change deletes or replaces stateful resources (and `--allow-destructive` was not given). */
  destructive: 11,
  /** `diff`: the base ref names no commit, or this is not a git checkout. */
  badBaseRef: 12,
  /** `diff`: the program does not evaluate at the base ref (invalid config there, or a program error). */
  baseDoesNotEvaluate: 13,
  /** `diff`: the stack exists on one side only. */
  stackOnOneSide: 14,
  /** `deploy`'s preflight: the Docker engine at `docker.host` does not answer, or an ssh:// host's key is not known. Nothing was changed. */
  dockerHost: 15,
  /** `deploy`'s preflight: the Docker engine at `docker.host` is older than the oldest appstack supports (Docker 20.10, API 1.41). Nothing was changed. */
  engineTooOld: 16,
} as const;
