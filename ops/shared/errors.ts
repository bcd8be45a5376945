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

/**
 * Exit codes the ops commands share, so scripts and workflows can tell
 * failures apart. `meaning` is what the docs print: their exit-code tables are
 * rendered from here (`renderExitCodes`), and a test holds them to it.
 */
export const EXIT_CODES = {
  ok: { code: 0, meaning: "success: the command did what it was asked (`policy`: the stack is ready; `diff`: no destructive change, or `--allow-destructive`)" },
  invalidConfig: { code: 1, meaning: "the stack's configuration does not validate (every problem is listed, each with its fix)" },
  usage: { code: 2, meaning: "bad arguments, an unknown stack, an unreadable stack file" },
  programError: { code: 3, meaning: "the program failed while it was evaluated" },
  unhealthy: { code: 4, meaning: "a service failed its health probe, or the newest local or off-host backup is older than twice `backup.schedule` (`status`, the deploy's smoke check)" },
  updateFailed: { code: 5, meaning: "the engine reported a failed update or preview (`pulumi up`, `preview`)" },
  locked: { code: 6, meaning: "another update still held the stack's lock when `--lock-timeout` ran out" },
  prerequisite: { code: 7, meaning: "something the command needs is missing: the Pulumi CLI, git, docker, a passphrase, a clean working tree, the recorded commit" },
  noRollbackTarget: { code: 8, meaning: "`rollback` has nothing to go back to: no earlier successful update, or the target is the current version" },
  drift: { code: 9, meaning: "`drift`: the refresh preview found resources that changed outside Pulumi" },
  policy: { code: 10, meaning: "`policy`: a mandatory violation, the stack is not ready to deploy" },
  destructive: { code: 11, meaning: "`diff`: the change deletes or replaces stateful resources (listed at the top), and `--allow-destructive` was not given" },
  badBaseRef: { code: 12, meaning: "`diff`: the base ref names no commit, or this is not a git checkout" },
  baseDoesNotEvaluate: { code: 13, meaning: "`diff`: the program does not evaluate at the base ref (its config is invalid there, or it fails); the message is that side's" },
  stackOnOneSide: { code: 14, meaning: "`diff`: the stack exists on one side only (new or removed in this change)" },
  dockerHost: { code: 15, meaning: "the Docker engine at `docker.host` does not answer, or an ssh:// host's key is not known (`deploy`'s preflight, `logs`, `exec`); nothing was changed" },
  engineTooOld: { code: 16, meaning: "`deploy`'s preflight: the Docker engine at `docker.host` is older than Docker 20.10 (Engine API 1.41), the oldest appstack supports; nothing was changed" },
  notDeployed: { code: 17, meaning: "`logs`, `exec`: the stack was never deployed (the backend has no such stack, or no update of it succeeded), or the service has no running container on the Docker host" },
  registry: { code: 18, meaning: "`release --tag`: no registry answered for the image, or it does not know the tag; the stack file was not changed" },
  backup: { code: 19, meaning: "`restore --offsite` or `--drill`: the off-host repository could not be read (restic's reason is printed), or a snapshot did not restore (the drill's throwaway database is dropped either way)" },
  swarm: {
    code: 20,
    meaning:
      "`deploy`'s preflight (`docker.mode: swarm`): `docker.host` is not a swarm manager, a node label the stack places a service by is on no node (a data store's must be on the node at `docker.host` alone), or a host-mode data store or edge of the stack still runs; nothing was changed",
  },
  oneOffFailed: { code: 125, meaning: "`exec`: the Docker engine could not create or start the one-off container (the code `docker run` uses); once the command runs, `exec` exits with the command's own code" },
} as const satisfies Record<string, { code: number; meaning: string }>;

export type ExitName = keyof typeof EXIT_CODES;

/** The codes by name: `EXIT.policy` is 10. */
export const EXIT = Object.fromEntries(Object.entries(EXIT_CODES).map(([name, { code }]) => [name, code])) as {
  readonly [K in ExitName]: (typeof EXIT_CODES)[K]["code"];
};

/** The docs' exit-code table: every code, or the ones named, in order. */
export function renderExitCodes(names: readonly ExitName[] = Object.keys(EXIT_CODES) as ExitName[]): string {
  const rows = names.map((name) => `| \`${EXIT_CODES[name].code}\` | ${EXIT_CODES[name].meaning} |`);
  return ["| code | meaning |", "| --- | --- |", ...rows].join("\n");
}
