import * as fs from "node:fs";
import * as path from "node:path";
import * as ts from "typescript";
import { appConfigSchema } from "../../config";
import { settingsOf, typeName, type Setting } from "../../config/schema-walk";

/**
 * The configuration reference (docs/configuration.md), generated from the
 * schema so it cannot drift: keys, types, defaults and choices from the zod
 * schema itself (config/schema-walk.ts), descriptions from the JSDoc of each
 * key in config/schema.ts, read with the TypeScript parser.
 */

export const SCHEMA_FILE = "config/schema.ts";
export const REFERENCE_FILE = "docs/configuration.md";

/** A key's JSDoc: its text and its tags (`@default`). */
export interface KeyDoc {
  text: string;
  tags: Record<string, string>;
}

/**
 * JSDoc by key path (`worker.health.pattern`), and by path within a union
 * option (`worker.health.pattern@process`). Follows the schema's own shapes:
 * `z.strictObject({...})` literals, spreads of shared objects, constants
 * (`health: workerHealth.default(...)`), method chains and discriminated
 * unions. A key with no JSDoc of its own takes its constant's.
 */
export function readKeyDocs(root: string): Map<string, KeyDoc> {
  const file = path.join(root, SCHEMA_FILE);
  const source = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.ES2022, true);
  const consts = new Map<string, ts.VariableDeclaration>();
  source.forEachChild(function collect(node) {
    if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name)) consts.set(node.name.text, node);
    node.forEachChild(collect);
  });
  const docs = new Map<string, KeyDoc>();
  const record = (key: string, doc: KeyDoc | undefined) => {
    if (doc && !docs.has(key)) docs.set(key, doc);
  };

  const visit = (expr: ts.Expression, at: string[], option: string | undefined, seen: Set<string>): void => {
    if (ts.isParenthesizedExpression(expr) || ts.isAsExpression(expr)) return visit(expr.expression, at, option, seen);
    if (ts.isIdentifier(expr)) {
      const decl = consts.get(expr.text);
      if (!decl?.initializer || seen.has(expr.text)) return;
      if (at.length) record(keyOf(at, option), jsDocOf(decl.parent.parent));
      return visit(decl.initializer, at, option, new Set([...seen, expr.text]));
    }
    if (ts.isObjectLiteralExpression(expr)) return visitObject(expr, at, option, seen);
    if (!ts.isCallExpression(expr)) return;
    const callee = expr.expression;
    if (!ts.isPropertyAccessExpression(callee)) return;
    const method = callee.name.text;
    const isZ = ts.isIdentifier(callee.expression) && callee.expression.text === "z";
    if (isZ && (method === "strictObject" || method === "object") && expr.arguments[0]) return visit(expr.arguments[0], at, option, seen);
    if (isZ && method === "discriminatedUnion") {
      const list = expr.arguments[1];
      if (list && ts.isArrayLiteralExpression(list)) for (const el of list.elements) visit(el, at, optionOf(el, consts), seen);
      return;
    }
    if (isZ && method === "array" && expr.arguments[0]) return visit(expr.arguments[0], at, option, seen);
    if (!isZ) return visit(callee.expression, at, option, seen);
  };

  const visitObject = (obj: ts.ObjectLiteralExpression, at: string[], option: string | undefined, seen: Set<string>) => {
    for (const prop of obj.properties) {
      if (ts.isSpreadAssignment(prop)) {
        visit(prop.expression, at, option, seen);
        continue;
      }
      const name = prop.name && (ts.isIdentifier(prop.name) || ts.isStringLiteral(prop.name)) ? prop.name.text : undefined;
      if (!name) continue;
      const key = [...at, name];
      record(keyOf(key, option), jsDocOf(prop));
      if (ts.isPropertyAssignment(prop)) visit(prop.initializer, key, undefined, seen);
      else if (ts.isShorthandPropertyAssignment(prop)) visit(prop.name, key, undefined, seen);
    }
  };

  const root$ = consts.get("appConfigSchema");
  if (!root$?.initializer) throw new Error(`${SCHEMA_FILE} has no appConfigSchema`);
  visit(root$.initializer, [], undefined, new Set());
  return docs;
}

const keyOf = (at: string[], option: string | undefined) => at.join(".") + (option ? `@${option}` : "");

/** The discriminator value of a union option: its `z.literal("x")` key. */
function optionOf(el: ts.Expression, consts: Map<string, ts.VariableDeclaration>): string | undefined {
  const init = ts.isIdentifier(el) ? consts.get(el.text)?.initializer : el;
  if (!init || !ts.isCallExpression(init) || !init.arguments[0] || !ts.isObjectLiteralExpression(init.arguments[0])) return undefined;
  for (const prop of init.arguments[0].properties) {
    if (!ts.isPropertyAssignment(prop) || !ts.isCallExpression(prop.initializer)) continue;
    const callee = prop.initializer.expression;
    const arg = prop.initializer.arguments[0];
    if (ts.isPropertyAccessExpression(callee) && callee.name.text === "literal" && arg && ts.isStringLiteral(arg)) return arg.text;
  }
  return undefined;
}

function jsDocOf(node: ts.Node): KeyDoc | undefined {
  const jsDocs = ts.getJSDocCommentsAndTags(node).filter(ts.isJSDoc);
  if (jsDocs.length === 0) return undefined;
  const doc = jsDocs[jsDocs.length - 1];
  const text = (ts.getTextOfJSDocComment(doc.comment) ?? "").replace(/\s*\n\s*/g, " ").trim();
  const tags: Record<string, string> = {};
  for (const tag of doc.tags ?? []) tags[tag.tagName.text] = (ts.getTextOfJSDocComment(tag.comment) ?? "").replace(/\s*\n\s*/g, " ").trim();
  return { text, tags };
}

export interface ReferenceRow {
  key: string;
  /** `mode: external`: the key exists in that option of a union only. */
  when?: string;
  type: string;
  /** `required`, a default, or `-` (optional, none). */
  default: string;
  description: string;
}

/**
 * The JSDoc of a setting: its own, or its union option's; a discriminator
 * (`mode`) gathers what each of its options says about itself.
 */
export function docOf(docs: Map<string, KeyDoc>, s: Setting): KeyDoc | undefined {
  const key = s.path.join(".");
  if (s.options) {
    const parts = s.options.map((o) => docs.get(`${key}@${o}`)?.text).filter((t): t is string => !!t);
    return parts.length === s.options.length ? { text: parts.join(" "), tags: {} } : undefined;
  }
  return (s.when && docs.get(`${key}@${s.when.value}`)) || docs.get(key);
}

/** A static default as the reference shows it; objects (whole sections) are described by their keys instead. */
function shownDefault(s: Setting, doc: KeyDoc | undefined): string {
  if (doc?.tags.default) return doc.tags.default;
  if (s.default) {
    const v = s.default.value;
    if (v !== null && typeof v === "object" && !Array.isArray(v)) return Object.keys(v).length ? "the defaults below" : "none";
    if (Array.isArray(v) && v.length === 0) return "none";
    if (v !== null && typeof v === "object") return `\`${JSON.stringify(v)}\``;
    return `\`${typeof v === "string" ? v : JSON.stringify(v)}\``;
  }
  return s.optional ? "-" : "required";
}

/** One row per setting, in the schema's order. */
export function referenceRows(root: string): ReferenceRow[] {
  const docs = readKeyDocs(root);
  return settingsOf(appConfigSchema).map((s) => {
    const doc = docOf(docs, s);
    return {
      key: s.path.join("."),
      when: s.when ? `${s.when.key}: ${s.when.value}` : undefined,
      type: typeName(s.schema),
      default: shownDefault(s, doc),
      description: doc?.text ?? "",
    };
  });
}

/** A table cell: pipes escaped, and `<name>` outside code spans kept as text, not read as HTML. */
const cell = (text: string) =>
  text
    .split("`")
    .map((part, i) => (i % 2 ? part : part.replace(/</g, "&lt;").replace(/>/g, "&gt;")))
    .join("`")
    .replace(/\|/g, "\\|");

/** docs/configuration.md, whole. */
export function renderReference(root: string): string {
  const rows = referenceRows(root);
  const sections = new Map<string, ReferenceRow[]>();
  for (const row of rows) {
    const top = row.key.split(".")[0];
    sections.set(top, [...(sections.get(top) ?? []), row]);
  }
  const lines = [
    "# Configuration reference",
    "",
    `<!-- Generated from ${SCHEMA_FILE} by \`npm run docs\`; test/config-reference.test.ts fails when it differs. Edit the schema's JSDoc, not this file. -->`,
    "",
    "Every setting under `appstack:` in `Pulumi.<stack>.yaml`: its type, its",
    "default, and what it does, from the one schema in `config/schema.ts`.",
    "Unknown keys are errors. Set values with `--path`; a list is set element by",
    "element, or written in the stack file:",
    "",
    "```bash",
    "pulumi config set -s staging --path postgres.memoryMb 1024",
    "pulumi config set -s staging --path 'worker.command[0]' node",
    "pulumi config set -s staging --path 'worker.command[1]' dist/worker.js",
    "```",
    "",
    "Secrets are not settings: each is a top-level secure key (`pulumi config set",
    "-s <stack> --secret OPENAI_API_KEY`, and Pulumi asks for the value) that a",
    "service names in its `secretEnv`; `vercelApiToken` for a Vercel frontend;",
    "`postgres.urlSecret` / `redis.urlSecret` in external mode.",
    "",
    "A key marked *(mode: external)* exists only when its section's `mode` (or",
    "`type`) has that value.",
  ];
  for (const [top, rs] of sections) {
    lines.push("", `## \`${top}\``, "", "| key | type | default | description |", "| --- | --- | --- | --- |");
    for (const r of rs) {
      const key = `\`${r.key}\`${r.when ? ` *(${r.when})*` : ""}`;
      lines.push(`| ${key} | ${cell(r.type)} | ${cell(r.default)} | ${cell(r.description)} |`);
    }
  }
  return lines.join("\n") + "\n";
}
