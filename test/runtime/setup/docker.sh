#!/usr/bin/env bash
# A Docker engine for the runtime tests that need one (test/runtime/docker-engine.test.ts):
# the machine's own when it answers; else Debian's docker.io, started in the
# background (these machines have no systemd). A running engine is never restarted.
source "$(dirname "$0")/lib.sh"
engine() { docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null; }
if ! engine >/dev/null; then
  if ! command -v dockerd >/dev/null; then
    log "docker: installing Debian's docker.io"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io </dev/null
  fi
  log "docker: starting dockerd (log: /var/log/appstack-dockerd.log)"
  as_root sh -c 'nohup dockerd >/var/log/appstack-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do engine >/dev/null && break; sleep 1; done
fi
engine >/dev/null || { log "no Docker engine answers at /var/run/docker.sock"; exit 1; }
log "docker: engine $(engine)"
[ -x /bin/busybox ] || { log "no /bin/busybox: apt-get install busybox-static (.ci/run installs it)"; exit 1; }
