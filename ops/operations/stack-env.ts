import * as fs from "node:fs";
import { EXIT, UserError } from "../shared/errors";
import { readProject, readStackConfig, resolveStackFile } from "../offline/stack-files";

/** The backend `up:dev` always uses: a local file backend under ~/.pulumi, no account. */
export const LOCAL_BACKEND_URL = "file://~";

export interface StackEnv {
  stack: string;
  /** Pulumi.<stack>.yaml in the checkout. */
  file: string;
  environment?: string;
  /** Secret keys that still hold the repository's placeholder instead of ciphertext. */
  placeholderKeys: string[];
  /** Environment for the CLI; never argv. */
  envVars: Record<string, string>;
  /** What was defaulted, for the user to see. */
  notes: string[];
}

/** Whether the stack file says its secrets are encrypted with a passphrase (the default for file and cloud-storage backends). */
export function usesPassphrase(stackFileText: string): boolean {
  return /^encryptionsalt:/m.test(stackFileText) || /^secretsprovider:\s*["']?passphrase/m.test(stackFileText);
}

/**
 * Resolves the stack file (unknown stack -> a clear error) and the
 * environment the CLI needs for it. The passphrase story:
 * - dev (appstack:environment = dev): with neither PULUMI_CONFIG_PASSPHRASE
 *   nor PULUMI_CONFIG_PASSPHRASE_FILE set, the passphrase is empty. The dev
 *   stack's secrets are generated passwords of containers published on
 *   127.0.0.1, and its state sits in ~/.pulumi on the same machine; a
 *   passphrase would protect nothing the machine's owner cannot already read.
 * - every other stack: a stack file encrypted with a passphrase needs one of
 *   the two variables; nothing is defaulted.
 */
export function stackEnv(root: string, stack: string, opts: { localBackend?: boolean; env?: NodeJS.ProcessEnv } = {}): StackEnv {
  const env = opts.env ?? process.env;
  const project = readProject(root);
  const { file } = resolveStackFile(root, { stack });
  const text = fs.readFileSync(file, "utf8");
  const sc = readStackConfig(file, stack, project.name);
  const environment = sc.config[`${project.name}:environment`];
  const envVars: Record<string, string> = {};
  const notes: string[] = [];
  if (opts.localBackend) {
    envVars.PULUMI_BACKEND_URL = LOCAL_BACKEND_URL;
    if (env.PULUMI_BACKEND_URL && env.PULUMI_BACKEND_URL !== LOCAL_BACKEND_URL) {
      notes.push(`Using the local file backend (${LOCAL_BACKEND_URL}), not PULUMI_BACKEND_URL=${env.PULUMI_BACKEND_URL}.`);
    }
  }
  const passphrase = env.PULUMI_CONFIG_PASSPHRASE;
  const hasPassphrase = passphrase !== undefined || !!env.PULUMI_CONFIG_PASSPHRASE_FILE;
  if (!hasPassphrase && environment === "dev") {
    envVars.PULUMI_CONFIG_PASSPHRASE = "";
    notes.push("dev stack: secrets use an empty passphrase (set PULUMI_CONFIG_PASSPHRASE to choose one).");
  } else if (environment !== "dev" && usesPassphrase(text) && !env.PULUMI_CONFIG_PASSPHRASE_FILE && !passphrase) {
    // An empty value is what an unset CI secret expands to; outside dev it is a mistake, not a choice.
    throw new UserError(
      `Stack "${stack}" encrypts its secrets with a passphrase (${file}), and ` +
        (passphrase === "" ? "PULUMI_CONFIG_PASSPHRASE is empty (an unset CI secret?)" : "neither PULUMI_CONFIG_PASSPHRASE nor PULUMI_CONFIG_PASSPHRASE_FILE is set") +
        `.\nSet one, e.g. export PULUMI_CONFIG_PASSPHRASE_FILE=~/.config/appstack/${stack}.passphrase ` +
        `(in CI: the PULUMI_CONFIG_PASSPHRASE secret of the "${stack}" environment).`,
      EXIT.prerequisite,
    );
  }
  return { stack, file, environment, placeholderKeys: sc.placeholderKeys, envVars, notes };
}
