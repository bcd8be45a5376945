#!/usr/bin/env bash
# Everything `npm run test:runtime` needs, each step cached under .cache/.
source "$(dirname "$0")/lib.sh"
bash "$ROOT/test/runtime/setup/caddy.sh"
bash "$ROOT/test/runtime/setup/docker.sh"
