#!/usr/bin/env bash
# agent-bench.sh — images-directory import by `airlock agent` vs `ctr -n k8s.io images import`, same files, same run.
#
# Usage: bench/agent-bench.sh [--images N] [--layers N] [--layer-mib N] [--idle S] [--binary PATH | --no-aot] [--no-results]
#
# Writes N docker-archive tars of L random (incompressible) layers each (default 4 x 4 x 64 MiB = 1 GiB), then:
#   1. ctr: a fresh containerd 1.6 of its own (temp root/state/socket, CRI off) and `ctr -n k8s.io images import`
#      of every tar, one after the other (ctr unpacks for the host platform by default, as the agent does);
#   2. airlock: `airlock agent` with the same tars hard-linked into <data-dir>/agent/images, starting its own
#      containerd from a temp data dir; timed from the moment containerd serves until the log says the images
#      directory is processed (the point it sends READY=1), and from process start to that point;
#   3. the agent's RSS (VmRSS, and its anonymous part) after S s idle (default 10), and the RSS of its containerd.
# --binary PATH uses that airlock; without it the script first publishes the binary users install, with
# scripts/publish.sh: Native AOT (--no-aot: the self-contained single-file JIT build, to compare).
# DOTNET_* variables in the environment reach the agent (e.g. DOTNET_GCgen0size=0x400000 to try a GC knob).
# Goal (issue "Node agent"): airlock / ctr <= 1.0, idle RSS < 60 MiB. Figures are appended to bench/RESULTS.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo_root=$(cd "$here/.." && pwd)
images=4; layers=4; layer_mib=64; idle=10; write_results=1; binary=""; publish_flags=()
while (( $# )); do
  case $1 in
    --images) images=$2; shift 2 ;;
    --layers) layers=$2; shift 2 ;;
    --layer-mib) layer_mib=$2; shift 2 ;;
    --idle) idle=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    --no-aot) publish_flags=(--no-aot); shift ;;
    --no-results) write_results=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "agent-bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for tool in containerd ctr openssl tar; do
  command -v "$tool" >/dev/null || { echo "agent-bench: $tool is missing (apt-get install containerd openssl tar)" >&2; exit 1; }
done

# Short path: containerd's socket must fit in 108 bytes.
work=$(mktemp -d /tmp/agb-XXXXXX)
pids=()
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  { grep -o " $work/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
rss_mib() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

if [[ -z $binary ]]; then
  log "publishing airlock with scripts/publish.sh ${publish_flags[*]:-(Native AOT)}"
  "$repo_root/scripts/publish.sh" -o "$work/publish" "${publish_flags[@]}" >&2
  binary="$work/publish/airlock"
  kind=$([[ ${#publish_flags[@]} -eq 0 ]] && echo "published Native AOT" || echo "published single-file")
else
  kind=$binary
fi
echo '{}' >"$work/config.yaml"
export AIRLOCK_CONFIG="$work/config.yaml"

sha() { openssl dgst -sha256 -r "$1" | cut -d' ' -f1; }
log "writing $images docker-archive tars x $layers layers x $layer_mib MiB"
mkdir -p "$work/tars"
for i in $(seq 1 "$images"); do
  dir="$work/archive$i"; mkdir -p "$dir" "$work/l"
  layer_names=""; diff_ids=""
  for l in $(seq 1 "$layers"); do
    rm -f "$work/l/"*
    openssl rand -out "$work/l/data$i-$l" $((layer_mib << 20))
    tar -C "$work/l" -cf "$work/layer.tar" "data$i-$l"
    d=$(sha "$work/layer.tar"); mkdir -p "$dir/$d"; mv "$work/layer.tar" "$dir/$d/layer.tar"
    layer_names+="${layer_names:+,}\"$d/layer.tar\""; diff_ids+="${diff_ids:+,}\"sha256:$d\""
  done
  printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/data%s-1"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$i" "$diff_ids" >"$work/config.json"
  c=$(sha "$work/config.json"); mv "$work/config.json" "$dir/$c.json"
  printf '[{"Config":"%s.json","RepoTags":["bench.airlock.test/agent/image%s:1"],"Layers":[%s]}]' "$c" "$i" "$layer_names" >"$dir/manifest.json"
  tar -C "$dir" -cf "$work/tars/image$i.tar" . && rm -rf "$dir"
done
total_mib=$(( $(du -cb "$work"/tars/*.tar | tail -1 | cut -f1) >> 20 ))

# 1. ctr into its own fresh containerd.
mkdir -p "$work/ctr"
cat >"$work/ctr/config.toml" <<TOML
version = 2
root = "$work/ctr/root"
state = "$work/ctr/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/ctr/c.sock"
TOML
containerd --config "$work/ctr/config.toml" >"$work/ctr/containerd.log" 2>&1 &
ctr_daemon=$!; pids+=($ctr_daemon)
for _ in $(seq 300); do ctr --address "$work/ctr/c.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
ctr --address "$work/ctr/c.sock" version >/dev/null || { echo "agent-bench: containerd for ctr did not start" >&2; cat "$work/ctr/containerd.log" >&2; exit 1; }
sync; log "ctr -n k8s.io images import (${total_mib} MiB)"
t0=$(now)
for f in "$work"/tars/*.tar; do ctr --address "$work/ctr/c.sock" -n k8s.io images import "$f" >/dev/null; done
t1=$(now)
ctr_s=$(elapsed "$t0" "$t1")
ctr_count=$(ctr --address "$work/ctr/c.sock" -n k8s.io images ls -q | grep -c '^bench.airlock.test/' || true)
kill -TERM "$ctr_daemon"; wait "$ctr_daemon" 2>/dev/null || true

# 2. airlock agent, its own containerd, same files.
images_dir="$work/agent/agent/images"; mkdir -p "$images_dir"
ln "$work"/tars/*.tar "$images_dir/"
sync; log "airlock agent (${total_mib} MiB)"
: >"$work/agent.log"; a0=$(now)
"$binary" agent --data-dir "$work/agent" --containerd-state "$work/as" --registries "$work/none.yaml" \
  --containerd-version 1.6 --systemd-cgroup false --stream-server-port 0 >"$work/agent.log" 2>&1 &
agent=$!; pids+=($agent)
serving=""; done_at=""
for _ in $(seq 12000); do
  [[ -z $serving ]] && grep -q "is serving" "$work/agent.log" && serving=$(now)
  grep -q "Images directory .* processed" "$work/agent.log" && { done_at=$(now); break; }
  kill -0 "$agent" 2>/dev/null || { echo "agent-bench: airlock agent exited:" >&2; tail -20 "$work/agent.log" >&2; exit 1; }
  sleep 0.05
done
[[ -n $done_at ]] || { echo "agent-bench: the agent did not finish within 10 minutes" >&2; tail -20 "$work/agent.log" >&2; exit 1; }
agent_s=$(elapsed "$serving" "$done_at")
agent_total_s=$(elapsed "$a0" "$done_at")
grep "processed" "$work/agent.log" | sed 's/^/  /' >&2
agent_count=$(ctr --address "$work/as/containerd.sock" -n k8s.io images ls -q | grep -c '^bench.airlock.test/' || true)
sleep "$idle"
agent_rss=$(rss_mib "$agent")
# File-backed pages (the mapped binary: native code, or the single-file build's assemblies) are clean and shared
# with the page cache; anonymous ones are the GC heap, stacks, and with the JIT build its compiled code.
agent_anon=$(awk '/^Anonymous/ { printf "%.1f", $2 / 1024 }' "/proc/$agent/smaps_rollup")
containerd_pid=$(grep -o 'Started containerd (PID [0-9]*' "$work/agent.log" | tail -1 | grep -o '[0-9]*$')
containerd_rss=$(rss_mib "$containerd_pid")
kill -TERM "$agent"; wait "$agent" 2>/dev/null || true

ratio=$(awk -v a="$agent_s" -v c="$ctr_s" 'BEGIN { printf "%.2f", a / c }')
load=$(cut -d' ' -f1-3 /proc/loadavg)
log "ctr ${ctr_s}s ($ctr_count images), airlock ${agent_s}s after containerd served (${agent_total_s}s from start; $agent_count images), ratio $ratio"
log "agent idle RSS ${agent_rss} MiB after ${idle} s (anonymous ${agent_anon} MiB), its containerd ${containerd_rss} MiB; load average $load"
if [[ $agent_count != "$images" || $ctr_count != "$images" ]]; then
  echo "agent-bench: expected $images images on both sides (ctr $ctr_count, airlock $agent_count)" >&2; exit 1
fi

if (( write_results )); then
  {
    echo
    echo "## $(date -u '+%Y-%m-%d %H:%M') UTC — agent-bench.sh"
    echo
    echo "Machine: nproc $(nproc), kernel $(uname -r), load average $load at the end."
    echo "Versions: airlock $(git -C "$repo_root" rev-parse --short HEAD) ($kind, $(( $(stat -c %s "$binary") >> 20 )) MiB$(env | grep -o -E '^DOTNET_(gc|GC)[A-Za-z0-9_]*=[^ ]*' | sed 's/^/, /' | tr -d '\n')); $(containerd --version | cut -d' ' -f2-3)."
    echo "Content: $images docker-archive tars x $layers layers x $layer_mib MiB = $total_mib MiB, random (incompressible) uncompressed layers; both sides unpack (overlayfs)."
    echo
    echo "| what | airlock agent | ctr images import | airlock / ctr | goal |"
    echo "|---|---|---|---|---|"
    echo "| import of the images directory, s (agent: containerd serving → directory processed) | $agent_s | $ctr_s | $ratio | ≤ 1.0 |"
    echo "| agent start → READY (includes starting containerd), s | $agent_total_s | | | |"
    echo "| agent idle RSS after import and $idle s idle (VmRSS), MiB | $agent_rss | | | < 60 MiB |"
    echo "| of which anonymous (GC heap, stacks, JIT code; the rest is the mapped binary), MiB | $agent_anon | | | |"
    echo "| the agent's containerd RSS, MiB | $containerd_rss | | | |"
  } >>"$repo_root/bench/RESULTS.md"
fi
