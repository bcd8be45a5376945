import * as readline from "node:readline/promises";
import { EXIT, UserError } from "../shared/errors";

/** Asks a yes/no question on the terminal; without one, the caller must have been given --yes. */
export async function confirmOnTerminal(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) {
    throw new UserError(`${question}\nNo terminal to ask on: re-run with --yes to proceed.`, EXIT.usage);
  }
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

/**
 * Asks a question whose answer defaults to yes, on a terminal; without one
 * (CI, a pipe) the answer is yes: the caller has already said what it will do.
 */
export async function agreeOnTerminal(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return true;
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
  try {
    return !/^n(o)?$/i.test((await rl.question(`${question} [Y/n] `)).trim());
  } finally {
    rl.close();
  }
}
