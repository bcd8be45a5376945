#!/usr/bin/env bash
# Builds the reference image registry (CNCF distribution, `registry`) from its Go module (cached
# in .cache/bin), so `release --tag` is tested against a real registry on 127.0.0.1.
source "$(dirname "$0")/lib.sh"
version=3.1.2
bin="$CACHE/bin/registry-$version"
built_version() { go version -m "$1" 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/distribution/distribution/v3" {print $3}'; }
if [ -x "$bin" ] && [ "$(built_version "$bin")" = "v$version" ]; then
  log "registry $version: cached"
else
  log "registry $version: building from its Go module (go install, a few minutes on 2 cores)"
  tmp="$(mktemp -d)"
  GOBIN="$tmp" CGO_ENABLED=0 go install "github.com/distribution/distribution/v3/cmd/registry@v$version"
  mv "$tmp/registry" "$bin"
  rmdir "$tmp"
  [ "$(built_version "$bin")" = "v$version" ] || { log "built registry is $(built_version "$bin"), not v$version"; exit 1; }
fi
ln -sf "registry-$version" "$CACHE/bin/registry"
log "registry $(built_version "$bin") at $CACHE/bin/registry"
