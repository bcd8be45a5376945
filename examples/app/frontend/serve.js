// Serves the built site (dist/) in the frontend container: static files with
// the security headers a browser should get, /config.js from VITE_API_URL when
// the container sets it (else the one baked at build), and /healthz for the
// container health check. GET and HEAD only; nothing outside dist/ is served.
import * as fs from "node:fs";
import http from "node:http";
import * as path from "node:path";
import { checkApiUrl, configScript } from "./config.js";

const here = path.dirname(new URL(import.meta.url).pathname);
const root = path.resolve(here, process.env.DIST_DIR || "dist");
const port = Number(process.env.PORT || 8080);

let runtimeApiUrl;
try {
  runtimeApiUrl = checkApiUrl(process.env.VITE_API_URL);
} catch (err) {
  console.error(`serve: ${err.message}`);
  process.exit(78);
}
const runtimeConfig = runtimeApiUrl ? configScript(runtimeApiUrl) : undefined;

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

function connectSrc() {
  try {
    return runtimeApiUrl ? `'self' ${new URL(runtimeApiUrl).origin}` : "'self' https: http:";
  } catch {
    return "'self'";
  }
}

export const SECURITY_HEADERS = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "strict-origin-when-cross-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
  "content-security-policy": `default-src 'self'; connect-src ${connectSrc()}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'`,
};

function send(req, res, status, type, body, cache) {
  res.writeHead(status, { ...SECURITY_HEADERS, "content-type": type, "cache-control": cache, "content-length": Buffer.byteLength(body) });
  res.end(req.method === "HEAD" ? undefined : body);
}

const server = http.createServer((req, res) => {
  if (req.method !== "GET" && req.method !== "HEAD") return send(req, res, 405, "text/plain", "method not allowed\n", "no-store");
  let pathname;
  try {
    pathname = decodeURIComponent(new URL(req.url ?? "/", "http://localhost").pathname);
  } catch {
    return send(req, res, 400, "text/plain", "bad request\n", "no-store");
  }
  if (pathname === "/healthz") return send(req, res, 200, "text/plain", "ok\n", "no-store");
  if (pathname === "/config.js" && runtimeConfig) return send(req, res, 200, TYPES[".js"], runtimeConfig, "no-store");
  const file = path.resolve(root, `.${pathname}`);
  if (file !== root && !file.startsWith(root + path.sep)) return send(req, res, 404, "text/plain", "not found\n", "no-store");
  let target = file;
  if (!fs.existsSync(target) || fs.statSync(target).isDirectory()) {
    // An unknown path without an extension is a client-side route: the app's page.
    if (path.extname(pathname)) return send(req, res, 404, "text/plain", "not found\n", "no-store");
    target = path.join(root, "index.html");
  }
  const type = TYPES[path.extname(target)] ?? "application/octet-stream";
  const cache = target.endsWith(".html") || target.endsWith("config.js") ? "no-cache" : "public, max-age=300";
  send(req, res, 200, type, fs.readFileSync(target), cache);
});

server.listen(port, () => console.log(JSON.stringify({ service: "frontend", message: "listening", port, apiUrl: runtimeApiUrl || "(baked)" })));
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.close(() => process.exit(0)));
