# shellcheck shell=bash
# Installs the oracles the renderer plugins are checked against: kustomize and helm, built from their Go
# modules at pinned versions (the differential suites in tests/differential compare the plugins' output
# with theirs, and the benchmarks time both in one run). Each lands in
# ~/.cache/tether/oracles/<tool>-<version>/ and is exported as TETHER_KUSTOMIZE / TETHER_HELM.
# Sourced by scripts/test; safe to source or run again (instant once built). Changes no shell options.

TETHER_KUSTOMIZE_VERSION="v5.8.1"
TETHER_HELM_VERSION="v4.2.4"

tether_install_oracle() {
    local tool="$1" module="$2" version="$3"
    local dir="${XDG_CACHE_HOME:-$HOME/.cache}/tether/oracles/$tool-$version"
    if [ ! -x "$dir/$tool" ]; then
        command -v go >/dev/null 2>&1 || { echo "40-oracles: go is required to build $tool" >&2; return 1; }
        echo "40-oracles: building $tool $version from $module (once; cached in $dir)" >&2
        mkdir -p "$dir"
        GOBIN="$dir" GOFLAGS=-mod=mod go install "$module@$version" >&2 || return 1
    fi
    echo "$dir/$tool"
}

tether_setup_oracles() {
    local kustomize helm
    kustomize="$(tether_install_oracle kustomize sigs.k8s.io/kustomize/kustomize/v5 "$TETHER_KUSTOMIZE_VERSION" | tail -n1)" || return 1
    helm="$(tether_install_oracle helm helm.sh/helm/v4/cmd/helm "$TETHER_HELM_VERSION" | tail -n1)" || return 1
    export TETHER_KUSTOMIZE="$kustomize" TETHER_HELM="$helm"
}

tether_setup_oracles
