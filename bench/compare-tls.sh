#!/usr/bin/env bash
# The cost of TLS: the same loads over plain TCP and over TLS, against one
# host (worker_threads = HOST_WORKERS, both listeners) and one Redis
# (port and tls-port), alternating, all in one run. Prints a table of
# throughput and CPU time per request of each, and the TLS/plain ratios.
#
# Shares compare.sh's knobs (ROUNDS, DURATION, CONNS, PIPELINE,
# BENCH_THREADS, HOST_WORKERS, SKIP_BUILD) and its helpers. Besides:
#   BASE_HOST=PATH    also load a host binary built from other code (say
#                     main's target/release/linehost, with the libhello.so
#                     beside it) over plain TCP, to compare the plain path
#                     of the two builds in the same run
# The certificate is a self-signed one for localhost (P-256), made with
# openssl in the run's private directory; Redis runs with
# tls-auth-clients no, the host without client_ca.
set -euo pipefail

IDLE_CONNS=${IDLE_CONNS:-1000}
COMPARE_HELPERS_ONLY=1
# shellcheck source=compare.sh
source "$(dirname "${BASH_SOURCE[0]}")/compare.sh"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -addext basicConstraints=critical,CA:FALSE 2>/dev/null ||
    die "openssl could not make a certificate"
chmod 600 "$work/key.pem"
tls_client=(--tls --ca "$work/cert.pem" --server-name localhost)

cat >"$work/host-tls.toml" <<TOML
server_name = "compare"
worker_threads = $HOST_WORKERS
[[plugin]]
path = "$release/libhello.so"
[tls]
listen = "127.0.0.1:0"
certificate = "$work/cert.pem"
key = "$work/key.pem"
TOML
start_host host-tls "$work/host-tls.toml"
hp_addr=$host_addr hp_pid=$host_pid
ht_addr=""
for ((tries = 0; tries < 50; tries++)); do
    ht_addr=$(sed -n 's/^listening on \(.*\) (tls)$/\1/p' "$work/host-tls.out")
    [[ -n $ht_addr ]] && break
    sleep 0.1
done
[[ -n $ht_addr ]] || die "the host announced no TLS address"

base_ready=0
if [[ -n ${BASE_HOST:-} ]]; then
    cat >"$work/host-base.toml" <<TOML
server_name = "compare"
worker_threads = $HOST_WORKERS
[[plugin]]
path = "$(dirname "$BASE_HOST")/libhello.so"
TOML
    saved_release=$release
    release=$(dirname "$BASE_HOST")
    start_host host-base "$work/host-base.toml"
    release=$saved_release
    hb_addr=$host_addr hb_pid=$host_pid
    base_ready=1
fi

redis_port=$(free_port)
redis_tls_port=$(free_port)
redis-server --port "$redis_port" --tls-port "$redis_tls_port" --bind 127.0.0.1 \
    --tls-cert-file "$work/cert.pem" --tls-key-file "$work/key.pem" \
    --tls-ca-cert-file "$work/cert.pem" --tls-auth-clients no \
    --save '' --appendonly no --protected-mode no --daemonize no \
    >"$work/redis-tls.log" 2>&1 </dev/null &
redis_pid=$!
started_pids+=("$redis_pid")
rp_addr=127.0.0.1:$redis_port rt_addr=127.0.0.1:$redis_tls_port
for ((tries = 0; tries < 50; tries++)); do
    if "$bench" --addr "$rt_addr" "${tls_client[@]}" "${redis_load[@]}" \
        --requests 1 --connections 1 --strict --json >/dev/null 2>&1; then
        break
    fi
    kill -0 "$redis_pid" 2>/dev/null || die "redis did not start: $(cat "$work/redis-tls.log")"
    sleep 0.1
done
say "host: plain $hp_addr, TLS $ht_addr; redis: plain $rp_addr, TLS $rt_addr"

# Suffixes: hp/ht = host plain/TLS, rp/rt = Redis plain/TLS, hb = BASE_HOST;
# pp = ping-pong, pl = pipelined, c = CPU microseconds per request.
for k in hp ht rp rt hb; do
    declare -a "pp_$k=()" "ppc_$k=()" "pl_$k=()" "plc_$k=()"
done
for ((round = 1; round <= ROUNDS; round++)); do
    say "round $round/$ROUNDS"
    for depth in 1 "$PIPELINE"; do
        if ((depth == 1)); then p=pp; else p=pl; fi
        load_cpu "${p}_hp" "${p}c_hp" "$hp_addr" "$hp_pid" "${host_load[@]}" -c "$CONNS" -P "$depth"
        load_cpu "${p}_ht" "${p}c_ht" "$ht_addr" "$hp_pid" "${host_load[@]}" "${tls_client[@]}" -c "$CONNS" -P "$depth"
        if ((base_ready)); then
            load_cpu "${p}_hb" "${p}c_hb" "$hb_addr" "$hb_pid" "${host_load[@]}" -c "$CONNS" -P "$depth"
        fi
        load_cpu "${p}_rp" "${p}c_rp" "$rp_addr" "$redis_pid" "${redis_load[@]}" -c "$CONNS" -P "$depth"
        load_cpu "${p}_rt" "${p}c_rt" "$rt_addr" "$redis_pid" "${redis_load[@]}" "${tls_client[@]}" -c "$CONNS" -P "$depth"
    done
done

m() { # ARRAY-NAME: its median, or empty
    local -n values=$1
    ((${#values[@]})) && median "${values[@]}" || echo ""
}
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "" || b == "" || b + 0 <= 0) print "n/a"; else printf "%.2f\n", a / b }'
}
num() {
    awk -v v="$1" -v f="$2" 'BEGIN { if (v == "") print "n/a"; else printf f "\n", v }'
}

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo
echo "machine: $(nproc) cores, ${cpu:-unknown CPU}; $(redis-server --version | awk '{print $1, $2, $3}')"
echo "loads: ${DURATION} each, $CONNS connections, median of $ROUNDS rounds, bench with $BENCH_THREADS thread(s);"
echo "host: worker_threads = $HOST_WORKERS, plain and [tls] listeners in one process tree; TLS: rustls (ring), P-256 certificate"
echo "CPU = user + system time of every thread of the server and its child processes (/proc), per reply"
echo
printf '| %-34s | %12s | %12s | %9s | %12s | %12s | %9s |\n' \
    "load" "host plain" "host TLS" "TLS/plain" "redis plain" "redis TLS" "TLS/plain"
printf '| %-34s | %12s | %12s | %9s | %12s | %12s | %9s |\n' --- --- --- --- --- --- ---
row() { # LABEL KEY FORMAT
    local hp ht rp rt
    hp=$(m "$2_hp") ht=$(m "$2_ht") rp=$(m "$2_rp") rt=$(m "$2_rt")
    printf '| %-34s | %12s | %12s | %9s | %12s | %12s | %9s |\n' "$1" \
        "$(num "$hp" "$3")" "$(num "$ht" "$3")" "$(ratio "$ht" "$hp")" \
        "$(num "$rp" "$3")" "$(num "$rt" "$3")" "$(ratio "$rt" "$rp")"
}
row "ping-pong (req/s)" pp "%.0f"
row "ping-pong, CPU per request (us)" ppc "%.2f"
row "pipeline $PIPELINE (req/s)" pl "%.0f"
row "pipeline $PIPELINE, CPU per request (us)" plc "%.3f"
echo
printf '| %-34s | %12s | %12s |\n' "TLS, host / Redis" "ping-pong" "pipeline $PIPELINE"
printf '| %-34s | %12s | %12s |\n' --- --- ---
printf '| %-34s | %12s | %12s |\n' "throughput" "$(ratio "$(m pp_ht)" "$(m pp_rt)")" "$(ratio "$(m pl_ht)" "$(m pl_rt)")"
printf '| %-34s | %12s | %12s |\n' "Redis CPU per request / host's" "$(ratio "$(m ppc_rt)" "$(m ppc_ht)")" "$(ratio "$(m plc_rt)" "$(m plc_ht)")"
if ((base_ready)); then
    echo
    echo "plain TCP, this build against BASE_HOST=$BASE_HOST:"
    printf '| %-34s | %12s | %12s | %9s |\n' "load" "this build" "BASE_HOST" "this/base"
    printf '| %-34s | %12s | %12s | %9s |\n' --- --- --- ---
    for pair in "ping-pong (req/s):pp:%.0f" "ping-pong, CPU per request (us):ppc:%.2f" \
        "pipeline $PIPELINE (req/s):pl:%.0f" "pipeline $PIPELINE, CPU per request (us):plc:%.3f"; do
        IFS=: read -r label key fmt <<<"$pair"
        hp=$(m "${key}_hp") hb=$(m "${key}_hb")
        printf '| %-34s | %12s | %12s | %9s |\n' "$label" "$(num "$hp" "$fmt")" "$(num "$hb" "$fmt")" "$(ratio "$hp" "$hb")"
    done
fi
if ((errors_seen)); then
    echo
    echo "warning: some runs had errors (see above); their figures are suspect"
    exit 1
fi
