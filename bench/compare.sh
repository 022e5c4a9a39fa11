#!/usr/bin/env bash
# Runs the same loads against the host and against Redis, alternating, and
# prints a table: host, Redis, and the ratio host/Redis.
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
#   HOST_WORKERS=1    the host's worker_threads; one thread serving
#                     connections, like Redis, leaves the other core to the
#                     load generator
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

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
release=${CARGO_TARGET_DIR:-$root/target}/release
work=$(mktemp -d "${TMPDIR:-/tmp}/compare.XXXXXX")
started_pids=()

say() { printf '%s\n' "$*" >&2; }
die() { say "compare.sh: $*"; exit 1; }

# Stops what this script started, and only that: SIGTERM, then SIGKILL for
# anything still there after a few seconds.
cleanup() {
    local pid tries
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
for f in host bench libhello.so; do
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
    "$release/host" --config "$config" --listen 127.0.0.1:0 \
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
errors_seen=0

# load ARRAY ADDR KEY ARGS...: one bench run; appends its KEY figure to
# ARRAY, and warns (and remembers) when the run had errors. Not run in a
# subshell, so that `die` stops the script and the error count sticks.
load() {
    local -n into=$1
    local addr=$2 key=$3 out errors
    shift 3
    out=$("$bench" --addr "$addr" --threads "$BENCH_THREADS" --duration "$DURATION" --json "$@") ||
        die "bench failed against $addr"
    errors=$(field "$out" errors)
    if [[ $errors != 0 ]]; then
        say "warning: $errors errors against $addr ($*): $out"
        errors_seen=$((errors_seen + errors))
    fi
    into+=("$(field "$out" "$key")")
}

# --- servers ----------------------------------------------------------------

max_conns=$((IDLE_CONNS + 1000))
# What both host configs share.
host_settings="server_name = \"compare\"
max_connections = $max_conns
worker_threads = $HOST_WORKERS"
cat >"$work/host.toml" <<TOML
$host_settings
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

start_host host "$work/host.toml"
host1_addr=$host_addr
if ((hooks_ready)); then
    start_host host-hooks "$work/host-hooks.toml"
    hooks_addr=$host_addr
fi
start_redis redis
say "host on $host1_addr, redis on $redis_addr"

# --- loads, alternating host and redis --------------------------------------

pp_h=() pp_r=() pl_h=() pl_r=() lat_h=() lat_r=() hk_1=() hk_n=()
for ((round = 1; round <= ROUNDS; round++)); do
    say "round $round/$ROUNDS"
    load pp_h "$host1_addr" rps "${host_load[@]}" -c "$CONNS" -P 1
    load pp_r "$redis_addr" rps "${redis_load[@]}" -c "$CONNS" -P 1
    load pl_h "$host1_addr" rps "${host_load[@]}" -c "$CONNS" -P "$PIPELINE"
    load pl_r "$redis_addr" rps "${redis_load[@]}" -c "$CONNS" -P "$PIPELINE"
    load lat_h "$host1_addr" p50_us "${host_load[@]}" -c 1 -P 1
    load lat_r "$redis_addr" p50_us "${redis_load[@]}" -c 1 -P 1
    if ((hooks_ready)); then
        load hk_n "$hooks_addr" rps "${hooks_load[@]}" -c "$CONNS" -P 1
        load hk_1 "$host1_addr" rps "${host_load[@]}" -c "$CONNS" -P 1
    fi
done

# --- memory with idle connections, on fresh servers -------------------------

# idle ADDR PID ARGS...: holds IDLE_CONNS idle connections and sets idle_rss
# to the server's VmRSS meanwhile.
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
}
say "idle: $IDLE_CONNS connections each"
start_host host-idle "$work/host.toml"
idle "$host_addr" "$host_pid" --greeting '^MSG Welcome'
rss_h=$idle_rss
start_redis redis-idle
idle "$redis_addr" "$redis_pid"
rss_r=$idle_rss

# --- report -----------------------------------------------------------------

row() { # LABEL HOST REDIS FORMAT
    awk -v l="$1" -v h="$2" -v r="$3" -v f="$4" 'BEGIN {
        ratio = (r + 0 > 0) ? sprintf("%.2f", h / r) : "n/a";
        printf "%-46s " f " " f " %9s\n", l, h, r, ratio }'
}

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo
echo "machine: $(nproc) cores, ${cpu:-unknown CPU}; $(redis-server --version | awk '{print $1, $2, $3}')"
echo "loads: ${DURATION} each, median of $ROUNDS rounds, bench with $BENCH_THREADS thread(s), host with worker_threads = $HOST_WORKERS"
echo
printf '%-46s %14s %14s %9s\n' "metric" "host" "redis" "host/redis"
row "$CONNS conns ping-pong HELLO/PING (req/s)" "$(median "${pp_h[@]}")" "$(median "${pp_r[@]}")" "%14.0f"
row "$CONNS conns pipeline $PIPELINE (req/s)" "$(median "${pl_h[@]}")" "$(median "${pl_r[@]}")" "%14.0f"
row "1 conn ping-pong p50 latency (us)" "$(median "${lat_h[@]}")" "$(median "${lat_r[@]}")" "%14.1f"
row "RSS with $IDLE_CONNS idle conns (KiB)" "$rss_h" "$rss_r" "%14.0f"
echo
if ((hooks_ready)); then
    printf '%-46s %14s %14s %9s\n' "metric" "$HOOKS hooks" "1 hook" "ratio"
    row "host $CONNS conns ping-pong HELLO (req/s)" "$(median "${hk_n[@]}")" "$(median "${hk_1[@]}")" "%14.0f"
else
    echo "host with $HOOKS hooks: skipped (no libtestkit.so)"
fi
if ((errors_seen)); then
    echo
    echo "warning: some runs had errors (see above); their figures are suspect"
    exit 1
fi
