# Shared by the bench scripts (sourced, not run): the pieces every one of them needs the same way.

# A TCP port nothing listens on now, from the range above the usual ephemeral ports' low end.
free_port() {
  local candidate
  while :; do
    candidate=$((20000 + RANDOM % 40000))
    ss -Htln "sport = :$candidate" | grep -q . || { echo "$candidate"; return; }
  done
}

# distribution_config FILE DATA_DIR ADDRESS LOG_LEVEL — distribution 2.8 (docker-registry) on the filesystem store
# as the benches compare against it: deletes on, upload purging off (no background sweep during timed runs), no access log.
distribution_config() {
  cat >"$1" <<CONFIG
version: 0.1
log:
  level: $4
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $2
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $3
  secret: airlock-bench
CONFIG
}
