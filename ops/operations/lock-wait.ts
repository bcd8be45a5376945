import { commandErrorText, isConcurrentUpdate } from "./automation";
import { EXIT, UserError } from "../shared/errors";

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export interface LockWaitOptions {
  stack: string;
  /** What is being attempted, for the messages ("update", "preview"). */
  operation: string;
  /** Give up after this many seconds of waiting; 0 fails at the first conflict. */
  timeoutSeconds: number;
  /** Pause between attempts. @default LOCK_RETRY_MS */
  intervalMs?: number;
  log(line: string): void;
  clock?: Clock;
}

/** How long deploy and rollback wait between attempts while another update holds the stack. */
export const LOCK_RETRY_MS = 5000;

/** The lock holder lines the CLI prints ("created by user@host (pid 123) at ..."), without the boilerplate. */
function lockHolders(err: unknown): string {
  const lines = commandErrorText(err)
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => /created by|in progress|locked/i.test(l));
  return lines.length ? lines.join("\n  ") : "another update is in progress";
}

/**
 * Runs `op`; while the Automation API reports that another update holds the
 * stack (ConcurrentUpdateError), waits and tries again, up to the timeout.
 * Any other failure is passed through at once.
 */
export async function withLockWait<T>(op: () => Promise<T>, opts: LockWaitOptions): Promise<T> {
  const clock = opts.clock ?? realClock;
  const interval = opts.intervalMs ?? LOCK_RETRY_MS;
  const start = clock.now();
  const deadline = start + opts.timeoutSeconds * 1000;
  // Bounded even if the clock misbehaves: never more attempts than the timeout allows.
  const maxAttempts = Math.ceil((opts.timeoutSeconds * 1000) / Math.max(interval, 1)) + 1;
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      if (!isConcurrentUpdate(err)) throw err;
      const now = clock.now();
      if (now >= deadline || attempt >= maxAttempts) {
        const waited = Math.round((now - start) / 1000);
        throw new UserError(
          `Stack "${opts.stack}" is locked by another update; gave up after ${waited} s (--lock-timeout ${opts.timeoutSeconds}).\n` +
            `  ${lockHolders(err)}\n` +
            `Wait for it to finish and run the ${opts.operation} again, or raise --lock-timeout. If no update is running ` +
            `(a crashed run left the lock behind), release it with: pulumi cancel --stack ${opts.stack}`,
          EXIT.locked,
        );
      }
      const pause = Math.min(interval, deadline - now);
      const left = Math.ceil((deadline - now) / 1000);
      opts.log(
        `Stack "${opts.stack}" is locked by another update (${lockHolders(err)}); ` +
          `waiting ${Math.ceil(pause / 1000)} s before attempt ${attempt + 1} (${left} s left of --lock-timeout).`,
      );
      await clock.sleep(pause);
    }
  }
}
