#!/usr/bin/env bash
# console-bench.sh — page weight and time to first render of the console's repositories page (/ui/) with
# 1,000 repositories, in Debian's Chromium (goals: < 200 KiB transferred, < 1 s).
#
# Usage: bench/console-bench.sh [--repositories N] [--runs N] [--results FILE] [--no-results]
#
# It starts `airlock registry` (AIRLOCK_BIN, e.g. the Native AOT binary from scripts/publish.sh; default: a Release
# build) on loopback with an empty data dir, pushes N repositories (default 1000: one small layer and a config
# uploaded once, mounted into every repository, and a manifest tagged 1 in each, all with curl), then runs
# bench/console-bench (Playwright for .NET driving /usr/bin/chromium): each of --runs (default 5) fresh browser
# contexts loads /ui/ and waits for the first 50 rows; it reports the bytes transferred (Chromium's own count of
# headers + encoded bodies, the API call included), the time from navigation start to the page's
# "airlock:repositories-rendered" mark (rows in the document) and to first-contentful-paint; the median is kept.
# The figures are appended to bench/RESULTS.md with the machine's load.
#
# Needs: dotnet, curl, sha256sum, chromium (Debian's), and the console built (the .NET build does it).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo_root=$(cd "$here/.." && pwd)
repositories=1000
runs=5
results="$here/RESULTS.md"
write_results=1
while (( $# )); do
  case $1 in
    --repositories) repositories=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --results) results=$2; shift 2 ;;
    --no-results) write_results=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "console-bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

log() { printf '[console-bench] %s\n' "$*" >&2; }
work=$(mktemp -d /tmp/airlock-console-bench.XXXXXX)
pid=""
cleanup() {
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

airlock_cli=${AIRLOCK_BIN:-"$repo_root/src/Airlock.Cli/bin/Release/net10.0/airlock"}
if [[ -z ${AIRLOCK_BIN:-} ]]; then
  log "building Airlock (Release)"
  dotnet build "$repo_root/src/Airlock.Cli" -c Release --nologo -v q >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
fi
log "building the browser driver (bench/console-bench)"
dotnet build "$here/console-bench" -c Release --nologo -v q -o "$work/driver" >"$work/driver-build.log" 2>&1 || { cat "$work/driver-build.log" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo '{}' >"$work/config.yaml"
AIRLOCK_CONFIG="$work/config.yaml" "$airlock_cli" registry --listen "127.0.0.1:$port" --data-dir "$work/data" --gc-interval off >"$work/registry.log" 2>&1 &
pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -fs "$base/v2/" >/dev/null && break; sleep 0.1; done

log "pushing $repositories repositories"
head -c 2048 /dev/urandom >"$work/layer"
layer=sha256:$(sha256sum "$work/layer" | cut -d' ' -f1)
printf '{"architecture":"amd64","os":"linux","created":"2026-01-01T00:00:00Z","rootfs":{"type":"layers","diff_ids":["%s"]}}' "$layer" >"$work/config"
config=sha256:$(sha256sum "$work/config" | cut -d' ' -f1)
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d}]}' \
  "$config" "$(stat -c %s "$work/config")" "$layer" "$(stat -c %s "$work/layer")" >"$work/manifest"
seed=bench/seed
for blob in layer config; do
  digest=sha256:$(sha256sum "$work/$blob" | cut -d' ' -f1)
  curl -fsS -X POST --data-binary @"$work/$blob" -H 'Content-Type: application/octet-stream' "$base/v2/$seed/blobs/uploads/?digest=$digest" -o /dev/null
done
push_one() {
  local name=$1
  for digest in "$layer" "$config"; do
    curl -fsS -X POST "$base/v2/$name/blobs/uploads/?mount=$digest&from=$seed" -o /dev/null
  done
  curl -fsS -X PUT --data-binary @"$work/manifest" -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' "$base/v2/$name/manifests/1" -o /dev/null
}
export -f push_one
export base layer config seed work
# Names spread over teams, as a site's would be: team-07/service-0123.
seq 2 "$repositories" | awk '{ printf "team-%02d/service-%04d\n", $1 % 40, $1 }' | xargs -P 4 -I{} bash -c 'push_one {}'
count=$(curl -fsS "$base/v2/_catalog?n=100000" | grep -o '"team-\|"bench/' | wc -l)
log "the registry holds $count repositories"

log "loading $base/ui/ $runs times in Chromium"
out=$("$work/driver/ConsoleBench" "$base/ui/" "$runs")
echo "$out"
median=$(grep '^median:' <<<"$out")

if (( write_results )); then
  binary=$([[ -n ${AIRLOCK_BIN:-} ]] && echo "AIRLOCK_BIN=$AIRLOCK_BIN" || echo "Release build (JIT)")
  {
    printf '\n## %s — console-bench.sh\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'Command: `%sbench/console-bench.sh --repositories %s --runs %s`; binary: %s; Chromium %s; %s cores, load %s.\n\n' \
      "$([[ -n ${AIRLOCK_BIN:-} ]] && echo "AIRLOCK_BIN=$AIRLOCK_BIN ")" "$repositories" "$runs" "$binary" \
      "$(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}')" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf '| what | median of %s runs | goal |\n|---|---|---|\n' "$runs"
    printf '| repositories page with %s repositories: bytes transferred (page, script, style, icon, first API page of 50) | %s | < 200 KiB |\n' \
      "$count" "$(sed -E 's/.*transferred ([0-9.]+ KiB).*/\1/' <<<"$median")"
    printf '| time to first render (navigation start → first rows in the document) | %s | < 1 s |\n' "$(sed -E 's/.*, rendered ([0-9]+ ms), fcp.*/\1/' <<<"$median")"
    printf '| first contentful paint | %s | — |\n\n' "$(sed -E 's/.*, fcp ([0-9]+ ms) .*/\1/' <<<"$median")"
    printf 'Runs:\n\n```\n%s\n```\n' "$(grep '^run ' <<<"$out")"
  } >>"$results"
  log "appended to $results"
fi
