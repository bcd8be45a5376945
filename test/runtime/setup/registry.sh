#!/usr/bin/env bash
# Builds the reference image registry (CNCF distribution, `registry`) from its Go module (cached
# in .cache/bin), so `release --tag` is tested against a real registry on 127.0.0.1.
source "$(dirname "$0")/lib.sh"
go_build_cached registry github.com/distribution/distribution/v3 github.com/distribution/distribution/v3/cmd/registry 3.1.2
