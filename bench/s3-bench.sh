#!/usr/bin/env bash
# s3-bench.sh — the scale-out store (issue 16) against the filesystem store and distribution 2.8 on the same radosgw:
# blob GETs through S3 (proxied and with --s3-redirect), manifest GETs with etcd metadata, two replicas against one,
# and a 512 MiB push into S3 against radosgw's own PUT of the same bytes, over http:// and over https:// (radosgw's
# beast frontend serves both, the TLS one with a self-signed certificate). Everything runs in the same run, on the same
# machine, against one single-node Ceph 16 radosgw and one etcd that this script starts (by PID, in a temp folder,
# stopped on exit), so the ratios are what count; the absolute figures move with the machine's load (recorded).
#
# Usage: bench/s3-bench.sh [--rounds N] [--duration S] [--connections N] [--get-mib N] [--push-mib N]
#                          [--chunk-mib N] [--parts LIST] [--results FILE] [--no-results]
#   --rounds N       rounds of every measurement, the order of the contenders rotating each round (default 3)
#   --duration S     seconds of each wrk run (default 10)
#   --connections N  wrk connections in total (default 32)
#   --get-mib N      the blob the GET rows read (default 256)
#   --push-mib N     the pushed blob (default 512)
#   --chunk-mib N    PATCH size of the chunked push (default 10, distribution's own S3 chunk size)
#   --parts LIST     any of get,manifest,replicas,push (default all)
#
# The contenders (all on 127.0.0.1, each with its own bucket or data directory):
#   airlock-fs        airlock registry --data-dir DIR (the embedded default store)
#   airlock-s3        airlock registry --storage s3://bench-airlock?… --metadata etcd://… (blobs proxied)
#   airlock-s3-2      a second replica of airlock-s3 (same bucket, same etcd), for the replica rows
#   airlock-redirect  a third replica, with --s3-redirect (blob GETs answered 307 to a presigned URL)
#   airlock-s3-tls    a fourth replica whose --storage endpoint is radosgw's https:// one (trusting its certificate
#                     through AWS_CA_BUNDLE, which the AWS SDK reads), for the push rows over TLS
#   dist-s3           docker-registry serve, s3 driver (regionendpoint = the same radosgw, path style), redirect off
#   dist-redirect     the same with distribution's default redirect on (same bucket)
#
# Rows:
#   blob GET         --rounds × one `curl -L -o /dev/null` of the --get-mib blob per contender (rotating order): MiB/s,
#                    and CPU seconds per GiB of the registry process (utime+stime of /proc/PID/stat) and of radosgw
#   manifest GET     `wrk -t2 -cN -dS` on /v2/bench/small/manifests/v1 (an OCI manifest by tag), per contender and
#                    round: requests/s (median of the rounds; goal: airlock-s3 ≥ 5× dist-s3)
#   replicas         airlock-s3 pinned with `taskset` to core 0 and airlock-s3-2 to core 1; two wrk (-t1, N/2
#                    connections each) at once, both on replica 1 (one replica) or one on each (two replicas):
#                    the sum of requests/s (goal ≥ 1.8×). wrk, etcd and radosgw are not pinned: on a 2-core
#                    machine they share both cores with the replicas; the CPU seconds each used are printed.
#   push             --push-mib bytes: `curl -T` PUT straight into radosgw (aws-sigv4, one request) against
#                    airlock-s3's monolithic POST + PUT and chunked POST + PATCH × (--push-mib / --chunk-mib) + PUT,
#                    wall time, rotating order (goal: ≤ 1.5× radosgw). The blob's first bytes change before every
#                    push (untimed), so every push stores new content. CPU seconds of the registry and of radosgw
#                    during each push are shown too. The *-tls rows are the same three over https:// (curl's PUT too,
#                    the bytes unsigned as before; the AWS SDK signs payloads over http:// only, so airlock-s3 hashes
#                    each part for its signature and radosgw again to check it, where airlock-s3-tls does neither).
#
# AIRLOCK_BIN measures a given binary; default: the Native AOT one scripts/publish.sh builds (built when missing).
# Needs (Debian): ceph-mon ceph-osd radosgw (ceph-common: ceph, monmaptool, radosgw-admin) etcd-server
# docker-registry wrk curl (≥ 7.75, --aws-sigv4) openssl util-linux (taskset) iproute2 (ss); about 3 GiB free in
# /tmp and about as much memory (the OSD keeps objects in memory: memstore).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo_root=$(cd "$here/.." && pwd)
rounds=3
duration=10
connections=32
get_mib=256
push_mib=512
chunk_mib=10
parts=get,manifest,replicas,push
results="$here/RESULTS.md"
write_results=1
while (( $# )); do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --get-mib) get_mib=$2; shift 2 ;;
    --push-mib) push_mib=$2; shift 2 ;;
    --chunk-mib) chunk_mib=$2; shift 2 ;;
    --parts) parts=$2; shift 2 ;;
    --results) results=$2; shift 2 ;;
    --no-results) write_results=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "s3-bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
part() { [[ ,$parts, == *,$1,* ]]; }

missing=()
for tool in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph etcd docker-registry wrk curl openssl taskset ss sha256sum; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if (( ${#missing[@]} )); then
  echo "s3-bench: missing ${missing[*]}; as root: apt-get install ceph-mon ceph-osd radosgw etcd-server docker-registry wrk curl openssl util-linux iproute2" >&2
  exit 1
fi
if (( $(nproc) < 2 )); then
  echo "s3-bench: the replica rows pin two replicas to two cores; this machine has $(nproc)" >&2
  exit 1
fi

work=$(mktemp -d /tmp/airlock-s3-bench-XXXXXX)
pids=()
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
cleanup() {
  local pid i
  for (( i = ${#pids[@]} - 1; i >= 0; i-- )); do
    pid=${pids[i]}
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=bench/lib.sh
source "$here/lib.sh"   # free_port

airlock=${AIRLOCK_BIN:-"$repo_root/artifacts/publish/linux-x64/airlock"}
if [[ -z ${AIRLOCK_BIN:-} && ! -x $airlock ]]; then
  log "building the Native AOT binary (scripts/publish.sh)"
  "$repo_root/scripts/publish.sh" >&2
fi

calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
now() { date +%s.%N; }
# CPU seconds (user + system, every thread) a process used so far.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
wait_http() {  # URL PID WHAT: until URL answers (any status but 000), or fail when PID died
  for _ in $(seq 600); do
    kill -0 "$2" 2>/dev/null || { echo "s3-bench: $3 exited; its log:" >&2; tail -30 "$work/$3.log" >&2; exit 1; }
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$1" || true) != 000 ]] && return 0
    sleep 0.1
  done
  echo "s3-bench: $3 did not answer at $1 in 60 s" >&2; exit 1
}

# ---- Ceph (one monitor, one OSD on memstore, radosgw) and etcd, as tests/Shared/CephEtcd.cs starts them ----------
access_key=AIRLOCKBENCHKEY
secret_key=airlock-bench-secret-key-not-for-production
ceph_dir="$work/ceph"
mkdir -p "$ceph_dir"/{run,log,mon,osd/osd.0,rgw} "$work/etcd"
mon_port=$(free_port); rgw_port=$(free_port); rgw_tls_port=$(free_port)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$ceph_dir/rgw.key" -out "$ceph_dir/rgw.crt" 2>/dev/null
fsid=$(cat /proc/sys/kernel/random/uuid)
cat >"$ceph_dir/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_port]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
ms bind ipv4 = true
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
mon max pg per osd = 1000
osd objectstore = memstore
memstore device bytes = 12884901888
osd crush chooseleaf type = 0
run dir = $ceph_dir/run
admin socket = $ceph_dir/run/\$name.asok
log file = $ceph_dir/log/\$name.log
mon data = $ceph_dir/mon/\$name
osd data = $ceph_dir/osd/\$name
keyring = $ceph_dir/keyring
[client.rgw]
ms mon client mode = crc
rgw frontends = beast endpoint=127.0.0.1:$rgw_port ssl_endpoint=127.0.0.1:$rgw_tls_port ssl_certificate=$ceph_dir/rgw.crt ssl_private_key=$ceph_dir/rgw.key
rgw data = $ceph_dir/rgw
# Deleted objects' data is freed at once (the OSD holds it in memory), not after the default 2 hours.
rgw gc obj min wait = 0
rgw gc processor period = 10
EOF
conf="$ceph_dir/ceph.conf"
log "starting Ceph (mon, memstore OSD, radosgw on 127.0.0.1:$rgw_port and TLS on :$rgw_tls_port) and etcd in $work"
monmaptool --create --addv a "[v2:127.0.0.1:$mon_port]" --fsid "$fsid" "$ceph_dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$ceph_dir/monmap"
ceph-mon -f -c "$conf" -i a >"$work/ceph-mon.log" 2>&1 & pids+=($!)
osd_uuid=$(cat /proc/sys/kernel/random/uuid)
osd_id=$(ceph -c "$conf" --connect-timeout 30 osd new "$osd_uuid")
ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1
ceph-osd -f -c "$conf" -i "$osd_id" >"$work/ceph-osd.log" 2>&1 & pids+=($!)
radosgw -f -c "$conf" -n client.rgw >"$work/radosgw.log" 2>&1 & rgw_pid=$!; pids+=($!)
etcd_port=$(free_port); etcd_peer=$(free_port)
etcd --name airlock-bench --data-dir "$work/etcd/data" --listen-client-urls "http://127.0.0.1:$etcd_port" \
  --advertise-client-urls "http://127.0.0.1:$etcd_port" --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" --initial-cluster "airlock-bench=http://127.0.0.1:$etcd_peer" \
  --log-level warn >"$work/etcd.log" 2>&1 & etcd_pid=$!; pids+=($!)
rgw="http://127.0.0.1:$rgw_port"
rgw_tls="https://127.0.0.1:$rgw_tls_port"
wait_http "$rgw" "$rgw_pid" radosgw
wait_http "http://127.0.0.1:$etcd_port/health" "$etcd_pid" etcd
radosgw-admin -c "$conf" user create --uid=bench --display-name=bench --access-key="$access_key" --secret-key="$secret_key" >/dev/null 2>&1

# S3 requests signed by curl itself (SigV4), the payload unsigned as S3 clients send large bodies. (With curl 7.88 an
# emptied header, -H 'Expect:', breaks the signature: radosgw answers 403; the 100-continue costs one round trip.)
s3() { curl -sS -f --aws-sigv4 "aws:amz:us-east-1:s3" --user "$access_key:$secret_key" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' --cacert "$ceph_dir/rgw.crt" "$@"; }
[[ $(s3 -o /dev/null -w '%{http_code}' "$rgw_tls/") == 200 ]] || { echo "s3-bench: radosgw's TLS endpoint $rgw_tls does not answer" >&2; exit 1; }
for bucket in bench-raw bench-distribution; do s3 -X PUT "$rgw/$bucket" -o /dev/null; done

# ---- the registries --------------------------------------------------------------------------------------------
declare -A url pid_of
echo '{}' >"$work/airlock-config.yaml"
storage="s3://bench-airlock?endpoint=$rgw&region=us-east-1&path-style=true"
start_airlock() {  # NAME ARGS...
  local name=$1 port; shift
  port=$(free_port)
  mkdir -p "$work/$name"
  AIRLOCK_CONFIG="$work/airlock-config.yaml" AWS_ACCESS_KEY_ID=$access_key AWS_SECRET_ACCESS_KEY=$secret_key \
    "$airlock" registry --listen "127.0.0.1:$port" --data-dir "$work/$name" --gc-interval off "$@" >"$work/$name.log" 2>&1 &
  pid_of[$name]=$!; pids+=($!)
  url[$name]="http://127.0.0.1:$port"
}
start_distribution() {  # NAME REDIRECT-DISABLED
  local name=$1 port
  port=$(free_port)
  cat >"$work/$name.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  s3:
    accesskey: $access_key
    secretkey: $secret_key
    region: us-east-1
    regionendpoint: $rgw
    bucket: bench-distribution
    secure: false
    v4auth: true
    rootdirectory: /
  redirect:
    disable: $2
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: airlock-bench
EOF
  # AWS_CA_BUNDLE (set on some hosts for other tools) makes distribution's aws-sdk-go panic at start; radosgw is http.
  env -u AWS_CA_BUNDLE docker-registry serve "$work/$name.yml" >"$work/$name.log" 2>&1 &
  pid_of[$name]=$!; pids+=($!)
  url[$name]="http://127.0.0.1:$port"
}
start_airlock airlock-fs
start_airlock airlock-s3 --storage "$storage" --metadata "etcd://127.0.0.1:$etcd_port"
start_airlock airlock-s3-2 --storage "$storage" --metadata "etcd://127.0.0.1:$etcd_port"
start_airlock airlock-redirect --storage "$storage" --metadata "etcd://127.0.0.1:$etcd_port" --s3-redirect
AWS_CA_BUNDLE="$ceph_dir/rgw.crt" start_airlock airlock-s3-tls --storage "s3://bench-airlock?endpoint=$rgw_tls&region=us-east-1&path-style=true" --metadata "etcd://127.0.0.1:$etcd_port"
start_distribution dist-s3 true
start_distribution dist-redirect false
for name in airlock-fs airlock-s3 airlock-s3-2 airlock-redirect airlock-s3-tls dist-s3 dist-redirect; do
  wait_http "${url[$name]}/v2/" "${pid_of[$name]}" "$name"
done
log "registries up: $(for n in "${!url[@]}"; do printf '%s=%s ' "$n" "${url[$n]}"; done)"

# ---- content ----------------------------------------------------------------------------------------------------
random_file() {  # FILE MIB: incompressible bytes (AES-CTR over zeros with a random key)
  { openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass "pass:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" </dev/zero 2>/dev/null || true; } \
    | head -c "$(($2 * 1024 * 1024))" >"$1"
}
sha() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }
push_monolithic() {  # BASE REPO FILE DIGEST
  local location
  location=$(curl -sS -f -X POST -D - -o /dev/null "$1/v2/$2/blobs/uploads/" | awk 'tolower($1) == "location:" { print $2 }' | tr -d '\r')
  [[ $location == http* ]] || location="$1$location"
  [[ $location == *\?* ]] && location="$location&" || location="$location?"
  curl -sS -f -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' -H 'Expect:' -T "$3" "${location}digest=$4"
}
push_chunked() {  # BASE REPO DIGEST CHUNK-FILES...: POST, a PATCH per chunk (Content-Range), PUT ?digest=
  local base=$1 repo=$2 digest=$3 location offset=0 size headers; shift 3
  location=$(curl -sS -f -X POST -D - -o /dev/null "$base/v2/$repo/blobs/uploads/" | awk 'tolower($1) == "location:" { print $2 }' | tr -d '\r')
  for chunk in "$@"; do
    [[ $location == http* ]] || location="$base$location"
    size=$(stat -c %s "$chunk")
    headers=$(curl -sS -f -X PATCH -D - -o /dev/null -H 'Content-Type: application/octet-stream' -H 'Expect:' \
      -H "Content-Range: $offset-$((offset + size - 1))" -T "$chunk" "$location")
    location=$(awk 'tolower($1) == "location:" { print $2 }' <<<"$headers" | tr -d '\r')
    offset=$((offset + size))
  done
  [[ $location == http* ]] || location="$base$location"
  [[ $location == *\?* ]] && location="$location&" || location="$location?"
  curl -sS -f -o /dev/null -X PUT "${location}digest=$digest"
}
put_manifest() {  # BASE REPO TAG FILE
  curl -sS -f -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "@$4" "$1/v2/$2/manifests/$3"
}

log "generating content: a small image, a ${get_mib} MiB blob to GET, a ${push_mib} MiB blob to push"
random_file "$work/layer.bin" 1; head -c 4096 "$work/layer.bin" >"$work/small-layer.bin"
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]},"config":{}}' "$(sha "$work/small-layer.bin")" >"$work/config.json"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}' \
  "$(sha "$work/config.json")" "$(stat -c %s "$work/config.json")" "$(sha "$work/small-layer.bin")" 4096 >"$work/manifest.json"
random_file "$work/get.bin" "$get_mib"; get_digest=$(sha "$work/get.bin")
seeded=(airlock-fs airlock-s3 dist-s3)   # the others share airlock-s3's or dist-s3's store
for name in "${seeded[@]}"; do
  push_monolithic "${url[$name]}" bench/small "$work/small-layer.bin" "$(sha "$work/small-layer.bin")"
  push_monolithic "${url[$name]}" bench/small "$work/config.json" "$(sha "$work/config.json")"
  put_manifest "${url[$name]}" bench/small v1 "$work/manifest.json"
  push_monolithic "${url[$name]}" bench/get "$work/get.bin" "$get_digest"
done
accept='application/vnd.oci.image.manifest.v1+json'
for name in "${!url[@]}"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Accept: $accept" "${url[$name]}/v2/bench/small/manifests/v1")
  [[ $code == 200 ]] || { echo "s3-bench: $name answers $code to the manifest GET" >&2; exit 1; }
done

rotate() {  # ROUND NAMES...: the names, starting at position ROUND
  local r=$1; shift
  local n=$# i
  local list=("$@")
  for (( i = 0; i < n; i++ )); do echo "${list[(i + r) % n]}"; done
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
report=()
report+=("Load average before: $load_before; uptime: $(uptime | sed 's/^ *//')")

# ---- blob GET -----------------------------------------------------------------------------------------------------
if part get; then
  get_names=(airlock-fs airlock-s3 airlock-redirect dist-s3 dist-redirect)
  declare -A get_rate get_cpu get_rgw
  for round in $(seq "$rounds"); do
    for name in $(rotate "$round" "${get_names[@]}"); do
      sync
      server_before=$(cpu_of "${pid_of[$name]}"); rgw_before=$(cpu_of "$rgw_pid")
      start=$(now)
      bytes=$(curl -sS -f -L -o /dev/null -w '%{size_download}' "${url[$name]}/v2/bench/get/blobs/$get_digest")
      wall=$(calc "$(now) - $start" 3)
      (( bytes == get_mib * 1024 * 1024 )) || { echo "s3-bench: $name served $bytes bytes, not $((get_mib * 1024 * 1024))" >&2; exit 1; }
      gib=$(calc "$get_mib / 1024" 4)
      get_rate[$name]+="$(calc "$get_mib / $wall" 0) "
      get_cpu[$name]+="$(calc "($(cpu_of "${pid_of[$name]}") - $server_before) / $gib") "
      get_rgw[$name]+="$(calc "($(cpu_of "$rgw_pid") - $rgw_before) / $gib") "
      log "blob GET round $round $name: ${wall} s"
    done
  done
  report+=("" "### blob GET, ${get_mib} MiB, median of $rounds (rounds: ${rounds}, contender order rotating)" ""
    "| contender | MiB/s | registry CPU s/GiB | radosgw CPU s/GiB | rounds MiB/s |" "|---|---|---|---|---|")
  for name in "${get_names[@]}"; do
    # shellcheck disable=SC2086
    report+=("| $name | $(median ${get_rate[$name]}) | $(median ${get_cpu[$name]}) | $(median ${get_rgw[$name]}) | ${get_rate[$name]% } |")
  done
fi

# ---- manifest GET -------------------------------------------------------------------------------------------------
wrk_rate() {  # URL THREADS CONNECTIONS -> requests/s (fails on non-2xx answers)
  local out
  out=$(wrk -t"$2" -c"$3" -d"${duration}s" -H "Accept: $accept" "$1/v2/bench/small/manifests/v1")
  if grep -q 'Non-2xx' <<<"$out"; then echo "s3-bench: non-2xx answers from $1: $out" >&2; exit 1; fi
  awk '/^Requests\/sec:/ { print $2 }' <<<"$out"
}
if part manifest; then
  manifest_names=(airlock-fs airlock-s3 dist-s3)
  declare -A manifest_rate
  for round in $(seq "$rounds"); do
    for name in $(rotate "$round" "${manifest_names[@]}"); do
      rate=$(wrk_rate "${url[$name]}" 2 "$connections")
      manifest_rate[$name]+="$rate "
      log "manifest GET round $round $name: $rate requests/s"
    done
  done
  # shellcheck disable=SC2086
  s3_median=$(median ${manifest_rate[airlock-s3]}); dist_median=$(median ${manifest_rate[dist-s3]}); fs_median=$(median ${manifest_rate[airlock-fs]})
  report+=("" "### manifest GET by tag, wrk -t2 -c$connections -d${duration}s, median of $rounds" ""
    "| contender | requests/s | rounds |" "|---|---|---|")
  for name in "${manifest_names[@]}"; do
    # shellcheck disable=SC2086
    report+=("| $name | $(median ${manifest_rate[$name]}) | ${manifest_rate[$name]% } |")
  done
  report+=("" "airlock-s3 (etcd metadata) ÷ dist-s3 = $(calc "$s3_median / $dist_median")× (goal ≥ 5×); airlock-s3 ÷ airlock-fs = $(calc "$s3_median / $fs_median")×.")
fi

# ---- two replicas against one -------------------------------------------------------------------------------------
if part replicas; then
  taskset -a -p -c 0 "${pid_of[airlock-s3]}" >/dev/null
  taskset -a -p -c 1 "${pid_of[airlock-s3-2]}" >/dev/null
  half=$((connections / 2))
  declare -A replica_rate
  replica_cpu=()
  for round in $(seq "$rounds"); do
    for mode in $(rotate "$round" one two); do
      second=${url[airlock-s3]}; [[ $mode == two ]] && second=${url[airlock-s3-2]}
      before=("$(cpu_of "${pid_of[airlock-s3]}")" "$(cpu_of "${pid_of[airlock-s3-2]}")" "$(cpu_of "$etcd_pid")")
      stat_before=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
      wrk_rate "${url[airlock-s3]}" 1 "$half" >"$work/wrk-a" &
      first_job=$!
      wrk_rate "$second" 1 "$half" >"$work/wrk-b"
      wait "$first_job"
      stat_after=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
      rate=$(calc "$(cat "$work/wrk-a") + $(cat "$work/wrk-b")" 0)
      replica_rate[$mode]+="$rate "
      hz=$(getconf CLK_TCK)
      busy=$(awk -v a="$stat_before" -v b="$stat_after" -v hz="$hz" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.1f", (y[1] - x[1]) / hz }')
      replica_cpu+=("| $round | $mode | $rate | $(calc "$(cpu_of "${pid_of[airlock-s3]}") - ${before[0]}" 1) | $(calc "$(cpu_of "${pid_of[airlock-s3-2]}") - ${before[1]}" 1) | $(calc "$(cpu_of "$etcd_pid") - ${before[2]}" 1) | $busy |")
      log "replicas round $round $mode: $rate requests/s"
    done
  done
  taskset -a -p -c "0-$(( $(nproc) - 1 ))" "${pid_of[airlock-s3]}" >/dev/null
  taskset -a -p -c "0-$(( $(nproc) - 1 ))" "${pid_of[airlock-s3-2]}" >/dev/null
  # shellcheck disable=SC2086
  one=$(median ${replica_rate[one]}); two=$(median ${replica_rate[two]})
  report+=("" "### two replicas against one (replica 1 on core 0, replica 2 on core 1; two wrk -t1 -c$half -d${duration}s at once)" ""
    "| round | replicas | requests/s | replica 1 CPU s | replica 2 CPU s | etcd CPU s | all CPUs busy s (machine, of $((duration * $(nproc))) s) |" "|---|---|---|---|---|---|---|"
    "${replica_cpu[@]}" "" "two ÷ one = $two / $one = $(calc "$two / $one")× (goal ≥ 1.8×).")
fi

# ---- 512 MiB push -------------------------------------------------------------------------------------------------
if part push; then
  random_file "$work/push.bin" "$push_mib"
  declare -A push_time push_cpu push_rgw
  push_names=(radosgw-put airlock-monolithic airlock-chunked radosgw-put-tls airlock-monolithic-tls airlock-chunked-tls)
  for round in $(seq "$rounds"); do
    for name in $(rotate "$round" "${push_names[@]}"); do
      # New content every push (untimed): the round and the contender in the first bytes.
      printf '%-32s' "$round-$name-$RANDOM" | dd of="$work/push.bin" conv=notrunc status=none
      digest=$(sha "$work/push.bin")
      rm -f "$work"/chunk-*
      [[ $name == airlock-chunked* ]] && split -b "${chunk_mib}M" -d -a 4 "$work/push.bin" "$work/chunk-"
      server=airlock-s3; raw_base=$rgw
      [[ $name == *-tls ]] && { server=airlock-s3-tls; raw_base=$rgw_tls; }
      sync; cat "$work/push.bin" >/dev/null
      server_before=$(cpu_of "${pid_of[$server]}"); rgw_before=$(cpu_of "$rgw_pid")
      start=$(now)
      case $name in
        radosgw-put*) s3 -o /dev/null -T "$work/push.bin" "$raw_base/bench-raw/push-$round" ;;
        airlock-monolithic*) push_monolithic "${url[$server]}" "bench/push-$round" "$work/push.bin" "$digest" ;;
        airlock-chunked*) push_chunked "${url[$server]}" "bench/push-$round" "$digest" "$work"/chunk-* ;;
      esac
      took=$(calc "$(now) - $start" 3)
      push_time[$name]+="$took "
      push_cpu[$name]+="$(calc "$(cpu_of "${pid_of[$server]}") - $server_before" 1) "
      push_rgw[$name]+="$(calc "$(cpu_of "$rgw_pid") - $rgw_before" 1) "
      log "push round $round $name: $took s"
      # Free the OSD's memory: the object goes (radosgw collects its data at once, see ceph.conf).
      if [[ $name == radosgw-put* ]]; then
        s3 -X DELETE -o /dev/null "$rgw/bench-raw/push-$round"
      else
        [[ $(curl -s -o /dev/null -w '%{http_code}' -I "${url[airlock-s3]}/v2/bench/push-$round/blobs/$digest") == 200 ]] \
          || { echo "s3-bench: $name did not store $digest" >&2; exit 1; }
        s3 -X DELETE -o /dev/null "$rgw/bench-airlock/blobs/sha256/${digest#sha256:}"
      fi
    done
  done
  rm -f "$work"/chunk-*
  # shellcheck disable=SC2086
  raw=$(median ${push_time[radosgw-put]})
  # shellcheck disable=SC2086
  raw_tls=$(median ${push_time[radosgw-put-tls]})
  report+=("" "### ${push_mib} MiB push into S3, median of $rounds (chunked: PATCHes of ${chunk_mib} MiB; *-tls: radosgw over https://, against radosgw-put-tls)" ""
    "| contender | s | ÷ radosgw PUT | rounds, s | registry CPU s | radosgw CPU s |" "|---|---|---|---|---|---|")
  for name in "${push_names[@]}"; do
    # shellcheck disable=SC2086
    m=$(median ${push_time[$name]})
    base=$raw; [[ $name == *-tls ]] && base=$raw_tls
    # shellcheck disable=SC2086
    report+=("| $name | $m | $(calc "$m / $base")× | ${push_time[$name]% } | $(median ${push_cpu[$name]}) | $(median ${push_rgw[$name]}) |")
  done
  report+=("" "Goal: each Airlock push ≤ 1.5× radosgw's own PUT of the same bytes (the same transport).")
fi

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
section=$(cat <<EOF

## $(date -u '+%Y-%m-%d %H:%M') UTC — s3-bench.sh

\`bench/s3-bench.sh --rounds $rounds --duration $duration --connections $connections --get-mib $get_mib --push-mib $push_mib --chunk-mib $chunk_mib --parts $parts\`,
airlock: \`$airlock\` ($(git -C "$repo_root" describe --always --dirty 2>/dev/null || echo unknown)); Ceph $(ceph --version | awk '{ print $3 }') radosgw (memstore OSD),
etcd $(etcd --version | awk '/etcd Version/ { print $3 }'), distribution $(docker-registry --version 2>/dev/null | awk '{ print $3 }'), wrk, all on 127.0.0.1.
Machine: $(nproc) cores, $(uname -r), load average $load_before before, $load_after after (shared with other engineers' builds and tests).
$(printf '%s\n' "${report[@]}")
EOF
)
echo "$section"
if (( write_results )); then
  printf '%s\n' "$section" >>"$results"
  log "appended to $results"
fi
