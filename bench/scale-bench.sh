#!/usr/bin/env bash
# scale-bench.sh — the registry at scale (issue 15): what a catalog page, a tags page, a collection, a restart and
# the memory of a registry cost as the store grows, for Airlock and for distribution 2.8 (Debian's docker-registry),
# measured in the same run on the same machine, with the same content.
#
# Usage: bench/scale-bench.sh [--sizes 1000,10000,100000] [--distribution-max 10000] [--tags 10000]
#                             [--threads 8] [--rounds 3] [--results FILE] [--no-results] [--plot FILE]
#   --sizes LIST         repository counts measured, in growing order; each registry is filled up to the next one
#                        (default 1000,10000,100000)
#   --distribution-max N distribution is measured up to N repositories (its fill is ~4x slower; default 10000)
#   --tags N             tags of the one many-tag repository, bench/tags (default 10000)
#   --rounds R           gc dry-runs and restarts per registry and size, alternating Airlock and distribution while
#                        both serve a store of that size; the median is reported (default 3; one round at the sizes
#                        only Airlock is measured at)
#   --plot FILE          the PNG with the growth (default bench/scale-bench.png; needs gnuplot, Debian's gnuplot-nox)
#
# What it measures, per registry and size N (scale-tool.py does the HTTP, on keep-alive connections):
#   fill             repositories/s creating N repositories, 8 clients: each one a unique config blob (POST),
#                    the shared layer (mount), an OCI manifest PUT as v1 and latest
#   first page       GET /v2/_catalog?n=100, median of 7 (ms)
#   late page        GET /v2/_catalog?n=100&last=<the 150th name from the end>, median of 7 (ms)
#   whole catalog    every page of GET /v2/_catalog?n=1000, following Link (s)
#   tags             every page of GET /v2/bench/tags/tags/list?n=100 of a 10,000-tag repository (s)
#   gc dry-run       airlock registry gc --dry-run beside the running registry / docker-registry garbage-collect
#                    --dry-run (s, median of R rounds, the two registries alternating)
#   RSS              VmRSS of the serving process after the listings above (MiB)
#   restart          SIGTERM, then from the new process's start to its first 200 on GET /v2/_catalog?n=100 (s, median
#                    of R, alternating); for Airlock also after SIGKILL (the index is then rebuilt from the tree)
#
# AIRLOCK_BIN measures a given binary; default: the Native AOT one scripts/publish.sh builds (built when missing).
# Needs docker-registry, curl, python3, ss; gnuplot for the plot. About 3 GiB free under /tmp at 100,000.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo_root=$(cd "$here/.." && pwd)
sizes=1000,10000,100000
distribution_max=10000
tag_count=10000
threads=8
rounds=3
results="$here/RESULTS.md"
write_results=1
plot="$here/scale-bench.png"
while (( $# )); do
  case $1 in
    --sizes) sizes=$2; shift 2 ;;
    --distribution-max) distribution_max=$2; shift 2 ;;
    --tags) tag_count=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --results) results=$2; shift 2 ;;
    --no-results) write_results=0; shift ;;
    --plot) plot=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "scale-bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
IFS=, read -r -a size_list <<<"$sizes"
for tool in docker-registry curl python3 ss; do
  command -v "$tool" >/dev/null || { echo "scale-bench: $tool is not installed" >&2; exit 1; }
done

tool="$here/scale-tool.py"
work=$(mktemp -d /tmp/airlock-scale-XXXXXX)
declare -A server_pid port url
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
stop_server() {  # KIND [SIGNAL]
  local kind=$1 signal=${2:-TERM} pid=${server_pid[$1]:-}
  [[ -n $pid ]] || return 0
  kill "-$signal" "$pid" 2>/dev/null || true
  for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  server_pid[$kind]=""
}
trap 'stop_server airlock; stop_server distribution; rm -rf "$work"' EXIT

# shellcheck source=bench/lib.sh
source "$here/lib.sh"   # free_port, distribution_config

airlock=${AIRLOCK_BIN:-"$repo_root/artifacts/publish/linux-x64/airlock"}
if [[ -z ${AIRLOCK_BIN:-} && ! -x $airlock ]]; then
  log "building the Native AOT binary (scripts/publish.sh)"
  "$repo_root/scripts/publish.sh" >&2
fi
echo '{}' >"$work/airlock-config.yaml"

start_server() {  # KIND: starts it on $work/KIND-data, sets server_pid[KIND]
  local kind=$1
  if [[ $kind == airlock ]]; then
    AIRLOCK_CONFIG="$work/airlock-config.yaml" "$airlock" registry --listen "127.0.0.1:${port[airlock]}" --data-dir "$work/airlock-data" \
      --gc-interval off >>"$work/airlock.log" 2>&1 &
  else
    docker-registry serve "$work/distribution.yml" >>"$work/distribution.log" 2>&1 &
  fi
  server_pid[$kind]=$!
}

gc_dry_run() {
  if [[ $1 == airlock ]]; then
    AIRLOCK_CONFIG="$work/airlock-config.yaml" "$airlock" registry gc --dry-run --data-dir "$work/airlock-data" >/dev/null 2>"$work/gc.log"
  else
    docker-registry garbage-collect --dry-run "$work/distribution.yml" >/dev/null 2>"$work/gc.log"
  fi
}

seconds() { local t0=$1; python3 -c "import time,sys; print(f'{time.time() - float(sys.argv[1]):.3f}')" "$t0"; }
median() { python3 -c "import statistics, sys; print(f'{statistics.median(float(a) for a in sys.argv[1:]):.3f}')" "$@"; }

declare -A row filled
for kind in airlock distribution; do
  port[$kind]=$(free_port)
  url[$kind]="http://127.0.0.1:${port[$kind]}"
done
mkdir -p "$work/airlock-data" "$work/distribution-data"
distribution_config "$work/distribution.yml" "$work/distribution-data" "127.0.0.1:${port[distribution]}" error
for kind in airlock distribution; do
  start_server "$kind"
  python3 "$tool" first "${url[$kind]}" /v2/ "$(date +%s.%N)" >/dev/null
  log "$kind: a repository with $tag_count tags"
  row[$kind,tagfill]=$(python3 "$tool" tags "${url[$kind]}" bench/tags "$tag_count")
  filled[$kind]=0
done

for n in "${size_list[@]}"; do
  kinds=(airlock)
  (( n <= distribution_max )) && kinds+=(distribution)
  if (( n > distribution_max )) && [[ -n ${server_pid[distribution]:-} ]]; then
    stop_server distribution
    rm -rf "${work:?}/distribution-data"
  fi
  for kind in "${kinds[@]}"; do
    log "$kind: filling to $n repositories"
    row[$kind,$n,fill]=$(python3 "$tool" fill "${url[$kind]}" "${filled[$kind]}" "$n" "$threads")
    filled[$kind]=$n
    late=$(python3 "$tool" late-last "$n" 150)
    row[$kind,$n,first]=$(python3 "$tool" page "${url[$kind]}" "/v2/_catalog?n=100")
    row[$kind,$n,late]=$(python3 "$tool" page "${url[$kind]}" "/v2/_catalog?n=100&last=$late")
    read -r row[$kind,$n,whole] pages names < <(python3 "$tool" walk "${url[$kind]}" "/v2/_catalog?n=1000")
    (( names == n + 2 )) || { echo "scale-bench: $kind listed $names repositories, not $((n + 2))" >&2; exit 1; }
    read -r row[$kind,$n,tags] pages names < <(python3 "$tool" walk "${url[$kind]}" "/v2/bench/tags/tags/list?n=100")
    (( names == tag_count )) || { echo "scale-bench: $kind listed $names tags, not $tag_count" >&2; exit 1; }
    row[$kind,$n,rss]=$(awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/${server_pid[$kind]}/status")
  done

  # Rounds alternate the registries (and which goes first), so both see the same load.
  declare -A gcs=() restarts=() rebuilds=()
  rounds_here=$rounds
  (( ${#kinds[@]} == 1 )) && rounds_here=1
  for round in $(seq "$rounds_here"); do
    order=("${kinds[@]}")
    if (( round % 2 == 0 )); then
      mapfile -t order < <(printf '%s\n' "${kinds[@]}" | tac)
    fi
    for kind in "${order[@]}"; do
      t0=$(date +%s.%N); gc_dry_run "$kind" || { cat "$work/gc.log" >&2; exit 1; }
      gcs[$kind]+=" $(seconds "$t0")"
      stop_server "$kind" TERM
      t0=$(date +%s.%N); start_server "$kind"
      restarts[$kind]+=" $(python3 "$tool" first "${url[$kind]}" "/v2/_catalog?n=100" "$t0")"
      if [[ $kind == airlock ]]; then
        stop_server "$kind" KILL
        t0=$(date +%s.%N); start_server "$kind"
        rebuilds[$kind]+=" $(python3 "$tool" first "${url[$kind]}" "/v2/_catalog?n=100" "$t0")"
      fi
    done
  done
  for kind in "${kinds[@]}"; do
    # shellcheck disable=SC2086 # the rounds' figures, one word each
    row[$kind,$n,gc]=$(median ${gcs[$kind]})
    # shellcheck disable=SC2086
    row[$kind,$n,restart]=$(median ${restarts[$kind]})
    if [[ -n ${rebuilds[$kind]:-} ]]; then
      # shellcheck disable=SC2086
      row[$kind,$n,rebuild]=$(median ${rebuilds[$kind]})
    fi
    log "$kind $n: fill ${row[$kind,$n,fill]}/s, first ${row[$kind,$n,first]} ms, late ${row[$kind,$n,late]} ms, whole ${row[$kind,$n,whole]} s, tags ${row[$kind,$n,tags]} s, gc${gcs[$kind]} s, RSS ${row[$kind,$n,rss]} MiB, restart${restarts[$kind]} s${rebuilds[$kind]:+, after SIGKILL${rebuilds[$kind]} s}"
  done
  unset gcs restarts rebuilds
done
stop_server airlock
stop_server distribution

# ---- report ------------------------------------------------------------------------------------
cell() { echo "${row[$1]:-—}"; }
ratio() { python3 -c "import sys; a, d = sys.argv[1:]; print(f'{float(a) / float(d):.2f}×' if d not in ('', '—') and a not in ('', '—') and float(d) > 0 else '—')" "$1" "$2"; }
table() {
  echo "| N repositories | | fill, repos/s | first page n=100, ms | late page n=100, ms | whole catalog n=1000, s | $tag_count tags n=100, s | gc --dry-run, s | RSS, MiB | restart to first page, s |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for n in "${size_list[@]}"; do
    for kind in airlock distribution; do
      [[ -n ${row[$kind,$n,fill]:-} ]] || continue
      restart=$(cell "$kind,$n,restart")
      [[ -n ${row[$kind,$n,rebuild]:-} ]] && restart="$restart (after SIGKILL: ${row[$kind,$n,rebuild]})"
      echo "| $n | $kind | $(cell "$kind,$n,fill") | $(cell "$kind,$n,first") | $(cell "$kind,$n,late") | $(cell "$kind,$n,whole") | $(cell "$kind,$n,tags") | $(cell "$kind,$n,gc") | $(cell "$kind,$n,rss") | $restart |"
    done
    if [[ -n ${row[distribution,$n,fill]:-} ]]; then
      echo "| $n | Airlock ÷ distribution | $(ratio "${row[airlock,$n,fill]}" "${row[distribution,$n,fill]}") | $(ratio "${row[airlock,$n,first]}" "${row[distribution,$n,first]}") | $(ratio "${row[airlock,$n,late]}" "${row[distribution,$n,late]}") | $(ratio "${row[airlock,$n,whole]}" "${row[distribution,$n,whole]}") | $(ratio "${row[airlock,$n,tags]}" "${row[distribution,$n,tags]}") | $(ratio "${row[airlock,$n,gc]}" "${row[distribution,$n,gc]}") | $(ratio "${row[airlock,$n,rss]}" "${row[distribution,$n,rss]}") | $(ratio "${row[airlock,$n,restart]}" "${row[distribution,$n,restart]}") |"
    fi
  done
}
report=$(table)
echo "$report"

if command -v gnuplot >/dev/null; then
  for kind in airlock distribution; do
    for n in "${size_list[@]}"; do
      [[ -n ${row[$kind,$n,fill]:-} ]] && echo "$n ${row[$kind,$n,first]} ${row[$kind,$n,late]} ${row[$kind,$n,whole]} ${row[$kind,$n,tags]} ${row[$kind,$n,gc]} ${row[$kind,$n,rss]} ${row[$kind,$n,restart]}"
    done >"$work/$kind.dat"
  done
  gnuplot <<EOF
set terminal pngcairo size 1400,900 noenhanced
set output "$plot"
set multiplot layout 2,3 title "Registry at scale: Airlock (Native AOT) vs distribution 2.8, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
set logscale x
set logscale y
set xlabel "repositories"
set key top left
set grid
set title "catalog page of 100 (ms)"
plot "$work/airlock.dat" using 1:2 with linespoints title "Airlock first", "$work/airlock.dat" using 1:3 with linespoints title "Airlock late", \
     "$work/distribution.dat" using 1:2 with linespoints title "distribution first", "$work/distribution.dat" using 1:3 with linespoints title "distribution late"
set title "whole catalog, pages of 1000 (s)"
plot "$work/airlock.dat" using 1:4 with linespoints title "Airlock", "$work/distribution.dat" using 1:4 with linespoints title "distribution"
set title "$tag_count tags, pages of 100 (s)"
plot "$work/airlock.dat" using 1:5 with linespoints title "Airlock", "$work/distribution.dat" using 1:5 with linespoints title "distribution"
set title "gc --dry-run (s)"
plot "$work/airlock.dat" using 1:6 with linespoints title "Airlock", "$work/distribution.dat" using 1:6 with linespoints title "distribution"
set title "RSS serving (MiB)"
plot "$work/airlock.dat" using 1:7 with linespoints title "Airlock", "$work/distribution.dat" using 1:7 with linespoints title "distribution"
set title "restart to first catalog page (s)"
plot "$work/airlock.dat" using 1:8 with linespoints title "Airlock", "$work/distribution.dat" using 1:8 with linespoints title "distribution"
unset multiplot
EOF
  log "plot: $plot"
else
  log "gnuplot is not installed (apt-get install gnuplot-nox): no plot"
fi

if (( write_results )); then
  {
    echo
    echo "## $(date -u '+%Y-%m-%d %H:%M UTC') — scale-bench.sh ${*:-}"
    echo
    echo "\`bench/scale-bench.sh --sizes $sizes --distribution-max $distribution_max --tags $tag_count --rounds $rounds\` on $(nproc) cores, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
    echo "Airlock $(git -C "$repo_root" rev-parse --short HEAD 2>/dev/null || echo unknown) ($airlock); distribution $(docker-registry --version 2>/dev/null | awk '{ print $NF }'). Tags fill: Airlock ${row[airlock,tagfill]:-—}/s, distribution ${row[distribution,tagfill]:-—}/s. Plot: \`bench/$(basename "$plot")\`."
    echo
    echo "$report"
  } >>"$results"
  log "appended to $results"
fi
