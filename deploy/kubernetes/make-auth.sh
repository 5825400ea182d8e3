#!/usr/bin/env bash
# Makes what the lattice in lattice.yaml needs before it starts, in DIR:
#   - NATS in operator mode (`lattice nats-auth init`): nats-auth.conf, the
#     controller's, the CLI's and built-in messaging's users, provider.nk;
#   - the lattice signing key (lattice.nk) and its public half (trust), which
#     every host obeys;
#   - one identity and NATS user per host pod: lattice-host-0.nk/.creds, ...
# then, with --apply, creates the `lattice` namespace, the `nats-config` config
# map from deploy/nats/core.conf and three secrets, each holding only what its
# pods need (kubectl must be on PATH and pointed at the cluster):
#   - nats-auth: nats-auth.conf (JWTs, no seeds), for the NATS nodes;
#   - lattice-controller: controller.creds and lattice.nk;
#   - lattice-hosts: trust, provider.nk and every host's .nk and .creds.
# The operator's, account's and system account's seeds stay in DIR, off the
# cluster.
#
#   deploy/kubernetes/make-auth.sh DIR [HOSTS] [--apply]
#
# HOSTS (default 3) must be at least lattice.yaml's lattice-host replicas. Run it
# once; keep DIR safe (it holds the lattice's keys). Re-running refuses to
# overwrite an existing DIR.
set -euo pipefail
dir="${1:?usage: make-auth.sh DIR [HOSTS] [--apply]}"
hosts="${2:-3}"
apply="${3:-}"
if [[ "$hosts" == "--apply" ]]; then hosts=3; apply=--apply; fi
lattice="${LATTICE_BIN:-lattice}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
say() { echo "make-auth: $*" >&2; }

if [[ -e "$dir/nats-auth.conf" ]]; then
    say "$dir already holds a lattice's keys; not overwriting them"
    exit 1
fi
mkdir -p "$dir"
chmod 700 "$dir"
say "NATS operator, account and users (lattice nats-auth init)"
"$lattice" --lattice "${LATTICE:-default}" nats-auth init --out "$dir" >/dev/null
say "the lattice signing key"
"$lattice" keys new lattice --out "$dir/lattice.nk" >"$dir/trust"
for ((i = 0; i < hosts; i++)); do
    name="lattice-host-$i"
    say "host $name: its key and NATS user"
    id=$("$lattice" keys new host --out "$dir/$name.nk")
    "$lattice" nats-auth host --dir "$dir" --key "$id" --out "$dir/$name.creds" >/dev/null
done
if [[ "$apply" == "--apply" ]]; then
    say "creating namespace lattice, config map nats-config and secrets nats-auth, lattice-controller, lattice-hosts"
    kubectl create namespace lattice --dry-run=client -o yaml | kubectl apply -f -
    kubectl -n lattice create configmap nats-config --from-file="$here/../nats/core.conf"
    kubectl -n lattice create secret generic nats-auth --from-file="$dir/nats-auth.conf"
    kubectl -n lattice create secret generic lattice-controller \
        --from-file="$dir/controller.creds" --from-file="$dir/lattice.nk"
    host_files=(--from-file="$dir/trust" --from-file="$dir/provider.nk")
    for ((i = 0; i < hosts; i++)); do
        host_files+=(--from-file="$dir/lattice-host-$i.nk" --from-file="$dir/lattice-host-$i.creds")
    done
    kubectl -n lattice create secret generic lattice-hosts "${host_files[@]}"
fi
say "done: $dir"
