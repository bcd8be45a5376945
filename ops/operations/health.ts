import type { OutputMap } from "@pulumi/pulumi/automation";
import { EXIT, UserError } from "../shared/errors";
import { realClock, type Clock } from "./lock-wait";

/** One service the stack exposes, as its `endpoints` output names it. */
export interface Endpoint {
  service: string;
  url?: string;
  healthUrl: string;
  /** Deployed image reference; none for the Vercel frontend. */
  image?: string;
}

export interface ProbeResult extends Endpoint {
  healthy: boolean;
  /** HTTP status, when the server answered. */
  status?: number;
  latencyMs: number;
  /** Why there is no healthy answer: "timeout after 5000 ms", "connection refused", ... */
  error?: string;
}

/** Reads `endpoints` ({ api: { url, healthUrl, image }, frontend: { url, healthUrl } }) and `version` from stack outputs. */
export function endpointsFromOutputs(outputs: OutputMap, stack: string): { endpoints: Endpoint[]; version?: string } {
  const raw = outputs.endpoints?.value as Record<string, { url?: unknown; healthUrl?: unknown; image?: unknown }> | undefined;
  if (!raw || typeof raw !== "object") {
    throw new UserError(
      `Stack "${stack}" has no "endpoints" output: it was never deployed, or deployed by a version of appstack without services.\n` +
        `Deploy it first: npm run deploy -- --stack ${stack}`,
      EXIT.usage,
    );
  }
  const endpoints: Endpoint[] = [];
  for (const [service, e] of Object.entries(raw)) {
    if (typeof e?.healthUrl !== "string" || e.healthUrl === "") continue;
    endpoints.push({
      service,
      url: typeof e.url === "string" ? e.url : undefined,
      healthUrl: e.healthUrl,
      image: typeof e.image === "string" ? e.image : undefined,
    });
  }
  if (endpoints.length === 0) throw new UserError(`Stack "${stack}": the "endpoints" output names no health URL.`, EXIT.usage);
  const version = outputs.version?.secret ? undefined : outputs.version?.value;
  return { endpoints, version: typeof version === "string" ? version : undefined };
}

function describeFailure(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === "TimeoutError" || e?.name === "AbortError") return `timeout after ${timeoutMs} ms`;
  const code = e?.cause?.code;
  if (code === "ECONNREFUSED") return "connection refused";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "host not found";
  if (code === "ECONNRESET" || code === "UND_ERR_SOCKET") return "connection reset";
  if (code && /CERT|TLS|SSL/.test(code)) return `TLS error (${code})`;
  return e?.cause?.message ?? e?.message ?? String(err);
}

/** One GET of the health URL: healthy on a 2xx answer within the timeout. */
export async function probe(endpoint: Endpoint, timeoutMs: number): Promise<ProbeResult> {
  const started = performance.now();
  try {
    const res = await fetch(endpoint.healthUrl, {
      signal: AbortSignal.timeout(timeoutMs),
      headers: { "user-agent": "appstack-status" },
    });
    // Read the body under the same deadline: a server that sends headers and then stalls is not healthy.
    await res.arrayBuffer();
    const latencyMs = Math.round(performance.now() - started);
    return { ...endpoint, healthy: res.status >= 200 && res.status < 300, status: res.status, latencyMs };
  } catch (err) {
    return { ...endpoint, healthy: false, latencyMs: Math.round(performance.now() - started), error: describeFailure(err, timeoutMs) };
  }
}

export function probeAll(endpoints: Endpoint[], timeoutMs: number): Promise<ProbeResult[]> {
  return Promise.all(endpoints.map((e) => probe(e, timeoutMs)));
}

export interface SmokeOptions {
  /** Per-request timeout. */
  timeoutMs: number;
  /** Keep retrying unhealthy services for at most this long. */
  budgetMs: number;
  /** Pause between rounds. */
  intervalMs: number;
  log(line: string): void;
  clock?: Clock;
}

/**
 * The deploy's smoke check: the same probe as `status`, retried for a bounded
 * time, because a freshly replaced service can need a few seconds before it
 * answers. Returns the last result of every service.
 */
export async function smokeCheck(endpoints: Endpoint[], opts: SmokeOptions): Promise<ProbeResult[]> {
  const clock = opts.clock ?? realClock;
  const deadline = clock.now() + opts.budgetMs;
  const maxRounds = Math.ceil(opts.budgetMs / Math.max(opts.intervalMs, 1)) + 1;
  let results = await probeAll(endpoints, opts.timeoutMs);
  for (let round = 2; round <= maxRounds; round++) {
    const failing = results.filter((r) => !r.healthy);
    if (failing.length === 0) break;
    const left = deadline - clock.now();
    if (left <= 0) break;
    opts.log(`Smoke check: ${failing.map((r) => `${r.service} ${r.status ?? r.error}`).join(", ")}; retrying in ${Math.ceil(Math.min(opts.intervalMs, left) / 1000)} s.`);
    await clock.sleep(Math.min(opts.intervalMs, left));
    const again = await probeAll(failing, opts.timeoutMs);
    results = results.map((r) => again.find((a) => a.service === r.service) ?? r);
  }
  return results;
}

/** One row per service: health URL, HTTP status, latency, deployed image, version. */
export function renderStatusTable(results: ProbeResult[], version: string | undefined): string {
  const header = ["SERVICE", "HEALTH URL", "STATUS", "LATENCY", "IMAGE", "VERSION"];
  const rows = results.map((r) => [
    `${r.healthy ? "ok  " : "FAIL"} ${r.service}`,
    r.healthUrl,
    r.status !== undefined ? String(r.status) : (r.error ?? "-"),
    `${r.latencyMs} ms`,
    r.image ?? "-",
    version ?? "-",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}
