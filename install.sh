#!/bin/sh
# Airlock installer, in the style of K3s's install.sh, for air-gapped machines: it installs a binary that
# is already on this machine (there is nothing to download from in an air gap) and a service for it.
#
#   INSTALL_AIRLOCK_SKIP_DOWNLOAD=true ./install.sh registry --listen 0.0.0.0:5000
#   INSTALL_AIRLOCK_SKIP_DOWNLOAD=true INSTALL_AIRLOCK_EXEC="agent --registries /etc/airlock/registries.yaml" ./install.sh
#
# Environment (same names as K3s's with AIRLOCK in place of K3S):
#   INSTALL_AIRLOCK_SKIP_DOWNLOAD  must be true: use the binary at INSTALL_AIRLOCK_BINARY (default ./airlock,
#                                  else /usr/local/bin/airlock when it is already installed)
#   INSTALL_AIRLOCK_BINARY         path of the airlock binary to install
#   INSTALL_AIRLOCK_EXEC           verb and flags for the service (registry, agent or server); arguments win
#   INSTALL_AIRLOCK_BIN_DIR        where to install (default /usr/local/bin)
#   INSTALL_AIRLOCK_ROOT           install below this directory instead of / (packaging, tests); implies
#                                  INSTALL_AIRLOCK_SKIP_START and INSTALL_AIRLOCK_SKIP_ENABLE unless they are set
#   INSTALL_AIRLOCK_SKIP_ENABLE    true: do not enable the service
#   INSTALL_AIRLOCK_SKIP_START     true: do not start the service
#   INSTALL_AIRLOCK_INIT           systemd or openrc (default: the one running; systemd's files when none runs
#                                  and the service is neither enabled nor started)
#
# Everything is checked before anything is written: the init system can manage the service (or enabling and
# starting are skipped), the binary runs, has the verb, and accepts the flags (`airlock VERB FLAGS --help`).
# A refused install writes nothing; once the binary is in place an uninstall script is written first, so
# a failure after that leaves a script that removes whatever was written.
#   INSTALL_AIRLOCK_NAME           service name suffix (default: the verb, service airlock-<verb>)
# HTTP_PROXY, HTTPS_PROXY, NO_PROXY and CONTAINERD_* variables present when installing are written to the
# service's environment file, as K3s does.
set -e

info() { echo "[INFO]  $*"; }
fatal() { echo "[ERROR] $*" >&2; exit 1; }

ROOT="${INSTALL_AIRLOCK_ROOT:-}"
ROOT="${ROOT%/}"
BIN_DIR="${INSTALL_AIRLOCK_BIN_DIR:-/usr/local/bin}"
if [ -n "$ROOT" ]; then
  : "${INSTALL_AIRLOCK_SKIP_START:=true}"
  : "${INSTALL_AIRLOCK_SKIP_ENABLE:=true}"
fi
MANAGE=false
if [ "${INSTALL_AIRLOCK_SKIP_ENABLE:-}" != true ] || [ "${INSTALL_AIRLOCK_SKIP_START:-}" != true ]; then MANAGE=true; fi

# --- what to run ---
if [ $# -gt 0 ]; then
  CMD="$*"
else
  CMD="${INSTALL_AIRLOCK_EXEC:-registry}"
fi
VERB="${CMD%% *}"
case "$VERB" in
  registry|agent|server|mirror) ;;
  *) fatal "unknown service verb \"$VERB\": use registry, agent, server or mirror" ;;
esac
FLAGS=""
[ "$CMD" != "$VERB" ] && FLAGS="${CMD#* }"
NAME="airlock-${INSTALL_AIRLOCK_NAME:-$VERB}"

# --- binary ---
if [ "${INSTALL_AIRLOCK_SKIP_DOWNLOAD:-}" != "true" ]; then
  fatal "set INSTALL_AIRLOCK_SKIP_DOWNLOAD=true and provide the binary (INSTALL_AIRLOCK_BINARY or ./airlock): this installer never downloads, it is made for air-gapped hosts"
fi
BINARY="${INSTALL_AIRLOCK_BINARY:-}"
if [ -z "$BINARY" ]; then
  if [ -x ./airlock ]; then BINARY=./airlock
  elif [ -x "$ROOT$BIN_DIR/airlock" ]; then BINARY="$ROOT$BIN_DIR/airlock"
  else fatal "no airlock binary: put it at ./airlock or set INSTALL_AIRLOCK_BINARY"; fi
fi
[ -f "$BINARY" ] || fatal "INSTALL_AIRLOCK_BINARY=$BINARY does not exist"

# --- ask the binary: does it run, have the verb, take the flags? (a verb appears in a newer binary by itself) ---
check_out=$(mktemp)
trap 'rm -f "$check_out"' EXIT
if ! "$BINARY" --version >/dev/null 2>"$check_out"; then
  fatal "$BINARY does not run on this host: $(head -n 3 "$check_out" | tr '\n' ' ')"
fi
if ! "$BINARY" "$VERB" --help >/dev/null 2>"$check_out"; then
  fatal "$BINARY has no \"$VERB\" service to install: $(grep -v '^Run ' "$check_out" | sed 's/^airlock: //' | head -n 2 | tr '\n' ' ')(a newer airlock binary may have it)"
fi
# shellcheck disable=SC2086 # FLAGS are split as systemd splits ExecStart
if ! "$BINARY" "$VERB" $FLAGS --help >/dev/null 2>"$check_out"; then
  fatal "airlock $VERB refuses the flags \"$FLAGS\" (INSTALL_AIRLOCK_EXEC or the arguments): $(grep -v '^Run ' "$check_out" | sed 's/^airlock: //' | tr '\n' ' ')"
fi

# --- init system: one that can run the service, unless it is neither enabled nor started ---
INIT="${INSTALL_AIRLOCK_INIT:-}"
systemd_state=$(systemctl is-system-running 2>/dev/null || true)
case "$systemd_state" in
  initializing|starting|running|degraded|maintenance) SYSTEMD_RUNNING=true ;;
  *) SYSTEMD_RUNNING=false ;;
esac
HAS_OPENRC=false
if command -v openrc-run >/dev/null 2>&1 || [ -x /sbin/openrc-run ]; then HAS_OPENRC=true; fi
if [ -z "$INIT" ]; then
  if [ "$SYSTEMD_RUNNING" = true ]; then INIT=systemd
  elif [ "$HAS_OPENRC" = true ]; then INIT=openrc
  else INIT=systemd; fi
fi
case "$INIT" in
  systemd|openrc) ;;
  *) fatal "INSTALL_AIRLOCK_INIT=$INIT: use systemd or openrc" ;;
esac
BY_HAND="$BIN_DIR/airlock $VERB${FLAGS:+ $FLAGS}"
if [ "$MANAGE" = true ] && [ "$INIT" = systemd ] && [ "$SYSTEMD_RUNNING" != true ]; then
  fatal "systemd is not running here (systemctl says: ${systemd_state:-nothing}; PID 1 is $(cat /proc/1/comm 2>/dev/null || echo unknown)), so the airlock-$VERB service cannot be enabled or started, and nothing was installed. On an OpenRC system: INSTALL_AIRLOCK_INIT=openrc. Without a service manager (a container, a chroot): INSTALL_AIRLOCK_SKIP_ENABLE=true INSTALL_AIRLOCK_SKIP_START=true installs the binary and the unit without touching systemd, then run it by hand: $BY_HAND"
fi
if [ "$MANAGE" = true ] && [ "$INIT" = openrc ] && ! command -v rc-service >/dev/null 2>&1; then
  fatal "OpenRC's rc-service is not available, so the airlock-$VERB service cannot be enabled or started, and nothing was installed. Install with INSTALL_AIRLOCK_SKIP_ENABLE=true INSTALL_AIRLOCK_SKIP_START=true and run it by hand: $BY_HAND"
fi

mkdir -p "$ROOT$BIN_DIR"
if [ "$(readlink -f "$BINARY")" != "$(readlink -f "$ROOT$BIN_DIR/airlock" 2>/dev/null || true)" ]; then
  info "Installing airlock to $BIN_DIR/airlock"
  cp "$BINARY" "$ROOT$BIN_DIR/airlock.tmp" && chmod 755 "$ROOT$BIN_DIR/airlock.tmp" && mv -f "$ROOT$BIN_DIR/airlock.tmp" "$ROOT$BIN_DIR/airlock"
  # A framework-dependent build has its assemblies beside it; bring them along.
  src_dir=$(dirname "$BINARY")
  for f in "$src_dir"/*.dll "$src_dir"/*.json; do
    [ -e "$f" ] && cp "$f" "$ROOT$BIN_DIR/"
  done
fi

# --- where the service's files go ---
UNIT_DIR=/etc/systemd/system
if [ "$INIT" = systemd ]; then
  ENV_FILE="$UNIT_DIR/$NAME.service.env"
else
  ENV_FILE="/etc/airlock/$NAME.env"
fi

# --- uninstall script ---
UNINSTALL="$BIN_DIR/$NAME-uninstall.sh"
cat > "$ROOT$UNINSTALL" <<UN
#!/bin/sh
# Generated by Airlock's install.sh: removes $NAME. Data under the data dir (images!) is kept unless
# AIRLOCK_UNINSTALL_PURGE=true.
set -e
ROOT="\${INSTALL_AIRLOCK_ROOT:-$ROOT}"
if [ -z "\$ROOT" ]; then
  if [ "$INIT" = systemd ]; then
    systemctl stop $NAME 2>/dev/null || true
    systemctl disable $NAME 2>/dev/null || true
  else
    rc-service $NAME stop 2>/dev/null || true
    rc-update delete $NAME default 2>/dev/null || true
  fi
fi
rm -f "\$ROOT$UNIT_DIR/$NAME.service" "\$ROOT/etc/init.d/$NAME" "\$ROOT$ENV_FILE"
[ -z "\$ROOT" ] && [ "$INIT" = systemd ] && systemctl daemon-reload 2>/dev/null || true
if [ "\${AIRLOCK_UNINSTALL_PURGE:-}" = true ]; then rm -rf "\$ROOT/var/lib/airlock"; fi
# The binary goes only when no other airlock service remains.
if ! ls "\$ROOT$BIN_DIR"/airlock-*-uninstall.sh 2>/dev/null | grep -v "/$NAME-uninstall.sh\$" >/dev/null; then
  rm -f "\$ROOT$BIN_DIR/airlock"
fi
rm -f "\$ROOT$UNINSTALL"
echo "[INFO]  $NAME removed"
UN
chmod 755 "$ROOT$UNINSTALL"

# --- environment file (proxy variables) ---
mkdir -p "$ROOT$(dirname "$ENV_FILE")"
umask 077
: > "$ROOT$ENV_FILE.tmp"
env | grep -E '^(HTTP_PROXY|HTTPS_PROXY|NO_PROXY|http_proxy|https_proxy|no_proxy|CONTAINERD_[A-Z_]+|AIRLOCK_[A-Z_]+)=' \
  | grep -v -E '^(AIRLOCK_CONFIG_SKIP|INSTALL_AIRLOCK_)' | sort > "$ROOT$ENV_FILE.tmp" || true
mv -f "$ROOT$ENV_FILE.tmp" "$ROOT$ENV_FILE"
umask 022
info "Environment file $ENV_FILE ($(wc -l < "$ROOT$ENV_FILE") variables)"

# --- service ---
# The agent reports readiness (sd_notify) once the images directory is imported, and its containerd
# shims must outlive a restart of the agent itself.
TYPE=exec
KILL_MODE=mixed
if [ "$VERB" = agent ]; then TYPE=notify; KILL_MODE=process; fi
if [ "$INIT" = systemd ]; then
  mkdir -p "$ROOT$UNIT_DIR"
  cat > "$ROOT$UNIT_DIR/$NAME.service" <<UNIT
# Generated by Airlock's install.sh.
[Unit]
Description=Airlock $VERB
# Flags and config keys: airlock $VERB --help
Wants=network-online.target
After=network-online.target

[Service]
Type=$TYPE
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-$ENV_FILE
ExecStart=$BIN_DIR/airlock $VERB${FLAGS:+ $FLAGS}
KillMode=$KILL_MODE
TimeoutStopSec=60
Restart=always
RestartSec=5s
LimitNOFILE=1048576
$( [ "$VERB" = agent ] && printf 'Delegate=yes\nTasksMax=infinity\n' )

[Install]
WantedBy=multi-user.target
UNIT
  info "systemd: created unit $UNIT_DIR/$NAME.service"
  if [ "$MANAGE" = true ]; then
    systemctl daemon-reload || fatal "systemctl daemon-reload failed (see above); the files are in place: remove them with $UNINSTALL"
  fi
  if [ "${INSTALL_AIRLOCK_SKIP_ENABLE:-}" != true ]; then
    systemctl enable "$NAME" >/dev/null 2>&1 || fatal "systemctl enable $NAME failed; see systemctl status $NAME, or remove it with $UNINSTALL"
    info "systemd: enabled $NAME"
  fi
  if [ "${INSTALL_AIRLOCK_SKIP_START:-}" != true ]; then
    systemctl restart "$NAME" || fatal "$NAME did not start; see journalctl -u $NAME (remove it with $UNINSTALL)"
    info "systemd: started $NAME"
  fi
else
  mkdir -p "$ROOT/etc/init.d"
  cat > "$ROOT/etc/init.d/$NAME" <<RC
#!/sbin/openrc-run
# Generated by Airlock's install.sh.
description="Airlock $VERB"
supervisor=supervise-daemon
command="$BIN_DIR/airlock"
command_args="$VERB${FLAGS:+ $FLAGS}"
output_log="/var/log/$NAME.log"
error_log="/var/log/$NAME.log"
respawn_delay=5
respawn_max=0
depend() {
  need net
  after network-online
}
start_pre() {
  set -a; [ -f "$ENV_FILE" ] && . "$ENV_FILE"; set +a
}
RC
  chmod 755 "$ROOT/etc/init.d/$NAME"
  info "openrc: created service /etc/init.d/$NAME"
  if [ "${INSTALL_AIRLOCK_SKIP_ENABLE:-}" != true ]; then
    rc-update add "$NAME" default >/dev/null || fatal "rc-update add $NAME failed (remove it with $UNINSTALL)"
  fi
  if [ "${INSTALL_AIRLOCK_SKIP_START:-}" != true ]; then
    rc-service "$NAME" restart || fatal "$NAME did not start; see /var/log/$NAME.log (remove it with $UNINSTALL)"
  fi
fi
if [ "$MANAGE" != true ]; then
  info "Not enabled or started: run it with your service manager, or by hand: $BY_HAND"
fi
info "Uninstall with $UNINSTALL"

