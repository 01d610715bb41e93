#!/usr/bin/env bash
# mirror-bench.sh — containerd pulling through `airlock mirror` vs straight from the registry, same run.
#
# Usage: bench/mirror-bench.sh [--layers N] [--layer-mib N] [--runs N] [--no-results]
#
# Seeds an Airlock registry on loopback with one image of L random layers (default 8 x 64 MiB = 512 MiB),
# starts `airlock mirror` in front of it, and has Debian's containerd fetch the image (`ctr content fetch
# --hosts-dir`, every layer, no unpacking, so only the transfer is measured) once with a hosts.toml that points
# at the registry and once with the hosts.toml `registries render --mirror-address` writes (server = the mirror).
# Each fetch gets a fresh containerd (own root, state, socket in a temp dir) so nothing is cached; directions
# alternate, best of N runs each. Goal (issue 5, "Speed"): through the mirror / direct <= 1.1. Figures, with the
# load average, are appended to bench/RESULTS.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo_root=$(cd "$here/.." && pwd)
layers=8; layer_mib=64; runs=3; write_results=1
while (( $# )); do
  case $1 in
    --layers) layers=$2; shift 2 ;;
    --layer-mib) layer_mib=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --no-results) write_results=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "mirror-bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for tool in containerd ctr skopeo openssl curl ss; do
  command -v "$tool" >/dev/null || { echo "mirror-bench: $tool is missing (apt-get install containerd skopeo openssl curl iproute2)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/amb-XXXXXX)
pids=()
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# shellcheck source=bench/lib.sh
source "$here/lib.sh"   # free_port
wait_http() { for _ in $(seq 150); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done; return 1; }

log "building Airlock (Release)"
# AIRLOCK_BIN measures a given binary (e.g. the Native AOT one from scripts/publish.sh, as installed); default: a Release build.
if [[ -n ${AIRLOCK_BIN:-} ]]; then
  airlock=$AIRLOCK_BIN
else
  dotnet build "$repo_root/src/Airlock.Cli" -c Release --nologo -v q >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
  airlock="$repo_root/src/Airlock.Cli/bin/Release/net10.0/airlock"
fi
echo '{}' >"$work/config.yaml"
export AIRLOCK_CONFIG="$work/config.yaml"

# Servers are started in this shell, not in $(...), so they stay its children and are stopped on exit.
registry_port=$(free_port)
"$airlock" registry --listen "127.0.0.1:$registry_port" --data-dir "$work/registry" --gc-interval off >"$work/registry.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$registry_port/v2/" || { cat "$work/registry.log" >&2; exit 1; }

# The image is named bench.invalid/...: containerd never resolves that name (hosts.toml sends it to a loopback
# server either way) and the mirror, with the default endpoint disabled, only knows the loopback registry.
cat >"$work/registries.yaml" <<YAML
mirrors:
  bench.invalid:
    endpoint: ["http://127.0.0.1:$registry_port"]
YAML
mirror_port=$(free_port)
"$airlock" mirror --registries "$work/registries.yaml" --mirror-address "127.0.0.1:$mirror_port" \
  --disable-default-registry-endpoint >"$work/mirror.log" 2>&1 &
pids+=($!)
mirror_pid=$!
wait_http "http://127.0.0.1:$mirror_port/v2/" || { cat "$work/mirror.log" >&2; exit 1; }

"$airlock" registries render --registries "$work/registries.yaml" --data-dir "$work/rendered" --containerd-version 1.6 \
  --systemd-cgroup false --disable-default-registry-endpoint --mirror-address "127.0.0.1:$mirror_port" >/dev/null
mirror_hosts="$work/rendered/agent/etc/containerd/certs.d"
grep -q "server = \"http://127.0.0.1:$mirror_port/v2\"" "$mirror_hosts/bench.invalid/hosts.toml" \
  || { echo "mirror-bench: rendered hosts.toml does not point at the mirror:" >&2; cat "$mirror_hosts/bench.invalid/hosts.toml" >&2; exit 1; }
direct_hosts="$work/direct-certs.d"
mkdir -p "$direct_hosts/bench.invalid"
printf 'server = "http://127.0.0.1:%s/v2"\ncapabilities = ["pull", "resolve"]\n\n[host]\n' "$registry_port" >"$direct_hosts/bench.invalid/hosts.toml"

sha() { openssl dgst -sha256 -r "$1" | cut -d' ' -f1; }
put_blob() { local d; d=$(sha "$2"); mv "$2" "$1/blobs/sha256/$d"; echo "$d"; }
log "seeding 1 image x $layers layers x $layer_mib MiB"
layout="$work/layout"; mkdir -p "$layout/blobs/sha256" "$work/l"
echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
layer_json=""; diff_ids=""
for l in $(seq 1 "$layers"); do
  rm -f "$work/l/"*
  openssl rand -out "$work/l/data$l" $((layer_mib << 20))
  tar -C "$work/l" -cf "$work/layer.tar" "data$l"
  size=$(stat -c %s "$work/layer.tar"); d=$(put_blob "$layout" "$work/layer.tar")
  layer_json+="${layer_json:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:$d\",\"size\":$size}"
  diff_ids+="${diff_ids:+,}\"sha256:$d\""
done
printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$diff_ids" >"$work/config.json"
csize=$(stat -c %s "$work/config.json"); cdig=$(put_blob "$layout" "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' "$cdig" "$csize" "$layer_json" >"$work/manifest.json"
msize=$(stat -c %s "$work/manifest.json"); mdig=$(put_blob "$layout" "$work/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"1"}}]}' "$mdig" "$msize" >"$layout/index.json"
skopeo copy --quiet --dest-tls-verify=false "oci:$layout:1" "docker://127.0.0.1:$registry_port/bench/img:1"
rm -rf "$layout" "$work/l"
total_mib=$((layers * layer_mib))

# The mirror's user + system CPU ticks: the CPU it takes from containerd on a small machine, less load-sensitive than time.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

fetch() {  # label hosts-dir -> appends seconds to $work/label; a fresh containerd each time
  local label=$1 hosts=$2 root="$work/c"
  rm -rf "$root"; mkdir -p "$root"
  printf 'version = 2\nroot = "%s/root"\nstate = "%s/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "%s/c.sock"\n[ttrpc]\n  address = "%s/t.sock"\n' \
    "$root" "$root" "$root" "$root" >"$root/config.toml"
  containerd --config "$root/config.toml" >"$root/containerd.log" 2>&1 &
  local cpid=$!
  for _ in $(seq 150); do ctr --address "$root/c.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
  local start end cpu0
  cpu0=$(cpu_ticks "$mirror_pid")
  start=$(date +%s.%N)
  ctr --address "$root/c.sock" -n bench content fetch --hosts-dir "$hosts" bench.invalid/bench/img:1 >"$work/$label.out" 2>&1 \
    || { cat "$work/$label.out" >&2; kill -TERM "$cpid"; exit 1; }
  end=$(date +%s.%N)
  kill -TERM "$cpid"; wait "$cpid" 2>/dev/null || true
  awk -v s="$start" -v e="$end" 'BEGIN {printf "%.3f\n", e - s}' >>"$work/$label"
  awk -v a="$cpu0" -v b="$(cpu_ticks "$mirror_pid")" -v t="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f\n", (b - a) / t}' >>"$work/$label.cpu"
}

for r in $(seq 1 "$runs"); do
  log "run $r of $runs: direct, then through the mirror"
  fetch direct "$direct_hosts"
  fetch mirror "$mirror_hosts"
done

best() { sort -n "$work/$1" | head -1; }
d=$(best direct); m=$(best mirror)
ratio=$(awk -v a="$d" -v b="$m" 'BEGIN {printf "%.2f", b / a}')
mibs() { awk -v t="$1" -v n="$total_mib" 'BEGIN {printf "%.0f", n / t}'; }
report=$(cat <<EOF

## $(date -u '+%Y-%m-%d %H:%M UTC') — mirror-bench.sh

Machine: nproc $(nproc), kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end.
Versions: airlock $(git -C "$repo_root" rev-parse --short HEAD 2>/dev/null || echo unknown)${AIRLOCK_BIN:+ ($AIRLOCK_BIN)}; $(containerd --version | cut -d' ' -f1-3).
Content: 1 image, $layers layers x $layer_mib MiB = $total_mib MiB (uncompressed random tar), fetched by \`ctr content fetch\`
into a fresh containerd each time; best of $runs alternating runs (all: direct $(paste -sd' ' "$work/direct") s, mirror $(paste -sd' ' "$work/mirror") s).
Mirror process CPU (user + system) per fetch through it: $(paste -sd' ' "$work/mirror.cpu") s (direct fetches: $(paste -sd' ' "$work/direct.cpu") s, idle).

| path | best s | MiB/s | mirror / direct | goal |
|---|---|---|---|---|
| containerd → registry (hosts.toml server = registry) | $d | $(mibs "$d") | | |
| containerd → airlock mirror → registry | $m | $(mibs "$m") | $ratio | ≤ 1.1 |
EOF
)
echo "$report"
if (( write_results )); then echo "$report" >>"$here/RESULTS.md"; log "appended to $here/RESULTS.md"; fi
