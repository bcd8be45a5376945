#!/usr/bin/env bash
# Builds restic at the version of the off-host shipper's image from its Go module
# (cached in .cache/bin), so the backup runtime tests run the restic the stack
# deploys as well as Debian's older one.
source "$(dirname "$0")/lib.sh"
version="$(offsite_restic_version)"
[ -n "$version" ] || { log "could not read the restic image's version from config/backup.ts"; exit 1; }
go_build_cached restic github.com/restic/restic github.com/restic/restic/cmd/restic "$version"
