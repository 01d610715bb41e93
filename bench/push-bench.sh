#!/usr/bin/env bash
# push-bench.sh — a monolithic push into Airlock's registry against what the same disk needs to write and
# fsync the same bytes (dd conv=fsync), alternated in the same run, so the ratio is push time over disk time.
#
# Usage: bench/push-bench.sh [--mib N] [--rounds N] [--streams N] [--results FILE] [--no-results]
#   --mib N       blob size (default 512)
#   --rounds N    dd/push pairs (default 7); the order alternates each round (dd first, then push first)
#   --streams N   N pushes at once (into N repositories) against N dd at once (into N files); default 1.
#                 Several pushes at once is what `airlock images load` and parallel CI jobs do.
#
# Each round: dd if=BLOB of=<registry data dir>/dd-N bs=1M conv=fsync, then POST /v2/bench/push-N/blobs/uploads/
# + PUT ?digest= with the body (curl -T, streamed) — or the other way round. Every timed step starts from the
# same memory state (untimed: a scratch file of the blob's size written through the page cache and deleted,
# `sync`, drop caches as root, the blob read back into the page cache). On this VM a write into the page cache
# runs 3-5x faster into memory freed moments ago than into memory left free for a while (which the host took
# back): without the scratch file, dd was fast after a dd and slow after a push, which writes around the page
# cache. With it, dd always gets its fast case. Between rounds the dd file and the pushed blob are removed, so
# every push writes a new blob.
# Printed and appended to bench/RESULTS.md: every round's two times and ratio, best and median of each, and the
# ratios best/best and median/median, with nproc, kernel and load average. Goal: push ≤ 1.25× dd.
# Also the CPU each push cost (the registry's utime+stime from /proc, the clients' from bash's `time`) and the
# SHA-256 of the blob alone (openssl dgst, best of 3): a push must hash every byte and the client, the
# loopback and the receive share the same cores, so no push on this machine can beat
# max(hash alone, (server + client CPU) / cores) — the floor printed beside the goal.
#
# AIRLOCK_BIN=/path/to/airlock measures that binary (e.g. the Native AOT one from scripts/publish.sh);
# default: a Release build of src/Airlock.Cli.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo_root=$(cd "$here/.." && pwd)
mib=512
rounds=7
streams=1
results="$here/RESULTS.md"
write_results=1

while (( $# )); do
  case $1 in
    --mib) mib=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --streams) streams=$2; shift 2 ;;
    --results) results=$2; shift 2 ;;
    --no-results) write_results=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "push-bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

for tool in curl sha256sum ss dd openssl; do
  command -v "$tool" >/dev/null || { echo "push-bench: $tool is not installed" >&2; exit 1; }
done

work=$(mktemp -d /tmp/airlock-push-bench-XXXXXX)
server=""
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
stop_server() {
  [[ -n $server ]] || return 0
  kill -TERM "$server" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$server" 2>/dev/null || true
}
trap 'stop_server; rm -rf "$work"' EXIT

# shellcheck source=bench/lib.sh
source "$here/lib.sh"   # free_port

airlock_cli=${AIRLOCK_BIN:-"$repo_root/src/Airlock.Cli/bin/Release/net10.0/airlock"}
if [[ -z ${AIRLOCK_BIN:-} ]]; then
  log "building Airlock (Release)"
  dotnet build "$repo_root/src/Airlock.Cli" -c Release --nologo -v q >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
fi

log "generating a ${mib} MiB random blob in $work"
blob="$work/blob.bin"
if command -v openssl >/dev/null; then
  { openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass "pass:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" </dev/zero 2>/dev/null || true; } \
    | head -c "$((mib * 1024 * 1024))" >"$blob"
else
  head -c "$((mib * 1024 * 1024))" /dev/urandom >"$blob"
fi
digest="sha256:$(sha256sum "$blob" | cut -d' ' -f1)"
cat "$blob" >/dev/null

data="$work/data"
mkdir -p "$data"
echo '{}' >"$work/config.yaml"
port=$(free_port)
AIRLOCK_CONFIG="$work/config.yaml" "$airlock_cli" registry --listen "127.0.0.1:$port" --data-dir "$data" --gc-interval off >"$work/airlock.log" 2>&1 &
server=$!
base="http://127.0.0.1:$port"
for _ in $(seq 300); do
  kill -0 "$server" 2>/dev/null || { echo "push-bench: airlock exited:" >&2; cat "$work/airlock.log" >&2; exit 1; }
  [[ $(curl -s -o /dev/null -w '%{http_code}' "$base/v2/" || true) == 200 ]] && break
  sleep 0.1
done

# settle — the same memory state before every timed step: nothing dirty, no page cache but the blob's, and
# memory freed just before (see the header).
settle() {
  local i
  for i in $(seq "$streams"); do dd if="$blob" of="$data/scratch-$i" bs=1M status=none; done
  rm -f "$data"/scratch-*
  sync
  if [[ -w /proc/sys/vm/drop_caches ]]; then echo 3 >/proc/sys/vm/drop_caches; fi
  cat "$blob" >/dev/null
}
[[ -w /proc/sys/vm/drop_caches ]] || log "not root: caches are not dropped between steps (sync only), so the order of the steps shows"

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.${2:-3}f\", $1 }"; }

push_one() {
  local repo=$1 location
  location=$(curl -sS -f -X POST -D - -o /dev/null "$base/v2/$repo/blobs/uploads/" | awk 'tolower($1) == "location:" { print $2 }' | tr -d '\r')
  # The client's CPU (user + system) goes to a file per push; bash's `time` counts the curl it waits for.
  local TIMEFORMAT='%U %S'
  { time curl -sS -f -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' -H 'Expect:' -T "$blob" "$base$location?digest=$digest" 2>&3; } 3>&2 2>"$work/client-cpu-${repo//\//-}"
}

# The registry's CPU seconds so far (utime + stime).
server_cpu() { awk -v tck="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / tck }' "/proc/$server/stat"; }

# time_dd ROUND / time_push ROUND — wall time of --streams copies at once, until the last one ends.
time_dd() {
  local start jobs=() i
  start=$(now)
  for i in $(seq "$streams"); do dd if="$blob" of="$data/dd-$1-$i" bs=1M conv=fsync status=none & jobs+=($!); done
  wait "${jobs[@]}"
  calc "$(now) - $start"
}

# time_push also leaves the round's CPU in server_used and client_used (seconds, all streams together).
server_used=0; client_used=0
time_push() {
  local start jobs=() i cpu0 took
  rm -f "$work"/client-cpu-*
  cpu0=$(server_cpu)
  start=$(now)
  for i in $(seq "$streams"); do push_one "bench/push-$1-$i" & jobs+=($!); done
  wait "${jobs[@]}"
  took=$(calc "$(now) - $start")
  server_used=$(calc "$(server_cpu) - $cpu0")
  client_used=$(cat "$work"/client-cpu-* | awk '{ s += $1 + $2 } END { printf "%.3f", s }')
  echo "$took"
}

stored="$data/registry/blobs/sha256/${digest:7:2}/${digest:7}"
dd_times=(); push_times=(); server_cpus=(); client_cpus=(); rows=()
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$rounds"); do
  if (( round % 2 )); then
    settle; d=$(time_dd "$round"); settle; time_push "$round" >"$work/took"; p=$(<"$work/took"); order="dd, push"
  else
    settle; time_push "$round" >"$work/took"; p=$(<"$work/took"); settle; d=$(time_dd "$round"); order="push, dd"
  fi
  [[ -f $stored ]] || { echo "push-bench: the push did not store $digest" >&2; exit 1; }
  rm -f "$data"/dd-* "$stored"
  dd_times+=("$d"); push_times+=("$p"); server_cpus+=("$server_used"); client_cpus+=("$client_used")
  rows+=("| $round | $order | $d | $p | $(calc "$p / $d" 2) | $server_used | $client_used | $(cut -d' ' -f1 /proc/loadavg) |")
  log "round $round ($order): dd $d s, push $p s, ratio $(calc "$p / $d" 2); CPU server $server_used s, client $client_used s"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

best() { printf '%s\n' "$@" | sort -g | head -1; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
dd_best=$(best "${dd_times[@]}"); push_best=$(best "${push_times[@]}")
dd_median=$(median "${dd_times[@]}"); push_median=$(median "${push_times[@]}")
summary="best push / best dd = $push_best / $dd_best s = $(calc "$push_best / $dd_best" 2)×; median $push_median / $dd_median s = $(calc "$push_median / $dd_median" 2)×"
echo "push-bench: $summary (goal ≤ 1.25×)"

# The floor this machine puts under any push: the hash of every byte on one core, and all the CPU a push costs
# (server and client) spread over every core.
hash_alone=$(for _ in 1 2 3; do start=$(now); openssl dgst -sha256 "$blob" >/dev/null; calc "$(now) - $start"; echo; done | sort -g | head -1)
server_median=$(median "${server_cpus[@]}"); client_median=$(median "${client_cpus[@]}")
spread=$(calc "($server_median + $client_median) / $(nproc)")
hash_floor=$(calc "($streams * $hash_alone / $(nproc) > $hash_alone ? $streams * $hash_alone / $(nproc) : $hash_alone)")
floor=$(calc "($spread > $hash_floor ? $spread : $hash_floor)")
bound="CPU per push round (median): server $server_median s + client $client_median s on $(nproc) cores = $spread s; SHA-256 of the blob alone (openssl dgst, best of 3) $hash_alone s; so no push here can take less than $floor s = $(calc "$floor / $dd_best" 2)× the best dd"
echo "push-bench: $bound"

section=$(cat <<EOF

## $(date -u '+%Y-%m-%d %H:%M') UTC — push-bench.sh

\`$(basename "$0") --mib $mib --rounds $rounds --streams $streams\`, airlock: \`${AIRLOCK_BIN:-Release build}\` ($(git -C "$repo_root" describe --always --dirty 2>/dev/null || echo unknown)).
Machine: $(nproc) cores, $(uname -r), load average $load_before before, $load_after after; data on $(df --output=source,fstype "$data" | tail -1 | tr -s ' ').

| round | order | ${streams} × dd conv=fsync, s | ${streams} × push, s | push / dd | server CPU, s | client CPU, s | load |
|---|---|---|---|---|---|---|---|
$(printf '%s\n' "${rows[@]}")

$summary (goal ≤ 1.25×).
$bound.
EOF
)
if (( write_results )); then
  printf '%s\n' "$section" >>"$results"
  log "appended to $results"
else
  printf '%s\n' "$section"
fi
