#!/usr/bin/env bash
# Stop the engine started by start-dockerd.sh <state-dir>. Idempotent.
#
# Usage: stop-dockerd.sh <state-dir> [--purge]
#   --purge  also delete <state-dir> (images, containers, logs)
set -euo pipefail

die() { echo "stop-dockerd.sh: $*" >&2; exit 1; }
[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: stop-dockerd.sh <state-dir> [--purge]"
state_dir="$1"
purge=0
if [ $# -eq 2 ]; then
    [ "$2" = "--purge" ] || die "unknown option $2 (only --purge)"
    purge=1
fi
pidfile="$state_dir/dockerd.pid"
timeout_s="${DOCKERD_STOP_TIMEOUT_S:-30}"

if [ -f "$pidfile" ]; then
    pid="$(cat "$pidfile")"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        # SIGTERM lets dockerd stop its containers and its managed containerd.
        kill -TERM "$pid"
        deadline=$(( $(date +%s) + timeout_s ))
        while kill -0 "$pid" 2>/dev/null; do
            if [ "$(date +%s)" -ge "$deadline" ]; then
                echo "stop-dockerd.sh: dockerd $pid ignored SIGTERM for ${timeout_s}s; sending SIGKILL" >&2
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.2
        done
    fi
    rm -f "$pidfile"
fi
# The managed containerd normally exits with dockerd; stop a straggler that
# still holds this state dir, matched by its exact pidfile, not by name.
ctr_pidfile="$state_dir/exec/containerd/containerd.pid"
if [ -f "$ctr_pidfile" ]; then
    ctr_pid="$(cat "$ctr_pidfile")"
    if [ -n "$ctr_pid" ] && kill -0 "$ctr_pid" 2>/dev/null; then
        kill -TERM "$ctr_pid" 2>/dev/null || true
        sleep 1
        kill -KILL "$ctr_pid" 2>/dev/null || true
    fi
fi
rm -f "$state_dir/docker.sock"
if [ "$purge" -eq 1 ]; then
    rm -rf "$state_dir"
fi
