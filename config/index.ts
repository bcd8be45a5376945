export { loadConfig, type AppConfig } from "./load";
export { ConfigError, formatProblems, type ConfigProblem } from "./errors";
export * from "./schema";
export * from "./docker-engine";
export { apiHostPort, publicUrls, releaseOf, type PublicUrls } from "./urls";
export { ALLOWED_SSH_OPTIONS, DOCKER_TLS_SECRETS, dockerScheme, sshOptionProblems, transportProblem } from "./docker-transport";
export { isSecretEnvName, stackSecretEnv } from "./secret-env";
export * from "./swarm";
export { intervalSeconds, OFFSITE_BACKENDS, offsiteBackend, RESTIC_IMAGE, type OffsiteBackend } from "./backup";
