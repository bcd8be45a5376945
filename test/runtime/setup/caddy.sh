#!/usr/bin/env bash
# Builds Caddy at the edge image's version from its Go module (cached in .cache/bin).
source "$(dirname "$0")/lib.sh"
version="$(edge_caddy_version)"
[ -n "$version" ] || { log "could not read the edge image's Caddy version from config/schema.ts"; exit 1; }
go_build_cached caddy github.com/caddyserver/caddy/v2 github.com/caddyserver/caddy/v2/cmd/caddy "$version"
