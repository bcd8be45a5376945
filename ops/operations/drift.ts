import * as fs from "node:fs";
import type { OpMap } from "@pulumi/pulumi/automation";
import { commandErrorText } from "./automation";
import type { OpsContext } from "./context";
import { EXIT, UserError } from "../shared/errors";
import { stackEnv } from "./stack-env";

/** Operations of a refresh preview other than "same": each is a resource that changed outside Pulumi. */
export function driftCounts(summary: OpMap): [string, number][] {
  return Object.entries(summary)
    .filter(([op, n]) => op !== "same" && (n ?? 0) > 0)
    .map(([op, n]) => [op, n ?? 0] as [string, number]);
}

/** A code block whose fence is longer than any backtick run inside. */
function fenced(text: string): string {
  const fence = "`".repeat(Math.max(3, ...[...text.matchAll(/`+/g)].map((m) => m[0].length + 1)));
  return `${fence}\n${text.trim()}\n${fence}`;
}

export function renderDriftSummary(stack: string, counts: [string, number][], output: string): string {
  if (counts.length === 0) return `### Drift: stack \`${stack}\`\n\nNo drift: every resource matches the state.\n`;
  const rows = counts.map(([op, n]) => `| ${op} | ${n} |`).join("\n");
  return (
    `### :warning: Drift: stack \`${stack}\`\n\n` +
    `Resources changed outside Pulumi (\`pulumi refresh --preview-only\`; the state was not modified):\n\n` +
    `| operation | resources |\n| --- | --- |\n${rows}\n\n` +
    `<details><summary>refresh preview</summary>\n\n${fenced(output)}\n</details>\n`
  );
}

/**
 * `refresh --preview-only`: what a refresh would adopt into the state, without
 * adopting it. Fails (exit 9) when anything would change, like
 * --expect-no-changes, but keeps the counts to report them. The summary goes
 * to $GITHUB_STEP_SUMMARY when that is set.
 */
export async function drift(ctx: OpsContext, opts: { stack: string; summaryFile?: string }): Promise<number> {
  const env = stackEnv(ctx.root, opts.stack);
  await ctx.automation.cliVersion();
  const stack = await ctx.automation.openStack({ stackName: opts.stack, workDir: ctx.root, envVars: env.envVars });
  let output = "";
  let summary: OpMap;
  try {
    ({ changeSummary: summary } = await stack.previewRefresh({
      onOutput: (chunk) => {
        output += chunk;
        ctx.stream(chunk);
      },
    }));
  } catch (err) {
    const text = commandErrorText(err);
    if (opts.summaryFile) fs.appendFileSync(opts.summaryFile, `### :x: Drift check failed: stack \`${opts.stack}\`\n\n${fenced(text)}\n`);
    throw new UserError(`The refresh preview of stack "${opts.stack}" failed:\n${text}`, EXIT.updateFailed);
  }
  const counts = driftCounts(summary);
  if (opts.summaryFile) fs.appendFileSync(opts.summaryFile, renderDriftSummary(opts.stack, counts, output) + "\n");
  if (counts.length === 0) {
    ctx.log(`No drift on stack "${opts.stack}".`);
    return EXIT.ok;
  }
  ctx.log(`Drift on stack "${opts.stack}": ${counts.map(([op, n]) => `${n} to ${op}`).join(", ")}. Review it, then either \`pulumi refresh -s ${opts.stack}\` to accept it or deploy to overwrite it.`);
  return EXIT.drift;
}
