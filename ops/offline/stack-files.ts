import * as fs from "node:fs";
import * as path from "node:path";
import { parseDocument } from "yaml";
import { SECURE_PLACEHOLDER } from "../../config/secure-placeholder";
import { UserError } from "../shared/errors";

/** The project this checkout deploys, read from its Pulumi.yaml. */
export interface Project {
  root: string;
  name: string;
}

/** A stack file's `config:` as the engine would hand it to the program. */
export interface StackConfig {
  stack: string;
  file: string;
  /** `namespace:key` -> the value as the engine passes it (JSON text for objects, numbers, booleans). */
  config: Record<string, string>;
  /** Keys whose value is `{ secure: ... }` in the file. */
  secretKeys: string[];
  /** Secret keys still holding the repository's placeholder. */
  placeholderKeys: string[];
}

/**
 * The `secure:` value the repository's own stack files carry where a real
 * secret must be set before the first deploy. It is no ciphertext: Pulumi
 * cannot decrypt it, so a deploy with it fails; validate says so first.
 */
export const REPOSITORY_PLACEHOLDER = "v1:YXBwc3RhY2stcGxhY2Vob2xkZXI=:cmVwbGFjZSB3aXRoIHB1bHVtaSBjb25maWcgc2V0IC0tc2VjcmV0";

/** Stands in for every secure value: plan never decrypts anything (defined with the rules that must recognise it). */
export { SECURE_PLACEHOLDER };

export function readProject(root: string): Project {
  const file = path.join(root, "Pulumi.yaml");
  if (!fs.existsSync(file)) throw new UserError(`No Pulumi.yaml in ${root}: run this from the appstack checkout.`);
  const doc = parseYamlFile(file);
  const name = (doc as { name?: unknown } | null)?.name;
  if (typeof name !== "string") throw new UserError(`${file} has no project "name".`);
  return { root, name };
}

/** Stack names that have a `Pulumi.<stack>.yaml` beside Pulumi.yaml. */
export function listStacks(root: string): string[] {
  return fs
    .readdirSync(root)
    .map((f) => /^Pulumi\.(.+)\.ya?ml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();
}

/**
 * Finds the stack file: `--stack-file` as given, else `Pulumi.<stack>.yaml`.
 * The stack name defaults to what the file name says.
 */
export function resolveStackFile(root: string, opts: { stack?: string; stackFile?: string }): { stack: string; file: string } {
  if (opts.stackFile) {
    const file = path.resolve(opts.stackFile);
    if (!fs.existsSync(file)) throw new UserError(`Stack file not found: ${opts.stackFile}`);
    const stack = opts.stack ?? /Pulumi\.(.+)\.ya?ml$/.exec(path.basename(file))?.[1] ?? path.basename(file).replace(/\.ya?ml$/, "");
    return { stack, file };
  }
  if (!opts.stack) throw new UserError("Name a stack: --stack <name> (or --stack-file <path>).");
  if (!/^[A-Za-z0-9_.-]+$/.test(opts.stack)) throw new UserError(`"${opts.stack}" is not a valid stack name.`);
  for (const ext of ["yaml", "yml"]) {
    const file = path.join(root, `Pulumi.${opts.stack}.${ext}`);
    if (fs.existsSync(file)) return { stack: opts.stack, file };
  }
  const known = listStacks(root);
  throw new UserError(
    `Unknown stack "${opts.stack}": there is no Pulumi.${opts.stack}.yaml.\n` +
      `Stacks in this project: ${known.length ? known.join(", ") : "(none)"}.\n` +
      `To add one: pulumi stack init ${opts.stack}, then set appstack:environment (see the README, "Configuration").`,
  );
}

function parseYamlFile(file: string): unknown {
  const doc = parseDocument(fs.readFileSync(file, "utf8"), { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0];
    const where = first.linePos?.[0] ? ` at line ${first.linePos[0].line}, column ${first.linePos[0].col}` : "";
    throw new UserError(`${path.basename(file)} is not valid YAML${where}: ${first.message.split("\n")[0]}`);
  }
  return doc.toJS();
}

/**
 * Reads a stack file into the flat `namespace:key -> string` map that the
 * engine passes to a program, with `{ secure: ... }` values replaced by a
 * placeholder and their keys listed as secret (as the engine does).
 */
export function readStackConfig(
  file: string,
  stack: string,
  project: string,
  opts: {
    /**
     * What stands in for a secure value, given its ciphertext. `diff` passes a
     * keyed digest of the ciphertext here, so a re-encrypted secret reaches the
     * resources that use it as a different (still secret, never decrypted) value.
     */
    securePlaceholder?: (ciphertext: string) => string;
  } = {},
): StackConfig {
  const placeholder = opts.securePlaceholder ?? (() => SECURE_PLACEHOLDER);
  const doc = parseYamlFile(file) as { config?: unknown } | null;
  const raw = doc?.config ?? {};
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new UserError(`${path.basename(file)}: "config:" must be a mapping of keys to values.`);
  }
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  const placeholderKeys: string[] = [];
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    const fullKey = key.includes(":") ? key : `${project}:${key}`;
    if (JSON.stringify(value).includes(REPOSITORY_PLACEHOLDER)) placeholderKeys.push(fullKey);
    const { value: replaced, secret } = replaceSecure(value, placeholder);
    if (secret) secretKeys.push(fullKey);
    config[fullKey] = typeof replaced === "string" ? replaced : JSON.stringify(replaced);
  }
  return { stack, file, config, secretKeys, placeholderKeys };
}

function isSecure(v: unknown): boolean {
  return v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 1 && "secure" in v;
}

function replaceSecure(v: unknown, placeholder: (ciphertext: string) => string): { value: unknown; secret: boolean } {
  if (isSecure(v)) return { value: placeholder(String((v as { secure: unknown }).secure)), secret: true };
  if (Array.isArray(v)) {
    const parts = v.map((inner) => replaceSecure(inner, placeholder));
    return { value: parts.map((p) => p.value), secret: parts.some((p) => p.secret) };
  }
  if (v !== null && typeof v === "object") {
    let secret = false;
    const out: Record<string, unknown> = {};
    for (const [k, inner] of Object.entries(v)) {
      const r = replaceSecure(inner, placeholder);
      out[k] = r.value;
      secret ||= r.secret;
    }
    return { value: out, secret };
  }
  return { value: v, secret: false };
}
