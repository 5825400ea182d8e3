#!/usr/bin/env bash
# Quick start, part 2: the whole test suite, as CI runs it.
#
# Installs what is missing (wasm32-wasip2 target, nats-server), builds the guest
# components, then checks formatting, runs clippy with warnings as errors, and runs
# every test (integration tests start real nats-server processes on random ports).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
say() { echo "test: $*" >&2; }
# A one-off build (CI) gains nothing from incremental caches; they only fill the
# disk (tens of GB across the workspace's test binaries).
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi

. scripts/install-deps.sh
say "building the guest components"
scripts/build-components.sh >/dev/null
say "cargo fmt --check"
cargo fmt --all -- --check
(cd components && cargo fmt --all -- --check)
say "cargo clippy --all-targets -D warnings"
cargo clippy --locked --workspace --all-targets -- -D warnings
say "cargo test"
cargo test --locked --workspace
say "all checks passed"
