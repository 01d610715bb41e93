#!/usr/bin/env bash
# p2p-bench.sh — a namespaced cluster pulling one image on every node at once, with and without the peer-to-peer
# mirror (airlock agent --embedded-registry), in one run.
#
# Usage: AIRLOCK_BIN=artifacts/publish/linux-x64/airlock bench/p2p-bench.sh [--layers N] [--layer-mib N] [--no-results]
#
# Builds a private network of namespaces joined by a bridge (random names, addresses only inside them, nothing in the
# host's namespace): `airlock server` in one, `airlock registry` in one whose uplink (eth0 egress) is shaped with tc
# (tbf), and N nodes each running `airlock agent --server … [--embedded-registry]` with the containerd it supervises.
# Every node then fetches the same image (`ctr content fetch`, every layer, no unpacking) at the same moment.
# Two shapes, as issue 13 asks: 4 nodes at 400 Mbit/s and 8 nodes at 1 Gbit/s; each with and without peers.
# Measured: time until the last node has the image, the registry's egress (its veth's transmitted bytes), the CPU of
# every agent (airlock + its containerd) and of the whole machine during the pull (how much of the time is CPU-bound:
# every namespace shares this machine's cores). Goals: egress <= 1.5x the image, time with peers <= 0.5x without.
# Needs root (namespaces, tc), containerd, ctr, skopeo, openssl. Figures are appended to bench/RESULTS.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo_root=$(cd "$here/.." && pwd)
layers=4; layer_mib=52; write_results=1
while (( $# )); do
  case $1 in
    --layers) layers=$2; shift 2 ;;
    --layer-mib) layer_mib=$2; shift 2 ;;
    --no-results) write_results=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "p2p-bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for tool in containerd ctr skopeo openssl ip tc nsenter; do
  command -v "$tool" >/dev/null || { echo "p2p-bench: $tool is missing (apt-get install containerd skopeo openssl iproute2 util-linux)" >&2; exit 1; }
done
airlock=${AIRLOCK_BIN:-}
[[ -n $airlock && -x $airlock ]] || { echo "p2p-bench: set AIRLOCK_BIN to the Native AOT binary (scripts/publish.sh)" >&2; exit 1; }
airlock=$(cd "$(dirname "$airlock")" && pwd)/$(basename "$airlock")

id=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
work=$(mktemp -d /tmp/apb-XXXXXX)
namespaces=(); pids=()
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
stop_all() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done; pids=(); }
cleanup() {
  stop_all
  for ns in "${namespaces[@]}"; do ip netns delete "$ns" 2>/dev/null || true; done
  for m in $(awk -v w="$work" '$2 ~ "^"w {print $2}' /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" "$@"; }
# Daemons are started with nsenter itself in the background (not through a function, which would fork a subshell):
# nsenter execs the program, so $! is the daemon's PID and TERM reaches it.

# The network: a bridge namespace and up to 10 machines, 10.214.0.(i+1).
bridge="ap2p-$id-br"
ip netns add "$bridge"; namespaces+=("$bridge")
ip -n "$bridge" link set lo up
ip -n "$bridge" link add br0 type bridge; ip -n "$bridge" link set br0 up
machine() {  # index -> namespace name (created once)
  local i=$1 ns="ap2p-$id-$1"
  if [[ ! -e /run/netns/$ns ]]; then
    ip netns add "$ns"; namespaces+=("$ns")
    ip -n "$ns" link set lo up
    ip -n "$ns" link add eth0 type veth peer name "p$i" netns "$bridge"
    ip -n "$ns" addr add "10.214.0.$((i + 1))/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$bridge" link set "p$i" master br0; ip -n "$bridge" link set "p$i" up
  fi
  echo "$ns"
}
for i in $(seq 0 9); do machine "$i" >/dev/null; done
server_ns=$(machine 0); registry_ns=$(machine 1)
registry="10.214.0.2:5000"
echo '{}' >"$work/config.yaml"
export AIRLOCK_CONFIG="$work/config.yaml"

nsenter --net="/run/netns/$server_ns" "$airlock" server --data-dir "$work/server" --node-name server-0 --heartbeat-interval 1s >"$work/server.log" 2>&1 &
pids+=($!)
nsenter --net="/run/netns/$registry_ns" "$airlock" registry --listen "$registry" --data-dir "$work/registry" --gc-interval off >"$work/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do [[ -s $work/server/server/token ]] && in_ns "$registry_ns" curl -sf -o /dev/null "http://$registry/v2/" && break; sleep 0.2; done

sha() { openssl dgst -sha256 -r "$1" | cut -d' ' -f1; }
put_blob() { local d; d=$(sha "$2"); mv "$2" "$1/blobs/sha256/$d"; echo "$d"; }
log "seeding 1 image x $layers layers x $layer_mib MiB"
layout="$work/layout"; mkdir -p "$layout/blobs/sha256" "$work/l"
echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
layer_json=""; diff_ids=""; image_bytes=0
for l in $(seq 1 "$layers"); do
  rm -f "$work/l/"*
  openssl rand -out "$work/l/data$l" $((layer_mib << 20))
  tar -C "$work/l" -cf "$work/layer.tar" "data$l"
  size=$(stat -c %s "$work/layer.tar"); d=$(put_blob "$layout" "$work/layer.tar"); image_bytes=$((image_bytes + size))
  layer_json+="${layer_json:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:$d\",\"size\":$size}"
  diff_ids+="${diff_ids:+,}\"sha256:$d\""
done
printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$diff_ids" >"$work/config.json"
csize=$(stat -c %s "$work/config.json"); cdig=$(put_blob "$layout" "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' "$cdig" "$csize" "$layer_json" >"$work/manifest.json"
msize=$(stat -c %s "$work/manifest.json"); mdig=$(put_blob "$layout" "$work/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"1"}}]}' "$mdig" "$msize" >"$layout/index.json"
in_ns "$registry_ns" skopeo copy --quiet --preserve-digests --dest-tls-verify=false "oci:$layout:1" "docker://$registry/bench/img:1"
rm -rf "$layout" "$work/l"
image_mib=$(awk -v b="$image_bytes" 'BEGIN {printf "%.0f", b / 1048576}')

tx_bytes() { ip -n "$registry_ns" -s -j link show eth0 | sed -E 's/.*"tx":\{"bytes":([0-9]+).*/\1/'; }
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
tree_ticks() {  # user + system ticks of a process and its descendants
  local total=0 p
  for p in $1 $(pgrep -P "$1" 2>/dev/null) $(for c in $(pgrep -P "$1" 2>/dev/null); do pgrep -P "$c" 2>/dev/null; done); do
    [[ -r /proc/$p/stat ]] && total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$total"
}

results=()
run() {  # nodes rate peers(0|1)
  local nodes=$1 rate=$2 peers=$3 label
  label="$nodes nodes, ${rate}, $([[ $peers == 1 ]] && echo "with peers" || echo "without peers")"
  log "$label: starting the agents"
  tc -n "$registry_ns" qdisc replace dev eth0 root tbf rate "$rate" burst 256kb latency 100ms
  local agents=() i ns data
  for i in $(seq 0 $((nodes - 1))); do
    ns=$(machine $((2 + i))); data="$work/run-$nodes-$peers/n$i"
    mkdir -p "$data/images"
    printf 'mirrors:\n  "%s":\n    endpoint:\n      - "http://%s"\n' "$registry" "$registry" >"$data/registries.yaml"
    nsenter --net="/run/netns/$ns" "$airlock" agent --server "https://10.214.0.1:9443" --token-file "$work/server/server/token" --data-dir "$data" \
      --node-name "n$i-$nodes-$peers" --registries "$data/registries.yaml" --images-dir "$data/images" --containerd-state "$data/s" \
      --containerd-version 1.6 --systemd-cgroup false --stream-server-port 0 $([[ $peers == 1 ]] && echo --embedded-registry) \
      >"$data/agent.log" 2>&1 &
    agents+=($!); pids+=($!)
  done
  for i in $(seq 0 $((nodes - 1))); do
    ns=$(machine $((2 + i))); data="$work/run-$nodes-$peers/n$i"
    for _ in $(seq 600); do
      if [[ -S $data/s/containerd.sock ]] && { [[ $peers == 0 ]] || [[ $(in_ns "$ns" "$airlock" p2p status --output json 2>/dev/null | grep -c '"state": "ready"') -ge $((nodes - 1)) ]]; }; then break; fi
      sleep 0.2
    done
  done
  local tx0 busy0 start end i cpu=()
  local -a ticks0=()
  for i in "${!agents[@]}"; do ticks0[i]=$(tree_ticks "${agents[i]}"); done
  tx0=$(tx_bytes); busy0=$(busy_ticks); start=$(date +%s.%N)
  log "$label: every node fetches now"
  local fetches=()
  for i in $(seq 0 $((nodes - 1))); do
    ns=$(machine $((2 + i))); data="$work/run-$nodes-$peers/n$i"
    nsenter --net="/run/netns/$ns" ctr --address "$data/s/containerd.sock" -n k8s.io content fetch --hosts-dir "$data/agent/etc/containerd/certs.d" \
      "$registry/bench/img:1" >"$data/fetch.log" 2>&1 &
    fetches+=($!)
  done
  for i in "${!fetches[@]}"; do wait "${fetches[i]}" || { echo "p2p-bench: node $i's fetch failed:" >&2; cat "$work/run-$nodes-$peers/n$i/fetch.log" "$work/run-$nodes-$peers/n$i/agent.log" >&2; exit 1; }; done
  end=$(date +%s.%N)
  local egress busy wall
  egress=$(( $(tx_bytes) - tx0 )); busy=$(( $(busy_ticks) - busy0 ))
  wall=$(awk -v s="$start" -v e="$end" 'BEGIN {printf "%.2f", e - s}')
  for i in "${!agents[@]}"; do cpu+=("$(awk -v a="${ticks0[i]}" -v b="$(tree_ticks "${agents[i]}")" -v t="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (b - a) / t}')"); done
  local cpu_bound
  cpu_bound=$(awk -v b="$busy" -v t="$(getconf CLK_TCK)" -v w="$wall" -v n="$(nproc)" 'BEGIN {printf "%.0f", 100 * b / t / (w * n)}')
  results+=("$nodes|$rate|$peers|$wall|$egress|${cpu[*]}|$cpu_bound")
  log "$label: last node after $wall s, registry egress $egress bytes, agent CPU s ${cpu[*]}, machine busy ${cpu_bound}%"
  for p in "${agents[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${agents[@]}"; do wait "$p" 2>/dev/null || true; done
}

run 4 400mbit 0; run 4 400mbit 1
run 8 1gbit 0; run 8 1gbit 1

row() {  # nodes rate -> two table rows and the ratios
  local base peer
  base=$(printf '%s\n' "${results[@]}" | awk -F'|' -v n="$1" -v r="$2" '$1 == n && $2 == r && $3 == 0')
  peer=$(printf '%s\n' "${results[@]}" | awk -F'|' -v n="$1" -v r="$2" '$1 == n && $2 == r && $3 == 1')
  IFS='|' read -r _ _ _ bw be bc bb <<<"$base"; IFS='|' read -r _ _ _ pw pe pc pb <<<"$peer"
  local tratio eratio_base eratio_peer
  tratio=$(awk -v a="$bw" -v b="$pw" 'BEGIN {printf "%.2f", b / a}')
  eratio_base=$(awk -v e="$be" -v i="$image_bytes" 'BEGIN {printf "%.2f", e / i}')
  eratio_peer=$(awk -v e="$pe" -v i="$image_bytes" 'BEGIN {printf "%.2f", e / i}')
  echo "| $1 at $2, without peers | $bw | | $eratio_base× | $bc | $bb% |"
  echo "| $1 at $2, --embedded-registry | $pw | $tratio (goal ≤ 0.5) | $eratio_peer× (goal ≤ 1.5) | $pc | $pb% |"
}
cat >"$work/report" <<EOF

## $(date -u '+%Y-%m-%d %H:%M UTC') — p2p-bench.sh

Command: \`AIRLOCK_BIN=$AIRLOCK_BIN bench/p2p-bench.sh\`.
Machine: nproc $(nproc), kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end (other engineers' builds and tests share it).
Versions: airlock $(git -C "$repo_root" rev-parse --short HEAD 2>/dev/null || echo unknown) (Native AOT); $(containerd --version | cut -d' ' -f1-3).
Content: 1 image, $layers uncompressed random layers x $layer_mib MiB ($image_bytes bytes, $image_mib MiB), fetched by \`ctr content fetch\` on every node
at once into the containerd its agent supervises; the registry's uplink shaped by \`tc tbf\` in its namespace. Egress is the registry veth's
transmitted bytes over the image's size; agent CPU is airlock + its containerd (user + system s) per node; "busy" is the whole machine's
CPU time during the pull over (wall × cores): near 100% means the figures are CPU-bound here, not link-bound.

| cluster | last node (s) | with / without | registry egress | agent CPU s per node | machine busy |
|---|---|---|---|---|---|
$(row 4 400mbit)
$(row 8 1gbit)
EOF
report=$(cat "$work/report")
echo "$report"
if (( write_results )); then echo "$report" >>"$here/RESULTS.md"; log "appended to $here/RESULTS.md"; fi
