import * as pulumi from "@pulumi/pulumi";
import { expect } from "vitest";
import { ConfigError, loadConfig, type ConfigProblem } from "../../config";
import { mockStack } from "./pulumi";

/** The problems loadConfig reports for a stack's settings; it must throw a ConfigError and register nothing. */
export async function problemsOf(stack: string, config: Record<string, unknown>, secrets: Record<string, string> = {}): Promise<ConfigProblem[]> {
  const rt = await mockStack(stack, config, secrets);
  try {
    loadConfig(new pulumi.Config("appstack"));
  } catch (err) {
    expect(ConfigError.isInstance(err)).toBe(true);
    expect(rt.resources).toHaveLength(0);
    return (err as ConfigError).problems;
  }
  throw new Error("expected a ConfigError");
}
