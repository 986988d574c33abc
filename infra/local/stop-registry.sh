#!/usr/bin/env bash
# Stop the registry started by start-registry.sh <state-dir>. Idempotent.
#
# Usage: stop-registry.sh <state-dir> [--purge]
#   --purge  also delete <state-dir> (stored images, htpasswd, config)
set -euo pipefail

die() { echo "stop-registry.sh: $*" >&2; exit 1; }
[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: stop-registry.sh <state-dir> [--purge]"
state_dir="$1"
purge=0
if [ $# -eq 2 ]; then
    [ "$2" = "--purge" ] || die "unknown option $2 (only --purge)"
    purge=1
fi
pidfile="$state_dir/registry.pid"
if [ -f "$pidfile" ]; then
    pid="$(cat "$pidfile")"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
fi
rm -f "$state_dir/registry.settings" "$state_dir/registry.address"
if [ "$purge" -eq 1 ]; then
    rm -rf "$state_dir"
fi
