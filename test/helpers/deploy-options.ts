import type { DeployOptions } from "../../ops/operations/deploy";
import { validateStack } from "../../ops/offline/validate";

/** Deploy options for a temporary project's staging stack: quick smoke checks, a preflight that passes. */
export const deployOptions = (root: string, over: Partial<DeployOptions> = {}): DeployOptions => ({
  stack: "staging",
  init: false,
  localBackend: false,
  yes: true,
  rollbackOnFailure: false,
  lockTimeoutSeconds: 60,
  smoke: { timeoutMs: 500, budgetMs: 300, intervalMs: 100 },
  validate: () => validateStack({ root, stack: over.stack ?? "staging" }),
  preflight: async () => "Docker engine at ssh://deploy@staging.example.com: Docker 27.5.1, API 1.47 (linux/amd64).",
  ...over,
});
