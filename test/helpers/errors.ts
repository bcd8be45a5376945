import { expect } from "vitest";
import { UserError } from "../../ops/shared/errors";

/** The UserError a call throws, for asserting its message and exit code; fails if it throws nothing or something else. */
export function failure(fn: () => unknown): UserError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return err as UserError;
  }
  throw new Error("expected a UserError");
}

/** The UserError a promise rejects with; fails if it resolves or rejects with something else. */
export async function rejection(promise: Promise<unknown>): Promise<UserError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UserError);
  return err as UserError;
}
