#!/usr/bin/env bash
# A new agent pod, as processes: tether-agent started with an EMPTY plugin cache against a running
# tether-server whose config repository holds one project of N ConfigMaps (default 1000), on the
# local control plane. Measures, per run:
#   - start → first sync begins: from starting the process until the agent logs that the project's
#     sync is rendering (connect, register, configuration, plugin catalog, fetch of the commit);
#   - start → synced: until the agent logs the first sync done (all N objects applied);
# and, in the same run, `kubectl apply --server-side` of the same N files into an empty namespace.
# Results go to docs/PERFORMANCE.md.
#
#   cargo build --release --bin tether-agent
#   scripts/bench/agent-first-sync.sh [RUNS] [OBJECTS]
# The agent is target/release/tether-agent (TETHER_AGENT to choose another); the server the release
# build if there is one, else the debug build (TETHER_SERVER): it is not what is measured.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$repo_root"
runs=${1:-3} objects=${2:-1000}
agent_bin=${TETHER_AGENT:-$repo_root/target/release/tether-agent}
server_bin=${TETHER_SERVER:-$repo_root/target/release/tether-server}
[[ -x "$server_bin" ]] || server_bin=$repo_root/target/debug/tether-server
[[ -x "$agent_bin" ]] || die "no $agent_bin: cargo build --release --bin tether-agent"
[[ -x "$server_bin" ]] || die "no tether-server: cargo build --bin tether-server"

base=$(mktemp -d)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  stop_control_plane
  rm -rf "$base"
}
trap cleanup EXIT

log "starting the local control plane"
start_control_plane "$base/kube" "$base/localkube.log"
kubeconfig="$base/kube/admin.kubeconfig"
kubectl() { "$localkube_bin" kubectl --kubeconfig "$kubeconfig" "$@"; }

# The config repository: the agent's configuration and N ConfigMaps.
repo="$base/git/bench.git" work="$base/work"
git init --quiet --bare --initial-branch=main "$repo"
git init --quiet --initial-branch=main "$work"
mkdir -p "$work/.tether/agents/bench" "$work/manifests" "$base/files"
cat >"$work/.tether/agents/bench/config.yaml" <<YAML
gitops:
  manifest_projects:
    - id: bench
      default_namespace: bench-first
      paths:
        - glob: "manifests/*.yaml"
YAML
for ((i = 0; i < objects; i++)); do
  name=$(printf 'cm-%04d' "$i")
  printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  value: "1"\n' "$name" |
    tee "$work/manifests/$name.yaml" >"$base/files/$name.yaml"
done
git -C "$work" add --all
git -C "$work" -c user.name=bench -c user.email=bench@tether.invalid commit --quiet -m objects
git -C "$work" push --quiet "$repo" HEAD:main

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
grpc_port=$(free_port) http_port=$(free_port)
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$base/webhook-secret"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$base/admin-token"
cat >"$base/server.yaml" <<YAML
data_dir: $base/server-data
listen: {grpc: "127.0.0.1:$grpc_port", http: "127.0.0.1:$http_port"}
poll_interval: 60s
repositories:
  - name: bench
    path: $repo
webhooks:
  secret_file: $base/webhook-secret
api:
  admin_token_file: $base/admin-token
YAML
server=("$server_bin" --config "$base/server.yaml")
"${server[@]}" agent register bench --config-repository bench >/dev/null
"${server[@]}" token create bench --description bench | grep '^tthr_' >"$base/agent-token"
"${server[@]}" run >"$base/server.log" 2>&1 &
pids+=($!)
until curl -fs "http://127.0.0.1:$http_port/readyz" >/dev/null 2>&1; do
  kill -0 "${pids[-1]}" 2>/dev/null || die "tether-server stopped: $(tail -n 5 "$base/server.log")"
  sleep 0.05
done
kubectl create namespace tether-system >/dev/null

now_ms() { date +%s%3N; }
# Milliseconds from `start_ms` to the first line of the log matching PATTERN, by its timestamp.
logged_ms() {
  local log=$1 pattern=$2 start_ms=$3 stamp
  stamp=$(grep -m1 -E "$pattern" "$log" | sed 's/\x1b\[[0-9;]*m//g' | awk '{print $1}')
  echo $(($(date -d "$stamp" +%s%3N) - start_ms))
}

log "$runs runs of a new agent with an empty plugin cache, $objects objects ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
printf '| run | start → configuration, worker started | start → renderer compiled (empty cache) | start → %s objects synced | kubectl apply --server-side, same files |\n|---|---|---|---|---|\n' "$objects"
for ((run = 1; run <= runs; run++)); do
  kubectl delete namespace bench-first --ignore-not-found --wait >/dev/null
  kubectl create namespace bench-first >/dev/null
  kubectl -n tether-system delete configmaps --all >/dev/null # the inventory of the previous run
  agent_log="$base/agent-$run.log" cache="$base/cache-$run"
  start=$(now_ms)
  NO_COLOR=1 RUST_LOG=info,tether_plugin_host=debug "$agent_bin" --server "http://127.0.0.1:$grpc_port" \
    --token-file "$base/agent-token" --kubeconfig "$kubeconfig" --namespace tether-system \
    --pod-name "bench-$run" --cache-dir "$cache" --leader-election false \
    --observability-addr "127.0.0.1:0" >"$agent_log" 2>&1 &
  agent=$!
  pids+=("$agent")
  # The times come from the log's own timestamps; this only waits for the line to be there.
  deadline=$((SECONDS + 300))
  until grep -q ' synced' "$agent_log"; do
    ((SECONDS < deadline)) || die "no sync within 300 s: $(tail -n 20 "$agent_log")"
    sleep 0.1
  done
  synced=$(logged_ms "$agent_log" ' synced' "$start")
  begins=$(logged_ms "$agent_log" "starting the project's worker" "$start")
  compiled=$(logged_ms "$agent_log" 'plugin loaded plugin="raw"' "$start")
  kill -TERM "$agent" && wait "$agent" 2>/dev/null || true
  unset 'pids[-1]'

  kubectl delete namespace bench-kubectl --ignore-not-found --wait >/dev/null
  kubectl create namespace bench-kubectl >/dev/null
  kstart=$(now_ms)
  kubectl apply --server-side -n bench-kubectl -f "$base/files" >/dev/null
  kubectl_ms=$(($(now_ms) - kstart))
  printf '| %d | %d ms | %d ms | %d ms | %d ms |\n' "$run" "$begins" "$compiled" "$synced" "$kubectl_ms"
done
