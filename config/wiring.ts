import { replaceListSteps, type FixStep } from "./fix";
import type { Environment, ParsedAppConfig, SchemaIssue } from "./schema";

/**
 * What appstack sets itself, and the settings that would otherwise be
 * overridden or ignored without a word. Each such setting is a config error
 * with the command that removes it; the few that stay allowed say so in the
 * schema's JSDoc.
 */

/** Env names appstack wires for the API (and, most of them, the worker); no service's env may set them. */
export const WIRED_ENV = ["PORT", "DATABASE_URL", "REDIS_URL", "CORS_ORIGIN", "FRONTEND_URL", "NODE_ENV", "APP_VERSION"] as const;

/** The env var that tells the worker where to write its heartbeat (heartbeat health only). */
export const HEARTBEAT_ENV = "HEARTBEAT_FILE";

type Sections = Partial<ParsedAppConfig>;
type Service = "api" | "worker" | "frontend";
type AddIssue = (issue: SchemaIssue) => void;

function issue(path: PropertyKey[], message: string, fix: FixStep[]): SchemaIssue {
  return { code: "custom", path, message, params: { fix } };
}

/**
 * The env names appstack sets for a service besides WIRED_ENV (which the
 * schema's envRules refuse in every service), each with where its value comes
 * from: the worker's `concurrencyEnv` and, with a heartbeat check, its
 * heartbeat file; the frontend's API URL variable when the stack has an API.
 * `present` holds the top-level settings the stack file sets: a section that
 * is there but broken still counts, so its own problems are reported and not
 * its absence.
 */
export function serviceWiredEnv(service: Service, cfg: Sections, present: ReadonlySet<string>): Map<string, string> {
  const wired = new Map<string, string>();
  if (service === "worker" && cfg.worker) {
    wired.set(cfg.worker.concurrencyEnv, "set from worker.concurrency (its name is worker.concurrencyEnv)");
    if (cfg.worker.health.type === "heartbeat") wired.set(HEARTBEAT_ENV, "set from worker.health.file");
  }
  if (service === "frontend" && cfg.frontend && present.has("api")) {
    wired.set(cfg.frontend.apiUrlEnv, "set to the API's public URL (its name is frontend.apiUrlEnv)");
  }
  for (const name of WIRED_ENV) wired.delete(name);
  return wired;
}

/** A user's env name in `env` or `secretEnv` that appstack sets itself: the user's value would be dropped. */
export function wiredNameRules(service: Service, svc: { env: Record<string, string>; secretEnv: string[] }, wired: Map<string, string>, addIssue: AddIssue): void {
  for (const name of Object.keys(svc.env)) {
    const source = wired.get(name);
    if (source !== undefined) {
      addIssue(issue([service, "env", name], `${name} is wired by appstack (${source}); a value here would be dropped`, [{ rm: [service, "env", name] }]));
    }
  }
  const kept = svc.secretEnv.filter((n) => !wired.has(n) && !(WIRED_ENV as readonly string[]).includes(n));
  svc.secretEnv.forEach((name, i) => {
    const source = wired.get(name);
    if (source !== undefined) {
      addIssue(
        issue([service, "secretEnv", i], `${name} is wired by appstack (${source}); a secret of that name would clash with it`, replaceListSteps([service, "secretEnv"], kept)),
      );
    }
  });
}

/**
 * Names the worker or the frontend choose for a wired value: a wired name
 * there would overwrite what appstack sets under that name.
 */
function chosenNameRules(cfg: Sections, present: ReadonlySet<string>, frontendMode: "vercel" | "container" | undefined, addIssue: AddIssue): void {
  const { worker, frontend } = cfg;
  const reserved = new Set<string>(WIRED_ENV);
  if (worker && (reserved.has(worker.concurrencyEnv) || (worker.health.type === "heartbeat" && worker.concurrencyEnv === HEARTBEAT_ENV))) {
    addIssue(issue(["worker", "concurrencyEnv"], `${worker.concurrencyEnv} is wired by appstack; the concurrency would replace its value`, [{ rm: ["worker", "concurrencyEnv"] }]));
  }
  if (frontend && reserved.has(frontend.apiUrlEnv)) {
    const what = frontendMode === "container" && frontend.apiUrlEnv === "PORT" ? " (the container's port)" : "";
    addIssue(issue(["frontend", "apiUrlEnv"], `${frontend.apiUrlEnv} is wired by appstack${what}; name another variable for the API URL`, [{ rm: ["frontend", "apiUrlEnv"] }]));
  }
  // The frontend image is built with frontend.env and the API URL as build args, over build.args.
  const args = frontend?.build?.args ?? {};
  for (const name of Object.keys(args)) {
    const fromEnv = frontend && name in frontend.env;
    const fromApi = frontend && present.has("api") && name === frontend.apiUrlEnv;
    if (!fromEnv && !fromApi) continue;
    const from = fromApi ? "the API's public URL" : `frontend.env.${name}`;
    addIssue(issue(["frontend", "build", "args", name], `the build gets ${from} as the build arg ${name}, which replaces this one`, [{ rm: ["frontend", "build", "args", name] }]));
  }
}

/** Settings the stack would ignore: they configure something it does not have in this environment or mode. */
function ignoredSettingRules(cfg: Sections, env: Environment, present: ReadonlySet<string>, frontendMode: "vercel" | "container" | undefined, addIssue: AddIssue): void {
  const ignored = (path: string, message: string) => addIssue(issue(path.split("."), message, [{ rm: path.split(".") }]));
  const { api, frontend, edge, docker } = cfg;

  if (docker?.sshOpts?.length && !docker.host.startsWith("ssh://")) ignored("docker.sshOpts", `applies to an ssh:// Docker host only (docker.host is ${docker.host})`);
  if (docker?.tls !== undefined && !docker.host.startsWith("tcp://")) ignored("docker.tls", `applies to a tcp:// Docker host only (docker.host is ${docker.host})`);
  if (api?.domain && env === "dev") ignored("api.domain", "has no effect in dev: the API is published on http://localhost (api.hostPort), without the edge proxy");
  if (edge && !present.has("api") && env !== "dev") ignored("edge", "has no effect without an api: the edge proxy serves the API");
  if ((cfg.generatedSecrets ?? []).length > 0 && !present.has("api") && !present.has("worker")) {
    ignored("generatedSecrets", "no service receives them: generated secrets go to the API and the worker, and this stack has neither");
  }
  if (!frontend || !frontendMode) return;
  if (frontendMode === "container") {
    if (frontend.vercel) ignored("frontend.vercel", "is for a Vercel frontend; this stack's frontend is a local container (frontend.mode)");
    if (frontend.domains.length > 0) ignored("frontend.domains", "are for a Vercel frontend; a container frontend is served on http://localhost (frontend.hostPort)");
    if (frontend.secretEnv.length > 0) {
      ignored("frontend.secretEnv", "a container frontend gets no secrets: its image is built with frontend.env as build args, and a secret there would stay in the image");
    }
    if (frontend.previewSecretEnv.length > 0) ignored("frontend.previewSecretEnv", "is for a Vercel frontend's preview deployments; a container frontend gets no secrets");
  } else {
    for (const key of ["image", "build", "hostPort"] as const) {
      if (frontend[key] !== undefined) ignored(`frontend.${key}`, "is for a container frontend; this stack's frontend is on Vercel (frontend.mode)");
    }
  }
}

/** Every rule of this module, for the schema's environment rules. */
export function wiringRules(
  cfg: Sections,
  env: Environment,
  present: ReadonlySet<string>,
  frontendMode: "vercel" | "container" | undefined,
  addIssue: AddIssue,
): void {
  chosenNameRules(cfg, present, frontendMode, addIssue);
  ignoredSettingRules(cfg, env, present, frontendMode, addIssue);
}
