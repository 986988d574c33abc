#!/usr/bin/env bash
# Start a local Docker/OCI registry (distribution v2) on 127.0.0.1.
#
# Usage: start-registry.sh <state-dir> [--htpasswd user:pass] [--port N]
# Prints the registry address host:port on stdout (nothing else).
# Idempotent: if the registry recorded in <state-dir> runs with the same
# settings, prints its address and exits 0; different settings are an error
# (stop it first).
#
# Plain HTTP on loopback is deliberate: dockerd treats 127.0.0.0/8 as an
# insecure registry by default (moby: registry/config.go, loopback CIDR in
# the default insecure list), so push/pull/login work without TLS, and
# distribution's htpasswd backend accepts Basic auth without TLS
# (verified with docker-registry 2.8.2: 401 + "WWW-Authenticate: Basic"
# without credentials, 200 with them). Never expose this beyond loopback.
#
# Environment:
#   REGISTRY_BIN   registry binary (default: docker-registry, else registry)
#   HTPASSWD_BIN   htpasswd binary (default: htpasswd, from apache2-utils)
set -euo pipefail

die() { echo "start-registry.sh: $*" >&2; exit 1; }
usage="usage: start-registry.sh <state-dir> [--htpasswd user:pass] [--port N]"
[ $# -ge 1 ] || die "$usage"
mkdir -p "$1"
state_dir="$(cd "$1" && pwd)"
shift
credentials=""
port=""
while [ $# -gt 0 ]; do
    case "$1" in
        --htpasswd) [ $# -ge 2 ] || die "--htpasswd needs user:pass"; credentials="$2"; shift 2 ;;
        --port) [ $# -ge 2 ] || die "--port needs a number"; port="$2"; shift 2 ;;
        *) die "unknown argument '$1'; $usage" ;;
    esac
done
if [ -n "$credentials" ]; then
    case "$credentials" in
        *:*) ;;
        *) die "--htpasswd value must be user:pass (got no ':')" ;;
    esac
    [ -n "${credentials%%:*}" ] && [ -n "${credentials#*:}" ] || die "--htpasswd needs a non-empty user and password"
fi
registry_bin="${REGISTRY_BIN:-$(command -v docker-registry || command -v registry || true)}"
[ -n "$registry_bin" ] || die "no registry binary found; install it (Debian/Ubuntu: apt-get install -y docker-registry) or set REGISTRY_BIN"

pidfile="$state_dir/registry.pid"
addrfile="$state_dir/registry.address"
settingsfile="$state_dir/registry.settings"
config="$state_dir/config.yml"
logfile="$state_dir/registry.log"
# Compare settings by hash so the password is never written in clear.
settings="$(printf '%s|%s' "$port" "$credentials" | sha256sum | cut -d' ' -f1)"

if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    if [ "$(cat "$settingsfile" 2>/dev/null)" = "$settings" ]; then
        cat "$addrfile"
        exit 0
    fi
    die "a registry with different settings already runs from $state_dir (pid $(cat "$pidfile")); run stop-registry.sh $state_dir first"
fi

if [ -z "$port" ]; then
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
fi
case "$port" in
    ''|*[!0-9]*) die "--port must be a number, got '$port'" ;;
esac
address="127.0.0.1:$port"

mkdir -p "$state_dir/data"
auth_block=""
if [ -n "$credentials" ]; then
    htpasswd_bin="${HTPASSWD_BIN:-$(command -v htpasswd || true)}"
    [ -n "$htpasswd_bin" ] || die "htpasswd not found; install it (Debian/Ubuntu: apt-get install -y apache2-utils) or set HTPASSWD_BIN"
    # distribution's htpasswd backend accepts bcrypt entries only (-B).
    # The password goes through stdin (-i), so it never shows in ps.
    printf '%s' "${credentials#*:}" | "$htpasswd_bin" -B -i -c "$state_dir/htpasswd" "${credentials%%:*}" 2>/dev/null \
        || die "htpasswd failed to write $state_dir/htpasswd"
    auth_block="auth:
  htpasswd:
    realm: trtllm-oci-local
    path: $state_dir/htpasswd"
fi

cat >"$config" <<YAML
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $state_dir/data
  delete:
    enabled: true
http:
  addr: $address
  secret: trtllm-oci-local-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
$auth_block
YAML

setsid "$registry_bin" serve "$config" </dev/null >"$logfile" 2>&1 &
echo $! >"$pidfile"
echo "$settings" >"$settingsfile"
echo "$address" >"$addrfile"

deadline=$(( $(date +%s) + ${REGISTRY_START_TIMEOUT_S:-30} ))
until python3 - "$address" <<'PY' 2>/dev/null
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(f"http://{sys.argv[1]}/v2/", timeout=2)
except urllib.error.HTTPError as e:
    sys.exit(0 if e.code == 401 else 1)
PY
do
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        echo "start-registry.sh: registry exited during start-up; last log lines from $logfile:" >&2
        tail -n 20 "$logfile" >&2 || true
        rm -f "$pidfile"
        exit 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "start-registry.sh: registry did not answer on http://$address/v2/ in time; last log lines:" >&2
        tail -n 20 "$logfile" >&2 || true
        kill "$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
        exit 1
    fi
    sleep 0.2
done
echo "$address"
