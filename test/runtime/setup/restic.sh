#!/usr/bin/env bash
# Builds restic at the version of the off-host shipper's image from its Go module
# (cached in .cache/bin), so the runtime tests run the restic the stack deploys
# as well as Debian's older one.
source "$(dirname "$0")/lib.sh"
version="$(offsite_restic_version)"
[ -n "$version" ] || { log "could not read the restic image's version from config/backup.ts"; exit 1; }
bin="$CACHE/bin/restic-$version"
built_version() { go version -m "$1" 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/restic/restic" {print $3}'; }
if [ -x "$bin" ] && [ "$(built_version "$bin")" = "v$version" ]; then
  log "restic $version: cached"
else
  log "restic $version: building from its Go module (go install, a few minutes on 2 cores)"
  tmp="$(mktemp -d)"
  GOBIN="$tmp" CGO_ENABLED=0 go install "github.com/restic/restic/cmd/restic@v$version"
  mv "$tmp/restic" "$bin"
  rmdir "$tmp"
  [ "$(built_version "$bin")" = "v$version" ] || { log "built restic is $(built_version "$bin"), not v$version"; exit 1; }
fi
ln -sf "restic-$version" "$CACHE/bin/restic-pinned"
log "restic $(built_version "$bin") at $CACHE/bin/restic-pinned"
