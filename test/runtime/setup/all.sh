#!/usr/bin/env bash
# Everything `npm run test:runtime` needs, each step cached under .cache/.
source "$(dirname "$0")/lib.sh"
bash "$ROOT/test/runtime/setup/caddy.sh"
bash "$ROOT/test/runtime/setup/engine.sh"
bash "$ROOT/test/runtime/setup/images.sh"
bash "$ROOT/test/runtime/setup/registry.sh"
# test/runtime/docker-engine.test.ts imports Debian's static busybox as its image.
[ -x /bin/busybox ] || { log "no /bin/busybox: apt-get install busybox-static (.ci/run installs it)"; exit 1; }
