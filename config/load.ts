import * as pulumi from "@pulumi/pulumi";
import * as runtimeConfig from "@pulumi/pulumi/runtime/config";
import { ConfigError, type ConfigProblem } from "./errors";
import { addressable, NAMESPACE, prompts, renderFix, setValueSteps, type FixStep, type KeyPath } from "./fix";
import { appConfigSchema, ENVIRONMENTS, hostname, parseAppConfig, type IssueParams, type ParsedAppConfig, type SchemaIssue } from "./schema";
import { choicesOf, discriminatorOf, keysAt, kindOf, schemaAt, shapeOf, typeName, unionOptions, unwrap } from "./schema-walk";
import { isUndecrypted } from "./secure-placeholder";

/** The typed model of one stack, with every secret still a secret Output. */
export type AppConfig = ParsedAppConfig & {
  /** The stack name, for labels and messages. */
  stack: string;
  /** Secure keys by name, read only through `requireSecret`. */
  secrets: Record<string, pulumi.Output<string>>;
};

/**
 * The SDK's own test for "this key was set with --secret" (it reads the secret
 * key list the engine passes in). It is marked internal in the SDK's typings,
 * so fail loudly if a future SDK drops it rather than treat secrets as plain.
 */
function isConfigSecret(fullKey: string): boolean {
  const fn = (runtimeConfig as unknown as { isConfigSecret?: (k: string) => boolean }).isConfigSecret;
  if (typeof fn !== "function") throw new Error("@pulumi/pulumi no longer exports runtime/config isConfigSecret; appstack needs an update");
  return fn(fullKey);
}

/** Namespaces besides `appstack:` that a stack file may hold. */
const ALLOWED_NAMESPACES = new Set(["pulumi"]);

/**
 * Reads and validates the `appstack:` configuration of the current stack.
 * Throws one ConfigError that lists every problem; registers nothing.
 */
export function loadConfig(cfg: pulumi.Config = new pulumi.Config()): AppConfig {
  const ns = cfg.name;
  const stack = pulumi.getStack();
  const problems: ConfigProblem[] = [];
  // No prototype: a key named "__proto__" must be an unknown setting, not a prototype swap that hides it.
  const raw: Record<string, unknown> = Object.create(null);
  const secureKeys = new Set<string>();
  // Decrypted by the engine in a deploy; read only by the rules that must check a secret's form, never printed.
  const secureValues = new Map<string, string>();
  const problem = (key: string, text: string, fix: FixStep[], note?: string): ConfigProblem => ({ key, problem: text, ...rendered(stack, fix, note) });

  for (const [fullKey, value] of Object.entries(runtimeConfig.allConfig())) {
    const colon = fullKey.indexOf(":");
    const [keyNs, key] = [fullKey.slice(0, colon), fullKey.slice(colon + 1)];
    if (keyNs !== ns) {
      if (!ALLOWED_NAMESPACES.has(keyNs)) {
        problems.push(
          problem(fullKey, `appstack reads only "${ns}:" keys; "${keyNs}:" settings configure nothing here`, [{ rm: [key], namespace: keyNs }], `then set the ${ns}: equivalent (docs/configuration.md)`),
        );
      }
      continue;
    }
    if (isConfigSecret(fullKey)) {
      secureKeys.add(key);
      secureValues.set(key, value);
      continue;
    }
    raw[key] = parseConfigValue(value);
  }

  // A schema key stored as a secret would hide the whole object; secrets are top-level keys.
  for (const key of Object.keys(appConfigSchema.shape)) {
    if (secureKeys.has(key)) {
      secureKeys.delete(key);
      problems.push(
        problem(`${ns}:${key}`, "holds a secure value; settings are plain and each secret is a top-level secure key", [{ rm: [key] }], "then set the setting plainly, and each secret as a top-level key with --secret"),
      );
    }
  }

  const parsed = parseAppConfig(raw, {
    stack,
    secretValue: (key) => {
      const value = secureKeys.has(key) ? secureValues.get(key) : undefined;
      return value === undefined || isUndecrypted(value) ? undefined : value;
    },
  });
  // A key reported missing next to a misspelling of it is one problem: the misspelling's fix moves the value.
  const meant = new Set(parsed.issues.flatMap((i) => (i.code === "unrecognized_keys" ? i.keys.flatMap((k) => suggestedKey(raw, i.path, k) ?? []) : [])));
  for (const issue of parsed.issues) {
    if (valueAt(raw, issue.path) === undefined && meant.has(keyPath(ns, issue.path))) continue;
    problems.push(...describeIssue(ns, stack, raw, issue));
  }

  const neededKeys = new Set(parsed.requiredSecrets.map((n) => n.key));
  for (const { key, usedBy } of parsed.requiredSecrets) {
    if (secureKeys.has(key)) continue;
    problems.push(
      problem(
        `${ns}:${key}`,
        key in raw ? `is stored in plain text in the stack file; ${usedBy} needs it as a secret` : `is not set; ${usedBy} needs this secret`,
        [{ set: [key], secret: true }],
        "Pulumi asks for the value without echoing it, and stores it encrypted",
      ),
    );
  }
  for (const key of secureKeys) {
    if (!neededKeys.has(key)) {
      problems.push(problem(`${ns}:${key}`, "is a secret that no service uses (a misspelt name?)", [{ rm: [key] }], "or reference it from a service's secretEnv"));
    }
  }

  if (problems.length > 0 || !parsed.data) throw new ConfigError(stack, dedupe(problems));

  const secrets: Record<string, pulumi.Output<string>> = {};
  for (const key of secureKeys) secrets[key] = cfg.requireSecret(key);
  return { ...parsed.data, stack, secrets };
}

/** A fix as command lines for this stack, with a note; a fix that leaves a value out says Pulumi asks for it. */
function rendered(stack: string, fix: FixStep[], note?: string): Pick<ConfigProblem, "fix" | "note"> {
  return { fix: renderFix(stack, fix), note: note ?? (prompts(fix) ? "Pulumi asks for the value" : undefined) };
}

/** Structured values arrive as JSON text; scalars as their string. */
function parseConfigValue(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

function keyPath(ns: string, path: readonly PropertyKey[]): string {
  let out = `${ns}:`;
  path.forEach((seg, i) => {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += (i === 0 ? "" : ".") + String(seg);
  });
  return out;
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = raw;
  for (const seg of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return cur;
}

/** The key a misspelt one was meant to be ("imgae" -> "image"), if one is close. */
function suggestion(raw: Record<string, unknown>, at: readonly PropertyKey[], key: string): string | undefined {
  return closest(key, keysAt(appConfigSchema, raw, at));
}

function suggestedKey(raw: Record<string, unknown>, at: readonly PropertyKey[], key: string): string | undefined {
  const s = suggestion(raw, at, key);
  return s === undefined ? undefined : keyPath(NAMESPACE, [...at, s]);
}

function describeIssue(ns: string, stack: string, raw: Record<string, unknown>, issue: SchemaIssue): ConfigProblem[] {
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((k) => {
      const path: KeyPath = [...(issue.path as KeyPath), k];
      const value = valueAt(raw, path);
      const meant = suggestion(raw, issue.path, k);
      const fix: FixStep[] = [{ rm: path }];
      // Move the value to the key it was meant for, leaf by leaf (a list element by element),
      // when every leaf is a key a command can name; otherwise the fix only removes it.
      const move = meant && valueAt(raw, [...issue.path, meant]) === undefined ? setValueSteps([...(issue.path as KeyPath), meant], value) : [];
      if (move.every((s) => !("set" in s) || addressable(s.set))) fix.push(...move);
      return {
        key: keyPath(ns, path),
        value: JSON.stringify(value),
        problem: `unknown setting${meant ? ` (did you mean "${meant}"?)` : ""}`,
        ...rendered(stack, fix),
      };
    });
  }
  const value = valueAt(raw, issue.path);
  const params = (issue as { params?: IssueParams }).params ?? {};
  const missing = value === undefined;
  const { fix, note } = params.fix ? { fix: params.fix, note: params.note } : genericFix(stack, raw, issue);
  const at = schemaAt(appConfigSchema, raw, issue.path);
  // zod says "Invalid input: expected array, received undefined" for a missing key; say what is expected instead.
  const text = missing && issue.code === "invalid_type" && at ? `a ${typeName(at.schema)}` : issue.message;
  return [
    {
      key: keyPath(ns, issue.path),
      value: missing ? undefined : JSON.stringify(value),
      problem: missing && !text.startsWith("is required") ? `is required: ${text}` : text,
      ...rendered(stack, fix, note),
    },
  ];
}

const isScalar = (v: unknown) => typeof v === "string" || typeof v === "number" || typeof v === "boolean";
const pathText = (path: KeyPath) => path.map((seg, i) => (typeof seg === "number" ? `[${seg}]` : i === 0 ? seg : `.${seg}`)).join("");

/**
 * The fix for a schema issue (wrong type, out of range, missing): set the key
 * again, and Pulumi asks for the value; the note says what it must be. A list
 * is set element by element and an object key by key, after removing what is
 * there when its shape is wrong.
 */
function genericFix(stack: string, raw: Record<string, unknown>, issue: SchemaIssue): { fix: FixStep[]; note?: string } {
  const path = issue.path as KeyPath;
  const present = valueAt(raw, path) !== undefined;
  if (issue.code === "invalid_key") return { fix: [{ rm: path }], note: "names are A-Z, 0-9 and _" };
  const at = schemaAt(appConfigSchema, raw, path);
  if (!at) return { fix: [{ rm: path }] };
  if (path.length === 1 && path[0] === "environment" && (ENVIRONMENTS as readonly string[]).includes(stack)) {
    return { fix: [{ set: path, value: stack }], note: `or one of ${ENVIRONMENTS.join(", ")}` };
  }
  const type = typeName(at.schema);
  const removeFirst: FixStep[] = present ? [{ rm: path }] : [];
  switch (kindOf(at.schema)) {
    case "array":
      return {
        fix: [...removeFirst, { set: [...path, 0] }],
        note: `a ${type}: Pulumi asks for the first element; set more as ${pathText([...path, 1])}, ${pathText([...path, 2])}, ... or write the list in Pulumi.${stack}.yaml`,
      };
    case "record":
      return { fix: [...removeFirst], note: `a map: set each entry with --path ${pathText(path)}.NAME and its value` };
    case "object":
    case "union": {
      const leaves = requiredLeaves(at.schema);
      if (kindOf(at.schema) === "union" && !unionOptions(at.schema)) break;
      const asked = leaves.filter((l) => l.value === undefined).map((l) => pathText([...path, ...l.path]));
      return {
        fix: [...removeFirst, ...leaves.map((l): FixStep => (l.value === undefined ? { set: [...path, ...l.path] } : { set: [...path, ...l.path], value: l.value }))],
        note: asked.length ? `Pulumi asks for ${asked.join(", ")}` : undefined,
      };
    }
  }
  const value = valueAt(raw, path);
  if (at.schema === hostname && typeof value === "string") {
    // A URL where a host name belongs (https://api.example.com): its host name is the fix.
    const host = URL.canParse(value) ? new URL(value).hostname : undefined;
    if (host && hostname.safeParse(host).success) return { fix: [{ set: path, value: host }] };
  }
  const choices = choicesOf(at.schema);
  const dflt = at.default && isScalar(at.default.value) ? `; without the key it is ${JSON.stringify(at.default.value)}` : "";
  const what = choices ? `: one of ${choices.join(", ")}` : type === "string" ? "" : `: ${type}`;
  return { fix: [{ set: path }], note: `Pulumi asks for the value${what}${dflt}` };
}

/** The keys an object needs set (no default, not optional); a union's discriminator gets its first option. */
function requiredLeaves(schema: Parameters<typeof unwrap>[0]): { path: KeyPath; value?: string }[] {
  const s = unwrap(schema).schema;
  const options = unionOptions(s);
  if (options) {
    const key = discriminatorOf(s)!;
    return [{ path: [key], value: options[0].value }, ...requiredLeaves(options[0].schema).filter((l) => l.path[0] !== key)];
  }
  return Object.entries(shapeOf(s) ?? {}).flatMap(([name, child]) => {
    const u = unwrap(child);
    if (u.optional || u.default) return [];
    const kind = kindOf(u.schema);
    if (kind === "object" || (kind === "union" && unionOptions(u.schema))) return requiredLeaves(child).map((l) => ({ ...l, path: [name, ...l.path] }));
    return [{ path: kind === "array" ? [name, 0] : [name] }];
  });
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: { c: string; d: number } | undefined;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d <= Math.max(2, Math.floor(c.length / 3)) && (!best || d < best.d)) best = { c, d };
  }
  return best?.c;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const id = `${p.key}\u0000${p.problem}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}
