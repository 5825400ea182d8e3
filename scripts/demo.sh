#!/usr/bin/env bash
# Quick start, part 1: a whole dev lattice on this machine with the counter app.
#
# Installs what is missing (wasm32-wasip2 target, nats-server; not the test suite's
# Redis and PostgreSQL), builds the counter component and the `lattice` CLI (the
# dev profile, whose dependencies are optimised; its build is shared with
# scripts/test.sh), starts `lattice up` with the counter app, shows it answering,
# and keeps the lattice running until Ctrl-C.
#
# Env: LATTICE_STATE_DIR  where JetStream keeps state (default: ~/.local/state/lattice)
#      DEMO_EXIT=1        stop after showing the answers (used by tests/CI)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
say() { echo "demo: $*" >&2; }

LATTICE_DEPS=demo . scripts/install-deps.sh
say "building the counter component"
scripts/build-components.sh counter >/dev/null
say "building the lattice CLI (the first build takes several minutes)"
cargo build --locked -p lattice-cli
target_dir="${CARGO_TARGET_DIR:-$root/target}"
lattice="$target_dir/debug/lattice"

state_args=()
cli_args=()
if [[ -n "${LATTICE_STATE_DIR:-}" ]]; then
    state_args=(--state-dir "$LATTICE_STATE_DIR")
    # The dev NATS takes only the credentials lattice up keeps in its state dir.
    cli_args=(--nats-creds "$LATTICE_STATE_DIR/cli.creds")
fi

say "starting: lattice up --app manifests/counter.yaml"
"$lattice" up "${state_args[@]}" --app manifests/counter.yaml &
up_pid=$!
trap 'kill -INT $up_pid 2>/dev/null; wait $up_pid 2>/dev/null' EXIT
trap 'exit 130' INT TERM

deadline=$((SECONDS + 120))
until curl -fsS -o /dev/null http://127.0.0.1:8080/ 2>/dev/null; do
    if ! kill -0 $up_pid 2>/dev/null; then say "lattice up exited; see the errors above"; exit 1; fi
    if (( SECONDS > deadline )); then say "the counter app did not answer within 120 s"; exit 1; fi
    sleep 0.5
done

say "the counter app answers on http://127.0.0.1:8080:"
for path in /hello /hello /world; do
    printf '  $ curl http://127.0.0.1:8080%s\n  %s' "$path" "$(curl -fsS "http://127.0.0.1:8080$path")"
    echo
done
"$lattice" app list "${cli_args[@]}"
if [[ "${DEMO_EXIT:-0}" == 1 ]]; then exit 0; fi
say "the lattice keeps running; try \`$lattice app status counter\` or \`$lattice get hosts\` in another terminal. Ctrl-C stops it."
wait $up_pid
