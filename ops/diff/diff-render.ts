import { destructiveChanges, hasChanges, summarize, type InputChange, type ResourceChange, type StackDiff } from "./diff";
import { SECRET, UNKNOWN } from "../shared/masks";
import { REPLACEMENT_RULES } from "./replacement-rules";

/** Where the two sides of a diff came from, for the heading. */
export interface DiffSides {
  /** The ref as the user gave it (`main`, `origin/main`, a SHA). */
  baseRef: string;
  baseCommit: string;
  /** What the other side is: "the working tree". */
  head: string;
}

const TITLES = new Map(REPLACEMENT_RULES.map((r) => [r.type, r.title]));
const title = (type: string) => TITLES.get(type) ?? type;
const short = (sha: string) => sha.slice(0, 12);

/** A value as a reviewer reads it; secrets and computed values stay masked words, never quoted. */
export function formatValue(v: unknown): string {
  if (v === undefined) return "(not set)";
  if (v === SECRET || v === UNKNOWN) return v;
  const text = JSON.stringify(v);
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
}

function code(text: string): string {
  return text.includes("`") ? `\`\` ${text} \`\`` : `\`${text}\``;
}

function describeChange(c: InputChange): string {
  const what = c.secret && c.old === SECRET && c.new === SECRET ? "secret value changed" : `${code(formatValue(c.old))} -> ${code(formatValue(c.new))}`;
  const because = c.because ? `, ${c.because}` : "";
  const replaces = c.replaces ? " **(forces replacement)**" : "";
  return `- ${code(c.path)}: ${what}${because}${replaces}`;
}

function verb(r: ResourceChange): string {
  if (r.action === "replace") return r.deleteBeforeReplace ? "replace (delete first, then create)" : "replace (create first, then delete)";
  return r.action;
}

function why(r: ResourceChange): string {
  if (r.action === "create" || r.action === "delete") return "";
  const forcing = r.changes.filter((c) => c.replaces);
  const shown = (forcing.length > 0 ? forcing : r.changes).map((c) => topLevel(c.path));
  return [...new Set(shown)].map(code).join(", ") || r.optionChanges.join(", ");
}

function topLevel(path: string): string {
  return /^[^.[]+/.exec(path)?.[0] ?? path;
}

/** The diff for a pull request comment or a terminal: destructive changes first, then a table, then every changed input. */
export function renderDiffMarkdown(d: StackDiff, sides: DiffSides): string {
  const against = `${code(sides.baseRef)} (${short(sides.baseCommit)})`;
  const lines: string[] = [`### Offline diff: stack ${code(d.stack)}`, ""];
  if (!hasChanges(d)) {
    lines.push(`Stack ${code(d.stack)}: no changes between ${against} and ${sides.head}.`);
    return lines.concat(notes(d)).join("\n");
  }
  lines.push(`Desired state at ${against} compared with ${sides.head}.`, "");

  const destructive = destructiveChanges(d);
  if (destructive.length > 0) {
    const what = destructive.length === 1 ? "1 change deletes or replaces a stateful resource" : `${destructive.length} changes delete or replace stateful resources`;
    lines.push("> [!CAUTION]", `> **Destructive: ${what}.**`);
    for (const r of destructive) lines.push(`> - **${r.action}** ${code(r.name)} (${title(r.type)}): ${r.destructive}`);
    lines.push("> ", "> To accept: `npm run diff -- --allow-destructive`, or the `allow-destructive` label on the pull request.", "");
  }

  const s = summarize(d);
  lines.push(`**${s.create} to create, ${s.replace} to replace, ${s.update} to update, ${s.delete} to delete, ${s.unchanged} unchanged.**`, "");
  if (d.resources.length > 0) {
    lines.push("| action | resource | type | because of |", "| --- | --- | --- | --- |");
    for (const r of d.resources) lines.push(`| ${r.destructive ? `**${r.action}**` : r.action} | ${code(r.name)} | ${title(r.type)} | ${why(r)} |`);
    lines.push("");
  }

  const detailed = d.resources.filter((r) => r.changes.length > 0 || r.optionChanges.length > 0);
  if (detailed.length > 0) {
    lines.push("<details><summary>Changed inputs</summary>", "");
    for (const r of detailed) {
      lines.push(`**${code(r.name)}** (${title(r.type)}): ${verb(r)}`, "");
      lines.push(...r.changes.map(describeChange), ...r.optionChanges.map((o) => `- option ${code(o)}`), "");
    }
    lines.push("</details>", "");
  }

  if (d.outputs.length > 0) {
    lines.push("**Stack outputs**", "");
    for (const o of d.outputs) lines.push(describeChange({ ...o, replaces: false }));
    lines.push("");
  }
  if (d.secureConfig.length > 0) {
    lines.push("**Secure config** (ciphertext compared; values are never decrypted, and re-encrypting an unchanged value also shows here)", "");
    for (const c of d.secureConfig) lines.push(`- ${code(c.key)}: ${c.change}`);
    lines.push("");
  }
  return lines.concat(notes(d)).join("\n").trimEnd();
}

function notes(d: StackDiff): string[] {
  return d.notes.length > 0 ? ["", ...d.notes.map((n) => `_Note: ${n}_`)] : [];
}

/** Machine-readable: the same content, no digests (they are meaningless outside the run anyway). */
export function renderDiffJson(d: StackDiff, sides: DiffSides): string {
  return JSON.stringify(
    {
      stack: d.stack,
      base: { ref: sides.baseRef, commit: sides.baseCommit },
      head: sides.head,
      changed: hasChanges(d),
      destructive: destructiveChanges(d).map((r) => ({ urn: r.urn, name: r.name, type: r.type, action: r.action, reason: r.destructive })),
      summary: summarize(d),
      resources: d.resources,
      outputs: d.outputs,
      secureConfig: d.secureConfig,
      notes: d.notes,
    },
    null,
    2,
  );
}
