// Calls the API whose URL the deployment supplies in /config.js
// (window.APPSTACK_CONFIG.apiUrl: VITE_API_URL, baked at build or served at run time).
// Text only goes into the page through textContent: nothing from the API is parsed as HTML.

/** The API base: VITE_API_URL may name the API's root or its /api/v1 prefix. */
export function apiBase(apiUrl) {
  const trimmed = String(apiUrl || "").replace(/\/+$/, "");
  if (!trimmed) return "";
  return trimmed.endsWith("/api/v1") ? trimmed : `${trimmed}/api/v1`;
}

async function call(base, path, init) {
  const res = await fetch(`${base}${path}`, { ...init, headers: { "content-type": "application/json" } });
  const body = await res.json().catch(() => ({}));
  return { ok: res.ok, status: res.status, body };
}

function show(el, text, state) {
  el.textContent = text;
  el.dataset.state = state;
}

function start() {
  const base = apiBase(globalThis.APPSTACK_CONFIG?.apiUrl);
  document.getElementById("api-url").textContent = base || "(not configured: set VITE_API_URL)";
  const health = document.getElementById("health");

  async function checkHealth() {
    if (!base) return show(health, "no API URL configured", "error");
    show(health, "checking…", "pending");
    try {
      const { ok, status, body } = await call(base, "/health/ready");
      const checks = Object.entries(body.checks ?? {}).map(([k, v]) => `${k}: ${v}`).join(", ");
      show(health, `${ok ? "ready" : `not ready (${status})`}${checks ? ` (${checks})` : ""}`, ok ? "ok" : "error");
    } catch (err) {
      show(health, `API unreachable (${err.message}); check VITE_API_URL and the API's CORS_ORIGIN`, "error");
    }
  }

  async function follow(id, item) {
    for (let i = 0; i < 60; i++) {
      const { body } = await call(base, `/jobs/${id}`);
      show(item, `job ${id}: ${body.status}${body.result ? ` -> ${body.result}` : ""}`, body.status === "done" ? "ok" : body.status === "failed" ? "error" : "pending");
      if (body.status === "done" || body.status === "failed") return;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  document.getElementById("recheck").addEventListener("click", checkHealth);
  document.getElementById("job-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("message");
    const item = document.createElement("li");
    document.getElementById("jobs").prepend(item);
    try {
      const { ok, body } = await call(base, "/jobs", { method: "POST", body: JSON.stringify({ message: input.value }) });
      if (!ok) return show(item, `refused: ${body.error ?? "error"}`, "error");
      input.value = "";
      await follow(body.id, item);
    } catch (err) {
      show(item, `failed: ${err.message}`, "error");
    }
  });
  checkHealth();
}

if (typeof document !== "undefined") start();
