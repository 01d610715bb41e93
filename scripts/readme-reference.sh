#!/usr/bin/env bash
# Regenerates the "Flags" part of README.md from `airlock <verb> --help`, so the reference cannot drift.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build src/Airlock.Cli -c Release -v q --nologo >/dev/null
bin=src/Airlock.Cli/bin/Release/net10.0/airlock
verbs=(registry "registry gc" images "images save" "images load" "images copy" "images export" "images list"
       registries "registries render" "registries validate" mirror check version)
for extra in "images sync" agent; do
  # An unknown verb with --help prints its parent's help, so look for the verb's own usage line.
  $bin $extra --help 2>/dev/null | grep -q "^  airlock $extra \[" && verbs+=("$extra")
done
{
  sed '/^### Flags$/q' README.md
  echo
  for verb in "${verbs[@]}"; do
    echo "#### \`airlock $verb\`"
    echo
    echo '```'
    AIRLOCK_CONFIG=/nonexistent $bin $verb --help | sed -e 's/[[:space:]]*$//'
    echo '```'
    echo
  done
} > README.md.new
mv README.md.new README.md
