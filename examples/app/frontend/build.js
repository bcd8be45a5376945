// Builds the static site into dist/: the files in src/ plus config.js with the
// API's URL from VITE_API_URL (what Vite would bake in; this app needs no bundler).
// Vercel runs it as the build command; the Dockerfile runs it with a build arg.
import * as fs from "node:fs";
import * as path from "node:path";
import { checkApiUrl, configScript } from "./config.js";

const here = path.dirname(new URL(import.meta.url).pathname);
const out = path.resolve(here, process.env.OUT_DIR || "dist");

let apiUrl;
try {
  apiUrl = checkApiUrl(process.env.VITE_API_URL);
} catch (err) {
  console.error(`build: ${err.message}`);
  process.exit(1);
}
fs.rmSync(out, { recursive: true, force: true });
fs.cpSync(path.join(here, "src"), out, { recursive: true });
fs.writeFileSync(path.join(out, "config.js"), configScript(apiUrl));
console.log(apiUrl ? `build: dist/ with VITE_API_URL=${apiUrl}` : "build: dist/ without VITE_API_URL (serve.js can supply it at run time)");
