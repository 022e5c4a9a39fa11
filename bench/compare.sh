#!/usr/bin/env bash
# Runs the same loads against the host and against Redis, alternating, and
# prints tables: throughput and CPU time per request of the host with its
# default config, of the host with one worker thread, and of Redis, the
# memory of a fresh host and a fresh Redis holding idle connections (RSS and
# PSS, each summed over the server's process tree), and the ratios of each
# host to Redis.
#
# Everything runs on loopback. Knobs (environment):
#   ROUNDS=3          rounds of host/redis alternation; the table shows medians
#   DURATION=5s       length of each load run
#   CONNS=50          connections for the throughput runs
#   PIPELINE=16       pipeline depth of the pipelined run
#   HOOKS=1000        extra hooks for the dispatch-cost comparison
#   IDLE_CONNS=10000  idle connections for the memory comparison
#   IDLE_HOLD=3s      how long they are held
#   BENCH_THREADS=1   worker threads of the load generator
#   HOST_WORKERS=1    worker_threads of the second host (the first runs the
#                     default config, which sets none); one thread serving
#                     connections, like Redis, leaves the other core to the
#                     load generator
#   FANOUT_SUBS=1000  subscribers of the fan-out run (one publisher): chat
#                     SAY to a room against Redis PUBLISH to a channel
#   SKIP_FANOUT=1     leave the fan-out run out
#   WORK_US=200       CPU time of each request of the CPU-bound run: the
#                     WORK hook of test-plugins/crashkit, which keeps its
#                     thread on the CPU that long, asked by WORK_CONNS=8
#                     connections (a client that needs little CPU), on the
#                     host with the default config and with one thread
#   SKIP_WORK=1       leave the CPU-bound run out
#   SKIP_BUILD=1      use the existing release build
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-50}
PIPELINE=${PIPELINE:-16}
HOOKS=${HOOKS:-1000}
IDLE_CONNS=${IDLE_CONNS:-10000}
IDLE_HOLD=${IDLE_HOLD:-3s}
BENCH_THREADS=${BENCH_THREADS:-1}
HOST_WORKERS=${HOST_WORKERS:-1}
FANOUT_SUBS=${FANOUT_SUBS:-1000}
WORK_US=${WORK_US:-200}
WORK_CONNS=${WORK_CONNS:-8}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
release=${CARGO_TARGET_DIR:-$root/target}/release
work=$(mktemp -d "${TMPDIR:-/tmp}/compare.XXXXXX")
started_pids=()

say() { printf '%s\n' "$*" >&2; }
die() { say "compare.sh: $*"; exit 1; }

# descendants PID...: "pid starttime" of every process descending from the
# given ones, from the ppid field of /proc/*/stat (the comm field before it
# may hold spaces, so the line is cut after its last ')').
descendants() {
    local stat line rest
    local -a fields
    local -A parent=() start=()
    for stat in /proc/[0-9]*/stat; do
        read -r line 2>/dev/null <"$stat" || continue
        rest=${line##*) }
        read -r -a fields <<<"$rest"
        parent[${line%% *}]=${fields[1]}
        start[${line%% *}]=${fields[19]}
    done
    local -a queue=("$@")
    local pid child
    while ((${#queue[@]})); do
        pid=${queue[0]}
        queue=("${queue[@]:1}")
        for child in "${!parent[@]}"; do
            if [[ ${parent[$child]} == "$pid" ]]; then
                echo "$child ${start[$child]}"
                queue+=("$child")
            fi
        done
    done
}

# stop_started: stops what this script has started so far, and only that:
# SIGTERM, then SIGKILL for anything still there after a few seconds. A
# server's own child processes are its business, but any it leaves behind
# (the same pid with the same start time) are killed too, so that nothing
# outlives the script.
stop_started() {
    local pid tries leftover start now
    ((${#started_pids[@]})) || return 0
    leftover=$(descendants "${started_pids[@]}")
    for pid in "${started_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${started_pids[@]}"; do
        for ((tries = 0; tries < 50; tries++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    while read -r pid start; do
        [[ -n $pid ]] || continue
        now=$(sed 's/.*) /x x /' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f22) || true
        [[ $now == "$start" ]] && kill -9 "$pid" 2>/dev/null || true
    done <<<"$leftover"
    started_pids=()
}
cleanup() {
    stop_started
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- prerequisites ----------------------------------------------------------

if ! command -v redis-server >/dev/null 2>&1; then
    say "installing redis-server from Debian packages"
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
fi

if [[ -z ${SKIP_BUILD:-} ]]; then
    say "building the workspace (release)"
    (cd "$root" && cargo build --release --workspace --quiet)
fi
for f in linehost bench libhello.so; do
    [[ -e $release/$f ]] || die "missing $release/$f"
done
bench=$release/bench

# Both servers and the load generator each hold IDLE_CONNS sockets at once;
# they inherit this shell's limit. Only ever raised here.
need_fds=$((IDLE_CONNS + 1024))
soft=$(ulimit -Sn)
hard=$(ulimit -Hn)
if [[ $soft != unlimited && $soft -lt $need_fds ]]; then
    if [[ $hard != unlimited && $hard -lt $need_fds ]]; then
        say "warning: hard open-file limit $hard is below $need_fds; idle runs may fail"
        ulimit -n "$hard"
    else
        ulimit -n "$need_fds"
    fi
fi

# --- helpers ----------------------------------------------------------------

# A loopback port nothing listens on (bounded number of tries), below the
# ephemeral range: a port the load generator's own connections hold there
# looks free to a connect test but cannot be bound.
free_port() {
    local port tries low
    low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    ((low > 20000)) || low=32768
    for ((tries = 0; tries < 50; tries++)); do
        port=$((10000 + RANDOM % (low - 10000)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    die "no free loopback port found"
}

# start_host NAME CONFIG: starts the host on a free loopback port; sets
# host_pid and host_addr.
start_host() {
    local name=$1 config=$2 line="" tries
    "$release/linehost" --config "$config" --listen 127.0.0.1:0 \
        >"$work/$name.out" 2>"$work/$name.err" </dev/null &
    host_pid=$!
    started_pids+=("$host_pid")
    for ((tries = 0; tries < 100; tries++)); do
        line=$(head -n 1 "$work/$name.out" 2>/dev/null || true)
        [[ $line == "listening on "* ]] && break
        kill -0 "$host_pid" 2>/dev/null || break
        sleep 0.1
    done
    [[ $line == "listening on "* ]] || die "host $name did not start: $(cat "$work/$name.err")"
    host_addr=${line#listening on }
}

# start_redis NAME: starts redis-server on a free loopback port; sets
# redis_pid and redis_addr.
start_redis() {
    local name=$1 port tries
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --protected-mode no --daemonize no --maxclients "$((IDLE_CONNS + 1000))" \
        >"$work/$name.log" 2>&1 </dev/null &
    redis_pid=$!
    started_pids+=("$redis_pid")
    redis_addr=127.0.0.1:$port
    for ((tries = 0; tries < 50; tries++)); do
        if "$bench" --addr "$redis_addr" --request PING --expect '^\+PONG$' \
            --requests 1 --connections 1 --strict --json >/dev/null 2>&1; then
            return
        fi
        kill -0 "$redis_pid" 2>/dev/null || break
        sleep 0.1
    done
    die "redis $name did not start: $(cat "$work/$name.log")"
}

# field JSON KEY: a number from bench's one-line JSON.
field() {
    sed -n "s/.*\"$2\":\([-0-9.eE+]*\).*/\1/p" <<<"$1"
}

median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2];
              else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

host_load=(--greeting '^MSG Welcome' --request HELLO --expect '^MSG Hello from ')
redis_load=(--request PING --expect '^\+PONG$')
# testkit, listed first, answers HELLO itself, after walking its NOOP hooks;
# either greeting proves the request went through dispatch.
hooks_load=(--greeting '^MSG Welcome' --request HELLO --expect '^MSG (Hello from |testkit says hello$)')
work_load=(--greeting '^MSG Welcome' --request "WORK $WORK_US" --expect "^MSG worked $WORK_US\$")
errors_seen=0

# load ARRAY ADDR KEY ARGS...: one bench run; appends its KEY figure to
# ARRAY, and warns (and remembers) when the run had errors. Not run in a
# subshell, so that `die` stops the script and the error count sticks.
load() {
    local -n into=$1
    local addr=$2 key=$3
    shift 3
    run_bench "$addr" "$@"
    into+=("$(field "$bench_out" "$key")")
}

# load_cpu RPS_ARRAY CPU_ARRAY ADDR PID ARGS...: one bench run that also
# reads the CPU time of PID and its descendants (every thread, from /proc)
# over the run; appends req/s to RPS_ARRAY and CPU microseconds per request
# to CPU_ARRAY.
load_cpu() {
    local -n rps_into=$1 cpu_into=$2
    local addr=$3 pid=$4 cpu
    shift 4
    run_bench "$addr" --cpu-pid "$pid" "$@"
    cpu=$(field "$bench_out" server_cpu_us_per_req)
    [[ -n $cpu ]] || die "no CPU figure for pid $pid (did it exit?): $bench_out"
    rps_into+=("$(field "$bench_out" rps)")
    cpu_into+=("$cpu")
}

# run_bench ADDR ARGS...: sets bench_out to bench's JSON; warns (and
# remembers) when the run had errors.
run_bench() {
    local addr=$1 errors
    shift
    bench_out=$("$bench" --addr "$addr" --threads "$BENCH_THREADS" --duration "$DURATION" --json "$@") ||
        die "bench failed against $addr"
    errors=$(field "$bench_out" errors)
    if [[ $errors != 0 ]]; then
        say "warning: $errors errors against $addr ($*): $bench_out"
        errors_seen=$((errors_seen + errors))
    fi
}

# compare-tls.sh sources this file for its prerequisites and helpers.
if [[ -n ${COMPARE_HELPERS_ONLY:-} ]]; then
    return 0
fi

# --- servers ----------------------------------------------------------------

max_conns=$((IDLE_CONNS + 1000))
# What every host config shares. The default config leaves worker_threads
# unset; only host-1.toml sets it.
host_settings="server_name = \"compare\"
max_connections = $max_conns"
cat >"$work/host.toml" <<TOML
$host_settings
[[plugin]]
path = "$release/libhello.so"
TOML
cat >"$work/host-1.toml" <<TOML
$host_settings
worker_threads = $HOST_WORKERS
[[plugin]]
path = "$release/libhello.so"
TOML
hooks_ready=1
if [[ -e $release/libtestkit.so ]]; then
    cat >"$work/host-hooks.toml" <<TOML
$host_settings
[[plugin]]
path = "$release/libtestkit.so"
[plugin.settings]
extra_hooks = $HOOKS
[[plugin]]
path = "$release/libhello.so"
TOML
else
    hooks_ready=0
    say "warning: $release/libtestkit.so missing; skipping the $HOOKS-hook comparison"
fi

# host_configs NAME LIBRARY: host-NAME-d.toml (the default config) and
# host-NAME-1.toml (HOST_WORKERS threads), each loading LIBRARY alone.
host_configs() {
    local workers
    for workers in d 1; do
        {
            echo "$host_settings"
            [[ $workers == 1 ]] && echo "worker_threads = $HOST_WORKERS"
            echo "[[plugin]]"
            echo "path = \"$release/$2\""
        } >"$work/host-$1-$workers.toml"
    done
}

# optional_run NAME LIBRARY SKIP WHAT: prints 1 after writing NAME's host
# configs (host_configs), or 0 if SKIP is set, or LIBRARY is missing (with
# a warning that WHAT is left out).
optional_run() {
    if [[ -n $3 ]]; then
        echo 0
    elif [[ -e $release/$2 ]]; then
        host_configs "$1" "$2"
        echo 1
    else
        say "warning: $release/$2 missing; skipping $4"
        echo 0
    fi
}
fanout_ready=$(optional_run chat libchat.so "${SKIP_FANOUT:-}" "the fan-out comparison")
work_ready=$(optional_run work libcrashkit.so "${SKIP_WORK:-}" "the CPU-bound comparison")

start_host host "$work/host.toml"
hostd_addr=$host_addr hostd_pid=$host_pid
start_host host-1 "$work/host-1.toml"
host1_addr=$host_addr host1_pid=$host_pid
if ((hooks_ready)); then
    start_host host-hooks "$work/host-hooks.toml"
    hooks_addr=$host_addr
fi
if ((fanout_ready)); then
    start_host host-chat-d "$work/host-chat-d.toml"
    chatd_addr=$host_addr chatd_pid=$host_pid
    start_host host-chat-1 "$work/host-chat-1.toml"
    chat1_addr=$host_addr chat1_pid=$host_pid
fi
if ((work_ready)); then
    start_host host-work-d "$work/host-work-d.toml"
    workd_addr=$host_addr
    start_host host-work-1 "$work/host-work-1.toml"
    work1_addr=$host_addr
fi
start_redis redis
say "host (default config) on $hostd_addr, host (worker_threads = $HOST_WORKERS) on $host1_addr, redis on $redis_addr"

# --- loads, alternating hosts and redis -------------------------------------

# fanout RATE_ARRAY CPU_ARRAY ADDR PID ARGS...: one fan-out run, one
# publisher and FANOUT_SUBS subscribers; appends the lines delivered per
# second to RATE_ARRAY and the server's CPU microseconds per delivered
# line to CPU_ARRAY.
fanout() {
    local -n rate_into=$1 fcpu_into=$2
    local addr=$3 pid=$4 out
    shift 4
    out=$("$bench" fanout --addr "$addr" --subscribers "$FANOUT_SUBS" --duration "$DURATION" \
        --cpu-pid "$pid" --threads "$BENCH_THREADS" --json "$@") || {
        say "warning: fan-out run against $addr lost subscribers: $out"
        errors_seen=$((errors_seen + 1))
    }
    if [[ $(field "$out" delivered) != "$(field "$out" expected)" ]]; then
        say "warning: not every line was delivered by $addr: $out"
        errors_seen=$((errors_seen + 1))
    fi
    rate_into+=("$(field "$out" delivered_per_s)")
    fcpu_into+=("$(field "$out" server_cpu_us_per_delivery)")
}

# Suffixes: d = host with the default config, 1 = host with HOST_WORKERS
# worker threads, r = Redis; pp = ping-pong, pl = pipelined, c = CPU
# microseconds per request.
pp_d=() pp_1=() pp_r=() ppc_d=() ppc_1=() ppc_r=()
pl_d=() pl_1=() pl_r=() plc_d=() plc_1=() plc_r=()
lat_d=() lat_1=() lat_r=() hk_1=() hk_n=()
fo_d=() fo_1=() fo_r=() foc_d=() foc_1=() foc_r=()
wk_d=() wk_1=()
for ((round = 1; round <= ROUNDS; round++)); do
    say "round $round/$ROUNDS"
    load_cpu pp_d ppc_d "$hostd_addr" "$hostd_pid" "${host_load[@]}" -c "$CONNS" -P 1
    load_cpu pp_1 ppc_1 "$host1_addr" "$host1_pid" "${host_load[@]}" -c "$CONNS" -P 1
    load_cpu pp_r ppc_r "$redis_addr" "$redis_pid" "${redis_load[@]}" -c "$CONNS" -P 1
    load_cpu pl_d plc_d "$hostd_addr" "$hostd_pid" "${host_load[@]}" -c "$CONNS" -P "$PIPELINE"
    load_cpu pl_1 plc_1 "$host1_addr" "$host1_pid" "${host_load[@]}" -c "$CONNS" -P "$PIPELINE"
    load_cpu pl_r plc_r "$redis_addr" "$redis_pid" "${redis_load[@]}" -c "$CONNS" -P "$PIPELINE"
    load lat_d "$hostd_addr" p50_us "${host_load[@]}" -c 1 -P 1
    load lat_1 "$host1_addr" p50_us "${host_load[@]}" -c 1 -P 1
    load lat_r "$redis_addr" p50_us "${redis_load[@]}" -c 1 -P 1
    if ((hooks_ready)); then
        load hk_n "$hooks_addr" rps "${hooks_load[@]}" -c "$CONNS" -P 1
        load hk_1 "$hostd_addr" rps "${host_load[@]}" -c "$CONNS" -P 1
    fi
    if ((fanout_ready)); then
        fanout fo_d foc_d "$chatd_addr" "$chatd_pid" --protocol chat --greeting '^MSG Welcome'
        fanout fo_1 foc_1 "$chat1_addr" "$chat1_pid" --protocol chat --greeting '^MSG Welcome'
        fanout fo_r foc_r "$redis_addr" "$redis_pid" --protocol redis
    fi
    if ((work_ready)); then
        load wk_d "$workd_addr" rps "${work_load[@]}" -c "$WORK_CONNS" -P 1
        load wk_1 "$work1_addr" rps "${work_load[@]}" -c "$WORK_CONNS" -P 1
    fi
done

# --- memory with idle connections, on fresh servers -------------------------

# Each server alone: other instances of the same executable (or other
# servers' libraries) would share their pages with it and lower its PSS.
stop_started

# idle ADDR PID ARGS...: holds IDLE_CONNS idle connections and sets idle_rss
# and idle_pss to the server's VmRSS and PSS meanwhile, each summed over PID
# and its descendants. The RSS sum counts the pages the host's supervisor
# and serving child share (executable, libraries) twice; PSS counts a page
# shared by k processes as 1/k in each.
idle() {
    local addr=$1 pid=$2 out
    shift 2
    out=$("$bench" idle --addr "$addr" --connections "$IDLE_CONNS" --hold "$IDLE_HOLD" \
        --rss-pid "$pid" --threads "$BENCH_THREADS" --json "$@") || die "bench idle failed against $addr"
    if [[ $(field "$out" failed) != 0 || $(field "$out" closed_by_server) != 0 ]]; then
        say "warning: not every idle connection stayed open against $addr: $out"
        errors_seen=$((errors_seen + 1))
    fi
    idle_rss=$(field "$out" rss_kib)
    idle_pss=$(field "$out" pss_kib)
}
say "idle: $IDLE_CONNS connections each"
start_host host-idle "$work/host.toml"
idle "$host_addr" "$host_pid" --greeting '^MSG Welcome'
rss_h=$idle_rss pss_h=$idle_pss
stop_started
start_redis redis-idle
idle "$redis_addr" "$redis_pid"
rss_r=$idle_rss pss_r=$idle_pss

# --- report -----------------------------------------------------------------

# Markdown tables, so that they can be pasted as they are.
ratio() { # A B: A/B with two decimals
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "" || b == "" || b + 0 <= 0) print "n/a"; else printf "%.2f\n", a / b }'
}
num() { # VALUE FORMAT
    awk -v v="$1" -v f="$2" 'BEGIN { if (v == "") print "n/a"; else printf f "\n", v }'
}
row3() { # LABEL HOST-DEFAULT HOST-1 REDIS FORMAT
    printf '| %-44s | %14s | %14s | %14s |\n' "$1" "$(num "$2" "$5")" "$(num "$3" "$5")" "$(num "$4" "$5")"
}
row2() { # LABEL RATIO-DEFAULT RATIO-1
    printf '| %-52s | %20s | %24s |\n' "$1" "$2" "$3"
}

pp_d_m=$(median "${pp_d[@]}") pp_1_m=$(median "${pp_1[@]}") pp_r_m=$(median "${pp_r[@]}")
ppc_d_m=$(median "${ppc_d[@]}") ppc_1_m=$(median "${ppc_1[@]}") ppc_r_m=$(median "${ppc_r[@]}")
pl_d_m=$(median "${pl_d[@]}") pl_1_m=$(median "${pl_1[@]}") pl_r_m=$(median "${pl_r[@]}")
plc_d_m=$(median "${plc_d[@]}") plc_1_m=$(median "${plc_1[@]}") plc_r_m=$(median "${plc_r[@]}")
lat_d_m=$(median "${lat_d[@]}") lat_1_m=$(median "${lat_1[@]}") lat_r_m=$(median "${lat_r[@]}")

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo
echo "machine: $(nproc) cores, ${cpu:-unknown CPU}; $(redis-server --version | awk '{print $1, $2, $3}')"
echo "loads: ${DURATION} each, median of $ROUNDS rounds, bench with $BENCH_THREADS thread(s);"
echo "host default = the default config (worker_threads unset); host 1 thread = worker_threads = $HOST_WORKERS;"
echo "CPU = user + system time of every thread of the server and its child processes (/proc), per reply"
echo "RSS, PSS = of the server and its child processes (/proc), summed; PSS counts a page shared by k processes as 1/k"
echo
printf '| %-44s | %14s | %14s | %14s |\n' "metric" "host default" "host 1 thread" "redis"
printf '| %-44s | %14s | %14s | %14s |\n' "---" "---" "---" "---"
row3 "$CONNS conns ping-pong HELLO/PING (req/s)" "$pp_d_m" "$pp_1_m" "$pp_r_m" "%.0f"
row3 "$CONNS conns ping-pong, CPU per request (us)" "$ppc_d_m" "$ppc_1_m" "$ppc_r_m" "%.2f"
row3 "$CONNS conns pipeline $PIPELINE (req/s)" "$pl_d_m" "$pl_1_m" "$pl_r_m" "%.0f"
row3 "$CONNS conns pipeline $PIPELINE, CPU per request (us)" "$plc_d_m" "$plc_1_m" "$plc_r_m" "%.3f"
row3 "1 conn ping-pong p50 latency (us)" "$lat_d_m" "$lat_1_m" "$lat_r_m" "%.1f"
row3 "RSS with $IDLE_CONNS idle conns (KiB)" "$rss_h" "" "$rss_r" "%.0f"
row3 "PSS with $IDLE_CONNS idle conns (KiB)" "$pss_h" "" "$pss_r" "%.0f"
if ((fanout_ready)); then
    fo_d_m=$(median "${fo_d[@]}") fo_1_m=$(median "${fo_1[@]}") fo_r_m=$(median "${fo_r[@]}")
    foc_d_m=$(median "${foc_d[@]}") foc_1_m=$(median "${foc_1[@]}") foc_r_m=$(median "${foc_r[@]}")
    row3 "fan-out to $FANOUT_SUBS, SAY/PUBLISH (lines/s)" "$fo_d_m" "$fo_1_m" "$fo_r_m" "%.0f"
    row3 "fan-out, CPU per delivered line (us)" "$foc_d_m" "$foc_1_m" "$foc_r_m" "%.3f"
fi
echo
printf '| %-52s | %20s | %24s |\n' "load ($CONNS conns)" "host default / Redis" "host 1 thread / Redis"
printf '| %-52s | %20s | %24s |\n' "---" "---" "---"
row2 "ping-pong, throughput" "$(ratio "$pp_d_m" "$pp_r_m")" "$(ratio "$pp_1_m" "$pp_r_m")"
row2 "ping-pong, Redis CPU per request / host's" "$(ratio "$ppc_r_m" "$ppc_d_m")" "$(ratio "$ppc_r_m" "$ppc_1_m")"
row2 "pipeline $PIPELINE, throughput" "$(ratio "$pl_d_m" "$pl_r_m")" "$(ratio "$pl_1_m" "$pl_r_m")"
row2 "pipeline $PIPELINE, Redis CPU per request / host's" "$(ratio "$plc_r_m" "$plc_d_m")" "$(ratio "$plc_r_m" "$plc_1_m")"
row2 "1 conn ping-pong p50 latency, host / Redis" "$(ratio "$lat_d_m" "$lat_r_m")" "$(ratio "$lat_1_m" "$lat_r_m")"
row2 "RSS with $IDLE_CONNS idle conns, host / Redis" "$(ratio "$rss_h" "$rss_r")" "n/a"
row2 "PSS with $IDLE_CONNS idle conns, host / Redis" "$(ratio "$pss_h" "$pss_r")" "n/a"
if ((fanout_ready)); then
    row2 "fan-out to $FANOUT_SUBS, lines delivered per second" "$(ratio "$fo_d_m" "$fo_r_m")" "$(ratio "$fo_1_m" "$fo_r_m")"
    row2 "fan-out, Redis CPU per delivered line / host's" "$(ratio "$foc_r_m" "$foc_d_m")" "$(ratio "$foc_r_m" "$foc_1_m")"
fi
echo "(throughput and CPU ratios above 1 favour the host; latency, RSS and PSS ratios below 1 do)"
echo
if ((hooks_ready)); then
    printf '| %-44s | %14s | %14s | %9s |\n' "metric (host default config)" "$HOOKS hooks" "1 hook" "$HOOKS/1"
    printf '| %-44s | %14s | %14s | %9s |\n' "---" "---" "---" "---"
    hk_n_m=$(median "${hk_n[@]}") hk_1_m=$(median "${hk_1[@]}")
    printf '| %-44s | %14s | %14s | %9s |\n' "$CONNS conns ping-pong HELLO (req/s)" \
        "$(num "$hk_n_m" "%.0f")" "$(num "$hk_1_m" "%.0f")" "$(ratio "$hk_n_m" "$hk_1_m")"
else
    echo "host with $HOOKS hooks: skipped (no libtestkit.so)"
fi
if ((work_ready)); then
    echo
    printf '| %-44s | %14s | %14s | %9s |\n' "CPU-bound requests (crashkit WORK $WORK_US)" "host default" "host 1 thread" "default/1"
    printf '| %-44s | %14s | %14s | %9s |\n' "---" "---" "---" "---"
    wk_d_m=$(median "${wk_d[@]}") wk_1_m=$(median "${wk_1[@]}")
    printf '| %-44s | %14s | %14s | %9s |\n' "$WORK_CONNS conns ping-pong (req/s)" \
        "$(num "$wk_d_m" "%.0f")" "$(num "$wk_1_m" "%.0f")" "$(ratio "$wk_d_m" "$wk_1_m")"
fi
if ((errors_seen)); then
    echo
    echo "warning: some runs had errors (see above); their figures are suspect"
    exit 1
fi
