import * as pulumi from "@pulumi/pulumi";
import { AppStack } from "../../components/app-stack";
import { loadConfig } from "../../config";
import { installMockRuntime, waitForRegistrations, type MockOutputs, type RecordedResource } from "../../ops/offline/offline-runtime";
import { loadStack, planFromEvaluation, type Plan } from "../../ops/offline/plan";
import { ROOT } from "./cli";

/**
 * A stack's plan evaluated in this process, as `npm run plan` builds it (the
 * same mock runtime, the same masking), by constructing the AppStack the way
 * index.ts does. In-process, so a test file can evaluate several stacks
 * without a child process each.
 */
export async function planInProcess(
  opts: { stack?: string; stackFile?: string; edit?: (config: Record<string, string>) => void; mockOutputs?: MockOutputs } = {},
): Promise<{ plan: Plan; resources: RecordedResource[]; app: AppStack }> {
  const { project, sc } = loadStack({ root: ROOT, stack: opts.stack, stackFile: opts.stackFile });
  opts.edit?.(sc.config);
  const rt = await installMockRuntime(project, sc, { mockOutputs: opts.mockOutputs });
  const app = new AppStack("appstack", { config: loadConfig(new pulumi.Config(project)), root: ROOT });
  await waitForRegistrations();
  const { environment, version, endpoints, images, postgres, redis, connections } = app.outputs;
  const plan = await planFromEvaluation(project, sc, { resources: rt.resources, exports: { environment, version, endpoints, images, postgres, redis, connections } });
  return { plan, resources: rt.resources, app };
}
