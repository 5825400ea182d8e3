#!/usr/bin/env bash
# A hot counter against spread keys and hello, on one host and on three hosts
# sharing the counter's bucket, in one run (issue 15).
#
#   1. builds the `hot_key_hosts` bench server (release) and the guest components;
#   2. for each host count (HOSTS_LIST): starts a nats-server and that many hosts in
#      one process (benches/examples/hot_key_hosts.rs), each serving `hello` and
#      `counter` (builtin://keyvalue-nats) on ports of its own, the counter app
#      being one app, i.e. one JetStream bucket, across the hosts;
#   3. runs wrk against hello, the counter on one hot key (`/hot`), and the counter
#      spread over COUNTER_KEYS keys; with several hosts, wrk's threads are spread
#      over them (one thread per host, `thread.addr` in wrk's setup);
#   4. repeats ROUNDS times and prints a markdown table of the medians.
#
# "server CPU µs/req" is the CPU time of the server's process group (hosts and
# nats-server) divided by the requests served.
#
# Usage: scripts/bench-hot-key.sh
# Env:   DURATION     wrk measured run per row            (default 10s)
#        WARMUP       wrk warm-up before each row         (default 3s; 0 to skip)
#        CONNECTIONS  connections per row                 (default 50; rounded up to
#                     a multiple of the hosts: 51 on three hosts)
#        HOSTS_LIST   host counts, space-separated        (default "1 3")
#        ROUNDS       repetitions; the table shows medians (default 3)
#        SERVER_CPUS  taskset list for the server         (default 0; empty: no pinning)
#        LOAD_CPUS    taskset list for wrk                (default 1; empty: no pinning)
#        COUNTER_KEYS keys of the spread counter rows     (default 1000)
#        SKIP_BUILD   1 to reuse the existing release build
#        KEEP_LOGS    1 to keep the temporary folder
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-3s}"
CONNECTIONS="${CONNECTIONS:-50}"
HOSTS_LIST="${HOSTS_LIST:-1 3}"
ROUNDS="${ROUNDS:-3}"
SERVER_CPUS="${SERVER_CPUS-0}"
LOAD_CPUS="${LOAD_CPUS-1}"
COUNTER_KEYS="${COUNTER_KEYS:-1000}"
SKIP_BUILD="${SKIP_BUILD:-0}"
KEEP_LOGS="${KEEP_LOGS:-0}"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
server="$target_dir/release/examples/hot_key_hosts"

log() { echo "bench-hot-key: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

work="$(mktemp -d -t lattice-bench-hot.XXXXXX)"
results="$work/results.tsv" # round, target, hosts, connections, req/s, errors, cpu µs/req
server_pid=""
wrk_pid=""
cleanup() {
    [[ -z "$wrk_pid" ]] || kill "$wrk_pid" 2>/dev/null || true
    stop_server || true
    if [[ "$KEEP_LOGS" == 1 ]]; then log "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_server() {
    [[ -n "$server_pid" ]] || return 0
    local pid="$server_pid"
    server_pid=""
    kill -INT -- "-$pid" 2>/dev/null || kill -INT "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 -- "-$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Sum of user+system CPU ticks of every process in group $1.
group_ticks() {
    local pgid="$1" total=0 f line rest fields
    for f in /proc/[0-9]*/stat; do
        line="$(cat "$f" 2>/dev/null)" || continue
        rest="${line##*) }"
        read -r -a fields <<<"$rest"
        [[ "${fields[2]:-}" == "$pgid" ]] || continue
        total=$((total + fields[11] + fields[12]))
    done
    echo "$total"
}

run_wrk() {
    local out="$1" load=()
    shift
    [[ -z "$LOAD_CPUS" ]] || load=(taskset -c "$LOAD_CPUS")
    "${load[@]}" wrk "$@" >"$out" &
    wrk_pid=$!
    wait "$wrk_pid"
    wrk_pid=""
}

# lua PORTS PATH_EXPR: a wrk script sending thread i to port i of PORTS (comma
# list) and requesting PATH_EXPR (a Lua expression).
lua() {
    cat <<LUA
local ports = { $1 }
local next_thread = 0
function setup(thread)
    next_thread = next_thread + 1
    thread:set("id", next_thread)
    local port = ports[(next_thread - 1) % #ports + 1]
    thread.addr = wrk.lookup("127.0.0.1", tostring(port))[1]
end
function init(args)
    math.randomseed(os.time() * 100 + id)
end
request = function()
    return wrk.format("GET", $2)
end
LUA
}

# bench ROUND TARGET HOSTS PORTS PATH_EXPR
bench() {
    local round="$1" target="$2" hosts="$3" ports="$4" path="$5"
    local threads c file out rps total errs ticks0 ticks1 cpu_us script
    threads="$hosts"
    ((threads > 1)) || threads=2
    c=$(((CONNECTIONS + threads - 1) / threads * threads))
    script="$work/$(echo "$target" | tr -c 'a-z0-9' _)-$hosts.lua"
    lua "$ports" "$path" >"$script"
    local url="http://127.0.0.1:${ports%%,*}/"
    if [[ "$WARMUP" != 0 ]]; then
        run_wrk /dev/null -t"$threads" -c"$c" -d"$WARMUP" -s "$script" "$url"
    fi
    file="$work/wrk-r$round-$hosts-${target// /_}.txt"
    ticks0="$(group_ticks "$server_pid")"
    run_wrk "$file" -t"$threads" -c"$c" -d"$DURATION" -s "$script" "$url"
    ticks1="$(group_ticks "$server_pid")"
    out="$(cat "$file")"
    rps="$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")"
    total="$(awk '/requests in/ { print $1 }' <<<"$out")"
    [[ -n "$rps" && "${total:-0}" -gt 0 ]] || {
        echo "$out" >&2
        die "could not read wrk's output for $target on $hosts host(s)"
    }
    errs="$(awk '/Non-2xx or 3xx responses:/ { n += $NF }
                 /Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 }
                 END { print n + 0 }' <<<"$out")"
    cpu_us="$(awk -v t="$((ticks1 - ticks0))" -v hz="$(getconf CLK_TCK)" -v n="$total" \
        'BEGIN { printf "%.0f", t / hz * 1e6 / n }')"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$target" "$hosts" "$c" "$rps" "$errs" "$cpu_us" >>"$results"
    log "round $round, $hosts host(s), $target, c=$c: $rps req/s, errors $errs, server CPU $cpu_us µs/req"
}

command -v wrk >/dev/null || die "wrk is required (apt-get install wrk)"
if [[ "$SKIP_BUILD" != 1 ]]; then
    log "building the bench server (release) and the guest components"
    cargo build --release --locked -p lattice-benches --example hot_key_hosts >&2
    "$repo/scripts/build-components.sh" >/dev/null
fi
[[ -x "$server" ]] || die "no bench server at $server (unset SKIP_BUILD)"

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
    for hosts in $HOSTS_LIST; do
        pin=()
        [[ -z "$SERVER_CPUS" ]] || pin=(taskset -c "$SERVER_CPUS")
        "${pin[@]}" setsid "$server" "$hosts" >"$work/server-$round-$hosts.log" 2>&1 &
        server_pid=$!
        deadline=$((SECONDS + 120))
        until grep -q '^ready ' "$work/server-$round-$hosts.log" 2>/dev/null; do
            kill -0 "$server_pid" 2>/dev/null || {
                tail -n 30 "$work/server-$round-$hosts.log" >&2
                die "the bench server exited (log above)"
            }
            ((SECONDS < deadline)) || die "the bench server was not ready within 120 s"
            sleep 0.5
        done
        ready="$(grep '^ready ' "$work/server-$round-$hosts.log")"
        hello="$(sed -E 's/.*hello=([0-9,]+).*/\1/' <<<"$ready")"
        counter="$(sed -E 's/.*counter=([0-9,]+).*/\1/' <<<"$ready")"
        log "round $round/$ROUNDS, $hosts host(s): hello on $hello, counter on $counter"
        bench "$round" "hello" "$hosts" "$hello" '"/"'
        bench "$round" "counter, one hot key" "$hosts" "$counter" '"/hot"'
        bench "$round" "counter, $COUNTER_KEYS keys" "$hosts" "$counter" "\"/k\" .. math.random($COUNTER_KEYS)"
        stop_server
    done
done

echo
echo "wrk, ${DURATION} per row after ${WARMUP} warm-up, median of $ROUNDS round(s); server on CPU ${SERVER_CPUS:-any}, wrk on CPU ${LOAD_CPUS:-any}; $(nproc) CPUs; load average before: $load_before"
echo
echo "| target | hosts | connections | req/s (median) | req/s per round | errors (sum) | server CPU µs/req (median) |"
echo "|---|---|---|---|---|---|---|"
awk -F'\t' '
    function median(list,    n, v, i, j, t) {
        n = split(list, v, " ")
        for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    {
        k = $2 "\t" $3 "\t" $4
        if (!(k in seen)) { seen[k] = 1; order[++rows] = k }
        rps[k] = rps[k] " " $5; errs[k] += $6; cpu[k] = cpu[k] " " $7
    }
    END {
        for (i = 1; i <= rows; i++) {
            k = order[i]; split(k, f, "\t")
            r = rps[k]; gsub(/^ /, "", r); gsub(/ /, " / ", r)
            printf "| %s | %s | %s | %.0f | %s | %d | %.0f |\n", f[1], f[2], f[3], median(rps[k]), r, errs[k], median(cpu[k])
            m[f[1] "\t" f[2]] = median(rps[k])
        }
        print ""
        for (i = 1; i <= rows; i++) {
            k = order[i]; split(k, f, "\t")
            if (f[1] != "counter, one hot key") continue
            for (o in m) { split(o, g, "\t"); if (g[1] ~ /^counter, [0-9]+ keys/ && g[2] == f[2]) spread = m[o] }
            if (spread > 0) printf "hot key / spread keys, %s host(s): %.2f\n", f[2], m[f[1] "\t" f[2]] / spread
        }
    }' "$results"
