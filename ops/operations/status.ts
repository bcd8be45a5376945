import { step } from "./automation";
import type { OpsContext } from "./context";
import { EXIT } from "../shared/errors";
import { endpointsFromOutputs, probeAll, renderStatusTable } from "./health";
import { stackEnv } from "./stack-env";

/** Probes every health URL the stack's outputs name, once, and prints one row per service. */
export async function status(ctx: OpsContext, opts: { stack: string; timeoutMs: number }): Promise<number> {
  const env = stackEnv(ctx.root, opts.stack);
  await ctx.automation.cliVersion();
  const stack = await ctx.automation.openStack({ stackName: opts.stack, workDir: ctx.root, envVars: env.envVars });
  const outputs = await step(`Reading the outputs of stack "${opts.stack}"`, () => stack.outputs(), EXIT.prerequisite);
  const { endpoints, version } = endpointsFromOutputs(outputs, opts.stack);
  const results = await probeAll(endpoints, opts.timeoutMs);
  ctx.log(renderStatusTable(results, version));
  const failing = results.filter((r) => !r.healthy);
  if (failing.length > 0) {
    ctx.log(`${failing.length} of ${results.length} service(s) unhealthy on stack "${opts.stack}".`);
    return EXIT.unhealthy;
  }
  return EXIT.ok;
}
