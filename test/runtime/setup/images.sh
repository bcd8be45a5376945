#!/usr/bin/env bash
# Local images for tests that run the stack's containers on a real Docker
# engine, built with no registry at all:
#
#   appstack-test/base              Debian bookworm (debootstrap --variant=minbase from this
#                                   machine's own Debian mirror) with postgresql, redis-server,
#                                   procps, wget, ca-certificates; imported with `docker import`
#   appstack-test/postgres          stand-in for postgres:<v>-alpine (test/runtime/images/postgres)
#   appstack-test/redis             stand-in for redis:<v>-alpine (test/runtime/images/redis)
#   appstack-test/node              node (node_modules/node) and npm, user node: stands in for node:24-alpine
#   appstack-test/example-app       examples/app (API, migrations, worker) with its production node_modules
#   appstack-test/example-frontend  examples/app/frontend, built by its own Dockerfile FROM appstack-test/node
#   appstack-test/caddy             the Caddy that caddy.sh built, as caddy:<v>-alpine lays it out
#   appstack-test/restic            the restic that restic.sh built, as restic/restic:<v> lays it out
#
# Docker Hub names have no hyphen, so appstack-test/* can never be a real image.
# Every image carries the label appstack-test.key, a digest of what it is built
# from; an image whose label matches is not rebuilt. The rootfs tarball is
# cached in .cache/images/, keyed on the suite and the package list.
source "$(dirname "$0")/lib.sh"

SUITE=bookworm
PACKAGES=(postgresql redis-server procps wget ca-certificates passwd)
# Bump when the way the rootfs is made changes (its tarball is keyed on this, the suite and the packages).
ROOTFS_RECIPE=1
IMAGES="$ROOT/test/runtime/images"
WORK="$CACHE/images"
TAG=test
mkdir -p "$WORK"

command -v debootstrap >/dev/null || {
  if [ -n "${CI:-}" ]; then apt_install debootstrap; else log "debootstrap is missing: apt-get install debootstrap (.ci/run installs it)"; exit 1; fi
}
engine_answers || { log "no Docker engine answers: run test/runtime/setup/engine.sh first"; exit 1; }

label_of() { docker image inspect -f '{{index .Config.Labels "appstack-test.key"}}' "$1" 2>/dev/null || true; }

# Removes an image this script replaced, once nothing tags it any more.
drop_replaced() {
  local old="$1" new
  new="$(docker image inspect -f '{{.Id}}' "$2")"
  [ -n "$old" ] && [ "$old" != "$new" ] || return 0
  [ -z "$(docker image inspect -f '{{join .RepoTags ","}}' "$old" 2>/dev/null)" ] && docker rmi "$old" >/dev/null 2>&1 || true
}

# build_image NAME KEY CONTEXT [docker build options...]
build_image() {
  local name="$1" key="$2" context="$3" ref="appstack-test/$1:$TAG" old start
  shift 3
  if [ "$(label_of "$ref")" = "$key" ]; then log "$ref: up to date"; return; fi
  old="$(docker image inspect -f '{{.Id}}' "$ref" 2>/dev/null || true)"
  start=$SECONDS
  # The build's own output (and the legacy builder's deprecation notice) only when it fails.
  docker build -q --label "appstack-test.key=$key" -t "$ref" "$@" "$context" >"$WORK/build-$name.log" 2>&1 ||
    { tail -30 "$WORK/build-$name.log" >&2; log "$ref: docker build failed"; exit 1; }
  drop_replaced "$old" "$ref"
  log "$ref: built in $((SECONDS - start)) s"
}

# --- the Debian root filesystem ------------------------------------------------
rootfs_key="$(digest "recipe $ROOTFS_RECIPE" "$SUITE" "${PACKAGES[@]}")"
rootfs="$WORK/rootfs-$SUITE-$rootfs_key.tar"
if [ -s "$rootfs" ]; then
  log "rootfs $SUITE: cached ($(du -h "$rootfs" | cut -f1))"
else
  mirror="$(debian_mirror)"
  dir="$(mktemp -d "$WORK/rootfs.XXXXXX")"
  trap 'as_root rm -rf "$dir"' EXIT
  start=$SECONDS
  log "rootfs $SUITE: debootstrap --variant=minbase with ${PACKAGES[*]} (a minute or more)"
  # Two stages, so that no package's maintainer script starts a server inside the
  # chroot (policy-rc.d), and postgresql creates no cluster of its own.
  as_root debootstrap --variant=minbase --foreign --include="$(IFS=,; echo "${PACKAGES[*]}")" "$SUITE" "$dir" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
  as_root sh -c "printf '#!/bin/sh\nexit 101\n' > '$dir/usr/sbin/policy-rc.d' && chmod 755 '$dir/usr/sbin/policy-rc.d'"
  as_root mkdir -p "$dir/etc/postgresql-common/createcluster.d"
  as_root sh -c "echo 'create_main_cluster = false' > '$dir/etc/postgresql-common/createcluster.d/appstack-test.conf'"
  as_root chroot "$dir" /debootstrap/debootstrap --second-stage >>"$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
  as_root rm -rf "$dir/usr/sbin/policy-rc.d" "$dir/var/cache/apt/archives/"*.deb "$dir/var/lib/apt/lists/"* \
    "$dir/usr/share/doc" "$dir/usr/share/man" "$dir/usr/share/info"
  as_root tar -C "$dir" --numeric-owner -cf "$rootfs.partial" .
  mv "$rootfs.partial" "$rootfs"
  as_root rm -rf "$dir"
  trap - EXIT
  # Tarballs of other package lists are stale now.
  find "$WORK" -maxdepth 1 -name "rootfs-*.tar" ! -name "$(basename "$rootfs")" -delete
  log "rootfs $SUITE: built in $((SECONDS - start)) s ($(du -h "$rootfs" | cut -f1))"
fi

base="appstack-test/base:$TAG"
if [ "$(label_of "$base")" = "$rootfs_key" ]; then
  log "$base: up to date"
else
  old="$(docker image inspect -f '{{.Id}}' "$base" 2>/dev/null || true)"
  start=$SECONDS
  docker import --change "LABEL appstack-test.key=$rootfs_key" --change "ENV LANG=C.UTF-8" \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    "$rootfs" "$base" >/dev/null
  drop_replaced "$old" "$base"
  log "$base: imported in $((SECONDS - start)) s"
fi
base_key="$(label_of "$base")"

# --- data stores and the edge ---------------------------------------------------
build_image postgres "$(digest "$base_key" "$IMAGES/postgres/Dockerfile" "$IMAGES/postgres/docker-entrypoint.sh")" \
  "$IMAGES/postgres" --build-arg "BASE_IMAGE=$base"
build_image redis "$(digest "$base_key" "$IMAGES/redis/Dockerfile" "$IMAGES/redis/docker-entrypoint.sh")" \
  "$IMAGES/redis" --build-arg "BASE_IMAGE=$base"

# binary_image NAME: the program that setup/NAME.sh builds from its Go module, in the image of test/runtime/images/NAME.
binary_image() {
  local name="$1" binary key ctx="$WORK/context-$1"
  bash "$ROOT/test/runtime/setup/$name.sh"
  binary="$(readlink -f "$CACHE/bin/$name")"
  key="$(digest "$base_key" "$IMAGES/$name/Dockerfile" "$binary")"
  if [ "$(label_of "appstack-test/$name:$TAG")" != "$key" ]; then
    rm -rf "$ctx" && mkdir -p "$ctx"
    cp "$IMAGES/$name/Dockerfile" "$ctx/" && cp "$binary" "$ctx/$name"
  fi
  build_image "$name" "$key" "$ctx" --build-arg "BASE_IMAGE=$base"
  rm -rf "$ctx"
}
binary_image caddy
binary_image restic

# --- node, and the example app ----------------------------------------------------
node_bin="$ROOT/node_modules/node/bin/node"
[ -x "$node_bin" ] || { log "no $node_bin: run npm ci first"; exit 1; }
# npm as this machine has it, with its bundled dependencies.
npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
[ -f "$npm_dir/package.json" ] && [ -d "$npm_dir/node_modules" ] || { log "cannot find npm with its bundled dependencies (found $npm_dir)"; exit 1; }
node_ctx="$WORK/context-node"
node_key="$(digest "$base_key" "$IMAGES/node/Dockerfile" "$("$node_bin" --version)" "$(stat -c %s "$node_bin")" "$(node "$npm_dir/bin/npm-cli.js" --version)")"
if [ "$(label_of "appstack-test/node:$TAG")" != "$node_key" ]; then
  rm -rf "$node_ctx" && mkdir -p "$node_ctx"
  cp "$IMAGES/node/Dockerfile" "$node_ctx/"
  # The npm package's node binary carries its debug symbols (about 30 MB); the image needs none.
  cp "$node_bin" "$node_ctx/node" && { strip --strip-debug "$node_ctx/node" 2>/dev/null || true; }
  cp -r "$npm_dir" "$node_ctx/npm"
fi
build_image node "$node_key" "$node_ctx" --build-arg "BASE_IMAGE=$base"
rm -rf "$node_ctx"

app="$ROOT/examples/app"
app_files() { (cd "$app" && find package.json package-lock.json secrets-from-files.sh lib api worker -type f | LC_ALL=C sort); }
app_key="$(digest "$(label_of "appstack-test/node:$TAG")" "$IMAGES/example-app/Dockerfile" "$(cd "$app" && app_files | xargs sha256sum)")"
if [ "$(label_of "appstack-test/example-app:$TAG")" != "$app_key" ]; then
  deps="$WORK/example-app-deps-$(digest "$app/package-lock.json")"
  if [ ! -d "$deps/node_modules" ]; then
    log "example app: npm ci --omit=dev"
    rm -rf "$WORK"/example-app-deps-* && mkdir -p "$deps"
    cp "$app/package.json" "$app/package-lock.json" "$deps/"
    (cd "$deps" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
  fi
  app_ctx="$WORK/context-example-app"
  rm -rf "$app_ctx" && mkdir -p "$app_ctx/dist/workers"
  cp "$IMAGES/example-app/Dockerfile" "$app_ctx/"
  (cd "$app" && cp -r lib api worker secrets-from-files.sh "$app_ctx/")
  cp -r "$deps/node_modules" "$app_ctx/"
  # The commands the production stack file gives the team's image (see the Dockerfile).
  node -e '
    const fs = require("fs");
    const pkg = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    pkg.scripts = { ...pkg.scripts, "db:migrate": "node api/migrate.js" };
    fs.writeFileSync(process.argv[2], JSON.stringify(pkg, null, 2) + "\n");
  ' "$app/package.json" "$app_ctx/package.json"
  echo 'import "../../worker/worker.js";' >"$app_ctx/dist/workers/memory-worker.js"
  build_image example-app "$app_key" "$app_ctx" --build-arg "NODE_IMAGE=appstack-test/node:$TAG"
  rm -rf "$app_ctx"
else
  log "appstack-test/example-app:$TAG: up to date"
fi

frontend="$app/frontend"
# Keyed on what the build reads: not its own output (dist/, from other tests' builds) or node_modules/.
frontend_key="$(digest "$(label_of "appstack-test/node:$TAG")" "$(cd "$frontend" && find . -type f -not -path './dist/*' -not -path './node_modules/*' | LC_ALL=C sort | xargs sha256sum)")"
build_image example-frontend "$frontend_key" "$frontend" --build-arg "NODE_IMAGE=appstack-test/node:$TAG"

docker image ls --filter reference='appstack-test/*' --format '{{.Repository}}:{{.Tag}} {{.Size}}' | while read -r line; do log "  $line"; done
