import * as pulumi from "@pulumi/pulumi";
import { loadConfig } from "../../config";
import { EXIT, UserError } from "../shared/errors";
import { installMockRuntime } from "./offline-runtime";
import { loadStack } from "./plan";

/** Loads one stack file's config through the schema, as the program would; no resource is created. */
export async function validateStack(opts: { root: string; stack?: string; stackFile?: string }): Promise<string> {
  const { project, sc } = loadStack(opts);
  await installMockRuntime(project, sc);
  try {
    const cfg = loadConfig(new pulumi.Config(project));
    const secrets = Object.keys(cfg.secrets).length;
    const lines = [`Stack "${sc.stack}" (${sc.file}): configuration is valid. environment=${cfg.environment}, ${secrets} secret${secrets === 1 ? "" : "s"}.`];
    for (const key of sc.placeholderKeys) {
      const name = key.slice(key.indexOf(":") + 1);
      lines.push(`  not yet deployable: ${key} holds the repository's placeholder; set it: pulumi config set -s ${sc.stack} --secret ${name}`);
    }
    return lines.join("\n");
  } catch (err) {
    const e = err as Error;
    if (e?.name === "ConfigError") throw new UserError(e.message, EXIT.invalidConfig);
    throw err;
  }
}
