#!/usr/bin/env bash
# Runs every Airlock test project and ends with one line "N passed, M failed".
# On a fresh Debian machine (as root) it first installs the real components the tests drive:
# containerd, runc, skopeo, podman, docker-registry (distribution 2.8), wrk, compressors, iproute2, chromium,
# strace (holds one syscall of a registry process so a test can kill it mid-write),
# a single-node Ceph with radosgw and etcd (the scale-out store),
# and node/npm when missing, for the console's build (the .NET build runs it: see src/Airlock/Airlock.csproj).
set -uo pipefail
cd "$(dirname "$0")"

packages=(containerd runc skopeo podman docker-registry golang-github-containerd-containerd-dev
          wrk zstd lz4 bzip2 gzip tar iproute2 openssl procps curl ca-certificates busybox-static strace
          ceph-mon ceph-osd ceph-common radosgw etcd-server etcd-client  # the scale-out store's S3 (radosgw) and etcd
          chromium  # the console's browser tests (Debian's Chromium, driven by Playwright's own node driver)
          clang lld zlib1g-dev)  # the last three: scripts/publish.sh (Native AOT), not the tests
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # The console's build needs node and npm; the machine's own (NodeSource's nodejs carries npm) is used when there.
  command -v npm >/dev/null || missing+=(nodejs npm)
  if (( ${#missing[@]} )); then
    echo "test.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
      || { echo "test.sh: apt-get install failed"; echo "0 passed, 1 failed"; exit 1; }
  fi
fi

# containerd 1.7 and 2.x for the node tests (Debian 12 ships 1.6): unpacked from Debian 13's and unstable's
# packages into /var/tmp/airlock-test-tools, not installed. A failure here fails those tests, naming the binary.
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  scripts/fetch-containerd-versions.sh || echo "test.sh: could not fetch every containerd release; the tests that need one will fail"
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
results=.test-results
rm -rf "$results"; mkdir -p "$results"

if ! dotnet restore Airlock.slnx --nologo -v q; then
  echo "0 passed, 1 failed"; exit 1
fi
if ! dotnet build Airlock.slnx --no-restore --nologo -v q -c Release; then
  echo "test.sh: build failed"; echo "0 passed, 1 failed"; exit 1
fi

status=0
run_tests() {  # PROJECT NAME [dotnet test arguments…]
  local project=$1 name=$2; shift 2
  dotnet test "$project" --no-build -c Release --nologo \
    --logger "trx;LogFileName=$name.trx" --logger "console;verbosity=normal" \
    --results-directory "$results" "$@" 2>&1 | tee "$results/$name.log" | grep -E '^\s*(Failed|Passed!|Failed!|Skipped) |^\s+(Error Message|Stack Trace):|Total tests|error' || true
  [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
}
for project in tests/*/*.Tests.csproj; do
  run_tests "$project" "$(basename "$project" .csproj)" "$@"
done
# The OCI conformance suite once more against the scale-out store: blobs in a real radosgw, metadata in a real etcd.
AIRLOCK_CONFORMANCE_TARGET=airlock-s3 run_tests tests/Airlock.Conformance.Tests/Airlock.Conformance.Tests.csproj Airlock.Conformance.Tests.S3 "$@"

passed=0; failed=0; total_trx=0
for trx in "$results"/*.trx; do
  [[ -f $trx ]] || continue
  total_trx=$((total_trx + 1))
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters"); f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  e=$(sed -n 's/.* error="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0} + ${e:-0}))
done
expected=$(ls tests/*/*.Tests.csproj | wc -l)
if (( total_trx < expected )); then
  echo "test.sh: only $total_trx of $expected test projects produced results"; failed=$((failed + expected - total_trx))
fi
(( failed > 0 )) && status=1
echo "$passed passed, $failed failed"
exit $status
