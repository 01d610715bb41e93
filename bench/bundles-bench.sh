#!/usr/bin/env bash
# bundles-bench.sh — `airlock images save/load` against `skopeo copy`, same content, same run.
#
# Usage: bench/bundles-bench.sh [--images N] [--layers N] [--layer-mib N] [--rounds N] [--no-results]
#
# Seeds an Airlock registry on loopback with N images of L random layers each (default 4 x 4 x 64 MiB =
# 1 GiB), then measures, each tool against its own fresh target so neither profits from the other:
#   1. registry -> archive: `airlock images save -o all.tar REF...` vs `skopeo copy docker://REF
#      docker-archive:FILE` for every image (skopeo writes one image per docker-archive);
#   2. archive -> registry: `airlock images load all.tar --to REGISTRY/prefix` vs `skopeo copy
#      docker-archive:FILE docker://...` for every archive, into an empty registry each;
# wall time and peak RSS (GNU time's maximum resident set size; for skopeo the largest of its runs).
# Each direction runs --rounds times (default 2) with the order of the two tools alternating, each round into
# fresh targets: on this VM a step's time depends on what ran just before it (once, Airlock's load took
# 2.9-3.3 s right after skopeo's and 1.8-2.0 s right after Airlock's save), so one fixed order is not a fair
# comparison. The best round of each tool counts; every round is listed. As root, every timed step starts
# from the same memory state: dirty data synced and the page cache dropped (so both tools read their source
# archives from disk, as from a drive carried across the gap); otherwise a step inherits the previous one's
# page cache, which on this VM made the registry's page-cache writes cost up to 3x the CPU (bench/RESULTS.md).
# Goal (issue "Bundles"): Airlock >= 2x faster both ways, peak RSS < 150 MiB. Figures are appended to
# bench/RESULTS.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo_root=$(cd "$here/.." && pwd)
images=4; layers=4; layer_mib=64; rounds=2; write_results=1
while (( $# )); do
  case $1 in
    --images) images=$2; shift 2 ;;
    --layers) layers=$2; shift 2 ;;
    --layer-mib) layer_mib=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --no-results) write_results=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bundles-bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for tool in skopeo openssl curl ss /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bundles-bench: $tool is missing (apt-get install skopeo openssl curl iproute2 time)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/airlock-bundles-bench-XXXXXX)
pids=()
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# shellcheck source=bench/lib.sh
source "$here/lib.sh"   # free_port

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

declare -A port
start_registry() {  # name; sets port[name]. Not in $(...): the server must stay this shell's child to be stopped.
  local name=$1 p
  p=$(free_port)
  "$airlock" registry --listen "127.0.0.1:$p" --data-dir "$work/$name" --gc-interval off >"$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 150); do curl -sf -o /dev/null "http://127.0.0.1:$p/v2/" && break; sleep 0.1; done
  curl -sf -o /dev/null "http://127.0.0.1:$p/v2/" || { echo "bundles-bench: registry $name did not start:" >&2; cat "$work/$name.log" >&2; exit 1; }
  port[$name]=$p
}
start_registry source
source_port=${port[source]}

sha() { openssl dgst -sha256 -r "$1" | cut -d' ' -f1; }
put_blob() {  # layout file -> digest (stores under blobs/sha256)
  local layout=$1 file=$2 d; d=$(sha "$file"); mv "$file" "$layout/blobs/sha256/$d"; echo "$d"
}

log "seeding $images images x $layers layers x $layer_mib MiB"
refs=()
for i in $(seq 1 "$images"); do
  layout="$work/layout$i"; mkdir -p "$layout/blobs/sha256"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
  layer_json=""; diff_ids=""
  for l in $(seq 1 "$layers"); do
    mkdir -p "$work/l"; rm -f "$work/l/"*
    openssl rand -out "$work/l/data$i-$l" $((layer_mib << 20))
    tar -C "$work/l" -cf "$work/layer.tar" "data$i-$l"
    size=$(stat -c %s "$work/layer.tar"); d=$(put_blob "$layout" "$work/layer.tar")
    layer_json+="${layer_json:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:$d\",\"size\":$size}"
    diff_ids+="${diff_ids:+,}\"sha256:$d\""
  done
  printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$diff_ids" >"$work/config.json"
  csize=$(stat -c %s "$work/config.json"); cd_=$(put_blob "$layout" "$work/config.json")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' "$cd_" "$csize" "$layer_json" >"$work/manifest.json"
  msize=$(stat -c %s "$work/manifest.json"); md=$(put_blob "$layout" "$work/manifest.json")
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"1"}}]}' "$md" "$msize" >"$layout/index.json"
  skopeo copy --quiet --dest-tls-verify=false "oci:$layout:1" "docker://127.0.0.1:$source_port/bench/img$i:1"
  refs+=("127.0.0.1:$source_port/bench/img$i:1")
  rm -rf "$layout" "$work/l"
done
total_mib=$((images * layers * layer_mib))

timed() {  # label cmd... -> appends "seconds maxrss_kib" to $work/label
  local label=$1; shift
  /usr/bin/time -f '%e %M' -o "$work/time.tmp" "$@" >/dev/null 2>"$work/$label.err" || { cat "$work/$label.err" >&2; exit 1; }
  cat "$work/time.tmp" >>"$work/$label"
}
max_rss() { awk '{if ($2>m) m=$2} END {printf "%.1f", m/1024}' "$work/$1"; }

settle() {  # the same start for every timed step (root only)
  sync
  if [[ -w /proc/sys/vm/drop_caches ]]; then echo 3 >/proc/sys/vm/drop_caches; fi
}
sum_last() { tail -n "$2" "$work/$1" | awk '{s+=$1} END {printf "%.2f", s}'; }
save_skopeo() {
  log "registry -> archive: skopeo (round $1)"
  for i in $(seq 1 "$images"); do
    rm -f "$work/skopeo-$i.tar"
    settle
    timed skopeo-save skopeo copy --quiet --src-tls-verify=false "docker://${refs[$((i-1))]}" "docker-archive:$work/skopeo-$i.tar:bench/img$i:1"
  done
  echo "$(sum_last skopeo-save "$images")" >>"$work/skopeo-save.rounds"
}
save_airlock() {
  log "registry -> archive: airlock (round $1)"
  rm -f "$work/airlock.tar"
  settle
  timed airlock-save "$airlock" images save --quiet -o "$work/airlock.tar" "${refs[@]}"
  echo "$(sum_last airlock-save 1)" >>"$work/airlock-save.rounds"
}
load_skopeo() {
  log "archive -> registry: skopeo (round $1)"
  start_registry "target-skopeo-$1"
  for i in $(seq 1 "$images"); do
    settle
    timed skopeo-load skopeo copy --quiet --dest-tls-verify=false "docker-archive:$work/skopeo-$i.tar" "docker://127.0.0.1:${port[target-skopeo-$1]}/bench/img$i:1"
  done
  echo "$(sum_last skopeo-load "$images")" >>"$work/skopeo-load.rounds"
}
load_airlock() {
  log "archive -> registry: airlock (round $1)"
  start_registry "target-airlock-$1"
  settle
  timed airlock-load "$airlock" images load --quiet "$work/airlock.tar" --to "127.0.0.1:${port[target-airlock-$1]}"
  echo "$(sum_last airlock-load 1)" >>"$work/airlock-load.rounds"
}
for r in $(seq 1 "$rounds"); do
  if (( r % 2 )); then save_skopeo "$r"; save_airlock "$r"; else save_airlock "$r"; save_skopeo "$r"; fi
done
for r in $(seq 1 "$rounds"); do
  if (( r % 2 )); then load_skopeo "$r"; load_airlock "$r"; else load_airlock "$r"; load_skopeo "$r"; fi
done

best() { sort -g "$work/$1.rounds" | head -1; }
all() { paste -sd' ' "$work/$1.rounds"; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b / a}'; }
ss_=$(best skopeo-save); as_=$(best airlock-save); sl=$(best skopeo-load); al=$(best airlock-load)
report=$(cat <<EOF

## $(date -u '+%Y-%m-%d %H:%M UTC') — bundles-bench.sh

Machine: nproc $(nproc), kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end.
Versions: airlock $(git -C "$repo_root" rev-parse --short HEAD 2>/dev/null || echo unknown)${AIRLOCK_BIN:+ ($AIRLOCK_BIN)}; $(skopeo --version).
Content: $images images x $layers layers x $layer_mib MiB = $total_mib MiB, uncompressed tar layers, on loopback.
Best of $rounds rounds, the tools' order alternating, $([[ -w /proc/sys/vm/drop_caches ]] && echo "page cache dropped before every timed step" || echo "page cache NOT dropped (not root)") (seconds per round — save: airlock $(all airlock-save), skopeo
$(all skopeo-save); load: airlock $(all airlock-load), skopeo $(all skopeo-load)).

| direction | airlock s | skopeo s | speed-up (skopeo / airlock) | airlock peak RSS MiB | skopeo peak RSS MiB | goal |
|---|---|---|---|---|---|---|
| registry → archive | $as_ | $ss_ | $(ratio "$as_" "$ss_")× | $(max_rss airlock-save) | $(max_rss skopeo-save) | ≥ 2×, RSS < 150 MiB |
| archive → registry | $al | $sl | $(ratio "$al" "$sl")× | $(max_rss airlock-load) | $(max_rss skopeo-load) | ≥ 2×, RSS < 150 MiB |
EOF
)
echo "$report"
if (( write_results )); then echo "$report" >>"$here/RESULTS.md"; log "appended to $here/RESULTS.md"; fi
