#!/usr/bin/env bash
# `tether render` against `kustomize build` and `helm template`, process against process, in one run
# with hyperfine: what a user or a CI job pays per call. Results go to docs/PERFORMANCE.md.
#
#   cargo build --release --bin tether
#   scripts/bench/render-processes.sh [TETHER_BINARY]     (default: target/release/tether)
#
# Set-ups compared, each over the shared corpus (tests/differential finds it the same way):
#   - every kustomization of the corpus that both tools build, one process per build, in one loop;
#   - the podinfo production overlay alone (a small overlay, one process);
#   - every chart of the corpus with default values, one process per chart, in one loop.
# The corpus's kustomize projects are copied to a scratch directory, each made a Git work tree as a
# user's repository would be (`tether render` hands the enclosing work tree to the plugin, so that
# overlays reach their bases). `tether` uses a warm compile cache of its own (the first call fills
# it), as every call after a user's first does.
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tether=$(realpath "${1:-$repo_root/target/release/tether}")
[[ -x "$tether" ]] || { echo "no $tether: cargo build --release --bin tether" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "hyperfine is missing: apt-get install hyperfine" >&2; exit 1; }
# shellcheck source=/dev/null
source "$repo_root/scripts/setup/40-oracles.sh"

# As tests/differential finds it: $TETHER_CORPUS, else shared/corpus beside a parent directory.
corpus=${TETHER_CORPUS:-}
dir=$repo_root
while [[ -z "$corpus" && "$dir" != / ]]; do
  dir=$(dirname "$dir")
  [[ -d "$dir/shared/corpus" ]] && corpus="$dir/shared/corpus"
done
[[ -d "$corpus/kustomize" && -d "$corpus/charts" ]] || { echo "no shared corpus (set TETHER_CORPUS)" >&2; exit 1; }

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r "$corpus/kustomize" "$scratch/kustomize"
for project in "$scratch"/kustomize/*/; do
  git -C "$project" init -q
done
export TETHER_CACHE_DIR="$scratch/cache"

overlays=()
while IFS= read -r file; do
  dir=$(dirname "$file")
  if "$TETHER_KUSTOMIZE" build "$dir" >/dev/null 2>&1 && "$tether" render "$dir" >/dev/null 2>&1; then
    overlays+=("$dir")
  else
    echo "skipped (one of the tools does not build it): ${dir#"$scratch"/}" >&2
  fi
done < <(find "$scratch/kustomize" -name kustomization.yaml | sort)
charts=()
for dir in "$corpus"/charts/*/; do
  charts+=("${dir%/}")
done
small="$scratch/kustomize/podinfo/deploy/overlays/production"

loop() { # loop COMMAND... -- DIRS...: one shell line running COMMAND DIR for each DIR
  local command=() dir line=""
  while [[ "$1" != "--" ]]; do command+=("$(printf '%q' "$1")"); shift; done
  shift
  for dir in "$@"; do line+="${command[*]} $(printf '%q' "$dir") >/dev/null && "; done
  echo "${line}true"
}

echo "tether:    $tether ($("$tether" --version))"
echo "kustomize: $TETHER_KUSTOMIZE ($("$TETHER_KUSTOMIZE" version))"
echo "helm:      $TETHER_HELM ($("$TETHER_HELM" version --short))"
echo "${#overlays[@]} kustomizations, ${#charts[@]} charts; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

runs=${RUNS:-20}
hyperfine -N --warmup 3 --runs "$runs" \
  -n "tether render (small overlay)" "$tether render $small" \
  -n "kustomize build (small overlay)" "$TETHER_KUSTOMIZE build $small"
hyperfine --warmup 1 --runs "$runs" \
  -n "tether render (${#overlays[@]} kustomizations)" "$(loop "$tether" render -- "${overlays[@]}")" \
  -n "kustomize build (${#overlays[@]} kustomizations)" "$(loop "$TETHER_KUSTOMIZE" build -- "${overlays[@]}")"
hyperfine --warmup 1 --runs "$runs" \
  -n "tether render (${#charts[@]} charts)" "$(loop "$tether" render -- "${charts[@]}")" \
  -n "helm template (${#charts[@]} charts)" "$(loop "$TETHER_HELM" template -- "${charts[@]}")"
