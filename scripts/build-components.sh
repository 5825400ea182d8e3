#!/usr/bin/env bash
# Builds the guest components in components/ (their own cargo workspace) for
# wasm32-wasip2 and prints the paths of the resulting .wasm files.
#
# Usage: scripts/build-components.sh [PACKAGE...]   (default: every component)
# Env:   COMPONENTS_TARGET_DIR  cargo target dir (default: components/target)
#        CARGO_BUILD_JOBS       as for cargo, to keep the build lean on small machines
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="${COMPONENTS_TARGET_DIR:-$repo_root/components/target}"
target=wasm32-wasip2
# Package names; cargo names a cdylib's file after its crate, so `shop-business`
# builds `shop_business.wasm`. The services are binaries (`wasi:cli/run`), whose files
# cargo names after the `[[bin]]` target, keeping `-`s; each service names its target
# with `_`s (`tcp_echo_service`) so the same rule finds it. (`service-support` is a
# library the services share, not a component.)
components=(counter hello misbehave features shop-business shop-auth echo echo-relay
    tcp-echo-service cache-service net-client cron-service cron-job crashy-service net-bench kv-bench
    msg-echo pg-notes blob-files wasmcloud-v2)

packages=()
if [[ $# -gt 0 ]]; then
    components=("$@")
    for name in "${components[@]}"; do packages+=(-p "$name"); done
fi

echo "build-components: building ${components[*]} for $target (release) into $target_dir" >&2

if ! rustup target list --installed | grep -qx "$target"; then
    echo "build-components: adding rust target $target" >&2
    rustup target add "$target"
fi

cargo build --release --locked "${packages[@]}" \
    --target "$target" \
    --manifest-path "$repo_root/components/Cargo.toml" \
    --target-dir "$target_dir"

missing=0
for name in "${components[@]}"; do
    wasm="$target_dir/$target/release/${name//-/_}.wasm"
    if [[ -f "$wasm" ]]; then
        echo "$wasm"
    else
        echo "build-components: expected $wasm but cargo did not produce it" >&2
        missing=1
    fi
done
exit "$missing"
