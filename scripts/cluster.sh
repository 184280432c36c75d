#!/usr/bin/env bash
# The seed's topology on one machine, without Docker: what `make up`,
# `make down` and `make status` run.
#
#   scripts/cluster.sh up | down | status
#
# `up` starts, as background processes with a log and a pid file each under
# $RUN_DIR: a Redis master, two replicas, gateway A (subscribing on replica 1),
# gateway B (subscribing on replica 2) and the emitter HTTP service, then
# waits until every one is ready. A service whose pid file names a live
# process that we started is left alone, so running `up` twice starts nothing
# twice. `down` stops exactly the processes named by the pid files, after
# checking (start time and command line in /proc) that each pid is still the
# process we started and not a recycled pid.
#
# Everything is configured through the environment (the Makefile passes its
# variables): ports, BIN_DIR (where `gateway` and `emitter` are), RUN_DIR,
# READY_TIMEOUT (seconds), SENTINEL=1 (also three Sentinels, see below).
set -euo pipefail
# redis_pong, replica_linked
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BIND_ADDRESS="${BIND_ADDRESS:-127.0.0.1}"
MASTER_PORT="${MASTER_PORT:-6379}"
REPLICA_1_PORT="${REPLICA_1_PORT:-6380}"
REPLICA_2_PORT="${REPLICA_2_PORT:-6381}"
GATEWAY_A_PORT="${GATEWAY_A_PORT:-3000}"
GATEWAY_A_ADMIN_PORT="${GATEWAY_A_ADMIN_PORT:-9100}"
GATEWAY_B_PORT="${GATEWAY_B_PORT:-3001}"
GATEWAY_B_ADMIN_PORT="${GATEWAY_B_ADMIN_PORT:-9101}"
EMITTER_PORT="${EMITTER_PORT:-8080}"
SENTINEL="${SENTINEL:-0}"
SENTINEL_PORTS="${SENTINEL_PORTS:-26379 26380 26381}"
SENTINEL_MASTER_NAME="${SENTINEL_MASTER_NAME:-mymaster}"
BIN_DIR="${BIN_DIR:-target/release}"
RUN_DIR="${RUN_DIR:-.run}"
READY_TIMEOUT="${READY_TIMEOUT:-60}"
STOP_TIMEOUT="${STOP_TIMEOUT:-15}"

# Absolute paths: pid files record them and Sentinel needs its config's.
absolute() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s/%s\n' "$ROOT" "$1" ;; esac; }
BIN_DIR="$(absolute "$BIN_DIR")"
RUN_DIR="$(absolute "$RUN_DIR")"

# Our own settings must not reach the binaries: the gateway and the emitter
# read every GATEWAY_* / EMITTER_* variable, and the emitter refuses unknown
# keys (EMITTER_PORT would be one).
OWN_VARIABLES=(GATEWAY_A_PORT GATEWAY_A_ADMIN_PORT GATEWAY_B_PORT GATEWAY_B_ADMIN_PORT EMITTER_PORT)

log() { printf '%s\n' "$*"; }
fail() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------- processes

# Field 22 of /proc/PID/stat: the start time in clock ticks since boot. With
# the pid it names one process for the machine's uptime, so a pid recycled by
# an unrelated process is never mistaken for ours.
start_time_of() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    # The command name (field 2) may hold spaces: cut after its closing ')'.
    stat="${stat##*) }"
    # shellcheck disable=SC2086
    set -- $stat
    printf '%s\n' "${20}"
}

cmdline_of() {
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null
}

pid_file() { printf '%s/%s.pid\n' "$RUN_DIR" "$1"; }
log_file() { printf '%s/%s.log\n' "$RUN_DIR" "$1"; }

# Prints the pid of service NAME when its pid file names a live process with
# the recorded start time whose command line still contains the recorded
# marker; returns 1 otherwise.
running_pid() {
    local file pid started marker
    file="$(pid_file "$1")"
    [ -f "$file" ] || return 1
    read -r pid started marker <"$file" || true
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [ "$(start_time_of "$pid" 2>/dev/null)" = "$started" ] || return 1
    [[ "$(cmdline_of "$pid")" == *"$marker"* ]] || return 1
    printf '%s\n' "$pid"
}

# Records pid, start time and a command-line marker for service NAME.
record() {
    local name="$1" pid="$2" marker="$3" started
    started="$(start_time_of "$pid")" || fail "$name exited right after start; see $(log_file "$name")"
    printf '%s %s %s\n' "$pid" "$started" "$marker" >"$(pid_file "$name")"
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

show_log_tail() {
    local file
    file="$(log_file "$1")"
    printf -- '--- last lines of %s (backtrace frames left out) ---\n' "$file" >&2
    grep -v -E '^ +([0-9]+: | *at )' "$file" 2>/dev/null | tail -n 40 >&2 || true
    printf -- '---\n' >&2
}

# Starts COMMAND... in the background as service NAME unless it already runs.
# MARKER is a string its /proc cmdline keeps for its whole life.
start_service() {
    local name="$1" port="$2" marker="$3"
    shift 3
    local pid
    if pid="$(running_pid "$name")"; then
        log "  $name already running (pid $pid)"
        return 0
    fi
    rm -f "$(pid_file "$name")"
    if port_in_use "$port"; then
        fail "$name: port $port is already taken by a process this script did not start (choose another port: make up MASTER_PORT=... GATEWAY_A_PORT=..., see the README)"
    fi
    # A session of its own: a Ctrl-C on `make up` or a closed terminal does
    # not reach the services, only `make down` stops them. (A background
    # child of a non-interactive shell is no group leader, so setsid execs in
    # place and $! stays the service's pid.)
    setsid "$@" </dev/null >>"$(log_file "$name")" 2>&1 &
    pid=$!
    record "$name" "$pid" "$marker"
    log "  $name started (pid $pid, port $port, log $(log_file "$name"))"
}

# ---------------------------------------------------------------- readiness

# Polls CHECK (a command) every 0.2 s until it succeeds or READY_TIMEOUT
# seconds pass; on timeout prints the service's log tail and fails.
wait_until() {
    local name="$1"
    shift
    local deadline=$((SECONDS + READY_TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        if ! running_pid "$name" >/dev/null; then
            show_log_tail "$name"
            fail "$name is not running; see its log above (run \`make down\` to clean up)"
        fi
        if ((SECONDS >= deadline)); then
            show_log_tail "$name"
            fail "$name not ready after ${READY_TIMEOUT}s; see its log above (run \`make down\` to clean up)"
        fi
        sleep 0.2
    done
}


http_ok() { curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$1$2"; }

# ---------------------------------------------------------------- services

ensure_redis_installed() {
    command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && return 0
    log "installing redis-server (Debian package)"
    apt_install redis-server
    command -v redis-server >/dev/null 2>&1 || fail "redis-server could not be installed"
}

start_redis() {
    local name="$1" port="$2"
    shift 2
    local dir="$RUN_DIR/redis-$port"
    mkdir -p "$dir"
    start_service "$name" "$port" redis-server \
        redis-server --port "$port" --bind "$BIND_ADDRESS" --save "" --appendonly no \
        --dir "$dir" --daemonize no "$@"
}

# `SENTINEL=1`: three Sentinels watching the master under
# $SENTINEL_MASTER_NAME (quorum 2). The gateways and the emitter then ask
# them where the master and the replicas are instead of being given fixed
# addresses, and follow a failover (`redis-cli -p 26379 SENTINEL FAILOVER
# mymaster` to try one).
start_sentinels() {
    local port dir name
    for port in $SENTINEL_PORTS; do
        name="sentinel-$port"
        dir="$RUN_DIR/$name"
        mkdir -p "$dir"
        # Sentinel rewrites its config file, so each gets its own copy.
        if ! running_pid "$name" >/dev/null; then
            cat >"$dir/sentinel.conf" <<EOF
port $port
bind $BIND_ADDRESS
dir $dir
sentinel monitor $SENTINEL_MASTER_NAME 127.0.0.1 $MASTER_PORT 2
sentinel down-after-milliseconds $SENTINEL_MASTER_NAME 5000
sentinel failover-timeout $SENTINEL_MASTER_NAME 10000
EOF
        fi
        start_service "$name" "$port" redis-server \
            redis-server "$dir/sentinel.conf" --sentinel --daemonize no
    done
    # Wait until each sentinel lists both replicas: a gateway started
    # before that would subscribe on the master (the only server it was
    # told about) and stay there.
    for port in $SENTINEL_PORTS; do
        wait_until "sentinel-$port" sentinel_sees_replicas "$port" 2
    done
}

# sentinel_sees_replicas PORT N: the sentinel lists N replicas of the master.
sentinel_sees_replicas() {
    local count
    count="$(redis-cli -h 127.0.0.1 -p "$1" SENTINEL REPLICAS "$SENTINEL_MASTER_NAME" 2>/dev/null | tr -d '\r' | grep -cx 'name' || true)"
    [ "$count" = "$2" ]
}

# The sentinels as the gateway and the emitter take them: host:port,...
sentinel_urls() {
    local port urls=()
    for port in $SENTINEL_PORTS; do urls+=("127.0.0.1:$port"); done
    (
        IFS=,
        printf '%s\n' "${urls[*]}"
    )
}

# gateway NAME PORT ADMIN_PORT PREFERRED_REPLICA OTHER_REPLICA
start_gateway() {
    local name="$1" port="$2" admin="$3" preferred="$4" other="$5"
    local bin="$BIN_DIR/gateway"
    local unset_own=()
    local variable
    for variable in "${OWN_VARIABLES[@]}"; do unset_own+=(-u "$variable"); done
    local redis=()
    if [ "$SENTINEL" = 1 ]; then
        # The master and the replicas come from the sentinels; `hash`
        # spreads the gateways over the replicas they report.
        redis=(
            GATEWAY_REDIS__SENTINEL_URLS="$(sentinel_urls)"
            GATEWAY_REDIS__SENTINEL_MASTER="$SENTINEL_MASTER_NAME"
            GATEWAY_REDIS__SUBSCRIBER_SELECTION=hash
        )
    else
        # `first`: each gateway subscribes on its own replica and fails over
        # to the other one, then to the master.
        redis=(
            GATEWAY_REDIS__URL="redis://127.0.0.1:$MASTER_PORT"
            GATEWAY_REDIS__REPLICA_URLS="redis://127.0.0.1:$preferred,redis://127.0.0.1:$other"
            GATEWAY_REDIS__SUBSCRIBER_SELECTION=first
        )
    fi
    start_service "$name" "$port" "$bin" env "${unset_own[@]}" \
        GATEWAY_LISTEN="$BIND_ADDRESS:$port" \
        GATEWAY_ADMIN_LISTEN="$BIND_ADDRESS:$admin" \
        "${redis[@]}" \
        RUST_LOG="${RUST_LOG:-info}" \
        "$bin"
}

start_emitter() {
    local bin="$BIN_DIR/emitter"
    local unset_own=()
    local variable
    for variable in "${OWN_VARIABLES[@]}"; do unset_own+=(-u "$variable"); done
    local redis=(EMITTER_REDIS__URL="redis://127.0.0.1:$MASTER_PORT")
    if [ "$SENTINEL" = 1 ]; then
        redis=(
            EMITTER_REDIS__SENTINEL_URLS="$(sentinel_urls)"
            EMITTER_REDIS__SENTINEL_MASTER="$SENTINEL_MASTER_NAME"
        )
    fi
    start_service emitter "$EMITTER_PORT" "$bin" env "${unset_own[@]}" \
        "${redis[@]}" \
        EMITTER_LISTEN="$BIND_ADDRESS:$EMITTER_PORT" \
        RUST_LOG="${RUST_LOG:-info}" \
        "$bin" serve
}

cmd_up() {
    local bin
    for bin in gateway emitter; do
        [ -x "$BIN_DIR/$bin" ] || fail "$BIN_DIR/$bin is missing: build it first (make up builds it)"
    done
    command -v curl >/dev/null 2>&1 || fail "curl is needed to probe /readyz"
    ensure_redis_installed
    mkdir -p "$RUN_DIR"

    log "starting Redis (master $MASTER_PORT, replicas $REPLICA_1_PORT and $REPLICA_2_PORT)"
    start_redis redis-master "$MASTER_PORT"
    wait_until redis-master redis_pong "$MASTER_PORT"
    start_redis redis-replica-1 "$REPLICA_1_PORT" --replicaof 127.0.0.1 "$MASTER_PORT"
    start_redis redis-replica-2 "$REPLICA_2_PORT" --replicaof 127.0.0.1 "$MASTER_PORT"
    wait_until redis-replica-1 replica_linked "$REPLICA_1_PORT"
    wait_until redis-replica-2 replica_linked "$REPLICA_2_PORT"
    if [ "$SENTINEL" = 1 ]; then
        log "starting Sentinels ($SENTINEL_PORTS)"
        start_sentinels
    fi

    log "starting gateways and emitter"
    start_gateway gateway-a "$GATEWAY_A_PORT" "$GATEWAY_A_ADMIN_PORT" "$REPLICA_1_PORT" "$REPLICA_2_PORT"
    start_gateway gateway-b "$GATEWAY_B_PORT" "$GATEWAY_B_ADMIN_PORT" "$REPLICA_2_PORT" "$REPLICA_1_PORT"
    start_emitter
    wait_until gateway-a http_ok "$GATEWAY_A_ADMIN_PORT" /readyz
    wait_until gateway-b http_ok "$GATEWAY_B_ADMIN_PORT" /readyz
    wait_until emitter http_ok "$EMITTER_PORT" /readyz

    local sub_a="subscribes on $REPLICA_1_PORT" sub_b="subscribes on $REPLICA_2_PORT" sentinels=""
    if [ "$SENTINEL" = 1 ]; then
        sub_a="topology from the sentinels"
        sub_b="$sub_a"
        sentinels="
  Sentinels      $(sentinel_urls)   (master group $SENTINEL_MASTER_NAME; try a failover:
                 redis-cli -p ${SENTINEL_PORTS%% *} SENTINEL FAILOVER $SENTINEL_MASTER_NAME)"
    fi
    cat <<EOF

Cluster ready (logs and pid files in $RUN_DIR/; stop it with \`make down\`):
  Redis master   127.0.0.1:$MASTER_PORT   replicas 127.0.0.1:$REPLICA_1_PORT, 127.0.0.1:$REPLICA_2_PORT$sentinels
  gateway A      http://127.0.0.1:$GATEWAY_A_PORT   ($sub_a; admin http://127.0.0.1:$GATEWAY_A_ADMIN_PORT/metrics)
  gateway B      http://127.0.0.1:$GATEWAY_B_PORT   ($sub_b; admin http://127.0.0.1:$GATEWAY_B_ADMIN_PORT/metrics)
  emitter        http://127.0.0.1:$EMITTER_PORT     (/readyz, /metrics, POST /v1/emit)

Try it: connect a client to each gateway (they share rooms and events through Redis)
  cargo run -q -p loadgen --bin siocat -- http://127.0.0.1:$GATEWAY_A_PORT
  cargo run -q -p loadgen --bin siocat -- http://127.0.0.1:$GATEWAY_B_PORT
or with Node (after \`make deps\`):
  node tests/node/client.js --url http://127.0.0.1:$GATEWAY_A_PORT
  node -e 'const s = require("./tests/node/node_modules/socket.io-client")("http://127.0.0.1:$GATEWAY_B_PORT"); s.on("connect", () => console.log("connected", s.id)); s.onAny((e, ...a) => console.log(e, ...a))'
then push an event to every client from outside:
  curl -sS -X POST http://127.0.0.1:$EMITTER_PORT/v1/emit -H 'content-type: application/json' -d '{"event":"message","args":["Hello!"]}'
EOF
}

# ---------------------------------------------------------------- down

# Stops service NAME if its pid file names the process we started.
stop_service() {
    local name="$1" pid deadline
    local file
    file="$(pid_file "$name")"
    [ -f "$file" ] || return 0
    if ! pid="$(running_pid "$name")"; then
        log "  $name: not running (stale pid file removed)"
        rm -f "$file"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while running_pid "$name" >/dev/null; do
        if ((SECONDS >= deadline)); then
            log "  $name (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
            break
        fi
        sleep 0.1
    done
    rm -f "$file"
    log "  $name stopped (pid $pid)"
}

cmd_down() {
    [ -d "$RUN_DIR" ] || {
        log "nothing to stop ($RUN_DIR does not exist)"
        return 0
    }
    local name file
    # Clients of Redis first, so they do not log a reconnection storm.
    for name in emitter gateway-b gateway-a; do stop_service "$name"; done
    for file in "$RUN_DIR"/sentinel-*.pid; do
        [ -e "$file" ] || continue
        name="$(basename "$file" .pid)"
        stop_service "$name"
    done
    for name in redis-replica-2 redis-replica-1 redis-master; do stop_service "$name"; done
    # Anything else that left a pid file here was started by us too.
    for file in "$RUN_DIR"/*.pid; do
        [ -e "$file" ] || continue
        stop_service "$(basename "$file" .pid)"
    done
    log "stopped (logs kept in $RUN_DIR/)"
}

cmd_status() {
    local file name pid
    local any=0
    for file in "$RUN_DIR"/*.pid; do
        [ -e "$file" ] || continue
        any=1
        name="$(basename "$file" .pid)"
        if pid="$(running_pid "$name")"; then
            log "  $name: running (pid $pid)"
        else
            log "  $name: not running (stale pid file)"
        fi
    done
    [ "$any" = 1 ] || log "nothing started from $RUN_DIR"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
*)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
