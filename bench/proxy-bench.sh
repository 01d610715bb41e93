#!/usr/bin/env bash
# proxy-bench.sh — `airlock registry --proxy` (pull-through cache) against pulling from the upstream directly.
#
# Usage: bench/proxy-bench.sh [--mib N] [--clients N] [--baseline AIRLOCK [--baseline-label TEXT]] [--rounds N] [--no-results]
#
# Starts an upstream Airlock registry and a cache (`--proxy bench.example=<upstream>`) on loopback, pushes two
# random N MiB blobs (default 512) to the upstream, then measures with curl:
#   1. GET from the upstream directly;
#   2. cold GET through the cache (a miss: downloaded, verified, stored and streamed at once);
#   3. warm GET through the cache (a hit);
#   4. C concurrent cold GETs (default 8) of the second blob through the cache — one upstream download.
# With --baseline AIRLOCK (another build's airlock binary, e.g. of the commit before a change), also:
#   5. cold GETs of the first blob through a fresh cache run by the baseline and by this build, alternating,
#      --rounds times (default 3), so both see the same machine load; median and best of each. Each fresh cache
#      first serves a 4 KiB miss, so start-up and JIT stay out of the timing. The cache process's CPU seconds
#      (user + system, /proc/PID/stat) for the cold GET are reported too: on a loaded machine they vary far
#      less than wall time.
# Figures (wall seconds, ratios to the direct GET, upstream bytes sent for step 4) are appended to bench/RESULTS.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo_root=$(cd "$here/.." && pwd)
mib=512; clients=8; write_results=1; baseline=""; baseline_label=""; rounds=3
while (( $# )); do
  case $1 in
    --mib) mib=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --no-results) write_results=0; shift ;;
    --baseline) baseline=$2; shift 2 ;;
    --baseline-label) baseline_label=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "proxy-bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for tool in curl ss sha256sum; do
  command -v "$tool" >/dev/null || { echo "proxy-bench: $tool is missing" >&2; exit 1; }
done

work=$(mktemp -d /tmp/airlock-proxy-bench-XXXXXX)
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

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A port
start_registry() {  # name extra-args...; sets port[name]. Not in $(...): the server must stay this shell's child.
  local name=$1 p; shift
  p=$(free_port)
  "${binary:-$airlock}" registry --listen "127.0.0.1:$p" --data-dir "$work/$name" --gc-interval off "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 150); do curl -sf -o /dev/null "http://127.0.0.1:$p/v2/" && break; sleep 0.1; done
  curl -sf -o /dev/null "http://127.0.0.1:$p/v2/" || { echo "proxy-bench: registry $name did not start:" >&2; cat "$work/$name.log" >&2; exit 1; }
  port[$name]=$p
}
start_registry upstream
upstream="http://127.0.0.1:${port[upstream]}"
start_registry cache --proxy "bench.example=$upstream"
cache="http://127.0.0.1:${port[cache]}"

digests=()
for i in 1 2; do
  head -c $((mib << 20)) /dev/urandom >"$work/blob$i"
  d="sha256:$(sha256sum "$work/blob$i" | cut -d' ' -f1)"
  curl -sf -X POST --data-binary "@$work/blob$i" -H 'Content-Type: application/octet-stream' "$upstream/v2/bench/app/blobs/uploads/?digest=$d" -o /dev/null
  rm "$work/blob$i"
  digests+=("$d")
done
log "pushed 2 x $mib MiB"
head -c 4096 /dev/urandom >"$work/small"
small="sha256:$(sha256sum "$work/small" | cut -d' ' -f1)"
curl -sf -X POST --data-binary "@$work/small" -H 'Content-Type: application/octet-stream' "$upstream/v2/bench/app/blobs/uploads/?digest=$small" -o /dev/null

seconds() { curl -sf -o /dev/null -w '%{time_total}' "$1"; }
bytes_sent() { curl -sf "$upstream/metrics" | awk '$1 == "airlock_registry_bytes_sent_total" { print $2 }'; }
direct=$(seconds "$upstream/v2/bench/app/blobs/${digests[0]}")
cold=$(seconds "$cache/v2/bench/app/blobs/${digests[0]}?ns=bench.example")
warm=$(seconds "$cache/v2/bench/app/blobs/${digests[0]}?ns=bench.example")
before=$(bytes_sent)
start=$(date +%s.%N)
for _ in $(seq "$clients"); do curl -sf -o /dev/null "$cache/v2/bench/app/blobs/${digests[1]}?ns=bench.example" & done
wait_ok=1; for _ in $(seq "$clients"); do wait -n || wait_ok=0; done
concurrent=$(echo "$(date +%s.%N) - $start" | bc)
sent=$(( $(bytes_sent) - before ))
(( wait_ok )) || echo "proxy-bench: a concurrent client failed" >&2

ratio() { echo "scale=2; $1 / $2" | bc; }

ab_table=""
if [[ -n "$baseline" ]]; then
  [[ -x "$baseline" ]] || { echo "proxy-bench: --baseline $baseline is not an executable" >&2; exit 1; }
  declare -A cold_times=([baseline]="" [this]="") cold_cpu=([baseline]="" [this]="")
  ticks=$(getconf CLK_TCK)
  # user + system CPU seconds of a process so far (less sensitive to other load than wall time).
  cpu_seconds() { awk -v t="$ticks" '{ print ($14 + $15) / t }' "/proc/$1/stat"; }
  for round in $(seq "$rounds"); do
    for which in baseline this; do
      binary=$airlock; [[ $which == baseline ]] && binary=$baseline
      start_registry "ab-$which-$round" --proxy "bench.example=$upstream"
      binary=""
      # A first, tiny miss warms the fresh process (JIT, upstream connection) so the timing is the transfer's.
      curl -sf -o /dev/null "http://127.0.0.1:${port[ab-$which-$round]}/v2/bench/app/blobs/$small?ns=bench.example"
      cpu_before=$(cpu_seconds "${pids[-1]}")
      t=$(seconds "http://127.0.0.1:${port[ab-$which-$round]}/v2/bench/app/blobs/${digests[0]}?ns=bench.example")
      cpu=$(echo "$(cpu_seconds "${pids[-1]}") - $cpu_before" | bc)
      cold_times[$which]+="$t "
      cold_cpu[$which]+="$cpu "
      kill -TERM "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'
      rm -rf "$work/ab-$which-$round"
      log "round $round $which: cold ${t}s, cache CPU ${cpu}s"
    done
  done
  median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
  best() { tr ' ' '\n' | grep . | sort -g | head -1; }
  bm=$(median <<<"${cold_times[baseline]}"); tm=$(median <<<"${cold_times[this]}")
  bb=$(best <<<"${cold_times[baseline]}"); tb=$(best <<<"${cold_times[this]}")
  bc_=$(median <<<"${cold_cpu[baseline]}"); tc=$(median <<<"${cold_cpu[this]}")
  ab_table="

Cold GET of a $mib MiB blob through a fresh cache, $rounds alternating rounds (baseline ${baseline_label:-$baseline} vs this build):

| build | median s | best s | all s | median ratio to direct | cache CPU s (median) | all CPU s |
|---|---|---|---|---|---|---|
| baseline | $bm | $bb | ${cold_times[baseline]}| $(ratio "$bm" "$direct") | $bc_ | ${cold_cpu[baseline]}|
| this | $tm | $tb | ${cold_times[this]}| $(ratio "$tm" "$direct") | $tc | ${cold_cpu[this]}|

this / baseline: wall median $(ratio "$tm" "$bm"), best $(ratio "$tb" "$bb"); cache CPU median $(ratio "$tc" "$bc_")."
fi
load=$(cut -d' ' -f1-3 /proc/loadavg)
table="| what | seconds | ratio to direct |
|---|---|---|
| direct GET from the upstream, $mib MiB | $direct | 1.00 |
| cold GET through the cache (miss) | $cold | $(ratio "$cold" "$direct") |
| warm GET through the cache (hit) | $warm | $(ratio "$warm" "$direct") |
| $clients concurrent cold GETs of another $mib MiB blob | $concurrent | $(ratio "$concurrent" "$direct") |

Upstream bytes sent for the $clients concurrent cold GETs: $sent ($(ratio "$sent" $((mib << 20))) × the blob).$ab_table"
echo "$table"
if (( write_results )); then
  {
    echo
    echo "## $(date -u '+%Y-%m-%d %H:%M') UTC — proxy-bench.sh"
    echo
    echo "Machine: nproc $(nproc), load average $load_start at the start, $load at the end. airlock $(git -C "$repo_root" rev-parse --short HEAD)."
    echo
    echo "$table"
  } >>"$here/RESULTS.md"
fi
