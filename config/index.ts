export { loadConfig, type AppConfig } from "./load";
export { ConfigError, formatProblems, type ConfigProblem } from "./errors";
export * from "./schema";
export * from "./docker-engine";
export { apiHostPort, publicUrls, releaseOf, type PublicUrls } from "./urls";
export { isSecretEnvName, stackSecretEnv } from "./secret-env";
export * from "./swarm";
