# Shared by scripts/test and scripts/quickstart: install what a fresh machine lacks, then build and
# run the local control plane. Sourced, not run.

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Debian packages the tests and the quickstart run for real.
ensure_apt_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=()
  ((EUID == 0)) || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# rust-toolchain.toml pins the toolchain and its targets; rustup installs them on first use.
ensure_rust() {
  command -v rustup >/dev/null || die "rustup is missing (this kind of machine ships it)"
  command -v go >/dev/null || die "go is missing (this kind of machine ships it)"
  (cd "$repo_root" && rustup show active-toolchain >/dev/null 2>&1) || (cd "$repo_root" && rustup toolchain install)
  (cd "$repo_root" && rustup target list --installed | grep -qx wasm32-wasip2) ||
    (cd "$repo_root" && rustup target add wasm32-wasip2)
}

# Everything else a part of the project needs (plugin toolchains, reference renderers, ...):
# each part owns one idempotent script in scripts/setup/.
run_setup_scripts() {
  local script
  for script in "$repo_root"/scripts/setup/*.sh; do
    [[ -e "$script" ]] || continue
    # shellcheck source=/dev/null
    source "$script"
  done
}

# Builds localkube if its cache misses; prints its path.
build_localkube() {
  bash "$repo_root/tests/kube/build.sh"
}

# start_control_plane STATE_DIR LOG_FILE: starts localkube in the background and waits until it is
# ready. It stops when fd 9 closes: stop_control_plane closes it, and so does this shell's death,
# however it dies, so no control plane outlives the command that started it.
start_control_plane() {
  local state=$1 logfile=$2 localkube
  localkube=$(build_localkube)
  mkdir -p "$state"
  rm -f "$state/cluster.json" "$state/lifeline"
  mkfifo "$state/lifeline"
  "$localkube" up --dir "$state" --exit-with-stdin <"$state/lifeline" >"$logfile" 2>&1 &
  localkube_pid=$!
  exec 9>"$state/lifeline"
  rm -f "$state/lifeline"
  local waited=0
  until [[ -f "$state/cluster.json" ]]; do
    if ! kill -0 "$localkube_pid" 2>/dev/null; then
      tail -n 30 "$logfile" >&2
      die "the local control plane did not start; log: $logfile"
    fi
    ((waited++ < 1800)) || die "the local control plane was not ready after 3 minutes; log: $logfile"
    sleep 0.1
  done
  localkube_bin=$localkube
}

stop_control_plane() {
  [[ -n "${localkube_pid:-}" ]] || return 0
  exec 9>&-
  wait "$localkube_pid" 2>/dev/null || true
  localkube_pid=
}
