# Shared by the runtime-test setup scripts: paths and small helpers.
# Everything built here is cached under .cache/ (git-ignored) and reused.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
CACHE="$ROOT/.cache"
mkdir -p "$CACHE/bin"

log() { echo "[runtime-setup] $*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}

# The Caddy version of the edge image the stack deploys (config/schema.ts), so
# the contract tests run the proxy the stack runs.
edge_caddy_version() {
  sed -n 's/.*imageReference.default("caddy:\([0-9.]*\)-alpine").*/\1/p' "$ROOT/config/schema.ts" | head -1
}

# The machine's own Debian mirror, read from its apt sources (never written into the repo).
debian_mirror() {
  local uri
  uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | grep -v security | awk '{print $2}' | head -1 || true)
  fi
  [ -n "$uri" ] || { log "no Debian mirror found in /etc/apt/sources.list(.d)"; exit 1; }
  echo "$uri"
}

# The restic version of the off-host shipper's image (config/backup.ts), so the
# runtime tests also run the restic the stack deploys.
offsite_restic_version() {
  sed -n 's/^export const RESTIC_IMAGE = "restic\/restic:\([0-9.]*\)";.*/\1/p' "$ROOT/config/backup.ts" | head -1
}
