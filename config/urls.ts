import { frontendMode, imageVersion, type ParsedAppConfig } from "./schema";

/**
 * The public URLs of a stack, derived once from config. The API's CORS origin
 * is the frontend URL and the frontend's API URL is the API URL: both come from
 * here, so neither is ever typed twice.
 */
export interface PublicUrls {
  api?: string;
  /** The API's readiness URL, for smoke checks and status. */
  apiHealth?: string;
  frontend?: string;
}

export const DEFAULT_FRONTEND_HOST_PORT = 8080;

/** The host port the API is published on in dev (none elsewhere). */
export function apiHostPort(cfg: Pick<ParsedAppConfig, "environment" | "api">): number | undefined {
  if (!cfg.api || cfg.environment !== "dev") return undefined;
  return cfg.api.hostPort ?? cfg.api.port;
}

export function publicUrls(cfg: ParsedAppConfig): PublicUrls {
  const urls: PublicUrls = {};
  if (cfg.api) {
    urls.api = cfg.environment === "dev" ? `http://localhost:${apiHostPort(cfg)}` : `https://${cfg.api.domain}`;
    urls.apiHealth = urls.api + (cfg.api.health.readyPath ?? cfg.api.health.path);
  }
  if (cfg.frontend) {
    if (frontendMode(cfg) === "container") {
      urls.frontend = `http://localhost:${cfg.frontend.hostPort ?? DEFAULT_FRONTEND_HOST_PORT}`;
    } else {
      const host = cfg.frontend.domains[0] ?? `${cfg.frontend.vercel?.projectName}.vercel.app`;
      urls.frontend = `https://${host}`;
    }
  }
  return urls;
}

/** The release name: configured, else the API image's tag, else "dev". */
export function releaseOf(cfg: ParsedAppConfig): string {
  if (cfg.release) return cfg.release;
  return cfg.api?.image ? imageVersion(cfg.api.image) : "dev";
}
