# Shared by the bench scripts (sourced, not run): the pieces every one of them needs the same way.

# A TCP port nothing listens on now, from the range above the usual ephemeral ports' low end.
free_port() {
  local candidate
  while :; do
    candidate=$((20000 + RANDOM % 40000))
    ss -Htln "sport = :$candidate" | grep -q . || { echo "$candidate"; return; }
  done
}
