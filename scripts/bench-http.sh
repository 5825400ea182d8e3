#!/usr/bin/env bash
# HTTP throughput and latency of lattice against `wasmtime serve`, in one run.
#
#   1. builds `lattice` (release) and the guest components;
#   2. starts a dev lattice (`lattice up`: nats-server + host + controller) with the
#      hello and counter sample apps on free ports, waits until both answer;
#   3. runs wrk against hello and counter at each connection count;
#   4. stops the lattice (SIGINT), starts `wasmtime serve` on the same hello.wasm and
#      runs wrk against it the same way;
#   5. repeats 2-4 ROUNDS times and prints a markdown table of the medians, with the
#      lattice / wasmtime-serve ratio for hello.
#
# Server and load generator are pinned to different CPUs (taskset), as in the peer
# baseline, so they do not compete for one core. "server CPU µs/req" is the CPU time
# of the server's whole process group (lattice up includes nats-server) divided by
# the requests served: it is the figure least disturbed by other work on the machine.
#
# Usage: scripts/bench-http.sh
# Env:   DURATION       wrk measured run per row             (default 10s)
#        WARMUP         wrk warm-up before each row          (default 3s; 0 to skip)
#        CONNECTIONS    connection counts, space-separated   (default "1 50")
#        ROUNDS         repetitions; the table shows medians (default 3)
#        SERVER_CPUS    taskset list for the servers         (default 0; empty: no pinning)
#        LOAD_CPUS      taskset list for wrk                 (default 1; empty: no pinning)
#        COUNTER_KEYS   distinct keys the counter rows spread over (default 1000)
#        SKIP_BUILD     1 to reuse existing release builds   (default 0)
#        LATTICE_BIN    lattice binary (default: the one this script builds)
#        LATTICE_ARGS   extra arguments for `lattice up`     (e.g. --no-pooling)
#        WASMTIME       wasmtime binary (default .tools/wasmtime/bin/wasmtime)
#        WASMTIME_TUNED 1 to also run `wasmtime serve` with its pooling allocator
#                       resetting memory through PAGEMAP_SCAN (docs/benchmarks.md)
#        KEEP_LOGS      1 to keep the temporary folder with server logs and wrk output
#        SKIP_WASMTIME  1 to measure lattice alone (no `wasmtime serve` rows, no
#                       wasmtime binary needed), e.g. to compare two lattice builds
#        TRACING        1 to also run lattice hello with spans exported over OTLP/HTTP
#                       to a local sink (a Python HTTP server that reads and drops
#                       them) at 1% and at 100% sampling, in every round
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-3s}"
CONNECTIONS="${CONNECTIONS:-1 50}"
ROUNDS="${ROUNDS:-3}"
SERVER_CPUS="${SERVER_CPUS-0}"
LOAD_CPUS="${LOAD_CPUS-1}"
COUNTER_KEYS="${COUNTER_KEYS:-1000}"
SKIP_BUILD="${SKIP_BUILD:-0}"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
lattice="${LATTICE_BIN:-$target_dir/release/lattice}"
LATTICE_ARGS="${LATTICE_ARGS:-}"
WASMTIME="${WASMTIME:-$repo/.tools/wasmtime/bin/wasmtime}"
WASMTIME_TUNED="${WASMTIME_TUNED:-0}"
KEEP_LOGS="${KEEP_LOGS:-0}"
SKIP_WASMTIME="${SKIP_WASMTIME:-0}"
TRACING="${TRACING:-0}"
wasm_dir="${COMPONENTS_TARGET_DIR:-$repo/components/target}/wasm32-wasip2/release"
tuned_flags="pooling-allocator=y,pooling-pagemap-scan=auto,pooling-memory-keep-resident=4194304,pooling-table-keep-resident=65536"

log() { echo "bench-http: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

work="$(mktemp -d -t lattice-bench-http.XXXXXX)"
results="$work/results.tsv" # round, target, connections, req/s, p50 µs, p99 µs, errors, cpu µs/req
server_pid=""
server_name=""
wrk_pid=""
sink_pid=""
cleanup() {
    [[ -z "$wrk_pid" ]] || kill "$wrk_pid" 2>/dev/null || true
    [[ -z "$sink_pid" ]] || kill "$sink_pid" 2>/dev/null || true
    stop_server || true
    if [[ "$KEEP_LOGS" == 1 ]]; then
        log "logs kept in $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- helpers -------------------------------------------------------------------

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_server NAME CMD...: run CMD on SERVER_CPUS in its own process group, output
# to $work/NAME.log.
start_server() {
    server_name="$1"
    shift
    local pin=()
    [[ -z "$SERVER_CPUS" ]] || pin=(taskset -c "$SERVER_CPUS")
    # Started directly (a shell function would add a subshell): taskset and setsid
    # exec, so $! is the server itself, and setsid makes it the leader of a new
    # process group, which stop_server signals as a whole (lattice up's nats-server
    # included), like Ctrl-C in a terminal.
    "${pin[@]}" setsid "$@" >>"$work/$server_name.log" 2>&1 &
    server_pid=$!
}

# stop_server: SIGINT the server's group, wait up to 45 s (lattice up drains for up
# to 30 s), then SIGKILL it.
stop_server() {
    [[ -n "$server_pid" ]] || return 0
    local pid="$server_pid"
    server_pid=""
    alive() { kill -0 -- "-$pid" 2>/dev/null || kill -0 "$pid" 2>/dev/null; }
    kill -INT -- "-$pid" 2>/dev/null || kill -INT "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 45))
    while alive && ((SECONDS < deadline)); do sleep 0.2; done
    if alive; then
        log "$server_name did not stop within 45 s of SIGINT; killing it"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# wait_http URL SECONDS: until URL answers 2xx, the server dies, or the deadline.
wait_http() {
    local url="$1" deadline=$((SECONDS + $2))
    until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            tail -n 30 "$work/$server_name.log" >&2 || true
            die "$server_name exited before $url answered (log above)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 30 "$work/$server_name.log" >&2 || true
            die "$url did not answer within $2 s (log of $server_name above)"
        fi
        sleep 0.5
    done
}

# Sum of user+system CPU ticks of every process in group $1.
group_ticks() {
    local pgid="$1" total=0 f line rest fields
    for f in /proc/[0-9]*/stat; do
        line="$(cat "$f" 2>/dev/null)" || continue
        rest="${line##*) }" # fields from the 3rd on: the name may contain spaces
        read -r -a fields <<<"$rest"
        [[ "${fields[2]:-}" == "$pgid" ]] || continue
        total=$((total + fields[11] + fields[12]))
    done
    echo "$total"
}

# Percentage of all CPUs busy over the next 2 s (before any server starts: other work).
machine_busy() {
    local a b
    a="$(head -1 /proc/stat)"
    sleep 2
    b="$(head -1 /proc/stat)"
    awk -v a="$a" -v b="$b" 'BEGIN {
        split(a, x); split(b, y); total = 0
        for (i = 2; i <= 9; i++) total += y[i] - x[i]
        idle = (y[5] - x[5]) + (y[6] - x[6])
        printf "%.0f", total ? 100 * (total - idle) / total : 0 }'
}

# wrk latency like "196.00us", "5.43ms", "1.02s" -> microseconds.
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) u = n; else if (v ~ /ms$/) u = n * 1000;
        else if (v ~ /m$/) u = n * 60e6; else if (v ~ /s$/) u = n * 1e6; else u = n
        printf "%.0f", u }'
}

# run_wrk OUTFILE ARGS...: wrk on LOAD_CPUS. In the background plus `wait`, so that
# SIGINT/SIGTERM reach this script's trap at once rather than after wrk ends.
run_wrk() {
    local out="$1" load=()
    shift
    [[ -z "$LOAD_CPUS" ]] || load=(taskset -c "$LOAD_CPUS")
    "${load[@]}" wrk "$@" >"$out" &
    wrk_pid=$!
    wait "$wrk_pid"
    wrk_pid=""
}

# bench ROUND TARGET URL [LUA]: warm up, then measure at each connection count.
bench() {
    local round="$1" target="$2" url="$3" lua="${4:-}"
    local c threads file out rps p50 p99 errs total ticks0 ticks1 cpu_us script=()
    [[ -z "$lua" ]] || script=(-s "$lua")
    for c in $CONNECTIONS; do
        threads=1
        if ((c > 1)); then threads=2; fi
        if [[ "$WARMUP" != 0 ]]; then
            run_wrk /dev/null -t"$threads" -c"$c" -d"$WARMUP" "${script[@]}" "$url"
        fi
        file="$work/wrk-r$round-${target// /_}-c$c.txt"
        ticks0="$(group_ticks "$server_pid")"
        run_wrk "$file" -t"$threads" -c"$c" -d"$DURATION" --latency "${script[@]}" "$url"
        ticks1="$(group_ticks "$server_pid")"
        out="$(cat "$file")"
        rps="$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")"
        p50="$(awk '$1 == "50%" { print $2 }' <<<"$out")"
        p99="$(awk '$1 == "99%" { print $2 }' <<<"$out")"
        total="$(awk '/requests in/ { print $1 }' <<<"$out")"
        [[ -n "$rps" && -n "$p50" && -n "$p99" && "${total:-0}" -gt 0 ]] || {
            echo "$out" >&2
            die "could not read wrk's output for $target at $c connections (above)"
        }
        errs="$(awk '/Non-2xx or 3xx responses:/ { n += $NF }
                     /Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 }
                     END { print n + 0 }' <<<"$out")"
        cpu_us="$(awk -v t="$((ticks1 - ticks0))" -v hz="$(getconf CLK_TCK)" -v n="$total" \
            'BEGIN { printf "%.0f", t / hz * 1e6 / n }')"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$target" "$c" "$rps" \
            "$(to_us "$p50")" "$(to_us "$p99")" "$errs" "$cpu_us" >>"$results"
        log "round $round, $target, c=$c: $rps req/s, p50 $p50, p99 $p99, errors $errs, server CPU $cpu_us µs/req"
    done
}

# --- prerequisites ---------------------------------------------------------------

# nats-server and the wasm32-wasip2 target, as the demo needs them (NATS_SERVER_BIN).
LATTICE_DEPS=demo . "$repo/scripts/install-deps.sh"

if ! command -v wrk >/dev/null; then
    log "installing wrk"
    if [[ $(id -u) == 0 ]]; then apt-get install -y wrk >&2; else sudo apt-get install -y wrk >&2; fi
fi
for tool in curl python3 setsid; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
if [[ -n "$SERVER_CPUS$LOAD_CPUS" ]]; then
    command -v taskset >/dev/null || die "taskset is required (or set SERVER_CPUS= LOAD_CPUS=)"
fi
[[ "$SKIP_WASMTIME" == 1 || -x "$WASMTIME" ]] || die "no wasmtime at $WASMTIME: cargo install wasmtime-cli --version 48.0.8 --locked --root $repo/.tools/wasmtime (or set WASMTIME)"

if [[ "$SKIP_BUILD" != 1 ]]; then
    log "building lattice (release) and the guest components"
    cargo build --release --locked -p lattice-cli >&2
    "$repo/scripts/build-components.sh" >/dev/null
fi
[[ -x "$lattice" ]] || die "no lattice binary at $lattice (unset SKIP_BUILD)"
[[ -f "$wasm_dir/hello.wasm" && -f "$wasm_dir/counter.wasm" ]] ||
    die "no guest components in $wasm_dir (unset SKIP_BUILD)"

# The samples on ports picked here, with absolute component paths, so a lattice
# already serving the samples on 8080/8081 does not get in the way.
hello_port="$(free_port)"
counter_port="$(free_port)"
wasmtime_port="$(free_port)"
sed -e "s|127.0.0.1:8081|127.0.0.1:$hello_port|" -e "s|file://\.\./|file://$repo/|" \
    manifests/hello.yaml >"$work/hello.yaml"
sed -e "s|127.0.0.1:8080|127.0.0.1:$counter_port|" -e "s|file://\.\./|file://$repo/|" \
    manifests/counter.yaml >"$work/counter.yaml"
grep -q "$hello_port" "$work/hello.yaml" && grep -q "$counter_port" "$work/counter.yaml" ||
    die "manifests/hello.yaml or counter.yaml no longer listen on 8081 / 8080; update this script"

# Spread the counter over COUNTER_KEYS keys: one hot key would measure JetStream CAS
# retries rather than the host.
cat >"$work/counter.lua" <<EOF
math.randomseed(os.time())
request = function()
    return wrk.format("GET", "/k" .. math.random($COUNTER_KEYS))
end
EOF

busy="$(machine_busy)"
((busy < 10)) || log "warning: the machine is already $busy% busy; figures will be noisy"

# An OTLP/HTTP sink for TRACING=1: reads each export, answers 200, and counts the
# requests and bytes it was sent (so the rows show spans did leave the host).
if [[ "$TRACING" == 1 ]]; then
    sink_port="$(free_port)"
    cat >"$work/otlp-sink.py" <<'PY'
import http.server, sys
counts = sys.argv[2]
class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("content-length", 0))
        self.rfile.read(n)
        with open(counts, "a") as f:
            f.write(f"{n}\n")
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
PY
    python3 "$work/otlp-sink.py" "$sink_port" "$work/otlp-counts" &
    sink_pid=$!
fi

# lattice_round ROUND LABEL [VAR=VALUE...]: lattice up with the samples and the
# environment given, hello benched as "lattice hello<LABEL>" (and, without a label,
# the counter too).
lattice_round() {
    local round="$1" label="$2"
    shift 2
    nats_port="$(free_port)"
    log "round $round/$ROUNDS: lattice up$label (nats on $nats_port, hello on $hello_port, counter on $counter_port)"
    # shellcheck disable=SC2086 # LATTICE_ARGS is a list of words
    start_server lattice env "$@" "$lattice" up --nats-port "$nats_port" \
        --state-dir "$work/state-$round${label// /_}" \
        --app "$work/hello.yaml" --app "$work/counter.yaml" $LATTICE_ARGS
    wait_http "http://127.0.0.1:$hello_port/" 120
    wait_http "http://127.0.0.1:$counter_port/warmup" 60
    bench "$round" "lattice hello$label" "http://127.0.0.1:$hello_port/"
    [[ -n "$label" ]] || bench "$round" "lattice counter (NATS KV)" "http://127.0.0.1:$counter_port/" "$work/counter.lua"
    stop_server
}

# --- rounds ----------------------------------------------------------------------

for round in $(seq 1 "$ROUNDS"); do
    lattice_round "$round" ""
    if [[ "$TRACING" == 1 ]]; then
        for ratio in 0.01 1; do
            : >"$work/otlp-counts"
            lattice_round "$round" ", traces $(awk -v r="$ratio" 'BEGIN { printf "%g%%", r * 100 }')" \
                OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_port" \
                OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG="$ratio"
            log "round $round, sampling $ratio: the OTLP sink got $(wc -l <"$work/otlp-counts") exports, $(awk '{ s += $1 } END { print s + 0 }' "$work/otlp-counts") bytes"
        done
    fi

    [[ "$SKIP_WASMTIME" == 1 ]] && continue
    log "round $round/$ROUNDS: $("$WASMTIME" --version) serve on $wasmtime_port"
    # -Scli: hello needs only wasi:http/proxy; the flag matches the peer baseline.
    start_server wasmtime "$WASMTIME" serve -Scli --addr "127.0.0.1:$wasmtime_port" "$wasm_dir/hello.wasm"
    wait_http "http://127.0.0.1:$wasmtime_port/" 60
    bench "$round" "wasmtime serve hello" "http://127.0.0.1:$wasmtime_port/"
    stop_server

    if [[ "$WASMTIME_TUNED" == 1 ]]; then
        log "round $round/$ROUNDS: wasmtime serve -O $tuned_flags"
        start_server wasmtime-tuned "$WASMTIME" serve -Scli -O "$tuned_flags" \
            --addr "127.0.0.1:$wasmtime_port" "$wasm_dir/hello.wasm"
        wait_http "http://127.0.0.1:$wasmtime_port/" 60
        bench "$round" "wasmtime serve hello, pagemap-scan" "http://127.0.0.1:$wasmtime_port/"
        stop_server
    fi
done

# --- report: medians over the rounds, each column on its own ----------------------

echo
echo "HTTP: wrk, ${DURATION} per row after ${WARMUP} warm-up, median of $ROUNDS round(s); server on CPU ${SERVER_CPUS:-any}, wrk on CPU ${LOAD_CPUS:-any}; $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)); machine $busy% busy before the run"
echo
echo "| target | connections | req/s | p50 | p99 | errors (sum) | server CPU µs/req |"
echo "|---|---|---|---|---|---|---|"
awk -F'\t' '
    function median(list,    n, v, i, j, t) {
        n = split(list, v, " ")
        for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    function fmt(us) { return us < 1000 ? sprintf("%d µs", us) : sprintf("%.2f ms", us / 1000) }
    {
        k = $2 "\t" $3
        if (!(k in seen)) { seen[k] = 1; order[++rows] = k }
        rps[k] = rps[k] " " $4; p50[k] = p50[k] " " $5; p99[k] = p99[k] " " $6
        errs[k] += $7; cpu[k] = cpu[k] " " $8
    }
    END {
        for (i = 1; i <= rows; i++) {
            k = order[i]; split(k, f, "\t")
            printf "| %s | %s | %.0f | %s | %s | %d | %.0f |\n", f[1], f[2], median(rps[k]), fmt(median(p50[k])), fmt(median(p99[k])), errs[k], median(cpu[k])
            m[k] = median(rps[k]); c[k] = median(cpu[k])
        }
        print ""
        for (i = 1; i <= rows; i++) {
            k = order[i]; split(k, f, "\t")
            if (f[1] != "lattice hello") continue
            for (j = 1; j <= rows; j++) {
                o = order[j]; split(o, g, "\t")
                if (g[1] !~ /^wasmtime serve/ || g[2] != f[2] || m[o] == 0) continue
                printf "lattice / %s, %s connection(s): %.2fx req/s (%.0f vs %.0f); server CPU per request %.0f vs %.0f µs\n", g[1], f[2], m[k] / m[o], m[k], m[o], c[k], c[o]
            }
            for (j = 1; j <= rows; j++) {
                o = order[j]; split(o, g, "\t")
                if (g[1] !~ /^lattice hello, traces/ || g[2] != f[2] || m[k] == 0) continue
                printf "%s / lattice hello, %s connection(s): %.3fx req/s (%.0f vs %.0f); server CPU per request %.0f vs %.0f µs\n", g[1], f[2], m[o] / m[k], m[o], m[k], c[o], c[k]
            }
        }
    }' "$results"
