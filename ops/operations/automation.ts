import {
  ConcurrentUpdateError,
  LocalWorkspace,
  PulumiCommand,
  StackNotFoundError,
  type ConfigMap,
  type Deployment,
  type OpMap,
  type OutputMap,
  type Stack,
  type UpdateSummary,
} from "@pulumi/pulumi/automation";
import { version as sdkVersion } from "@pulumi/pulumi/version";
import * as path from "node:path";
import { EXIT, UserError } from "../shared/errors";

/**
 * Every call the ops commands make to the Pulumi CLI goes through this
 * module, on the Automation API (`@pulumi/pulumi/automation`). The deploy,
 * rollback, status and drift logic take an `Automation`, so tests drive them
 * with a fake that implements these interfaces.
 */

/** One stack in one working directory (the checkout, or a rollback's worktree). */
export interface StackHandle {
  readonly name: string;
  /** The user and backend URL operations run as (`pulumi whoami`). */
  whoAmI(): Promise<{ user: string; url?: string }>;
  /** The state as the backend stores it: secrets stay `ciphertext`. */
  exportState(): Promise<Deployment>;
  /** Every recorded operation, secret config values left out (never decrypted). */
  history(): Promise<UpdateSummary[]>;
  /** Stack outputs. Secret ones are decrypted in memory: print only what is known not to be secret. */
  outputs(): Promise<OutputMap>;
  /** Plain (non-secret) config values, written to this workspace's stack file. */
  setAllConfig(config: ConfigMap): Promise<void>;
  /**
   * The values of config keys of the project's namespace, secure ones decrypted
   * (`pulumi config get`): kept in memory, handed to a child on stdin only.
   */
  configValues(keys: string[]): Promise<Record<string, string>>;
  preview(opts: { onOutput(out: string): void }): Promise<{ changeSummary: OpMap }>;
  up(opts: { onOutput(out: string): void; message: string }): Promise<{ outputs: OutputMap; summary: UpdateSummary }>;
  /** `refresh --preview-only`: what a refresh would change, state untouched. */
  previewRefresh(opts: { onOutput(out: string): void }): Promise<{ changeSummary: OpMap }>;
}

export interface OpenStackOptions {
  stackName: string;
  /** Where Pulumi.yaml and Pulumi.<stack>.yaml are read from; git metadata of the update comes from here too. */
  workDir: string;
  /** Create the stack in the backend when it does not exist yet. */
  create?: boolean;
  /** Extra environment for the CLI (backend URL, passphrase); never argv. */
  envVars?: Record<string, string>;
}

export interface Automation {
  /** The Pulumi CLI's version; a UserError that says how to install it when there is none. */
  cliVersion(): Promise<string>;
  openStack(opts: OpenStackOptions): Promise<StackHandle>;
}

export const INSTALL_PULUMI =
  "Install the Pulumi CLI (https://www.pulumi.com/docs/iac/download-install/): on Linux or macOS " +
  "`curl -fsSL https://get.pulumi.com | sh` or `brew install pulumi/tap/pulumi`, then open a new shell and check `pulumi version`.";

/** `openStack` of a stack the backend does not have (exit 2; `logs` and `exec` say "never deployed"). */
export class StackNotInBackend extends UserError {
  constructor(message: string) {
    super(message, EXIT.usage);
    this.name = "StackNotInBackend";
  }
}

/** The SDK raises this when another update holds the stack's lock (Pulumi Cloud's 409, or a DIY backend's lock file). */
export function isConcurrentUpdate(err: unknown): boolean {
  return err instanceof ConcurrentUpdateError || (err as Error | undefined)?.name === "ConcurrentUpdateError";
}

/** The CLI's stderr of a failed Automation API command, or the error's message. */
export function commandErrorText(err: unknown): string {
  const result = (err as { commandResult?: { stderr?: string; stdout?: string } } | undefined)?.commandResult;
  const text = result?.stderr?.trim() || (err as Error | undefined)?.message || String(err);
  return text.trim();
}

/** Runs an Automation API call; a CLI failure becomes a UserError that says what was being done, with the CLI's own message. */
export async function step<T>(what: string, op: () => Promise<T>, exitCode: number = EXIT.updateFailed): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof UserError || isConcurrentUpdate(err)) throw err;
    throw new UserError(`${what} failed:\n${commandErrorText(err)}`, exitCode);
  }
}

function isMissingCli(err: unknown): boolean {
  const result = (err as { commandResult?: { err?: { code?: string }; stderr?: string } } | undefined)?.commandResult;
  return result?.err?.code === "ENOENT" || /\bENOENT\b/.test(result?.stderr ?? "");
}

/** Where appstack installs a Pulumi CLI of its own, and how it tells the user first. */
export interface CliInstall {
  /** The project root; the CLI goes to `<root>/.pulumi-cli/<version>` (git-ignored). */
  root: string;
  log(line: string): void;
  /** Whether to go ahead, after `log` said what will happen; on a terminal this asks. */
  consent(question: string): Promise<boolean>;
}

/** The project-local folder a CLI is installed into. */
export const CLI_DIR = ".pulumi-cli";

/** The Pulumi CLI version this SDK expects: its own version, what `PulumiCommand.install()` installs. */
export const SDK_VERSION = sdkVersion;

/** The manual install of the version the SDK expects, for when appstack cannot install it. */
export const INSTALL_PULUMI_VERSION =
  `Install it yourself, then run the command again: curl -fsSL https://get.pulumi.com | sh -s -- --version ${SDK_VERSION} ` +
  `(or see https://www.pulumi.com/docs/iac/download-install/), and check \`pulumi version\` in a new shell.`;

/** The real implementation: LocalWorkspace over the `pulumi` on PATH, else (with `install`) one appstack installs into the project. */
export function localAutomation(install?: CliInstall): Automation {
  let command: Promise<PulumiCommand> | undefined;
  const pulumiCommand = () => (command ??= getCommand(install));
  return {
    async cliVersion() {
      const cmd = await pulumiCommand();
      return cmd.version?.toString() ?? "unknown";
    },
    async openStack(opts) {
      const cmd = await pulumiCommand();
      const args = { stackName: opts.stackName, workDir: opts.workDir };
      const wsOpts = { pulumiCommand: cmd, envVars: opts.envVars };
      let stack: Stack;
      try {
        stack = opts.create ? await LocalWorkspace.createOrSelectStack(args, wsOpts) : await LocalWorkspace.selectStack(args, wsOpts);
      } catch (err) {
        if (err instanceof StackNotFoundError || (err as Error)?.name === "StackNotFoundError") {
          throw new StackNotInBackend(
            `Stack "${opts.stackName}" does not exist in the backend this checkout uses ` +
              `(PULUMI_BACKEND_URL, else backend.url in Pulumi.yaml).\n` +
              `Create it with: pulumi stack init ${opts.stackName}   (or log in to the right backend: pulumi login <url>)`,
          );
        }
        throw new UserError(`Could not select stack "${opts.stackName}":\n${commandErrorText(err)}`, EXIT.prerequisite);
      }
      return wrapStack(stack);
    },
  };
}

async function getCommand(install: CliInstall | undefined): Promise<PulumiCommand> {
  try {
    return await PulumiCommand.get();
  } catch (err) {
    if (!isMissingCli(err)) throw new UserError(`The Pulumi CLI on PATH cannot be used: ${commandErrorText(err)}\n${INSTALL_PULUMI}`, EXIT.prerequisite);
  }
  if (!install) throw new UserError(`No Pulumi CLI on PATH.\n${INSTALL_PULUMI}`, EXIT.prerequisite);
  return installedCli(install);
}

/**
 * The CLI in `<root>/.pulumi-cli/<version>`: an earlier install is reused;
 * otherwise, once the user agrees, `PulumiCommand.install()` (the Automation
 * API's own installer: it downloads Pulumi's install script and runs it with
 * `--install-root`) puts the version this SDK expects there. Nothing outside
 * the folder changes: no PATH edit, no shell profile.
 */
async function installedCli(install: CliInstall): Promise<PulumiCommand> {
  const dir = path.join(CLI_DIR, SDK_VERSION);
  const root = path.join(install.root, dir);
  try {
    return await PulumiCommand.get({ root });
  } catch {
    // not installed there yet
  }
  install.log(
    `No Pulumi CLI on PATH. appstack can install Pulumi CLI ${SDK_VERSION} (the version @pulumi/pulumi ${SDK_VERSION} expects) into ${dir}/ ` +
      `in this project (git-ignored), with the Automation API's PulumiCommand.install(): it downloads Pulumi's installer from get.pulumi.com.`,
  );
  if (!(await install.consent(`Install Pulumi CLI ${SDK_VERSION} into ${dir}/?`))) {
    throw new UserError(`No Pulumi CLI on PATH, and none was installed.\n${INSTALL_PULUMI_VERSION}`, EXIT.prerequisite);
  }
  try {
    const cmd = await PulumiCommand.install({ root });
    install.log(`Installed Pulumi CLI ${cmd.version?.toString() ?? SDK_VERSION} into ${dir}/.`);
    return cmd;
  } catch (err) {
    throw new UserError(
      `No Pulumi CLI on PATH, and installing Pulumi CLI ${SDK_VERSION} into ${dir}/ failed: ${commandErrorText(err).split("\n")[0]}\n` +
        `The download needs internet access from this machine.\n${INSTALL_PULUMI_VERSION}`,
      EXIT.prerequisite,
    );
  }
}

/**
 * `Stack.exportStack()` runs `pulumi stack export --show-secrets`, which
 * writes every secret in plain text. A backup must not, so this runs the
 * same export without that flag, through the workspace's own command runner
 * (same CLI, working directory and environment as every other call here).
 * The runner is private in the SDK's typings; if a future SDK drops it, fail
 * rather than fall back to the plaintext export.
 */
export async function exportEncrypted(stack: Stack): Promise<Deployment> {
  const ws = stack.workspace as unknown as { runPulumiCmd?: (args: string[]) => Promise<{ stdout: string }> };
  if (typeof ws.runPulumiCmd !== "function") {
    throw new Error("@pulumi/pulumi's LocalWorkspace no longer has runPulumiCmd; appstack cannot export state without --show-secrets");
  }
  const result = await ws.runPulumiCmd.call(stack.workspace, ["stack", "export", "--stack", stack.name]);
  return JSON.parse(result.stdout) as Deployment;
}

function wrapStack(stack: Stack): StackHandle {
  return {
    name: stack.name,
    whoAmI: () => stack.workspace.whoAmI(),
    exportState: () => exportEncrypted(stack),
    // showSecrets=false: the SDK defaults to --show-secrets; secret config values come back as { secret: true } only.
    history: () => stack.history(undefined, undefined, false),
    outputs: () => stack.outputs(),
    setAllConfig: (config) => stack.setAllConfig(config),
    async configValues(keys) {
      const out: Record<string, string> = {};
      for (const key of keys) out[key] = (await stack.getConfig(key)).value;
      return out;
    },
    async preview({ onOutput }) {
      const r = await stack.preview({ onOutput, diff: true, color: "never" });
      return { changeSummary: r.changeSummary };
    },
    async up({ onOutput, message }) {
      const r = await stack.up({ onOutput, message, color: "never" });
      return { outputs: r.outputs, summary: r.summary };
    },
    async previewRefresh({ onOutput }) {
      const r = await stack.previewRefresh({ onOutput, color: "never" });
      return { changeSummary: r.changeSummary };
    },
  };
}
