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

# Installs Debian packages (as root), running apt-get update once per script.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${APT_UPDATED:-}" ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root apt-get install -y -qq --no-install-recommends "$@" </dev/null
}

# True when a Docker engine answers on this machine's default socket (or DOCKER_HOST).
engine_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# A short digest of its arguments (files by content, other words as text), for cache keys.
digest() {
  local item
  for item in "$@"; do
    if [ -f "$item" ]; then sha256sum <"$item"; else printf '%s\n' "$item"; fi
  done | sha256sum | cut -c1-16
}

# Builds a Go program from its module at a version into $CACHE/bin/<name>-<version>, linked as
# $CACHE/bin/<name>; a cached binary whose build info names that module version is kept.
# (A binary built by `go install` reports "unknown" as its own version; its build info has the module's.)
# Usage: go_build_cached <name> <module> <package> <version without v>
go_build_cached() {
  local name="$1" module="$2" package="$3" version="$4"
  local bin="$CACHE/bin/$name-$version" tmp
  built() { go version -m "$1" 2>/dev/null | awk -v m="$module" '$1 == "mod" && $2 == m {print $3}'; }
  if [ -x "$bin" ] && [ "$(built "$bin")" = "v$version" ]; then
    log "$name $version: cached"
  else
    log "$name $version: building from its Go module (go install, a few minutes on 2 cores)"
    tmp="$(mktemp -d)"
    GOBIN="$tmp" CGO_ENABLED=0 go install "$package@v$version"
    mv "$tmp/$(basename "$package")" "$bin"
    rmdir "$tmp"
    [ "$(built "$bin")" = "v$version" ] || { log "built $name is $(built "$bin"), not v$version"; exit 1; }
  fi
  ln -sf "$name-$version" "$CACHE/bin/$name"
  log "$name $(built "$bin") at $CACHE/bin/$name"
}

# The restic version of the off-host shipper's image (config/backup.ts), so the
# runtime tests also run the restic the stack deploys.
offsite_restic_version() {
  sed -n 's/^export const RESTIC_IMAGE = "restic\/restic:\([0-9.]*\)";.*/\1/p' "$ROOT/config/backup.ts" | head -1
}
