#!/usr/bin/env bash
# Builds Caddy at the edge image's version from its Go module (cached in .cache/bin).
source "$(dirname "$0")/lib.sh"
version="$(edge_caddy_version)"
[ -n "$version" ] || { log "could not read the edge image's Caddy version from config/schema.ts"; exit 1; }
bin="$CACHE/bin/caddy-$version"
# A binary built by `go install` reports "unknown" from `caddy version`; its build info has the module version.
built_version() { go version -m "$1" 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/caddyserver/caddy/v2" {print $3}'; }
if [ -x "$bin" ] && [ "$(built_version "$bin")" = "v$version" ]; then
  log "caddy $version: cached"
else
  log "caddy $version: building from its Go module (go install, a few minutes on 2 cores)"
  tmp="$(mktemp -d)"
  GOBIN="$tmp" CGO_ENABLED=0 go install "github.com/caddyserver/caddy/v2/cmd/caddy@v$version"
  mv "$tmp/caddy" "$bin"
  rmdir "$tmp"
  [ "$(built_version "$bin")" = "v$version" ] || { log "built caddy is $(built_version "$bin"), not v$version"; exit 1; }
fi
ln -sf "caddy-$version" "$CACHE/bin/caddy"
log "caddy $(built_version "$bin") at $CACHE/bin/caddy"
