/**
 * What a stack declares, with real values where the plan masks them: a
 * test-only evaluation of the program for the contract and secret-hygiene tests.
 *
 * The program is evaluated as `plan` does it (`index.ts`, the mock runtime,
 * `planFromEvaluation`), in this process with vitest's loader: how the language
 * host loads the program is tested where the process is what is tested
 * (test/stacks.test.ts plans every stack through `npm run plan`). The
 * differences from a plan: every RandomPassword gets a real random value (or a
 * distinctive canary), secure config keys get values of the test's choosing,
 * and besides the masked plan the evaluation hands back the recorded inputs and
 * outputs unmasked. Each request is evaluated once per `npm test` and shared by
 * the files that make it (test/helpers/shared-results.ts); the secrets stay in
 * memory and in the run's private temporary folder, never in argv or logs.
 */
import { createHash, randomBytes, randomInt } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as rpc from "@pulumi/pulumi/runtime/rpc";
import { evaluateProgram, inspectOutput } from "../../ops/offline/offline-runtime";
import { loadStack, planFromEvaluation, UNKNOWN, type Plan } from "../../ops/offline/plan";
import { resolveStackFile, SECURE_PLACEHOLDER } from "../../ops/offline/stack-files";
import { exclusiveEvaluation, importProgram } from "./pulumi";
import { sharedResult } from "./shared-results";

export const PROJECT_ROOT = path.resolve(__dirname, "..", "..");

/**
 * Time for a test file's setup (evaluations of the program, servers to
 * start): generous, because CI machines are shared and a slow start is not a failure.
 */
export const SETUP_TIMEOUT_MS = 300_000;

/** Every character with a meaning in a URL, plus space: the worst case for a password inside DATABASE_URL. */
export const URL_SPECIALS = "!#$%&'()*+,/:;=?@[] ";

export interface EvaluateRequest {
  stack?: string;
  stackFile?: string;
  /**
   * `contract`: passwords are real random values drawn from each RandomPassword's
   * declared character set, and those that allow specials also hold every URL-special
   * character. `canary`: every generated and secure value is a distinctive token to grep for.
   */
  values: "contract" | "canary";
  /** Values for secure config keys (`appstack:postgresUrl`); unnamed secure keys get a canary. */
  secure?: Record<string, string>;
  /**
   * false: evaluate as an update rather than a preview, so outputs a deploy
   * creates (resource IDs) are the mock's `<name>-id` instead of unknown.
   * @default true
   */
  preview?: boolean;
}

export interface DeclaredResource {
  urn: string;
  type: string;
  name: string;
  /** The inputs as the engine would receive them, secrets revealed, unknowns as "[unknown]". */
  inputs: Record<string, unknown>;
  /** Paths whose values the program marked secret. */
  secretPaths: string[];
}

export interface Declared {
  /** The masked plan, as `npm run plan -- --format json` prints it. */
  plan: Plan;
  resources: DeclaredResource[];
  /** Stack outputs, secrets revealed. */
  outputs: Record<string, unknown>;
  /** Every secret value the evaluation was given: generated passwords and secure config values. */
  secrets: { source: string; value: string }[];
}

/** Evaluates the program for one stack, once per run for the same request and stack file; see the module comment. */
export function evaluateStack(request: EvaluateRequest): Promise<Declared> {
  const { file } = resolveStackFile(PROJECT_ROOT, request);
  const digest = createHash("sha256").update(fs.readFileSync(file)).digest("hex");
  return sharedResult(`declared ${JSON.stringify(request)} ${digest}`, () => exclusiveEvaluation(() => declare(request)));
}

/** A declared resource by logical name; exactly one must exist. */
export function resource(d: Declared, name: string): DeclaredResource {
  const found = d.resources.filter((r) => r.name === name);
  if (found.length !== 1) throw new Error(`expected one resource named ${name}, found ${found.length}: ${d.resources.map((r) => r.name).join(", ")}`);
  return found[0];
}

/** A container's `envs` list (`NAME=value`) as a map; an unknown value is an error, not a blank. */
export function containerEnv(r: DeclaredResource): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of (r.inputs.envs as string[] | undefined) ?? []) {
    const eq = entry.indexOf("=");
    if (eq <= 0) throw new Error(`${r.name}: env entry without NAME=: ${entry.slice(0, 20)}`);
    const value = entry.slice(eq + 1);
    if (value.includes(UNKNOWN)) throw new Error(`${r.name}: ${entry.slice(0, eq)} is unknown before a deploy`);
    env[entry.slice(0, eq)] = value;
  }
  return env;
}

const ALNUM = { lower: "abcdefghijklmnopqrstuvwxyz", upper: "ABCDEFGHIJKLMNOPQRSTUVWXYZ", numeric: "0123456789" };
const RANDOM_DEFAULT_SPECIALS = "!@#$%&*()-_=+[]{}<>:?";

function shuffle(chars: string[]): string {
  for (let i = chars.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [chars[i], chars[j]] = [chars[j], chars[i]];
  }
  return chars.join("");
}

/** A password that honours a RandomPassword's declared inputs (length, classes, minimums, overrideSpecial). */
export function contractPassword(inputs: Record<string, unknown>): string {
  const length = Number(inputs.length ?? 16);
  const classes: { chars: string; min: number }[] = [];
  if (inputs.lower !== false) classes.push({ chars: ALNUM.lower, min: Number(inputs.minLower ?? 0) });
  if (inputs.upper !== false) classes.push({ chars: ALNUM.upper, min: Number(inputs.minUpper ?? 0) });
  if (inputs.numeric !== false) classes.push({ chars: ALNUM.numeric, min: Number(inputs.minNumeric ?? 0) });
  const special = inputs.special !== false;
  const chars: string[] = [];
  if (special) {
    // Beyond the declared set on purpose: every URL-special character, so encoding is proven for all of them.
    chars.push(...URL_SPECIALS);
    classes.push({ chars: String(inputs.overrideSpecial ?? RANDOM_DEFAULT_SPECIALS), min: Number(inputs.minSpecial ?? 0) });
  }
  for (const c of classes) for (let i = 0; i < c.min; i++) chars.push(c.chars[randomInt(c.chars.length)]);
  const all = classes.map((c) => c.chars).join("");
  while (chars.length < length) chars.push(all[randomInt(all.length)]);
  return shuffle(chars);
}

/** A token no program would produce by accident, letters and digits only so it survives URL encoding unchanged. */
export function canary(label: string): string {
  return `CANARY${label.replace(/[^A-Za-z0-9]/g, "")}${randomBytes(8).toString("hex")}`;
}

async function declare(request: EvaluateRequest): Promise<Declared> {
  const secrets: Declared["secrets"] = [];
  const { project, sc } = loadStack({ root: PROJECT_ROOT, stack: request.stack, stackFile: request.stackFile });

  for (const key of sc.secretKeys) {
    if (sc.config[key] === SECURE_PLACEHOLDER) {
      if (request.secure?.[key] !== undefined) {
        sc.config[key] = request.secure[key];
        secrets.push({ source: `config ${key}`, value: sc.config[key] });
        continue;
      }
      // A connection URL must parse: the canary is its password.
      const value = canary(key);
      secrets.push({ source: `config ${key}`, value });
      // A restic repository must be one restic supports: a REST URL carries the canary as its password.
      sc.config[key] = /url$/i.test(key)
        ? `${/redis/i.test(key) ? "redis" : "postgresql"}://canary:${value}@store.example.com:6000/app`
        : /repository$/i.test(key)
          ? `rest:https://canary:${value}@backup.example.com/appstack`
          : value;
      continue;
    }
    // Secure values nested in an object: each placeholder gets its own canary (JSON-safe: letters and digits).
    sc.config[key] = sc.config[key].split(SECURE_PLACEHOLDER).reduce((acc, part, i) => {
      const value = canary(`${key}${i}`);
      secrets.push({ source: `config ${key}`, value });
      return `${acc}${value}${part}`;
    });
  }

  const evaluation = await evaluateProgram(project, sc, path.join(PROJECT_ROOT, "index.ts"), {
    load: importProgram,
    preview: request.preview,
    mockOutputs(type, name, inputs) {
      // A secret's version (swarm mode): random, as the provider's is.
      if (type === "random:index/randomId:RandomId") return { hex: randomBytes(Number(inputs.byteLength ?? 8)).toString("hex") };
      if (type !== "random:index/randomPassword:RandomPassword") return {};
      const value = request.values === "canary" ? canary(name) : contractPassword(inputs);
      secrets.push({ source: `${type} ${name}`, value });
      return { result: value, bcryptHash: canary(`${name}bcrypt`) };
    },
  });
  const plan = await planFromEvaluation(project, sc, evaluation);

  const reveal = (value: unknown, at: string, secretPaths: string[]): unknown => {
    if (value === rpc.unknownValue) return UNKNOWN;
    if (Array.isArray(value)) return value.map((v, i) => reveal(v, `${at}[${i}]`, secretPaths));
    if (value !== null && typeof value === "object") {
      const obj = value as Record<string, unknown>;
      if (obj[rpc.specialSigKey] === rpc.specialSecretSig) {
        secretPaths.push(at);
        return reveal(obj.value, at, []);
      }
      if (obj[rpc.specialSigKey] === rpc.specialResourceSig) return obj.urn;
      return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, reveal(v, at ? `${at}.${k}` : k, secretPaths)]));
    }
    return value;
  };
  const revealOutput = async (value: unknown): Promise<unknown> => {
    if (pulumi.Output.isInstance(value)) {
      const { known, value: inner } = await inspectOutput(value);
      return known ? revealOutput(inner) : UNKNOWN;
    }
    if (Array.isArray(value)) return Promise.all(value.map(revealOutput));
    if (value !== null && typeof value === "object") {
      const entries = await Promise.all(Object.entries(value).map(async ([k, v]) => [k, await revealOutput(v)] as const));
      return Object.fromEntries(entries);
    }
    return value;
  };

  const resources = evaluation.resources.map((r) => {
    const secretPaths: string[] = [];
    const inputs = reveal(r.inputs, "", secretPaths) as Record<string, unknown>;
    return { urn: r.urn, type: r.type, name: r.name, inputs, secretPaths };
  });
  const outputs = (await revealOutput({ ...evaluation.exports })) as Record<string, unknown>;
  return { plan, resources, outputs, secrets };
}
