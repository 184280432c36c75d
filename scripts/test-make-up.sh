#!/usr/bin/env bash
# End-to-end test of `make up` / `make down` (`make test-make-up`, run by
# `make test` after `cargo test`): the local cluster on free ports with the
# debug binaries `cargo test` already built, real Node Socket.IO clients on
# both gateways, the emitter's HTTP API, then `make down`.
#
# Shows that `make up` starts a working cluster and waits for it, that a
# second `make up` starts nothing, that events cross gateways (through the
# master and the two replicas) and come in from the emitter, and that
# `make down` stops exactly what was started: every process gone, and a pid
# file naming some other process does not get it killed.
#
# SENTINEL=1 (`make test-make-up SENTINEL=1`) runs the same test on the
# Sentinel layout (`make up SENTINEL=1`): the gateways and the emitter find
# Redis through three sentinels, and after the emitter step a forced
# failover (`SENTINEL FAILOVER`) must leave messages crossing gateways and
# the emitter working, with no process restarted.
set -euo pipefail
# eventually
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

EVENT_TIMEOUT="${EVENT_TIMEOUT:-10}"
SENTINEL="${SENTINEL:-0}"
WORK="$(mktemp -d)"
RUN_DIR="$WORK/run"
PASSED=0
FAILED=0
UP_RAN=0
declare -A CLIENT_PID CLIENT_FD
UNRELATED_PID=""

# Eleven free ports at once (held open together, so they are distinct).
read -r MASTER_PORT REPLICA_1_PORT REPLICA_2_PORT GATEWAY_A_PORT GATEWAY_A_ADMIN_PORT \
    GATEWAY_B_PORT GATEWAY_B_ADMIN_PORT EMITTER_PORT SENTINEL_1_PORT SENTINEL_2_PORT SENTINEL_3_PORT < <(node -e '
const net = require("net");
const servers = Array.from({ length: 11 }, () => net.createServer().listen(0, "127.0.0.1"));
Promise.all(servers.map((s) => new Promise((r) => s.on("listening", r)))).then(() => {
  console.log(servers.map((s) => s.address().port).join(" "));
  servers.forEach((s) => s.close());
});')

# Reuse the debug binaries `cargo test` just built (building them again with
# another package selection could rebuild dependencies with other features).
BIN_DIR="${CARGO_TARGET_DIR:-target}/debug"
BUILD=(PROFILE=debug)
if [ -x "$BIN_DIR/gateway" ] && [ -x "$BIN_DIR/emitter" ]; then
    BUILD+=(NO_BUILD=1)
    echo "using the binaries in $BIN_DIR"
fi

MAKE_VARS=(
    "${BUILD[@]}" RUN_DIR="$RUN_DIR" READY_TIMEOUT=60
    MASTER_PORT="$MASTER_PORT" REPLICA_1_PORT="$REPLICA_1_PORT" REPLICA_2_PORT="$REPLICA_2_PORT"
    GATEWAY_A_PORT="$GATEWAY_A_PORT" GATEWAY_A_ADMIN_PORT="$GATEWAY_A_ADMIN_PORT"
    GATEWAY_B_PORT="$GATEWAY_B_PORT" GATEWAY_B_ADMIN_PORT="$GATEWAY_B_ADMIN_PORT"
    EMITTER_PORT="$EMITTER_PORT"
)
SERVICES=(redis-master redis-replica-1 redis-replica-2 gateway-a gateway-b emitter)
SENTINEL_PORTS=()
if [ "$SENTINEL" = 1 ]; then
    SENTINEL_PORTS=("$SENTINEL_1_PORT" "$SENTINEL_2_PORT" "$SENTINEL_3_PORT")
    MAKE_VARS+=(SENTINEL=1 SENTINEL_PORTS="${SENTINEL_PORTS[*]}")
    for port in "${SENTINEL_PORTS[@]}"; do SERVICES+=("sentinel-$port"); done
else
    MAKE_VARS+=(SENTINEL=0)
fi

run_make() { make --no-print-directory "$@" "${MAKE_VARS[@]}"; }

cleanup() {
    local status=$?
    local name
    for name in "${!CLIENT_PID[@]}"; do
        kill "${CLIENT_PID[$name]}" 2>/dev/null || true
        wait "${CLIENT_PID[$name]}" 2>/dev/null || true
    done
    if [ "$UP_RAN" = 1 ]; then
        if [ "$FAILED" != 0 ] || [ "$status" != 0 ]; then
            for name in "${SERVICES[@]}"; do
                echo "--- $RUN_DIR/$name.log (last lines) ---" >&2
                tail -n 30 "$RUN_DIR/$name.log" >&2 2>/dev/null || true
            done
        fi
        run_make down >/dev/null 2>&1 || true
    fi
    [ -z "$UNRELATED_PID" ] || kill "$UNRELATED_PID" 2>/dev/null || true
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT

# A failed step stops the test: later steps depend on earlier ones.
fail() {
    failed "$@"
    echo "make-up: $PASSED passed, $FAILED failed"
    exit 1
}


pid_of() { read -r pid _ <"$RUN_DIR/$1.pid" && echo "$pid"; }
# Running: exists and is not a zombie (a service outlives `make up`'s shell,
# so its exit status goes to whichever process adopted it, which may reap late).
alive() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [ "${stat%% *}" != Z ]
}

# ---------------------------------------------------------------- clients

# A Node socket.io-client 4.8 (tests/node/client.js) fed JSON-line commands
# through a fifo, its output in $WORK/NAME.out.
start_client() {
    local name="$1"
    shift
    mkfifo "$WORK/$name.in"
    node tests/node/client.js --name "$name" "$@" <"$WORK/$name.in" >"$WORK/$name.out" 2>&1 &
    CLIENT_PID[$name]=$!
    local fd
    exec {fd}>"$WORK/$name.in"
    CLIENT_FD[$name]=$fd
}
send() { printf '%s\n' "$2" >&"${CLIENT_FD[$1]}"; }
client_got() { grep -qF -- "$2" "$WORK/$1.out"; }
connected() { grep -q '^connected ' "$WORK/$1.out"; }

# ---------------------------------------------------------------- the test

redis_subscribers() {
    # Clients of this Redis with at least one (pattern) subscription, the
    # sentinels' own (named sentinel-...) left out.
    redis-cli -h 127.0.0.1 -p "$1" CLIENT LIST | grep -v ' name=sentinel-' | grep -cE ' (sub|psub|ssub)=[1-9]' || true
}
# The pids of the processes that hold a subscribed connection to the Redis
# on port $1 (the sentinels' own left out), sorted, one per line: Redis
# names each client's address, and `ss` the process behind that port.
subscriber_pids() {
    local port
    redis-cli -h 127.0.0.1 -p "$1" CLIENT LIST | grep -v ' name=sentinel-' | grep -E ' (sub|psub|ssub)=[1-9]' |
        sed -E 's/.* addr=[^ ]*:([0-9]+) .*/\1/' | while read -r port; do
            ss -Htnp state established "( sport = :$port )" | grep -oE 'pid=[0-9]+' | head -n 1 | cut -d= -f2
        done | sort -u
}
service_pid() { local pid _rest; read -r pid _rest <"$RUN_DIR/$1.pid" && printf '%s\n' "$pid"; }
sentinel_master_port() {
    redis-cli -h 127.0.0.1 -p "$SENTINEL_1_PORT" SENTINEL get-master-addr-by-name mymaster | tr -d '\r' | sed -n 2p
}
master_moved() { [ -n "$(sentinel_master_port)" ] && [ "$(sentinel_master_port)" != "$MASTER_PORT" ]; }
# Emits from client FROM every 0.5 s until client TO receives it: during a
# failover a message may be lost, but the cluster must carry one again.
relayed_eventually() {
    local from="$1" to="$2" text="$3" deadline=$((SECONDS + EVENT_TIMEOUT))
    while ((SECONDS < deadline)); do
        send "$from" "{\"cmd\":\"emit\",\"event\":\"message\",\"args\":[\"$text\"]}"
        sleep 0.5
        client_got "$to" "\"event\":\"message\",\"args\":[\"$text\"]" && return 0
    done
    return 1
}
emitted_eventually() {
    local text="$1" deadline=$((SECONDS + EVENT_TIMEOUT))
    while ((SECONDS < deadline)); do
        curl -sS --max-time 2 -o /dev/null -X POST "http://127.0.0.1:$EMITTER_PORT/v1/emit" \
            -H 'content-type: application/json' -d "{\"event\":\"message\",\"args\":[\"$text\"]}" || true
        sleep 0.5
        client_got alice "\"args\":[\"$text\"]" && client_got bob "\"args\":[\"$text\"]" && return 0
    done
    return 1
}

# How many processes have a NUL-separated entry of /proc/PID/FILE (cmdline
# or environ) matching REGEX as a whole. A regex with escaped dots cannot
# match grep's own argument.
count_processes() {
    { grep -lzxE -- "$2" /proc/[0-9]*/"$1" 2>/dev/null || true; } | wc -l
}

echo "make up on free ports (master $MASTER_PORT, gateways $GATEWAY_A_PORT/$GATEWAY_B_PORT, emitter $EMITTER_PORT), RUN_DIR $RUN_DIR"
UP_RAN=1
if output="$(run_make up 2>&1)" && grep -q 'Cluster ready' <<<"$output"; then
    pass "make up: cluster ready"
else
    fail "make up: cluster ready" "$output"
fi
grep -qF -- "curl -sS -X POST http://127.0.0.1:$EMITTER_PORT/v1/emit" <<<"$output" ||
    fail "make up: prints what to try with the chosen ports" "$output"
pass "make up: prints what to try with the chosen ports"

declare -A FIRST_PID
for name in "${SERVICES[@]}"; do
    FIRST_PID[$name]="$(pid_of "$name")" || fail "make up: pid file for $name"
    alive "${FIRST_PID[$name]}" || fail "make up: $name (pid ${FIRST_PID[$name]}) is running"
done
pass "make up: ${#SERVICES[@]} services running, one pid file each"

# Twice: nothing new may start.
if output="$(run_make up 2>&1)"; then
    for name in "${SERVICES[@]}"; do
        grep -q "$name already running" <<<"$output" || fail "second make up: $name reported already running" "$output"
        [ "$(pid_of "$name")" = "${FIRST_PID[$name]}" ] || fail "second make up: $name pid changed"
    done
    for probe in "cmdline redis-server 127\.0\.0\.1:$MASTER_PORT" "cmdline redis-server 127\.0\.0\.1:$REPLICA_1_PORT" \
        "cmdline redis-server 127\.0\.0\.1:$REPLICA_2_PORT" "environ GATEWAY_LISTEN=127\.0\.0\.1:$GATEWAY_A_PORT" \
        "environ GATEWAY_LISTEN=127\.0\.0\.1:$GATEWAY_B_PORT" "environ EMITTER_LISTEN=127\.0\.0\.1:$EMITTER_PORT"; do
        count="$(count_processes "${probe%% *}" "${probe#* }")"
        [ "$count" = 1 ] || fail "second make up: one process with ${probe#* } in its ${probe%% *}" "found $count"
    done
    pass "second make up: starts nothing, one process per service"
else
    fail "second make up succeeds" "$output"
fi

if [ "$SENTINEL" = 1 ]; then
    # Both gateways found the replicas through the sentinels and subscribe
    # there, not on the master: a gateway that started before the sentinels
    # listed a replica in sync begins on the master and moves over (a
    # handoff is tried every 5 s).
    for name in gateway-a gateway-b; do
        grep -q 'topology discovered through sentinel' "$RUN_DIR/$name.log" ||
            fail "$name asked the sentinels" "$(tail -n 20 "$RUN_DIR/$name.log")"
    done
    on_replicas() { echo $(($(redis_subscribers "$REPLICA_1_PORT") + $(redis_subscribers "$REPLICA_2_PORT"))); }
    subscribed_on_replicas() { [ "$(on_replicas)" -ge 2 ] && [ "$(redis_subscribers "$MASTER_PORT")" = 0 ]; }
    # The sentinels refresh what they know of a replica every 10 s.
    EVENT_TIMEOUT=30 eventually subscribed_on_replicas ||
        fail "gateways subscribe on the replicas the sentinels report" \
            "replicas: $(on_replicas) subscribers, master: $(redis_subscribers "$MASTER_PORT")"
    pass "gateways found Redis through the sentinels and subscribe on the replicas"
else
    # Each gateway subscribes on its own replica, and nothing on the master.
    for check in "gateway-a $REPLICA_1_PORT" "gateway-b $REPLICA_2_PORT"; do
        name="${check% *}" port="${check#* }"
        [ "$(subscriber_pids "$port")" = "$(service_pid "$name")" ] ||
            fail "$name (pid $(service_pid "$name")) is the one subscriber of the replica on port $port" \
                "subscribers' pids: $(subscriber_pids "$port" | tr '\n' ' ')"
    done
    [ -z "$(subscriber_pids "$MASTER_PORT")" ] ||
        fail "nothing subscribes on the master" "subscribers' pids: $(subscriber_pids "$MASTER_PORT" | tr '\n' ' ')"
    pass "gateway A is the one subscriber of replica 1, gateway B of replica 2; none on the master"
fi

{ deploy/healthcheck.sh "$GATEWAY_A_ADMIN_PORT" /readyz && deploy/healthcheck.sh "$EMITTER_PORT" /readyz; } ||
    fail "deploy/healthcheck.sh: gateway and emitter /readyz healthy"
pass "deploy/healthcheck.sh: gateway and emitter /readyz healthy"

start_client alice --url "http://127.0.0.1:$GATEWAY_A_PORT"
start_client bob --url "http://127.0.0.1:$GATEWAY_B_PORT" --transports polling
eventually connected alice || fail "client on gateway A (WebSocket) connects" "$(cat "$WORK/alice.out")"
eventually connected bob || fail "client on gateway B (long-polling) connects" "$(cat "$WORK/bob.out")"
pass "clients connected: gateway A over WebSocket, gateway B over long-polling"

send alice '{"cmd":"emit","event":"message","args":["from-alice"]}'
eventually client_got bob '"event":"message","args":["from-alice"]' ||
    fail "message from gateway A reaches gateway B" "$(cat "$WORK/bob.out")"
send bob '{"cmd":"emit","event":"message","args":["from-bob"]}'
eventually client_got alice '"event":"message","args":["from-bob"]' ||
    fail "message from gateway B reaches gateway A" "$(cat "$WORK/alice.out")"
pass "messages cross gateways both ways"

response="$(curl -sS --max-time 5 -w ' %{http_code}' -X POST "http://127.0.0.1:$EMITTER_PORT/v1/emit" \
    -H 'content-type: application/json' -d '{"event":"message","args":["Hello!"]}')" ||
    fail "emitter POST /v1/emit" "$response"
[ "${response##* }" = 202 ] || fail "emitter POST /v1/emit answers 202" "$response"
eventually client_got alice '"event":"message","args":["Hello!"]' ||
    fail "emitter event reaches the client on gateway A" "$(cat "$WORK/alice.out")"
eventually client_got bob '"event":"message","args":["Hello!"]' ||
    fail "emitter event reaches the client on gateway B" "$(cat "$WORK/bob.out")"
pass "emitter curl: 202, both clients get the event"

if [ "$SENTINEL" = 1 ]; then
    redis-cli -h 127.0.0.1 -p "$SENTINEL_1_PORT" SENTINEL FAILOVER mymaster >/dev/null
    eventually master_moved || fail "SENTINEL FAILOVER promotes a replica" "master port: $(sentinel_master_port)"
    pass "SENTINEL FAILOVER: replica on port $(sentinel_master_port) promoted"
    relayed_eventually alice bob after-failover-a ||
        fail "after the failover, a message from gateway A reaches gateway B" "$(tail -n 20 "$RUN_DIR/gateway-a.log")"
    relayed_eventually bob alice after-failover-b ||
        fail "after the failover, a message from gateway B reaches gateway A" "$(tail -n 20 "$RUN_DIR/gateway-b.log")"
    emitted_eventually after-failover-emitter ||
        fail "after the failover, the emitter's events reach both clients" "$(tail -n 20 "$RUN_DIR/emitter.log")"
    for name in "${SERVICES[@]}"; do
        [ "$(pid_of "$name")" = "${FIRST_PID[$name]}" ] && alive "${FIRST_PID[$name]}" ||
            fail "after the failover: $name still the same process"
    done
    pass "after the failover: messages cross gateways both ways, emitter reaches both, nothing restarted"
    # Subscribers that fled to the new master move back to replicas once
    # the sentinels list them in sync with it.
    off_master() {
        local master total=0 port
        master=$(sentinel_master_port)
        for port in "$MASTER_PORT" "$REPLICA_1_PORT" "$REPLICA_2_PORT"; do
            [ "$port" = "$master" ] || total=$((total + $(redis_subscribers "$port")))
        done
        [ "$total" -ge 2 ] && [ "$(redis_subscribers "$master")" = 0 ]
    }
    EVENT_TIMEOUT=30 eventually off_master ||
        fail "after the failover, the gateways subscribe on replicas again" \
            "on the master ($(sentinel_master_port)): $(redis_subscribers "$(sentinel_master_port)")"
    pass "after the failover, the gateways subscribe on replicas again"
fi

for name in alice bob; do
    send "$name" '{"cmd":"exit"}'
    wait "${CLIENT_PID[$name]}" || true
    unset "CLIENT_PID[$name]"
done

# A pid file naming a live process that `make up` did not start (its start
# time does not match): `make down` must leave that process alone.
sleep 600 &
UNRELATED_PID=$!
echo "$UNRELATED_PID 1 sleep" >"$RUN_DIR/impostor.pid"

if output="$(run_make down 2>&1)"; then
    pass "make down succeeds"
else
    fail "make down succeeds" "$output"
fi
UP_RAN=0
for name in "${SERVICES[@]}"; do
    ! alive "${FIRST_PID[$name]}" || fail "make down: $name (pid ${FIRST_PID[$name]}) stopped" "$output"
done
leftover="$(find "$RUN_DIR" -name '*.pid')"
[ -z "$leftover" ] || fail "make down: no pid file left" "$leftover"
for port in "$MASTER_PORT" "$REPLICA_1_PORT" "$REPLICA_2_PORT" "$GATEWAY_A_PORT" "$GATEWAY_A_ADMIN_PORT" \
    "$GATEWAY_B_PORT" "$GATEWAY_B_ADMIN_PORT" "$EMITTER_PORT" "${SENTINEL_PORTS[@]}"; do
    ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || fail "make down: port $port closed"
done
pass "make down: every process stopped, ports closed, pid files removed"
alive "$UNRELATED_PID" || fail "make down: a process it did not start survives"
pass "make down: a process it did not start (recycled pid) survives"

output="$(run_make down 2>&1)" || fail "second make down succeeds" "$output"
pass "second make down: nothing to do"

echo "make-up: $PASSED passed, $FAILED failed"
