#!/usr/bin/env bash
# publish.sh — builds the airlock binary that install.sh installs and the benchmarks measure: one Native AOT
# executable (no .NET runtime needed on the host, no JIT), linux-x64 by default.
#
# Usage: scripts/publish.sh [-o DIR] [--rid RID] [--no-aot]
#   -o DIR      output folder (default artifacts/publish/<rid>); the binary is DIR/airlock, its symbols DIR/airlock.dbg
#   --rid RID   runtime identifier (default linux-x64; linux-arm64 needs a cross toolchain)
#   --no-aot    the self-contained single-file build instead (JIT, ~100 MiB idle RSS for the agent): the fallback
#               for a host without clang/lld/zlib1g-dev, or to compare
#
# Native AOT needs clang, lld and zlib1g-dev (test.sh installs them). The publish fails on any trim or AOT
# warning: such a warning means some code path would break at run time in the AOT binary (reflection the
# compiler could not see), so it is treated as an error, never suppressed.
set -euo pipefail
cd "$(dirname "$0")/.."
rid=linux-x64; out=""; aot=true
while (( $# )); do
  case $1 in
    -o) out=$2; shift 2 ;;
    --rid) rid=$2; shift 2 ;;
    --no-aot) aot=false; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "publish.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
out=${out:-artifacts/publish/$rid}
if [[ $aot == true ]]; then
  for tool in clang ld.lld; do
    command -v "$tool" >/dev/null || { echo "publish.sh: $tool is missing (apt-get install clang lld zlib1g-dev), or use --no-aot" >&2; exit 1; }
  done
  flags=(-p:PublishAot=true)
else
  flags=(-p:PublishAot=false --self-contained -p:PublishSingleFile=true)
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
if ! dotnet publish src/Airlock.Cli -c Release -r "$rid" "${flags[@]}" -o "$out" --nologo >"$log" 2>&1; then
  grep -E ' (error|warning) ' "$log" >&2 || tail -40 "$log" >&2
  echo "publish.sh: publish failed" >&2; exit 1
fi
# Warnings are errors in this repository, but ILC reports some (e.g. IL2104 for a whole package) as plain warnings.
if grep -E 'warning (IL[0-9]+|IL2104|IL3053)' "$log" >&2; then
  echo "publish.sh: trim/AOT warnings above: the binary would break where they point" >&2; exit 1
fi
echo "$out/airlock ($(( $(stat -c %s "$out/airlock") >> 20 )) MiB, $([[ $aot == true ]] && echo "Native AOT" || echo "single-file"), $rid)"
