import type { Plan, PlanResource } from "./plan";

/**
 * How long a deploy can wait on health checks and jobs before it fails, read
 * from a stack's plan: what `pulumi up` would wait for, one step after another.
 */

/** The Docker provider's `waitTimeout` when a container sets `wait: true` without one. */
export const DOCKER_DEFAULT_WAIT_SECONDS = 60;

export interface Wait {
  /** The resource's logical name (`api-1`, `api-<release slot>-1`). */
  name: string;
  /** What it is in the stack, stable across releases: its `appstack.service` label, else its name. */
  part: string;
  /** The most the engine waits on it before the deploy fails. */
  seconds: number;
  /** `healthy`: a container created with `wait: true`; `exits`: a one-shot job, bounded by its create timeout. */
  until: "healthy" | "exits";
}

export interface WaitChain {
  stack: string;
  /** The longest run of waits that follow one another, first to last. */
  waits: Wait[];
  seconds: number;
}

/** A Go duration as the engine takes custom timeouts (`"1800s"`, `"30m"`, `"1h30m"`), in seconds. */
export function durationSeconds(text: string): number {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  if (!m || text === "") throw new Error(`not a duration: "${text}"`);
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

/**
 * What the engine waits on for one resource, as declared: a container with
 * `wait: true` until healthy (its `waitTimeout`, else the provider's 60 s); an
 * attached one-shot container until it exits, for as long as its create
 * timeout allows. Anything else (images, volumes, Vercel resources) declares
 * no wait of its own and adds nothing.
 */
export function waitOf(r: PlanResource): Wait | undefined {
  if (r.type !== "docker:index/container:Container") return undefined;
  const labels = Array.isArray(r.inputs.labels) ? (r.inputs.labels as { label?: unknown; value?: unknown }[]) : [];
  const service = labels.find((l) => l.label === "appstack.service")?.value;
  const part = typeof service === "string" ? service : r.name;
  if (r.inputs.wait === true) {
    const timeout = r.inputs.waitTimeout;
    return { name: r.name, part, seconds: typeof timeout === "number" ? timeout : DOCKER_DEFAULT_WAIT_SECONDS, until: "healthy" };
  }
  const create = r.options.customTimeouts?.create;
  if (r.inputs.attach === true && create) return { name: r.name, part, seconds: durationSeconds(create), until: "exits" };
  return undefined;
}

/**
 * The longest chain of waits through the plan's dependencies (`dependsOn` and
 * the resources an input's value came from, as the engine orders them):
 * resources that do not depend on each other are waited on in parallel, so
 * only a chain adds up. Ties go to the chain with more waits.
 */
export function longestWaitChain(plan: Plan): WaitChain {
  const byUrn = new Map(plan.resources.map((r) => [r.urn, r]));
  const memo = new Map<string, Wait[]>();
  const total = (waits: Wait[]) => waits.reduce((sum, w) => sum + w.seconds, 0);
  const longer = (a: Wait[], b: Wait[]) => total(a) > total(b) || (total(a) === total(b) && a.length > b.length);
  const chainTo = (r: PlanResource, visiting: Set<string>): Wait[] => {
    const known = memo.get(r.urn);
    if (known) return known;
    if (visiting.has(r.urn)) throw new Error(`dependency cycle through ${r.name}`);
    visiting.add(r.urn);
    let before: Wait[] = [];
    const deps = new Set([...r.options.dependsOn, ...Object.values(r.propertyDependencies).flat()]);
    for (const urn of deps) {
      const dep = byUrn.get(urn);
      if (!dep) continue;
      const chain = chainTo(dep, visiting);
      if (longer(chain, before)) before = chain;
    }
    visiting.delete(r.urn);
    const own = waitOf(r);
    const chain = own ? [...before, own] : before;
    memo.set(r.urn, chain);
    return chain;
  };
  let longest: Wait[] = [];
  for (const r of plan.resources) {
    const chain = chainTo(r, new Set());
    if (longer(chain, longest)) longest = chain;
  }
  return { stack: plan.stack, waits: longest, seconds: total(longest) };
}

const figure = (n: number) => n.toLocaleString("en-US");

/**
 * One row per stack, for the README's rollout section. Each wait is named by
 * its part of the stack (a job says so), not its resource name: an API
 * container's name changes with every release.
 */
export function renderWaitChains(chains: WaitChain[]): string {
  const rows = chains.map((c) => {
    const steps = c.waits.map((w) => `\`${w.part}\`${w.until === "exits" ? " job" : ""} ${figure(w.seconds)} s`).join(" → ");
    return `| ${c.stack} | ${c.waits.length} | ${steps} | ${figure(c.seconds)} s (${Math.round(c.seconds / 60)} min) |`;
  });
  return ["| stack | waits | longest chain (each wait's timeout) | worst case |", "| --- | --- | --- | --- |", ...rows].join("\n");
}
