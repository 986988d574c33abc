#!/usr/bin/env bash
# Start a private Docker engine whose whole state lives under <state-dir>.
#
# Usage: start-dockerd.sh <state-dir>
# Prints the DOCKER_HOST of the engine on stdout (nothing else goes to stdout).
# Idempotent: when the engine recorded in <state-dir> is still answering, it
# prints its DOCKER_HOST and exits 0 without starting another one.
#
# Settings chosen for CI sandboxes and laptops that already run a system
# dockerd: no iptables rules, no docker0 bridge (containers get
# --network none or host), vfs storage (works on any filesystem, no overlay
# mounts needed), own socket/data-root/exec-root so it never touches
# /var/lib/docker or /var/run/docker.sock. Needs root (dockerd does).
#
# Environment:
#   DOCKERD_BIN          dockerd binary (default: dockerd on PATH)
#   DOCKERD_EXTRA_ARGS   extra dockerd arguments, word-split
#   DOCKERD_START_TIMEOUT_S  seconds to wait for the API (default 60)
set -euo pipefail

die() { echo "start-dockerd.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: start-dockerd.sh <state-dir>"
mkdir -p "$1"
state_dir="$(cd "$1" && pwd)"
sock="$state_dir/docker.sock"
pidfile="$state_dir/dockerd.pid"
logfile="$state_dir/dockerd.log"
docker_host="unix://$sock"
timeout_s="${DOCKERD_START_TIMEOUT_S:-60}"
dockerd_bin="${DOCKERD_BIN:-$(command -v dockerd || true)}"
docker_cli="$(command -v docker || true)"

[ -n "$dockerd_bin" ] || die "dockerd not found on PATH; install it (Debian/Ubuntu: apt-get install -y docker.io) or set DOCKERD_BIN"
[ -n "$docker_cli" ] || die "docker CLI not found on PATH; install it (Debian/Ubuntu: apt-get install -y docker.io)"
[ "$(id -u)" -eq 0 ] || die "dockerd needs root (current uid $(id -u)); run this script as root or via sudo"
# sun_path holds 108 bytes including the terminating NUL.
[ "${#sock}" -le 107 ] || die "socket path $sock is ${#sock} characters, over the 107 a unix socket allows; use a shorter <state-dir>"

engine_answers() { DOCKER_HOST="$docker_host" "$docker_cli" version >/dev/null 2>&1; }

if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    if engine_answers; then
        echo "$docker_host"
        exit 0
    fi
    die "dockerd pid $(cat "$pidfile") from $pidfile is alive but $docker_host does not answer; see $logfile or run stop-dockerd.sh $state_dir"
fi
rm -f "$pidfile" "$sock"
mkdir -p "$state_dir/data" "$state_dir/exec"

# setsid: the engine must outlive the calling shell and not receive its
# terminal's SIGINT (pytest's Ctrl-C would otherwise kill it mid-teardown).
# shellcheck disable=SC2086
setsid "$dockerd_bin" \
    --iptables=false --ip-masq=false --bridge=none \
    --storage-driver=vfs \
    --host "$docker_host" \
    --data-root "$state_dir/data" \
    --exec-root "$state_dir/exec" \
    --pidfile "$pidfile" \
    ${DOCKERD_EXTRA_ARGS:-} \
    </dev/null >"$logfile" 2>&1 &
launcher_pid=$!

deadline=$(( $(date +%s) + timeout_s ))
until engine_answers; do
    if ! kill -0 "$launcher_pid" 2>/dev/null; then
        echo "start-dockerd.sh: dockerd exited during start-up; last log lines from $logfile:" >&2
        tail -n 20 "$logfile" >&2 || true
        exit 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "start-dockerd.sh: dockerd did not answer on $docker_host within ${timeout_s}s; last log lines:" >&2
        tail -n 20 "$logfile" >&2 || true
        kill "$launcher_pid" 2>/dev/null || true
        exit 1
    fi
    sleep 0.3
done
# dockerd writes the pidfile itself, but only once it is up; record the pid we
# know in case a caller looks before that.
[ -s "$pidfile" ] || echo "$launcher_pid" >"$pidfile"
echo "$docker_host"
