/**
 * The response headers the seeds' checklists ask of every page: no MIME
 * sniffing, no framing, a strict referrer policy, and no powerful browser
 * features unless the app opts in. One list for the edge proxy, the dev
 * frontend container and the Vercel project.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "strict-origin-when-cross-origin",
  "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
};

/** Only over HTTPS: a browser that sees it keeps to HTTPS for a year. */
export const HSTS = "max-age=31536000; includeSubDomains";

/** The headers as a Caddyfile `header { ... }` block body. */
export function caddyHeaderLines(headers: Readonly<Record<string, string>>, indent: string): string[] {
  return Object.entries(headers).map(([k, v]) => `${indent}${k} "${v.replace(/"/g, '\\"')}"`);
}
