#!/usr/bin/env bash
# A Docker engine for the runtime tests. If one answers already (the machine's
# own, shared with everything else on it), it is used as it is and never
# restarted. Otherwise Debian's docker.io is started here: as root, in the
# background, its log in .cache/dockerd.log. On CI (CI set) a missing docker.io
# is installed first; elsewhere the script says what to install.
source "$(dirname "$0")/lib.sh"

report() { log "docker engine: $(docker version --format 'Docker {{.Server.Version}}, API {{.Server.APIVersion}}, client API {{.Client.APIVersion}}')"; }

if engine_answers; then report; exit 0; fi

if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
  if [ -n "${CI:-}" ]; then
    log "installing docker.io (Debian's Docker Engine)"
    apt_install docker.io
  else
    log "no Docker engine answers and dockerd is not installed: apt-get install docker.io (or run .ci/run, which installs it)"
    exit 1
  fi
fi

[ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null || { log "starting dockerd needs root (or sudo)"; exit 1; }
log "starting dockerd (log: $CACHE/dockerd.log)"
# setsid: the daemon outlives this script and the test run; it is the machine's engine from now on.
as_root setsid dockerd >>"$CACHE/dockerd.log" 2>&1 </dev/null &
for _ in $(seq 1 60); do
  if engine_answers; then report; exit 0; fi
  sleep 1
done
log "dockerd did not answer within 60 s; its log:"
tail -20 "$CACHE/dockerd.log" >&2
exit 1
