import type { OutputMap } from "@pulumi/pulumi/automation";
import { step, StackNotInBackend } from "./automation";
import type { OpsContext } from "./context";
import { EXIT, UserError } from "../shared/errors";
import { stackEnv } from "./stack-env";

export interface Deployed {
  outputs: OutputMap;
  /** Who the backend says is running this (`pulumi whoami`), when it says. */
  user?: string;
}

/**
 * The outputs of a stack that has been deployed: a stack the backend does
 * not have, or one without outputs (no update has succeeded yet), is exit 16
 * with the command that deploys it. Secret outputs are decrypted in memory by
 * the CLI; nothing here prints them.
 */
export async function deployedOutputs(ctx: OpsContext, stack: string): Promise<Deployed> {
  const env = stackEnv(ctx.root, stack);
  await ctx.automation.cliVersion();
  const deployIt = `Deploy it first: npm run ${env.environment === "dev" ? "up:dev" : `deploy -- --stack ${stack}`}`;
  let handle;
  try {
    handle = await ctx.automation.openStack({ stackName: stack, workDir: ctx.root, envVars: env.envVars });
  } catch (err) {
    if (err instanceof StackNotInBackend) {
      throw new UserError(`Stack "${stack}" was never deployed: the backend this checkout uses has no such stack.\n${deployIt}`, EXIT.notDeployed);
    }
    throw err;
  }
  const outputs = await step(`Reading the outputs of stack "${stack}"`, () => handle.outputs(), EXIT.prerequisite);
  if (Object.keys(outputs).length === 0) {
    throw new UserError(`Stack "${stack}" was never deployed: it has no outputs (no update of it has succeeded).\n${deployIt}`, EXIT.notDeployed);
  }
  const who = await handle.whoAmI().catch(() => undefined);
  return { outputs, user: who?.user };
}
