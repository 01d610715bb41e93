#!/usr/bin/env bash
# Regenerates docs/cli-reference.md from `airlock <verb> --help`, so the reference cannot drift from the binary.
# Verbs are discovered from the help itself (every "Commands:" entry, recursively), so a new verb needs no edit here.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ ${AIRLOCK_REFERENCE_NO_BUILD:-} ]] || dotnet build src/Airlock.Cli -c Release -v q --nologo >/dev/null
bin=src/Airlock.Cli/bin/Release/net10.0/airlock
help() { AIRLOCK_CONFIG=/dev/null "$bin" "$@" --help | sed -e 's/[[:space:]]*$//'; }

# The names listed under "Commands:" in a help text (first word of each two-space-indented line).
subcommands() { awk '/^Commands:/{on=1; next} /^[^ ]/{on=0} on && /^  [a-z]/{print $1}'; }

walk() {
  local verb
  for verb in $(help "$@" | subcommands); do
    printf '%s\n' "$* $verb"
    walk "$@" "$verb"
  done
}

{
  echo "# CLI reference"
  echo
  echo "Generated from \`airlock <verb> --help\` by \`scripts/cli-reference.sh\`; do not edit by hand."
  echo "Every flag can also be set in \`/etc/airlock/config.yaml\` and as \`AIRLOCK_<NAME>\`: see [configuration.md](configuration.md)."
  echo
  walk | sed 's/^ //' | while read -r verb; do
    echo "## \`airlock $verb\`"
    echo
    echo '```'
    # shellcheck disable=SC2086
    help $verb
    echo '```'
    echo
  done
} > docs/cli-reference.md.new
mv docs/cli-reference.md.new docs/cli-reference.md
