#!/usr/bin/env bash
# Can the Pulumi engine that a real `pulumi up` of this program needs be built
# from the Go module proxy alone? Asks the proxy (with the ordinary `go` client)
# for every module version that the build would take, and prints one line each:
#
#   served      <module>@<version>
#   not served  <module>@<query>: <the proxy's answer>
#
# then `probe: ok` (exit 0) or `probe: blocked: ...` (exit 1).
#
#   bash test/e2e/probe.sh              # the module versions (about 50 MB, seconds)
#   bash test/e2e/probe.sh --cli-graph  # also resolve the CLI's whole module graph (about 1.3 GB)
#
# Downloads go to a module cache of their own under .cache/engine/ (git-ignored;
# remove it with `GOMODCACHE=$PWD/.cache/engine/gomod go clean -modcache`), so
# a version already in a machine's cache is never taken for one the proxy serves.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"

command -v go >/dev/null || { echo "probe: needs the go command (Debian: apt-get install golang-go, or Go 1.26 on PATH)" >&2; exit 2; }
cli_graph=false
case "${1:-}" in
  "") ;;
  --cli-graph) cli_graph=true ;;
  *) echo "probe: unknown argument '$1' (usage: bash test/e2e/probe.sh [--cli-graph])" >&2; exit 2 ;;
esac

export GOFLAGS=-mod=mod
export GOMODCACHE="${GOMODCACHE:-$ROOT/.cache/engine/gomod}"
mkdir -p "$GOMODCACHE"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 2

missing=()

# The proxy's answer without its URL, on one line.
reason() { tr '\n\t' '  ' | sed -E 's#https?://[^ ]*##g; s/.*server response: *//; s/ +/ /g; s/ $//'; }

# probe <required|info> <module>@<version or query> [why]
probe() {
  local need="$1" mv="$2" out
  out="$(go mod download -json "$mv" 2>&1)"
  if grep -q '"Error"' <<<"$out" || ! grep -q '"Sum"' <<<"$out"; then
    printf 'not served  %s: %s\n' "$mv" "$(grep -o '"Error": *"[^"]*' <<<"$out" | sed 's/"Error": *"//' | sed 's/\\n/ /g; s/\\t/ /g' | reason)"
    [ "$need" = required ] && missing+=("$mv${3:+ ($3)}")
  else
    printf 'served      %s\n' "$mv"
  fi
  return 0
}

echo "== Pulumi CLI: a wrapper module requiring pkg/v3 and sdk/v3 at one version"
probe required github.com/pulumi/pulumi/pkg/v3@v3.274.1 "the CLI"
probe required github.com/pulumi/pulumi/sdk/v3@v3.274.1 "the CLI"
probe info github.com/pulumi/pulumi/pkg/v3@v3.270.0

echo "== Node.js language host: no tags, so only the pseudo-version of the v3.274.1 tag's commit fits"
# The proxy reports no commit (Origin) for pulumi/pulumi's tags, so that
# pseudo-version cannot be named; asking for the newest version is the probe.
probe required github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3@latest "the language host"

echo "== Docker provider for @pulumi/docker 5.2.0"
probe required github.com/pulumi/pulumi-docker/provider/v5@latest "the Docker provider"
probe info github.com/pulumi/pulumi-docker/provider/v5@v5.2.0
probe info github.com/pulumi/pulumi-docker/provider/v5@master
probe required github.com/pulumi/pulumi-terraform-bridge/v3@v3.137.0 "the Docker provider's bridge"
probe required github.com/pulumi/terraform-plugin-sdk/v2@v2.0.0-20260318212141-5525259d096b "the Docker provider's plugin SDK"
# The upstream Terraform provider (kreuzwerker's, tag v4.5.0, commit 5074970c);
# its go.mod declares the terraform-providers path, so either path would do.
probe required github.com/terraform-providers/terraform-provider-docker@v0.0.0-20260618190003-5074970c71ce "the Docker provider's upstream Terraform provider"
probe info github.com/kreuzwerker/terraform-provider-docker@v0.0.0-20260618190003-5074970c71ce
echo "-- near versions of the bridge, and the proxy's version list (a subset of what it serves)"
for v in v3.136.0 v3.130.0 v3.125.0 v3.121.0 v3.120.0; do probe info "github.com/pulumi/pulumi-terraform-bridge/v3@$v"; done
printf 'listed      %s\n' "$(go list -m -versions github.com/pulumi/pulumi-terraform-bridge/v3 2>&1 | reason)"

echo "== Random provider for @pulumi/random 4.21.2"
# provider/v4 has no tags: its pseudo-version is that of the commit of tag
# sdk/v4.21.2, which the proxy reports in the sdk module's Origin.
sdk_json="$(go list -m -json github.com/pulumi/pulumi-random/sdk/v4@v4.21.2 2>&1)"
hash="$(sed -n 's/.*"Hash": *"\([0-9a-f]\{12\}\).*/\1/p' <<<"$sdk_json" | head -1)"
stamp="$(sed -n 's/.*"Time": *"\([0-9T:-]*\)Z".*/\1/p' <<<"$sdk_json" | head -1 | tr -d 'T:-')"
if [ -n "$hash" ] && [ -n "$stamp" ]; then
  probe required "github.com/pulumi/pulumi-random/provider/v4@v4.0.0-$stamp-$hash" "the Random provider"
else
  printf 'not served  github.com/pulumi/pulumi-random/sdk/v4@v4.21.2: %s\n' "$(reason <<<"$sdk_json")"
  missing+=("github.com/pulumi/pulumi-random/provider/v4 (its commit)")
fi
probe info github.com/pulumi/pulumi-random/provider/v4@v4.21.2
probe required github.com/terraform-providers/terraform-provider-random@v1.3.2-0.20260513075824-f8d869dc98d9 "the Random provider's upstream Terraform provider"

if $cli_graph; then
  echo "== the CLI's whole module graph (go get -tool in a scratch module, then go list -deps)"
  printf 'module example.invalid/cli-probe\n\ngo 1.26\n' >go.mod
  start=$SECONDS
  if go get -tool github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@v3.274.1 >get.log 2>&1 &&
    n="$(go list -deps -tags osusergo,grpcnotrace github.com/pulumi/pulumi/pkg/v3/cmd/pulumi | wc -l)"; then
    echo "resolved    the CLI: $(grep -c . go.sum) go.sum lines, $n packages, $((SECONDS - start)) s, module cache $(du -sh "$GOMODCACHE" | cut -f1)"
  else
    echo "not served  a module of the CLI's graph: $(tail -3 get.log | reason)"
    missing+=("the CLI's module graph")
  fi
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "probe: ok: every module version a build needs is served"
  exit 0
fi
echo "probe: blocked: ${#missing[@]} module version(s) a build needs are not served:"
printf '  %s\n' "${missing[@]}"
exit 1
