export { loadConfig, type AppConfig } from "./load";
export { ConfigError, formatProblems, type ConfigProblem } from "./errors";
export * from "./schema";
export * from "./docker-engine";
export { apiHostPort, publicUrls, releaseOf, type PublicUrls } from "./urls";
export { isSecretEnvName, stackSecretEnv } from "./secret-env";
export { intervalSeconds, OFFSITE_BACKENDS, offsiteBackend, RESTIC_IMAGE, type OffsiteBackend } from "./backup";
