import type { z } from "zod";

/**
 * Reads the zod schema as data: which settings exist at a key path, their
 * types, defaults and choices. The loader uses it for "did you mean" and for
 * fix commands with a real default in them; the configuration reference
 * (docs/configuration.md) is generated from it.
 */

type Schema = z.core.$ZodType;
interface Def {
  type: string;
  innerType?: Schema;
  in?: Schema;
  shape?: Record<string, Schema>;
  options?: Schema[];
  discriminator?: string;
  element?: Schema;
  valueType?: Schema;
  entries?: Record<string, string>;
  values?: unknown[];
  format?: string;
  checks?: { _zod: { def: { check: string; value?: number; inclusive?: boolean; format?: string } } }[];
  readonly defaultValue?: unknown;
}

const defOf = (s: Schema) => s._zod.def as unknown as Def;

/** A schema with its wrappers peeled off: optional, default, pipe (transform), readonly. */
export interface Unwrapped {
  schema: Schema;
  optional: boolean;
  /** The default, when the schema has one (a computed default is computed). */
  default?: { value: unknown };
}

export function unwrap(schema: Schema): Unwrapped {
  let s = schema;
  let optional = false;
  let dflt: { value: unknown } | undefined;
  for (;;) {
    const def = defOf(s);
    if (def.type === "optional" && def.innerType) {
      optional = true;
      s = def.innerType;
    } else if (def.type === "default" && def.innerType) {
      dflt ??= { value: def.defaultValue };
      s = def.innerType;
    } else if (def.type === "pipe" && def.in) {
      s = def.in;
    } else if ((def.type === "readonly" || def.type === "nullable") && def.innerType) {
      s = def.innerType;
    } else {
      return { schema: s, optional, default: dflt };
    }
  }
}

/** The object options of a discriminated union, each with its discriminator value. */
export function unionOptions(schema: Schema): { value: string; schema: Schema }[] | undefined {
  const def = defOf(schema);
  if (def.type !== "union" || !def.discriminator || !def.options) return undefined;
  const key = def.discriminator;
  return def.options.map((o) => {
    const lit = defOf(unwrap(defOf(o).shape![key]).schema);
    return { value: String(lit.values?.[0]), schema: o };
  });
}

export const discriminatorOf = (schema: Schema) => defOf(schema).discriminator;
export const shapeOf = (schema: Schema) => defOf(schema).shape;
export const kindOf = (schema: Schema) => defOf(schema).type;

/** The choices of an enum or literal, if it is one. */
export function choicesOf(schema: Schema): string[] | undefined {
  const def = defOf(schema);
  if (def.type === "enum" && def.entries) return Object.values(def.entries);
  if (def.type === "literal" && def.values) return def.values.map(String);
  return undefined;
}

function numberRange(def: Def): { min?: number; max?: number; integer: boolean; exclusiveMin: boolean } {
  let integer = false;
  let exclusiveMin = false;
  let min: number | undefined;
  let max: number | undefined;
  for (const c of def.checks ?? []) {
    const d = c._zod.def;
    if (d.check === "number_format" && d.format === "safeint") integer = true;
    if (d.check === "greater_than") {
      min = d.value;
      exclusiveMin = d.inclusive === false;
    }
    if (d.check === "less_than") max = d.value;
  }
  return { min, max, integer, exclusiveMin };
}

/** A type in words, for the reference and for notes in fixes: "integer, 1 to 50", "list of string". */
export function typeName(schema: Schema): string {
  const s = unwrap(schema).schema;
  const def = defOf(s);
  switch (def.type) {
    case "string":
      return def.format === "email" ? "e-mail address" : "string";
    case "number": {
      const { min, max, integer, exclusiveMin } = numberRange(def);
      const base = integer ? "integer" : "number";
      if (min !== undefined && max !== undefined) return `${base}, ${min} to ${max}`;
      if (min !== undefined) return exclusiveMin ? `${base} above ${min}` : `${base}, at least ${min}`;
      return base;
    }
    case "boolean":
      return "boolean";
    case "enum":
    case "literal":
      return choicesOf(s)!.map((c) => JSON.stringify(c)).join(" | ");
    case "array":
      return `list of ${typeName(def.element!)}`;
    case "record":
      return `map of name to ${typeName(def.valueType!)}`;
    case "object":
      return "object";
    case "union": {
      const options = unionOptions(s);
      if (options) return `object (by ${def.discriminator}: ${options.map((o) => o.value).join(", ")})`;
      return [...new Set(def.options!.map(typeName))].join(" or ");
    }
    default:
      return def.type;
  }
}

/**
 * The schema at a key path of the raw settings, or undefined where the schema
 * has no such key. A discriminated union is resolved by the raw value's
 * discriminator (its first option when that is missing or unknown).
 */
export function schemaAt(root: Schema, raw: unknown, path: readonly PropertyKey[]): Unwrapped | undefined {
  let current = unwrap(root);
  let data = raw;
  for (const seg of path) {
    let s = current.schema;
    const options = unionOptions(s);
    // The discriminator itself: every option's value is a valid choice.
    if (options && seg === discriminatorOf(s)) return { schema: unionDiscriminator(s), optional: false };
    if (options) {
      const value = (data as Record<string, unknown> | undefined)?.[discriminatorOf(s)!];
      s = (options.find((o) => o.value === value) ?? options[0]).schema;
    }
    const def = defOf(s);
    data = data !== null && typeof data === "object" ? (data as Record<PropertyKey, unknown>)[seg] : undefined;
    if (def.type === "object" && typeof seg === "string" && def.shape && Object.hasOwn(def.shape, seg)) current = unwrap(def.shape[seg]);
    else if (def.type === "array" && typeof seg === "number") current = unwrap(def.element!);
    else if (def.type === "record" && typeof seg === "string") current = unwrap(def.valueType!);
    else return undefined;
  }
  return current;
}

/** The keys an object setting allows at a path (of the matching union option), for "did you mean". */
export function keysAt(root: Schema, raw: unknown, path: readonly PropertyKey[]): string[] {
  const at = schemaAt(root, raw, path);
  if (!at) return [];
  let s = at.schema;
  const options = unionOptions(s);
  if (options) {
    let data = raw;
    for (const seg of path) data = data !== null && typeof data === "object" ? (data as Record<PropertyKey, unknown>)[seg] : undefined;
    const value = (data as Record<string, unknown> | undefined)?.[discriminatorOf(s)!];
    s = (options.find((o) => o.value === value) ?? options[0]).schema;
  }
  return Object.keys(shapeOf(s) ?? {});
}

/** One setting of the reference: a leaf or an object, with the union option it belongs to. */
export interface Setting {
  path: string[];
  schema: Schema;
  /** Set only within one option of a discriminated union: `{ key: "mode", value: "external" }`. */
  when?: { key: string; value: string };
  optional: boolean;
  default?: { value: unknown };
  /** A union's discriminator (`mode`): the values that select its options. */
  options?: string[];
}

/** Every setting under an object schema, depth first, in declaration order. */
export function settingsOf(root: Schema): Setting[] {
  const out: Setting[] = [];
  const visit = (schema: Schema, path: string[], when: Setting["when"], parentDefault: unknown) => {
    const { schema: s } = unwrap(schema);
    const options = unionOptions(s);
    if (options) {
      const key = discriminatorOf(s)!;
      const chosen = (parentDefault as Record<string, unknown> | undefined)?.[key];
      out.push({
        path: [...path, key],
        schema: unionDiscriminator(s),
        when,
        optional: false,
        default: chosen === undefined ? undefined : { value: chosen },
        options: options.map((o) => o.value),
      });
      for (const o of options) {
        for (const [name, child] of Object.entries(shapeOf(o.schema)!)) {
          if (name !== key) add(child, [...path, name], { key, value: o.value });
        }
      }
      return;
    }
    const shape = shapeOf(s);
    if (kindOf(s) === "object" && shape) for (const [name, child] of Object.entries(shape)) add(child, [...path, name], when);
  };
  const add = (schema: Schema, path: string[], when: Setting["when"]) => {
    const u = unwrap(schema);
    out.push({ path, schema, when, optional: u.optional, default: u.default });
    visit(schema, path, when, u.default?.value);
  };
  visit(root, [], undefined, undefined);
  return out;
}

/** A stand-in schema for a union's discriminator: the enum of its option values. */
function unionDiscriminator(union: Schema): Schema {
  const values = unionOptions(union)!.map((o) => o.value);
  return { _zod: { def: { type: "enum", entries: Object.fromEntries(values.map((v) => [v, v])) } } } as unknown as Schema;
}
