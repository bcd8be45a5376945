import { ConcurrentUpdateError } from "@pulumi/pulumi/automation";
import { describe, expect, it } from "vitest";
import { isConcurrentUpdate } from "../ops/operations/automation";
import { EXIT, UserError } from "../ops/shared/errors";
import { withLockWait } from "../ops/operations/lock-wait";
import { commandError, concurrentUpdateError, DIY_LOCK_STDERR, FakeClock } from "./helpers/automation";

const CLOUD_CONFLICT = "error: [409] Conflict: Another update is currently in progress.";

describe("the Automation API's concurrent-update error", () => {
  it("the SDK turns both backends' lock messages into ConcurrentUpdateError, and we recognise it", () => {
    for (const stderr of [DIY_LOCK_STDERR, CLOUD_CONFLICT]) {
      const err = concurrentUpdateError(stderr);
      expect(err).toBeInstanceOf(ConcurrentUpdateError);
      expect(err.name).toBe("ConcurrentUpdateError");
      expect(isConcurrentUpdate(err)).toBe(true);
    }
    expect(isConcurrentUpdate(commandError("error: update failed"))).toBe(false);
  });
});

describe("waiting for another update's lock", () => {
  const lockOpts = (clock: FakeClock, log: string[], timeoutSeconds = 60) => ({
    stack: "staging",
    operation: "deploy",
    timeoutSeconds,
    intervalMs: 5000,
    log: (l: string) => log.push(l),
    clock,
  });

  it("retries while the stack is locked, says so each time, and returns the result once it is free", async () => {
    const clock = new FakeClock();
    const log: string[] = [];
    let attempts = 0;
    const result = await withLockWait(async () => {
      if (++attempts <= 3) throw concurrentUpdateError(DIY_LOCK_STDERR);
      return "updated";
    }, lockOpts(clock, log));
    expect(result).toBe("updated");
    expect(attempts).toBe(4);
    expect(clock.sleeps).toEqual([5000, 5000, 5000]);
    expect(log).toHaveLength(3);
    expect(log[0]).toContain('Stack "staging" is locked by another update');
    expect(log[0]).toContain("created by ci@runner-7 (pid 4242)");
    expect(log[0]).toContain("before attempt 2 (60 s left of --lock-timeout)");
  });

  it("gives up at --lock-timeout with the lock holder and the way out", async () => {
    const clock = new FakeClock();
    const log: string[] = [];
    let attempts = 0;
    const err = await withLockWait(async () => {
      attempts++;
      throw concurrentUpdateError(DIY_LOCK_STDERR);
    }, lockOpts(clock, log, 12)).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.exitCode).toBe(EXIT.locked);
    expect(err.message).toContain("gave up after 12 s (--lock-timeout 12)");
    expect(err.message).toContain("created by ci@runner-7");
    expect(err.message).toContain("pulumi cancel --stack staging");
    // 0 s, 5 s, 10 s, then the last 2 s: never past the timeout.
    expect(clock.sleeps).toEqual([5000, 5000, 2000]);
    expect(attempts).toBe(4);
  });

  it("--lock-timeout 0 fails at the first conflict", async () => {
    const clock = new FakeClock();
    let attempts = 0;
    const err = await withLockWait(async () => {
      attempts++;
      throw concurrentUpdateError(CLOUD_CONFLICT);
    }, lockOpts(clock, [], 0)).catch((e) => e);
    expect(err.exitCode).toBe(EXIT.locked);
    expect(attempts).toBe(1);
    expect(clock.sleeps).toEqual([]);
  });

  it("any other failure passes through at once, untouched", async () => {
    const clock = new FakeClock();
    let attempts = 0;
    const failure = commandError("error: docker: ssh: connect to host staging.example.com port 22: Connection refused");
    const err = await withLockWait(async () => {
      attempts++;
      throw failure;
    }, lockOpts(clock, [])).catch((e) => e);
    expect(err).toBe(failure);
    expect(attempts).toBe(1);
  });
});
