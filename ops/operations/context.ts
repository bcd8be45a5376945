import { localAutomation, type Automation } from "./automation";
import { localGit, type Git } from "../shared/git";
import { realClock, type Clock } from "./lock-wait";
import { agreeOnTerminal, confirmOnTerminal } from "./prompt";

/** What the deploy, rollback, status and drift flows run against; tests swap in fakes. */
export interface OpsContext {
  root: string;
  automation: Automation;
  /** One line of the command's own output. */
  log(line: string): void;
  /** The engine's output, streamed as it arrives. */
  stream(chunk: string): void;
  confirm(question: string): Promise<boolean>;
  clock: Clock;
  git(root: string): Git;
}

export function defaultContext(root: string): OpsContext {
  return {
    root,
    // Without a Pulumi CLI on PATH, the commands offer to install the one the SDK expects into the project.
    automation: localAutomation({ root, log: (line) => console.error(line), consent: agreeOnTerminal }),
    log: (line) => console.log(line),
    stream: (chunk) => process.stdout.write(chunk),
    confirm: confirmOnTerminal,
    clock: realClock,
    git: localGit,
  };
}
