import { appConfigSchema, frontendMode } from "../../config";
import { EXIT, UserError } from "../shared/errors";
import { stackSettings } from "./preflight";

/**
 * Which services a stack runs containers for, by the `appstack.service`
 * label the components give them, read from its stack file: `logs` and
 * `exec` refuse a service the stack does not have with the reason.
 */

/** Every `appstack.service` label of a container, in rollout order. */
export const SERVICES = ["postgres", "redis", "backup", "migrate", "api", "worker", "edge", "frontend"] as const;
export type Service = (typeof SERVICES)[number];

/** The services whose containers run until stopped (the rest are one-shot jobs). */
export const LONG_RUNNING: readonly Service[] = ["postgres", "redis", "api", "worker", "edge", "frontend"];

export interface StackServices {
  environment: string;
  /** Every service, with `undefined` where the stack runs it, else why it does not. */
  absent: Record<Service, string | undefined>;
}

export function stackServices(root: string, stack: string): StackServices {
  const parsed = appConfigSchema.safeParse(stackSettings(root, stack));
  if (!parsed.success) {
    throw new UserError(`The configuration of stack "${stack}" does not validate; see: npm run validate -- --stack ${stack}`, EXIT.invalidConfig);
  }
  const cfg = parsed.data;
  const postgresContainer = cfg.postgres.mode === "container";
  const absent: Record<Service, string | undefined> = {
    postgres: postgresContainer ? undefined : "it uses an external Postgres (postgres.mode: external): see your provider's logs",
    redis: cfg.redis.mode === "container" ? undefined : "it uses an external Redis (redis.mode: external): see your provider's logs",
    backup: !postgresContainer ? "it uses an external Postgres, which appstack does not back up" : !cfg.api ? "it has no API, and the backup runs before the API's rollout" : undefined,
    migrate: cfg.api?.migrations ? undefined : "it declares no migrations (api.migrations)",
    api: cfg.api ? undefined : "it declares no API (api)",
    worker: cfg.worker ? undefined : "it declares no worker (worker)",
    edge: cfg.environment === "dev" ? "dev publishes the API on 127.0.0.1 without an edge proxy" : cfg.edge && cfg.api ? undefined : "it declares no edge proxy (edge)",
    frontend: !cfg.frontend
      ? "it declares no frontend (frontend)"
      : frontendMode(cfg) === "vercel"
        ? "its frontend runs on Vercel: see the deployment's logs in Vercel"
        : undefined,
  };
  return { environment: cfg.environment, absent };
}

/** The service named by --service: one the stack runs, or a UserError that lists those it does. */
export function requireService(root: string, stack: string, name: string, allowed: readonly Service[] = SERVICES): { service: Service; environment: string } {
  const { environment, absent } = stackServices(root, stack);
  const runs = allowed.filter((s) => absent[s] === undefined);
  if (!(allowed as readonly string[]).includes(name)) {
    throw new UserError(`Unknown service "${name}". Stack "${stack}" has: ${runs.join(", ") || "(none)"}.`, EXIT.usage);
  }
  const why = absent[name as Service];
  if (why) throw new UserError(`Stack "${stack}" has no ${name} container: ${why}. It has: ${runs.join(", ") || "(none)"}.`, EXIT.usage);
  return { service: name as Service, environment };
}
