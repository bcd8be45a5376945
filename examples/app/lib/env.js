// Reads a service's settings from its environment, once, at start. A missing
// required variable stops the process with its name; a value is never printed
// (DATABASE_URL and REDIS_URL carry passwords).

/**
 * @param {string} service  name for messages ("api", "worker")
 * @param {{ required: string[], optional?: Record<string, string> }} spec
 * @returns {Record<string, string>}
 */
export function readEnv(service, spec) {
  const missing = spec.required.filter((name) => !process.env[name]);
  if (missing.length > 0) {
    console.error(`${service}: missing required environment variable${missing.length > 1 ? "s" : ""}: ${missing.join(", ")}`);
    process.exit(78); // EX_CONFIG: a restart will not help
  }
  const env = {};
  for (const name of spec.required) env[name] = process.env[name];
  for (const [name, fallback] of Object.entries(spec.optional ?? {})) env[name] = process.env[name] || fallback;
  return env;
}

/** A positive integer setting, or the process stops naming it. */
export function intSetting(service, name, raw, { min = 1, max = Number.MAX_SAFE_INTEGER } = {}) {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    console.error(`${service}: ${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`);
    process.exit(78);
  }
  return n;
}

/** A one-line log record; errors by message only (a driver error never carries the URL). */
export function log(service, message, fields = {}) {
  console.log(JSON.stringify({ time: new Date().toISOString(), service, message, ...fields }));
}
