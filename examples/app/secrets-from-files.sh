#!/bin/sh
# The image's entrypoint: for every <NAME>_FILE in the environment that names
# a file in /run/secrets/, export <NAME> with that file's content, then run
# the command. In swarm mode a
# service gets each secret as a file (/run/secrets/<NAME>) and <NAME>_FILE
# naming it, never the value in its env; an app that reads only env vars
# (process.env.DATABASE_URL) runs unchanged behind this. In host mode no
# *_FILE is set and the command runs as it is. Other *_FILE variables
# (SSL_CERT_FILE and the like) are settings of their own and stay as they are.
#
# A value is never printed. A name set both ways is an error: which one wins
# would be a guess. A file's trailing newlines are dropped, as $(cat) does.
set -eu
# Names only: the sed keeps identifiers, so the evals below expand a variable and nothing else.
for var in $(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)_FILE=.*/\1/p'); do
  eval "file=\${${var}_FILE}"
  case "$file" in /run/secrets/*) ;; *) continue ;; esac
  eval "both=\${${var}+set}"
  if [ -n "$both" ]; then
    echo "secrets-from-files: both $var and ${var}_FILE are set; set one" >&2
    exit 78
  fi
  if [ ! -r "$file" ]; then
    echo "secrets-from-files: ${var}_FILE names $file, which this user ($(id -u)) cannot read" >&2
    exit 78
  fi
  value="$(cat "$file")"
  export "$var=$value"
  unset "${var}_FILE"
done
exec "$@"
