#!/usr/bin/env bash
# registry-bench.sh — Airlock's registry against distribution (Debian's docker-registry 2.8), side by side,
# on loopback, in the same run, so the ratios compare like with like on the same (noisy) machine.
#
# Usage: bench/registry-bench.sh [--only airlock|distribution] [--parts LIST] [--blob-mib N] [--big-mib N]
#                                [--gets N] [--pushes N] [--duration SECONDS] [--results FILE] [--no-results]
#   --parts LIST  comma-separated subset of manifest,get,push,rss (default: all four); the rows of the
#                 parts not run say "skipped". --parts push is the quick one (no 4 GiB blob is made).
#   --pushes N    monolithic pushes per registry, the best one counts (default 3)
#
# What it measures (details and goals in bench/README.md):
#   1. manifest GET requests/s      wrk -t2 -c32 -d10s, Accept: OCI manifest, by tag  (goal Airlock >= 10x)
#   2. blob GET CPU seconds per GiB  utime+stime of the server PID (/proc/PID/stat, CLK_TCK) over --gets
#                                    sequential GETs of the 512 MiB blob; also MiB/s    (goal Airlock <= 1.2x)
#   3. monolithic push of 512 MiB    POST /blobs/uploads/ then PUT ?digest= with the body (curl -T), wall
#                                    time, best of 3 into fresh repositories             (goal Airlock <= 0.3x)
#   4. RSS growth serving a 4 GiB blob  VmRSS before vs peak VmRSS/VmHWM during one GET (goal < 64 MiB)
# Each registry gets its own temp data dir; both are seeded with the same content (random blobs: AES-CTR
# keyed from /dev/urandom, or /dev/urandom itself without openssl; a small OCI image). The figures are appended to bench/RESULTS.md as a dated section with
# the machine's nproc, kernel, load and tool versions.
#
# Needs: dotnet (for Airlock), docker-registry, wrk, curl, sha256sum, ss. Run as any user that can write
# /tmp; about 10 GiB of free disk (the blobs live once in the temp dir and once per registry).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo_root=$(cd "$here/.." && pwd)

only=""
blob_mib=512
big_mib=4096
gets=4
pushes=3
parts=manifest,get,push,rss
duration=10
results="$here/RESULTS.md"
write_results=1

while (( $# )); do
  case $1 in
    --only) only=$2; shift 2 ;;
    --blob-mib) blob_mib=$2; shift 2 ;;
    --big-mib) big_mib=$2; shift 2 ;;
    --gets) gets=$2; shift 2 ;;
    --pushes) pushes=$2; shift 2 ;;
    --parts) parts=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --results) results=$2; shift 2 ;;
    --no-results) write_results=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "registry-bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

case $only in
  "") kinds=(airlock distribution) ;;
  airlock|distribution) kinds=("$only") ;;
  *) echo "registry-bench: --only takes airlock or distribution" >&2; exit 2 ;;
esac

for part in ${parts//,/ }; do
  case $part in
    manifest|get|push|rss) ;;
    *) echo "registry-bench: --parts takes manifest, get, push and rss, not $part" >&2; exit 2 ;;
  esac
done
has_part() { [[ ,$parts, == *,$1,* ]]; }

for tool in wrk curl sha256sum ss docker-registry; do
  command -v "$tool" >/dev/null || { echo "registry-bench: $tool is not installed (test.sh installs it)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/airlock-bench-XXXXXX)
declare -A pid port result
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

stop_servers() {
  local kind p
  for kind in "${!pid[@]}"; do
    p=${pid[$kind]}
    kill -TERM "$p" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
}
trap 'stop_servers; rm -rf "$work"' EXIT

# shellcheck source=bench/lib.sh
source "$here/lib.sh"   # free_port, distribution_config

# ---- servers ---------------------------------------------------------------------------------

# AIRLOCK_BIN measures a given binary (e.g. the Native AOT one from scripts/publish.sh, as installed); default: a Release build.
airlock_cli=${AIRLOCK_BIN:-"$repo_root/src/Airlock.Cli/bin/Release/net10.0/airlock"}
start_airlock() {
  if [[ -z ${AIRLOCK_BIN:-} ]]; then
    log "building Airlock (Release)"
    dotnet build "$repo_root/src/Airlock.Cli" -c Release --nologo -v q >"$work/airlock-build.log" 2>&1 \
      || { cat "$work/airlock-build.log" >&2; exit 1; }
  fi
  # An unknown verb with --help still exits 0 (root help), so look for the verb's own flag.
  "$airlock_cli" registry --help 2>&1 | grep -q -- '--listen' \
    || { echo "registry-bench: this airlock build has no 'registry' verb yet; use --only distribution" >&2; exit 1; }
  mkdir -p "$work/airlock-data"
  echo '{}' >"$work/airlock-config.yaml"
  port[airlock]=$(free_port)
  AIRLOCK_CONFIG="$work/airlock-config.yaml" "$airlock_cli" registry --listen "127.0.0.1:${port[airlock]}" \
    --data-dir "$work/airlock-data" >"$work/airlock.log" 2>&1 &
  pid[airlock]=$!
}

start_distribution() {
  mkdir -p "$work/distribution-data"
  port[distribution]=$(free_port)
  distribution_config "$work/distribution.yml" "$work/distribution-data" "127.0.0.1:${port[distribution]}" warn
  docker-registry serve "$work/distribution.yml" >"$work/distribution.log" 2>&1 &
  pid[distribution]=$!
}

wait_ready() {
  local kind=$1 code
  for _ in $(seq 300); do
    kill -0 "${pid[$kind]}" 2>/dev/null || { echo "registry-bench: $kind exited:" >&2; cat "$work/$kind.log" >&2; exit 1; }
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${port[$kind]}/v2/" || true)
    [[ $code == 200 || $code == 401 ]] && return
    sleep 0.1
  done
  echo "registry-bench: $kind did not answer /v2/ within 30s" >&2; exit 1
}

# ---- registry API with curl ------------------------------------------------------------------

# push_blob BASE REPO FILE DIGEST — monolithic upload: POST opens the upload, one PUT carries the body.
# curl -T streams the file (--data-binary @file would read it into memory first).
push_blob() {
  local base=$1 repo=$2 file=$3 digest=$4 location sep
  location=$(curl -sS -f -X POST -D - -o /dev/null "$base/v2/$repo/blobs/uploads/" \
    | awk 'tolower($1) == "location:" { print $2 }' | tr -d '\r')
  [[ -n $location ]] || { echo "registry-bench: no upload Location from $base for $repo" >&2; return 1; }
  [[ $location == /* ]] && location="$base$location"
  sep='?'; [[ $location == *\?* ]] && sep='&'
  curl -sS -f -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' -H 'Expect:' \
    -T "$file" "$location${sep}digest=$digest"
}

push_manifest() {
  local base=$1 repo=$2 tag=$3 file=$4
  curl -sS -f -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "@$file" "$base/v2/$repo/manifests/$tag"
}

sha256_of() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

# ---- /proc measurements ----------------------------------------------------------------------

clk_tck=$(getconf CLK_TCK)
# utime+stime of all the server's threads, in clock ticks (fields 14 and 15; comm may hold spaces).
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
status_kib() { awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status"; }

# peak_rss_during PID COMMAND... — runs COMMAND, samples VmRSS every 50 ms, prints "baseline peak hwm" in KiB.
# VmHWM is reset first (clear_refs 5), so it is the peak of this command only where the kernel allows it.
peak_rss_during() {
  local server=$1; shift
  local baseline peak current job
  baseline=$(status_kib "$server" VmRSS)
  echo 5 >"/proc/$server/clear_refs" 2>/dev/null || true
  peak=$baseline
  "$@" &
  job=$!
  while kill -0 "$job" 2>/dev/null; do
    current=$(status_kib "$server" VmRSS)
    (( current > peak )) && peak=$current
    sleep 0.05
  done
  wait "$job"
  echo "$baseline $peak $(status_kib "$server" VmHWM)"
}

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }

# ---- content ---------------------------------------------------------------------------------

# random_blob FILE MIB — incompressible random bytes, hashed while written; prints the digest.
# AES-CTR over zeros with a key from /dev/urandom is random to any registry and an order of magnitude
# cheaper in CPU than reading GiBs from /dev/urandom (which took minutes on a loaded 2-core machine).
random_stream() {
  if command -v openssl >/dev/null; then
    { openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass "pass:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" </dev/zero 2>/dev/null || true; }
  else
    cat /dev/urandom
  fi
}
random_blob() {
  { random_stream || true; } | head -c "$(($2 * 1024 * 1024))" | tee "$1" | sha256sum | awk '{ print "sha256:" $1 }'
}

log "generating random blobs in $work"
blob_digest=$(random_blob "$work/blob.bin" "$blob_mib")
has_part rss && big_digest=$(random_blob "$work/big.bin" "$big_mib")
head -c 4096 /dev/urandom >"$work/layer.bin"
layer_digest=$(sha256_of "$work/layer.bin")
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}' "$layer_digest" >"$work/config.json"
config_digest=$(sha256_of "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":4096}]}' \
  "$config_digest" "$(stat -c %s "$work/config.json")" "$layer_digest" >"$work/manifest.json"

# ---- run -------------------------------------------------------------------------------------

for kind in "${kinds[@]}"; do "start_$kind"; done
for kind in "${kinds[@]}"; do wait_ready "$kind"; done

for kind in "${kinds[@]}"; do
  base="http://127.0.0.1:${port[$kind]}"
  server=${pid[$kind]}
  log "$kind: seeding the small image"
  push_blob "$base" bench/small "$work/layer.bin" "$layer_digest"
  push_blob "$base" bench/small "$work/config.json" "$config_digest"
  push_manifest "$base" bench/small v1 "$work/manifest.json"

  # The GETs need the blob in bench/push-1, so it is pushed even when the push is not measured.
  log "$kind: monolithic push of ${blob_mib} MiB (best of $pushes)"
  best=""
  all=""
  for attempt in $(seq "$pushes"); do
    sync
    start=$(now)
    push_blob "$base" "bench/push-$attempt" "$work/blob.bin" "$blob_digest"
    elapsed=$(calc "$(now) - $start" 3)
    all="$all $elapsed"
    [[ -z $best ]] || awk "BEGIN { exit !($elapsed < $best) }" && best=$elapsed
  done
  log "$kind: pushes took$all s"
  has_part push && result[$kind,push_s]=$best
  has_part push && result[$kind,push_all]=${all# }

  if has_part manifest; then
  log "$kind: manifest GET with wrk for ${duration}s"
  curl -sS -f -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$base/v2/bench/small/manifests/v1"
  wrk -t2 -c32 -d"${duration}s" --latency -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "$base/v2/bench/small/manifests/v1" >"$work/$kind-wrk.txt"
  result[$kind,rps]=$(awk '/^Requests\/sec:/ { print $2 }' "$work/$kind-wrk.txt")
  result[$kind,p99]=$(awk '$1 == "99%" { print $2 }' "$work/$kind-wrk.txt")
  non2xx=$(awk '/Non-2xx/ { print $NF }' "$work/$kind-wrk.txt")
  [[ -z $non2xx ]] || { log "$kind: $non2xx non-2xx manifest responses"; result[$kind,rps]="${result[$kind,rps]} ($non2xx non-2xx!)"; }
  fi

  if has_part get; then
  log "$kind: ${gets} sequential GETs of the ${blob_mib} MiB blob"
  ticks_before=$(cpu_ticks "$server")
  start=$(now)
  for _ in $(seq "$gets"); do
    curl -sS -f -o /dev/null "$base/v2/bench/push-1/blobs/$blob_digest"
  done
  elapsed=$(calc "$(now) - $start" 3)
  ticks=$(( $(cpu_ticks "$server") - ticks_before ))
  gib=$(calc "$gets * $blob_mib / 1024" 3)
  result[$kind,cpu_per_gib]=$(calc "$ticks / $clk_tck / $gib" 3)
  result[$kind,mib_s]=$(calc "$gets * $blob_mib / $elapsed" 0)
  fi

  if has_part rss; then
  log "$kind: pushing the ${big_mib} MiB blob"
  push_blob "$base" bench/big "$work/big.bin" "$big_digest"
  log "$kind: RSS while serving the ${big_mib} MiB blob"
  read -r baseline peak hwm < <(peak_rss_during "$server" curl -sS -f -o /dev/null "$base/v2/bench/big/blobs/$big_digest")
  result[$kind,rss_base]=$(calc "$baseline / 1024" 1)
  result[$kind,rss_growth]=$(calc "($peak - $baseline) / 1024" 1)
  result[$kind,hwm_growth]=$(calc "($hwm - $baseline) / 1024" 1)
  fi
done

# ---- report ----------------------------------------------------------------------------------

part_of() { case $1 in rps|p99) echo manifest ;; cpu_per_gib|mib_s) echo get ;; push_s|push_all) echo push ;; *) echo rss ;; esac; }
value() { if has_part "$(part_of "$2")"; then echo "${result[$1,$2]:-pending}"; else echo skipped; fi; }
ratio() {
  local a=${result[airlock,$1]:-} d=${result[distribution,$1]:-}
  if [[ $a =~ ^[0-9.]+$ && $d =~ ^[0-9.]+$ ]] && awk "BEGIN { exit !($d > 0) }"; then calc "$a / $d" 2; else echo "–"; fi
}

versions="distribution $(docker-registry --version 2>/dev/null | awk '{ print $NF }'), $(wrk --version 2>&1 | head -1 | awk '{ print $1, $2 }'), $(curl --version | head -1 | awk '{ print $1, $2 }')"
airlock_version="airlock: pending"
[[ -x $airlock_cli && " ${kinds[*]} " == *" airlock "* ]] && airlock_version="airlock $(git -C "$repo_root" describe --always --dirty 2>/dev/null || echo unknown)"

section=$(cat <<EOF

## $(date -u '+%Y-%m-%d %H:%M UTC') — registry-bench.sh ${only:+(--only $only)}

Machine: nproc $(nproc), kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end, $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo).
Versions: $airlock_version; $versions.
Parts: $parts. Blobs: ${blob_mib} MiB (push, ${gets} GETs), ${big_mib} MiB (RSS); wrk -t2 -c32 -d${duration}s on the same cores as the servers.

| benchmark | airlock | distribution | airlock / distribution | goal |
|---|---|---|---|---|
| manifest GET, requests/s | $(value airlock rps) | $(value distribution rps) | $(ratio rps) | ≥ 10× |
| manifest GET, p99 latency | $(value airlock p99) | $(value distribution p99) | | |
| blob GET, server CPU s per GiB | $(value airlock cpu_per_gib) | $(value distribution cpu_per_gib) | $(ratio cpu_per_gib) | ≤ 1.2× |
| blob GET, MiB/s (curl, sequential) | $(value airlock mib_s) | $(value distribution mib_s) | $(ratio mib_s) | |
| monolithic push ${blob_mib} MiB, s (best of ${pushes}) | $(value airlock push_s) | $(value distribution push_s) | $(ratio push_s) | ≤ 0.3× |
| monolithic push ${blob_mib} MiB, every run, s | $(value airlock push_all) | $(value distribution push_all) | | |
| RSS before ${big_mib} MiB GET, MiB | $(value airlock rss_base) | $(value distribution rss_base) | | |
| RSS growth serving ${big_mib} MiB (peak VmRSS), MiB | $(value airlock rss_growth) | $(value distribution rss_growth) | | < 64 MiB |
| RSS growth serving ${big_mib} MiB (VmHWM), MiB | $(value airlock hwm_growth) | $(value distribution hwm_growth) | | < 64 MiB |
EOF
)

echo "$section"
if (( write_results )); then
  [[ -f $results ]] || printf '# Registry benchmark results\n\nAppended by bench/registry-bench.sh; see bench/README.md for what each row means.\n' >"$results"
  echo "$section" >>"$results"
  log "appended to $results"
fi
