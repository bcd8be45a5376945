// The frontend's runtime configuration, written to /config.js at build time
// (build.js) and, when VITE_API_URL is set in the server's environment, at run
// time (serve.js): one definition for both.

/** Validates VITE_API_URL: empty, or an absolute http(s) URL. Returns the normalised value. */
export function checkApiUrl(raw) {
  const value = (raw ?? "").trim();
  if (!value) return "";
  let u;
  try {
    u = new URL(value);
  } catch {
    throw new Error(`VITE_API_URL is not a URL: ${JSON.stringify(value)} (expected e.g. https://api.example.com)`);
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") throw new Error(`VITE_API_URL must be http(s), got ${u.protocol}`);
  return value.replace(/\/+$/, "");
}

/** The script body of /config.js. JSON-encoded, so no value can break out of the string. */
export function configScript(apiUrl) {
  const json = JSON.stringify({ apiUrl }).replace(/</g, "\\u003c");
  return `window.APPSTACK_CONFIG = ${json};\n`;
}
