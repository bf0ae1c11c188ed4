#!/usr/bin/env bash
# Builds localkube (the local control plane) from Kubernetes' Go modules and prints the binary's
# path. The binary is cached by the hash of go.mod, go.sum and the sources: a warm start reuses it,
# a change of Kubernetes version or of the code here rebuilds it. Only the Go module proxy is used.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${TETHER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tether}
key=$(cd "$here" && cat go.mod go.sum build.sh ./*.go | sha256sum | cut -c1-16)
out="$cache/localkube/$key/localkube"
if [[ -x "$out" ]]; then
  echo "$out"
  exit 0
fi

# The version the apiserver reports on /version comes from these ldflags, as in Kubernetes' own
# release builds; the module version is the single source of truth for it.
version=$(cd "$here" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
minor=${version#v1.}; minor=${minor%%.*}
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
ldflags+=" -X $pkg.gitCommit=$key"

mkdir -p "$(dirname "$out")"
echo "building localkube (Kubernetes $version); a cold build takes 10-20 minutes on 2 cores" >&2
start=$SECONDS
(cd "$here" && go build -trimpath -ldflags "$ldflags" -o "$out.tmp" .)
mv "$out.tmp" "$out"
# Older builds (other keys) are 190 MB each and nothing uses them any more.
find "$cache/localkube" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -exec rm -rf {} +
echo "built localkube in $((SECONDS - start))s: $out" >&2
echo "$out"
