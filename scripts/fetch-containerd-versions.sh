#!/usr/bin/env bash
# Fetches the containerd releases Debian 12 does not ship, so the node tests run the rendered config on a real
# containerd of every schema Airlock writes: 1.7 (config version 2, Debian 13 "trixie") and 2.x (config
# version 3, Debian unstable). Only the packages' binaries are unpacked, into $AIRLOCK_TEST_TOOLS
# (default /var/tmp/airlock-test-tools)/containerd-<series>/usr/bin; nothing is installed on the machine and the
# machine's apt sources are left alone (a private sources list and cache under the same folder).
# Idempotent: a series already unpacked is kept. Exits non-zero when a series could not be fetched; the tests
# that need it then fail naming the missing binary.
set -uo pipefail
tools=${AIRLOCK_TEST_TOOLS:-/var/tmp/airlock-test-tools}
mkdir -p "$tools"
status=0
fetch() { # series suite
  local series=$1 suite=$2 dir="$tools/containerd-$1" apt="$tools/apt-$2"
  [[ -x $dir/usr/bin/containerd ]] && return 0
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/deb"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" > "$apt/sources.list"
  local opts=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$apt/lists"
              -o "Dir::Cache=$apt/cache" -o APT::Sandbox::User=root -q)
  if ! apt-get "${opts[@]}" update >/dev/null 2>&1; then
    echo "fetch-containerd-versions: cannot read Debian $suite's package list"; return 1
  fi
  local version
  version=$(apt-cache "${opts[@]}" show containerd 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -1)
  if [[ $version != "$series".* ]]; then
    echo "fetch-containerd-versions: Debian $suite has containerd ${version:-none}, not $series.x"; return 1
  fi
  rm -f "$apt/deb"/*.deb
  if ! (cd "$apt/deb" && apt-get "${opts[@]}" download "containerd=$version" >/dev/null 2>&1); then
    echo "fetch-containerd-versions: cannot download containerd $version from Debian $suite"; return 1
  fi
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp" && dpkg-deb -x "$apt/deb"/containerd_*.deb "$dir.tmp" && rm -rf "$dir" && mv "$dir.tmp" "$dir"
  echo "fetch-containerd-versions: containerd $version from Debian $suite in $dir"
}
command -v apt-get >/dev/null || { echo "fetch-containerd-versions: no apt-get"; exit 1; }
fetch 1.7 trixie || status=1
fetch 2 sid || status=1
exit $status
