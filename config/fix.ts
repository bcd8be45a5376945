/**
 * The `pulumi config` commands a config problem's fix consists of. Rules
 * describe a fix as steps on key paths; `renderFix` turns them into command
 * lines that work when pasted into a POSIX shell: the stack named, paths in
 * Pulumi's `--path` syntax (lists element by element), every word quoted
 * where the shell would read it otherwise, and no `<placeholder>`: a value
 * only the user knows is left out, and Pulumi asks for it.
 */

/** A key path below `appstack:`: names of settings and list indices. */
export type KeyPath = readonly (string | number)[];

export type FixStep =
  /** `pulumi config set`. Without `value`, Pulumi prompts for it (hidden for a secret). */
  | { set: KeyPath; value?: string | number | boolean; secret?: boolean }
  /** `pulumi config rm`; `namespace` for a key outside `appstack:` (`docker:host`). */
  | { rm: KeyPath; namespace?: string }
  /** A change no `pulumi config` command can make (a key Pulumi cannot address): edit the stack file. */
  | { edit: string };

const PLAIN_WORD = /^[A-Za-z0-9_./:=@%+,-]+$/;

/** Quotes a word for a POSIX shell, only when it needs it. */
export function shellWord(word: string): string {
  return PLAIN_WORD.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

const PATH_NAME = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

/**
 * A key path in the syntax `pulumi config --path` parses (Pulumi's
 * `resource.ParsePropertyPath`): `a.b`, `list[0]`, and `["odd.key"]` for a
 * name that is not a plain identifier (a `"` inside is written `\"`).
 */
export function pulumiPath(path: KeyPath): string {
  return path
    .map((seg, i) => {
      if (typeof seg === "number") return `[${seg}]`;
      if (PATH_NAME.test(seg)) return i === 0 ? seg : `.${seg}`;
      return `["${seg.replace(/"/g, '\\"')}"]`;
    })
    .join("");
}

/** Whether a path can be given as a top-level key, without `--path`. */
function isTopLevel(path: KeyPath): boolean {
  return path.length === 1 && typeof path[0] === "string";
}

/**
 * Whether `pulumi config` can address a path at all: a name that holds `\"`
 * or ends in `\` cannot be written in `["..."]`, and a top-level key must
 * not be empty.
 */
export function addressable(path: KeyPath): boolean {
  if (path.length === 0 || path[0] === "") return false;
  return path.every((seg) => typeof seg === "number" || PATH_NAME.test(seg) || !(seg.includes('\\"') || seg.endsWith("\\")));
}

/** The key as the CLI takes it: a key with a `:` in it needs its namespace, or the CLI reads the part before as one. */
function qualified(key: string, namespace: string): string {
  return key.includes(":") ? `${namespace}:${key}` : key;
}

/** With `--path`, Pulumi stores "true"/"false" as booleans and integers as numbers. */
function wouldBeRetyped(value: string): boolean {
  return value === "true" || value === "false" || /^(0|-?[1-9]\d*)$/.test(value);
}

export const NAMESPACE = "appstack";

/** One step as a command line for `stack`. */
export function renderStep(stack: string, step: FixStep, stackFile = `Pulumi.${stack}.yaml`): string {
  if ("edit" in step) return `edit ${stackFile}: ${step.edit}`;
  const path = "set" in step ? step.set : step.rm;
  if ("rm" in step && step.namespace) return ["pulumi", "config", "rm", "-s", shellWord(stack), shellWord(`${step.namespace}:${path.join(".")}`)].join(" ");
  if (!addressable(path)) return `edit ${stackFile}: ${"set" in step ? "set" : "remove"} ${JSON.stringify(path)} under config (no pulumi config command can name this key)`;
  const words = ["pulumi", "config", "set" in step ? "set" : "rm", "-s", shellWord(stack)];
  const topLevel = isTopLevel(path);
  if (!topLevel) words.push("--path");
  if ("set" in step && step.secret) words.push("--secret");
  if ("set" in step && typeof step.value === "string" && !topLevel && wouldBeRetyped(step.value)) words.push("--type", "string");
  const key = qualified(topLevel ? String(path[0]) : pulumiPath(path), NAMESPACE);
  const value = "set" in step && step.value !== undefined ? String(step.value) : undefined;
  // A word that starts with "-" would be read as a flag: `--` ends the flags.
  if (key.startsWith("-") || value?.startsWith("-")) words.push("--");
  words.push(shellWord(key));
  if (value !== undefined) words.push(shellWord(value));
  return words.join(" ");
}

/** A whole fix: its commands joined with `&&`, so they run in order and stop at the first failure. */
export function renderFix(stack: string, steps: readonly FixStep[], stackFile?: string): string {
  return steps.map((s) => renderStep(stack, s, stackFile)).join(" && ");
}

/** Whether any step leaves a value for Pulumi to ask for. */
export function prompts(steps: readonly FixStep[]): boolean {
  return steps.some((s) => "set" in s && s.value === undefined);
}

/**
 * Steps that set `value` at `path` leaf by leaf: a list element by element
 * (`'worker.command[0]' node`), an object key by key. An empty list or object
 * needs no step: the key is simply absent.
 */
export function setValueSteps(path: KeyPath, value: unknown): FixStep[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => setValueSteps([...path, i], v));
  if (value !== null && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => setValueSteps([...path, k], v));
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") return [{ set: path, value }];
  return [{ set: path }];
}

/** Replaces a whole list by `items` (removing it when empty): indices stay right however many fixes run. */
export function replaceListSteps(path: KeyPath, items: readonly (string | number)[]): FixStep[] {
  return [{ rm: path }, ...items.map((item, i): FixStep => ({ set: [...path, i], value: item }))];
}
