import { parseArgs, type ParseArgsConfig } from "node:util";
import { parse as parseShell } from "shell-quote";

/**
 * Reads a printed fix the way a shell and the Pulumi CLI would, to prove it
 * works when pasted: shell words (shell-quote), `&&` between commands and no
 * other shell syntax, then each command against the flags `pulumi config set`
 * and `pulumi config rm` accept (util.parseArgs, strict), and its key in the
 * syntax of Pulumi's own parsers (`config.ParseKey`, then
 * `resource.ParsePropertyPath` for `--path`, ported below). Written apart
 * from config/fix.ts on purpose: it checks that code, it does not reuse it.
 */

const COMMON = {
  stack: { type: "string", short: "s" },
  "config-file": { type: "string" },
  cwd: { type: "string", short: "C" },
  color: { type: "string" },
  "non-interactive": { type: "boolean" },
} as const;

/** From `pulumi config set --help` / `pulumi config rm --help` (docs: pulumi_config_set, pulumi_config_rm). */
const VERBS: Record<"set" | "rm", NonNullable<ParseArgsConfig["options"]>> = {
  set: { ...COMMON, path: { type: "boolean" }, plaintext: { type: "boolean" }, secret: { type: "boolean" }, type: { type: "string" } },
  rm: { ...COMMON, path: { type: "boolean" } },
};

export interface ConfigCommand {
  verb: "set" | "rm";
  stack: string;
  secret: boolean;
  namespace: string;
  /** The key path the CLI will address: the config key, then `--path` segments. */
  path: (string | number)[];
  /** Undefined: Pulumi prompts for it. */
  value?: string;
}

/** Splits a pasted line into shell words and `&&`; anything else the shell would interpret is an error. */
function shellCommands(line: string): string[][] {
  const words = parseShell(line, (name) => {
    throw new Error(`unquoted $${name} would be expanded by the shell`);
  });
  const commands: string[][] = [[]];
  for (const w of words) {
    if (typeof w === "string") commands[commands.length - 1].push(w);
    else if ("op" in w && w.op === "&&") commands.push([]);
    else throw new Error(`shell syntax in a fix: ${JSON.stringify(w)}`);
  }
  if (commands.some((c) => c.length === 0)) throw new Error("an empty command around &&");
  return commands;
}

/** Pulumi's `resource.ParsePropertyPath`, as `pulumi config --path` uses it. */
export function parsePropertyPath(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  let rest = path;
  if (rest.startsWith(".")) throw new Error("expected property path to start with a name or index");
  while (rest.length > 0) {
    if (rest[0] === ".") {
      rest = rest.slice(1);
      if (rest.length === 0) throw new Error("expected property path to end with a name or index");
      if (rest[0] === "[") throw new Error("expected property name after '.'");
    } else if (rest[0] === "[") {
      if (rest[1] === '"') {
        let key = "";
        let i = 2;
        for (;;) {
          if (i >= rest.length) throw new Error("missing closing quote in property name");
          if (rest[i] === '"') {
            i++;
            break;
          }
          if (rest[i] === "\\" && rest[i + 1] === '"') {
            key += '"';
            i += 2;
          } else key += rest[i++];
        }
        if (rest[i] !== "]") throw new Error("missing closing bracket in property access");
        out.push(key);
        rest = rest.slice(i + 1);
      } else {
        const close = rest.indexOf("]");
        if (close === -1) throw new Error("missing closing bracket in array index");
        const index = rest.slice(1, close);
        if (!/^\d+$/.test(index)) throw new Error(`invalid array index: ${index}`);
        out.push(Number(index));
        rest = rest.slice(close + 1);
      }
    } else {
      let i = 0;
      while (i < rest.length && rest[i] !== "." && rest[i] !== "[") i++;
      out.push(rest.slice(0, i));
      rest = rest.slice(i);
    }
  }
  return out;
}

/** The CLI's key: `ns:name` splits at the first colon; without one, the project's namespace. */
function parseKey(key: string, project: string): { namespace: string; name: string } {
  const colon = key.indexOf(":");
  if (colon === -1) return { namespace: project, name: key };
  const name = key.slice(colon + 1);
  return { namespace: key.slice(0, colon), name: name.startsWith("config:") ? name.slice("config:".length) : name };
}

/** Parses one printed fix; throws with the reason when a shell or the Pulumi CLI would not take it. */
export function parseFix(line: string, project = "appstack"): ConfigCommand[] {
  return shellCommands(line).map((argv) => {
    const [pulumi, config, verb, ...rest] = argv;
    if (pulumi !== "pulumi" || config !== "config" || (verb !== "set" && verb !== "rm")) throw new Error(`not a pulumi config set/rm command: ${argv.join(" ")}`);
    const { values, positionals } = parseArgs({ args: rest, options: VERBS[verb], strict: true, allowPositionals: true });
    if (typeof values.stack !== "string" || values.stack === "" || values.stack.startsWith("<")) throw new Error(`no stack named: ${argv.join(" ")}`);
    const max = verb === "set" ? 2 : 1;
    if (positionals.length < 1 || positionals.length > max) throw new Error(`${verb} takes ${verb === "set" ? "a key and an optional value" : "one key"}: ${argv.join(" ")}`);
    if (values.type !== undefined && !["string", "bool", "int", "float"].includes(values.type as string)) throw new Error(`unknown --type ${String(values.type)}`);
    const { namespace, name } = parseKey(positionals[0], project);
    if (name === "") throw new Error("config key is empty");
    const path = values.path ? parsePropertyPath(name) : [name];
    if (typeof path[0] !== "string" || path[0] === "") throw new Error("the first path segment must be a non-empty key");
    return { verb, stack: values.stack, secret: values.secret === true, namespace, path, value: positionals[1] };
  });
}
