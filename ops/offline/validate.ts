import * as pulumi from "@pulumi/pulumi";
import { loadConfig, type AppConfig } from "../../config";
import { renderFix } from "../../config/fix";
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
    const offsite = cfg.postgres.mode === "container" ? cfg.backup?.offsite : undefined;
    if (offsite) {
      lines.push(
        `  note: ${offsite.repositorySecret} is a secret, which validate never decrypts: that it names a repository restic can ship to (S3, B2, sftp, REST) ` +
          `is checked by pulumi preview and pulumi up, before anything is registered.`,
      );
    }
    const health = workerHealthNote(cfg, sc.config[`${project}:worker`]);
    if (health) lines.push(health);
    return lines.join("\n");
  } catch (err) {
    const e = err as Error;
    if (e?.name === "ConfigError") throw new UserError(e.message, EXIT.invalidConfig);
    throw err;
  }
}

/** Programs that mean a Node image: the default worker checks run `node` in it. */
const NODE_PROGRAMS = new Set(["node", "nodejs", "npm", "npx", "yarn", "pnpm", "tsx", "ts-node"]);

/**
 * A worker on the default health check whose command is not a Node program:
 * the check runs `node` in the container, so say what to set if the image has
 * none (validate cannot see inside the image).
 */
export function workerHealthNote(cfg: AppConfig, rawWorker: string | undefined): string | undefined {
  if (!cfg.worker || cfg.worker.health.type === "command") return undefined;
  let explicit = false;
  try {
    explicit = rawWorker !== undefined && (JSON.parse(rawWorker) as { health?: unknown }).health !== undefined;
  } catch {
    explicit = false;
  }
  const program = cfg.worker.command[0].split("/").pop()!;
  if (explicit || NODE_PROGRAMS.has(program)) return undefined;
  const fix = renderFix(cfg.stack, [{ set: ["worker", "health", "type"], value: "command" }, { set: ["worker", "health", "command", 0] }]);
  return (
    `  note: worker.health is the default process check, which runs node inside the worker's container; the worker runs "${program}". ` +
    `If its image has no Node, give it a check the image can run: ${fix}  (Pulumi asks for the program; add its arguments as [1], [2], ...)`
  );
}
