import { destructiveReason } from "./destructive";
import { SECRET, UNKNOWN } from "../shared/masks";
import type { Plan, PlanResource } from "../offline/plan";
import { inputVerdict, pathMatches, topLevelInput } from "./replacement-rules";

/**
 * Compares two offline plans of one stack (the base ref's and the working
 * tree's) the way the engine would diff them: resources matched by URN, inputs
 * compared path by path, replacements decided by the providers' rules, and
 * values a deploy computes (unknown, or secret) treated as changing when they
 * come from a resource that is itself replaced or created.
 */

export type ResourceAction = "create" | "delete" | "update" | "replace";

export interface InputChange {
  /** `envs[2]`, `labels[3].value`, `image`. */
  path: string;
  /** As the plan prints it: secrets `[secret]`, computed values `[unknown]`, absent `undefined`. */
  old: unknown;
  new: unknown;
  /** A secret: printed masked, known to differ only through the per-run digests. */
  secret: boolean;
  /** This change alone makes the engine replace the resource. */
  replaces: boolean;
  /** Why an unseen value changes: "computed from `postgres-image`, which is replaced". */
  because?: string;
}

export interface ResourceChange {
  urn: string;
  type: string;
  name: string;
  action: ResourceAction;
  changes: InputChange[];
  /** `protect: false -> true` and the like: recorded by the engine, no provider call. */
  optionChanges: string[];
  /** Replacement order: the old one goes first (downtime) instead of after the new one is up. */
  deleteBeforeReplace: boolean;
  /** Set when this delete or replacement destroys or cuts off state. */
  destructive?: string;
}

export interface OutputChange {
  path: string;
  old: unknown;
  new: unknown;
  secret: boolean;
}

export interface StackDiff {
  stack: string;
  /** Resources that change, in the working tree's order; deletions last. */
  resources: ResourceChange[];
  unchanged: number;
  outputs: OutputChange[];
  /** Secure keys of the stack file whose ciphertext was added, removed or changed. */
  secureConfig: { key: string; change: "added" | "removed" | "changed" }[];
  /** What the diff could not tell, said once each. */
  notes: string[];
}

export const destructiveChanges = (d: StackDiff): ResourceChange[] => d.resources.filter((r) => r.destructive !== undefined);

export function summarize(d: StackDiff): Record<ResourceAction | "unchanged", number> {
  const count = (a: ResourceAction) => d.resources.filter((r) => r.action === a).length;
  return { create: count("create"), replace: count("replace"), update: count("update"), delete: count("delete"), unchanged: d.unchanged };
}

export const hasChanges = (d: StackDiff): boolean => d.resources.length > 0 || d.outputs.length > 0 || d.secureConfig.length > 0;

type Digests = Record<string, string> | undefined;

interface Side {
  value: unknown;
  secretPaths: string[];
  digests: Digests;
}

function join(at: string, key: string): string {
  return at ? `${at}.${key}` : key;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * Leaf-by-leaf differences between two masked values. Arrays of different
 * length are reported whole (an element added to `envs` shifts every index).
 * A secret that prints `[secret]` on both sides differs when its digests do.
 */
function compareValues(a: Side, b: Side, at: string, out: Omit<InputChange, "replaces">[], notes: Set<string>): void {
  const [x, y] = [a.value, b.value];
  if (isPlainObject(x) && isPlainObject(y)) {
    for (const key of new Set([...Object.keys(x), ...Object.keys(y)])) {
      compareValues({ ...a, value: x[key] }, { ...b, value: y[key] }, join(at, key), out, notes);
    }
    return;
  }
  if (Array.isArray(x) && Array.isArray(y) && x.length === y.length) {
    x.forEach((_, i) => compareValues({ ...a, value: x[i] }, { ...b, value: y[i] }, `${at}[${i}]`, out, notes));
    return;
  }
  const secret = a.secretPaths.some((p) => pathMatches(at, p) || pathMatches(p, at)) || b.secretPaths.some((p) => pathMatches(at, p) || pathMatches(p, at));
  if (x === SECRET && y === SECRET) {
    const [da, db] = [a.digests?.[at], b.digests?.[at]];
    if (da === undefined || db === undefined) {
      notes.add("Secret values could not be compared (a plan has no secret digests: the base ref predates them); a changed secret would not show.");
      return;
    }
    if (da !== db) out.push({ path: at, old: x, new: y, secret: true });
    return;
  }
  if (JSON.stringify(x) !== JSON.stringify(y)) out.push({ path: at, old: x, new: y, secret });
}

/** Every leaf of a value with its path: what can change under one input. */
function leaves(value: unknown, at: string, out: [string, unknown][] = []): [string, unknown][] {
  if (isPlainObject(value)) for (const [k, v] of Object.entries(value)) leaves(v, join(at, k), out);
  else if (Array.isArray(value)) value.forEach((v, i) => leaves(v, `${at}[${i}]`, out));
  else out.push([at, value]);
  return out;
}

function valueAt(value: unknown, path: string): unknown {
  let cur = value;
  for (const seg of path.match(/[^.[\]]+/g) ?? []) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

/** Whether a change to `path` replaces the resource: `replaceOnChanges` first, then the provider's rule. */
function replaces(r: PlanResource, path: string): boolean {
  if ((r.options.replaceOnChanges ?? []).some((p) => pathMatches(p, path))) return true;
  return inputVerdict(r.type, topLevelInput(path)).action === "replace";
}

function ignored(r: PlanResource, path: string): boolean {
  return (r.options.ignoreChanges ?? []).some((p) => pathMatches(p, path));
}

function optionChanges(a: PlanResource, b: PlanResource): string[] {
  const keys = ["protect", "retainOnDelete", "deleteBeforeReplace"] as const;
  return keys.filter((k) => a.options[k] !== b.options[k]).map((k) => `${k}: ${a.options[k]} -> ${b.options[k]}`);
}

/** Every leaf that differs between two whole values (a resource's inputs, a stack's outputs). */
function differences(a: Side, b: Side, notes: Set<string>): Omit<InputChange, "replaces">[] {
  const out: Omit<InputChange, "replaces">[] = [];
  compareValues(a, b, "", out, notes);
  return out;
}

function inputChanges(a: PlanResource, b: PlanResource, notes: Set<string>): InputChange[] {
  const raw = differences(
    { value: a.inputs, secretPaths: a.secretPaths, digests: a.secretDigests },
    { value: b.inputs, secretPaths: b.secretPaths, digests: b.secretDigests },
    notes,
  );
  return raw.filter((c) => !ignored(b, c.path)).map((c) => ({ ...c, replaces: replaces(b, c.path) }));
}

function actionOf(changes: InputChange[]): ResourceAction {
  return changes.some((c) => c.replaces) ? "replace" : "update";
}

/**
 * Values the plan cannot see (unknown, or secret) under an input that comes
 * from a resource being replaced or created: the engine sees them change,
 * because that resource's outputs are new. Repeats until nothing more changes,
 * so a replaced image replaces its container, which replaces what uses it.
 */
function propagate(pairs: [PlanResource, PlanResource][], byUrn: Map<string, ResourceChange>, names: Map<string, string>): void {
  const changing = () => new Map([...byUrn.values()].filter((c) => c.action === "create" || c.action === "replace").map((c) => [c.urn, c.action]));
  for (let round = 0; round <= pairs.length; round++) {
    const renewed = changing();
    let progressed = false;
    for (const [a, b] of pairs) {
      for (const [input, deps] of Object.entries(b.propertyDependencies ?? {})) {
        const cause = deps.find((u) => renewed.has(u));
        if (!cause) continue;
        for (const [path, value] of leaves(b.inputs[input], input)) {
          const secret = b.secretPaths.some((p) => pathMatches(p, path));
          if (value !== UNKNOWN && !secret) continue;
          if (ignored(b, path)) continue;
          const entry = byUrn.get(b.urn) ?? newChange(b, "update");
          if (entry.changes.some((c) => pathMatches(c.path, path))) continue;
          const verb = renewed.get(cause) === "create" ? "created" : "replaced";
          entry.changes.push({
            path,
            old: valueAt(a.inputs, path),
            new: value,
            secret,
            replaces: replaces(b, path),
            because: `computed from \`${names.get(cause) ?? cause}\`, which is ${verb}`,
          });
          entry.action = actionOf(entry.changes);
          byUrn.set(b.urn, entry);
          progressed = true;
        }
      }
    }
    if (!progressed) return;
  }
}

function newChange(r: PlanResource, action: ResourceAction): ResourceChange {
  return { urn: r.urn, type: r.type, name: r.name, action, changes: [], optionChanges: [], deleteBeforeReplace: r.options.deleteBeforeReplace };
}

function compareOutputs(base: Plan, head: Plan, notes: Set<string>): OutputChange[] {
  const raw = differences(
    { value: base.outputs, secretPaths: base.outputSecretPaths, digests: base.outputSecretDigests },
    { value: head.outputs, secretPaths: head.outputSecretPaths, digests: head.outputSecretDigests },
    notes,
  );
  return raw.map(({ path, old, new: now, secret }) => ({ path, old, new: now, secret }));
}

function compareSecureConfig(base: Plan, head: Plan): StackDiff["secureConfig"] {
  const [a, b] = [base.configSecretDigests ?? {}, head.configSecretDigests ?? {}];
  const out: StackDiff["secureConfig"] = [];
  for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    if (!(key in a)) out.push({ key, change: "added" });
    else if (!(key in b)) out.push({ key, change: "removed" });
    else if (a[key] !== b[key]) out.push({ key, change: "changed" });
  }
  return out;
}

/** How a path inside the checkout prints once `relocate` has made the two sides comparable. */
export const CHECKOUT = "<checkout>";

function mapStrings(value: unknown, fn: (s: string) => string): unknown {
  if (typeof value === "string") return fn(value);
  if (Array.isArray(value)) return value.map((v) => mapStrings(v, fn));
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapStrings(v, fn)]));
  return value;
}

/**
 * The same plan with absolute paths inside its checkout (a Docker build
 * context, a Dockerfile) written relative to `<checkout>`: the base ref is
 * planned in a temporary worktree, so its absolute paths differ from the
 * working tree's although the stack, deployed from one clone, would not change.
 */
export function relocate(plan: Plan, roots: string[]): Plan {
  const escaped = [...new Set(roots)].sort((a, b) => b.length - a.length).map((r) => r.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp(`(?:${escaped.join("|")})(?=/|$)`, "g");
  const fix = (s: string) => s.replace(pattern, CHECKOUT);
  return {
    ...plan,
    resources: plan.resources.map((r) => ({ ...r, inputs: mapStrings(r.inputs, fix) as Record<string, unknown> })),
    outputs: mapStrings(plan.outputs, fix) as Record<string, unknown>,
  };
}

/** What the engine would do going from `base` to `head`. */
export function compareStacks(base: Plan, head: Plan): StackDiff {
  const notes = new Set<string>();
  const baseByUrn = new Map(base.resources.map((r) => [r.urn, r]));
  const headUrns = new Set(head.resources.map((r) => r.urn));
  const names = new Map([...base.resources, ...head.resources].map((r) => [r.urn, r.name]));
  const byUrn = new Map<string, ResourceChange>();
  const pairs: [PlanResource, PlanResource][] = [];

  for (const b of head.resources) {
    const a = baseByUrn.get(b.urn);
    if (!a) {
      byUrn.set(b.urn, newChange(b, "create"));
      continue;
    }
    pairs.push([a, b]);
    const changes = inputChanges(a, b, notes);
    const options = optionChanges(a, b);
    if (changes.length === 0 && options.length === 0) continue;
    byUrn.set(b.urn, { ...newChange(b, actionOf(changes)), changes, optionChanges: options });
  }
  propagate(pairs, byUrn, names);

  for (const [a, b] of pairs) {
    const entry = byUrn.get(b.urn);
    if (entry?.action === "replace") entry.destructive = destructiveReason(a);
    for (const c of entry?.changes ?? []) {
      if (!inputVerdict(b.type, topLevelInput(c.path)).modelled) {
        notes.add(`No replacement rule for ${b.type}: its changes are shown as updates; the engine may replace it.`);
      }
    }
  }
  const deletions = base.resources
    .filter((a) => !headUrns.has(a.urn))
    .map((a) => ({ ...newChange(a, "delete"), destructive: destructiveReason(a) }));

  const resources = [...head.resources.map((r) => byUrn.get(r.urn)).filter((c): c is ResourceChange => c !== undefined), ...deletions];
  return {
    stack: head.stack,
    resources,
    unchanged: head.resources.length - byUrn.size,
    outputs: compareOutputs(base, head, notes),
    secureConfig: compareSecureConfig(base, head),
    notes: [...notes],
  };
}
