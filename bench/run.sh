#!/usr/bin/env bash
# `make bench` / `make bench-quick`: the same load scenarios, with the same
# load generator, against four server stacks on one Redis topology (a master
# and two replicas), then one results file, markdown table and chart.
#
#   rust                two gateways (release), publishing on the master,
#                       each subscribed on its own replica (the seed topology)
#   rust-auth           the same with client authentication on: every loadgen
#                       client connects with its own HS256 token
#   node                two socket.io 4.8 + @socket.io/redis-adapter 8.3
#                       processes, same topology (bench/node/server.js)
#   socketioxide-redis  two socketioxide + socketioxide-redis 0.4 (fred)
#                       processes; sharded pub/sub on the master only
#   floor               `loadgen floor`: one process relaying each message
#                       frame, encoded once, to every socket: the machine's limit
#
#   bench/run.sh quick|full
#
#   STACKS="rust node"            only these stacks (default: all five)
#   BASELINE_GATEWAY=path/to/gateway
#                                 also run that gateway binary as the stack
#                                 `rust-baseline`, right after `rust` (or
#                                 where STACKS puts it): an old and a new
#                                 build measured in one run
#
# Every process started here is killed on exit. Results go to
# bench/results/<UTC date>[-quick].{json,md,svg}.
set -euo pipefail

MODE=${1:-quick}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release
WORK=$(mktemp -d /tmp/socketio-bench.XXXXXX)
RESULTS=$ROOT/bench/results
NAME=$(date -u +%Y-%m-%d)
[ "$MODE" = quick ] && NAME=$NAME-quick

case $MODE in
  quick)
    IDLE_CLIENTS=2000; IDLE_HOLD=3
    FANOUT_STEPS=("1000:10,100")      # clients:comma-separated msg/s
    DURATION=5; DRAIN=5
    ROOMS_CLIENTS=1000; ROOMS_RATES=100
    EMITTER_CLIENTS=1000; EMITTER_RATES=100
    ;;
  full)
    # 18k, not 20k: this machine's hard limit is 20000 open files per
    # process, and the load generator holds every client in one process.
    IDLE_CLIENTS=18000; IDLE_HOLD=5
    # 200 clients: the smallest step, where each message is few writes, so
    # that every stack has a step to show its capacity at.
    FANOUT_STEPS=("200:10,100,1000" "1000:1,10,100,0" "5000:1,10,100" "18000:1,10,100")
    DURATION=8; DRAIN=5
    ROOMS_CLIENTS=5000; ROOMS_RATES=100,1000
    EMITTER_CLIENTS=1000; EMITTER_RATES=100,0
    ;;
  *) echo "usage: $0 quick|full" >&2; exit 2 ;;
esac
PAYLOAD=1000   # bytes per message: 1, 10, 100 msg/s = 1, 10, 100 KB/s per client

# Pinning: with 2 cores, the servers under test (whichever stack) get CPU 1
# to themselves; the load generator and Redis share CPU 0. With more cores,
# the upper half goes to the servers.
CORES=$(nproc)
if [ "$CORES" -ge 2 ]; then
  HALF=$((CORES / 2))
  SERVER_CPUS=$([ "$HALF" = $((CORES - 1)) ] && echo "$HALF" || echo "$HALF-$((CORES - 1))")
  CLIENT_CPUS=$([ "$HALF" = 1 ] && echo 0 || echo "0-$((HALF - 1))")
  SERVER="taskset -c $SERVER_CPUS"
  CLIENT="taskset -c $CLIENT_CPUS"
  PINNING="Pinned with taskset: servers under test on CPU $SERVER_CPUS; loadgen and the three redis-server processes on CPU $CLIENT_CPUS."
else
  SERVER=""; CLIENT=""; PINNING="Not pinned (one core)."
fi

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FDS=$(ulimit -n)

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

log() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }

free_port() {
  local port
  for port in $(seq "$1" $(( $1 + 500 ))); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
  done
  echo "no free port from $1" >&2; exit 1
}

wait_port() { # port what
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$2 did not listen on port $1; logs in $WORK" >&2; ls "$WORK" >&2; exit 1
}

start() { # name command... ; sets LAST_PID
  local name=$1; shift
  "$@" >"$WORK/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

stop_stack() {
  for pid in "${STACK_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${STACK_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  STACK_PIDS=()
}

# --- build ------------------------------------------------------------------
STACKS=${STACKS:-rust rust-auth node socketioxide-redis floor}
# The secret of the rust-auth stack's gateways and of its loadgen clients.
BENCH_SECRET=bench-secret-$RANDOM$RANDOM
has_stack() { [[ " $STACKS " == *" $1 "* ]]; }
if [ -n "${BASELINE_GATEWAY:-}" ]; then
  [ -x "$BASELINE_GATEWAY" ] || { echo "BASELINE_GATEWAY=$BASELINE_GATEWAY is not an executable" >&2; exit 2; }
  # Right after `rust`, unless placed explicitly (to measure in the other order).
  if ! has_stack rust-baseline; then
    STACKS=$(for stack in $STACKS; do
      printf '%s ' "$stack"
      [ "$stack" = rust ] && printf 'rust-baseline '
    done)
  fi
elif has_stack rust-baseline; then
  echo "the rust-baseline stack needs BASELINE_GATEWAY" >&2; exit 2
fi
log "building release binaries"
(cd "$ROOT" && cargo build --release --quiet -p gateway -p emitter -p loadgen)
if has_stack socketioxide-redis; then
  (cd "$ROOT" && CARGO_TARGET_DIR="$ROOT/target" cargo build --release --quiet \
    --manifest-path bench/socketioxide-redis-server/Cargo.toml)
fi
if has_stack node && { [ ! -d "$ROOT/bench/node/node_modules" ] || \
   [ "$ROOT/bench/node/package-lock.json" -nt "$ROOT/bench/node/node_modules/.package-lock.json" ]; }; then
  log "npm ci in bench/node"
  (cd "$ROOT/bench/node" && npm ci --no-audit --no-fund --loglevel=error)
fi
command -v redis-server >/dev/null || { echo "redis-server is required (make deps)" >&2; exit 1; }

# --- redis ------------------------------------------------------------------
MASTER_PORT=$(free_port 27500)
start redis-master $CLIENT redis-server --port "$MASTER_PORT" --save "" --appendonly no \
  --client-output-buffer-limit "pubsub 0 0 0" --client-output-buffer-limit "replica 0 0 0"
MASTER_PID=$LAST_PID
wait_port "$MASTER_PORT" redis-master
REPLICA_PORTS=(); REDIS_PIDS=$MASTER_PID
for i in 1 2; do
  port=$(free_port $((MASTER_PORT + i)))
  start "redis-replica$i" $CLIENT redis-server --port "$port" --save "" --appendonly no \
    --replicaof 127.0.0.1 "$MASTER_PORT" --client-output-buffer-limit "pubsub 0 0 0"
  REDIS_PIDS="$REDIS_PIDS,$LAST_PID"
  wait_port "$port" "redis-replica$i"
  REPLICA_PORTS+=("$port")
done
for port in "${REPLICA_PORTS[@]}"; do
  for _ in $(seq 1 100); do
    redis-cli -p "$port" info replication 2>/dev/null | grep -q master_link_status:up && break
    sleep 0.1
  done
done
MASTER=redis://127.0.0.1:$MASTER_PORT
log "redis master $MASTER_PORT, replicas ${REPLICA_PORTS[*]}"

# --- stacks -----------------------------------------------------------------
STACK_PIDS=()
start_stack() { # label ; sets URLS and SERVER_PIDS
  local label=$1 p1 p2 a1 a2
  p1=$(free_port 27600); p2=$(free_port $((p1 + 1)))
  case $label in
    rust|rust-baseline|rust-auth)
      local binary=$BIN/gateway auth=()
      [ "$label" = rust-baseline ] && binary=$BASELINE_GATEWAY
      [ "$label" = rust-auth ] && auth=(GATEWAY_AUTH__JWT_SECRET="$BENCH_SECRET")
      a1=$(free_port $((p2 + 1))); a2=$(free_port $((a1 + 1)))
      for i in 0 1; do
        local port=$([ $i = 0 ] && echo "$p1" || echo "$p2")
        local admin=$([ $i = 0 ] && echo "$a1" || echo "$a2")
        start "rust-$i" env RUST_LOG=warn GATEWAY_LISTEN="127.0.0.1:$port" \
          GATEWAY_ADMIN_LISTEN="127.0.0.1:$admin" GATEWAY_REDIS__URL="$MASTER" \
          GATEWAY_REDIS__REPLICA_URLS="redis://127.0.0.1:${REPLICA_PORTS[$i]}" \
          GATEWAY_REDIS__SUBSCRIBER_SELECTION=first \
          GATEWAY_LIMITS__EVENTS_PER_SECOND=1000000 GATEWAY_LIMITS__EVENTS_BURST=1000000 \
          "${auth[@]}" $SERVER "$binary"
        STACK_PIDS+=("$LAST_PID")
      done
      ;;
    node)
      for i in 0 1; do
        local port=$([ $i = 0 ] && echo "$p1" || echo "$p2")
        start "node-$i" $SERVER node "$ROOT/bench/node/server.js" --port "$port" \
          --pub "$MASTER" --sub "redis://127.0.0.1:${REPLICA_PORTS[$i]}"
        STACK_PIDS+=("$LAST_PID")
      done
      ;;
    socketioxide-redis)
      for port in "$p1" "$p2"; do
        start "sior-$port" $SERVER "$ROOT/target/release/socketioxide-redis-server" \
          "127.0.0.1:$port" "$MASTER"
        STACK_PIDS+=("$LAST_PID")
      done
      ;;
    floor)
      start floor $SERVER "$BIN/loadgen" floor --listen "127.0.0.1:$p1"
      STACK_PIDS+=("$LAST_PID")
      ;;
  esac
  wait_port "$p1" "$label"
  URLS=http://127.0.0.1:$p1
  if [ "$label" != floor ]; then
    wait_port "$p2" "$label"
    URLS=$URLS,http://127.0.0.1:$p2
  fi
  # taskset execs the server, so these are the server pids themselves.
  SERVER_PIDS=$(IFS=,; echo "${STACK_PIDS[*]}")
}

RUNS=()
# Progress: phases (one loadgen run each) done of all, time since start.
PHASES_DONE=0
PHASES_TOTAL=0
for label in $STACKS; do
  PHASES_TOTAL=$((PHASES_TOTAL + 1 + ${#FANOUT_STEPS[@]}))
  [ "$label" != floor ] && PHASES_TOTAL=$((PHASES_TOTAL + 1))
  [ "$label" != floor ] && [ "$label" != socketioxide-redis ] && PHASES_TOTAL=$((PHASES_TOTAL + 1))
done
BENCH_STARTED=$SECONDS
# One line per step of a run: rate, deliveries/s, per gateway CPU-second,
# p99, lost.
step_summary() { # run.json
  python3 - "$1" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
if run.get("scenario") == "idle" or not run.get("steps"):
    rss = run.get("rss_per_connection_bytes")
    print(f"{run.get('connected', 0)} idle connections" + (f", {rss / 1024:.1f} KB RSS each" if rss else ""))
else:
    parts = []
    for step in run["steps"]:
        rate = step["rate_target"] or "max"
        cpu = step.get("deliveries_per_cpu_sec")
        parts.append(f"{rate} msg/s: {step['deliveries_per_sec'] / 1000:.1f}k/s"
                     + (f", {cpu / 1000:.1f}k/CPU-s" if cpu else "")
                     + f", p99 {step['latency']['p99_ms']:.1f} ms, lost {step['lost']}")
    print("; ".join(parts))
PY
}
loadgen() { # label tag scenario args...
  local label=$1 tag=$2 scenario=$3; shift 3
  local out="$WORK/run-$label-$tag.json" auth=()
  [ "$label" = rust-auth ] && auth=(--auth-secret "$BENCH_SECRET")
  log "$label: $scenario $*"
  if $CLIENT "$BIN/loadgen" "$scenario" --label "$label" --url "$URLS" "${auth[@]}" \
      --gateway-pids "$SERVER_PIDS" --redis-pids "$REDIS_PIDS" --source-ips 8 \
      --connect-rate 3000 --drain-timeout "$DRAIN" --json "$out" "$@" \
      >"$WORK/run-$label-$tag.txt" 2>"$WORK/run-$label-$tag.err"; then
    cat "$WORK/run-$label-$tag.txt" >&2
    RUNS+=("$out")
    PHASES_DONE=$((PHASES_DONE + 1))
    local elapsed=$((SECONDS - BENCH_STARTED))
    log "[$PHASES_DONE/$PHASES_TOTAL, $((elapsed / 60))m$((elapsed % 60))s] $label $tag: $(step_summary "$out" 2>/dev/null || echo "no summary")"
  else
    PHASES_DONE=$((PHASES_DONE + 1))
    log "[$PHASES_DONE/$PHASES_TOTAL] $label $tag failed:"; tail -5 "$WORK/run-$label-$tag.err" >&2
  fi
}

for label in $STACKS; do
  log "starting $label"
  start_stack "$label"
  # Idle first, on fresh processes, so RSS growth is the connections'.
  loadgen "$label" idle idle --clients "$IDLE_CLIENTS" --duration "$IDLE_HOLD"
  for step in "${FANOUT_STEPS[@]}"; do
    clients=${step%%:*}; rates=${step#*:}
    loadgen "$label" "fanout-$clients" fanout --clients "$clients" --rate "$rates" \
      --publishers 10 --payload "$PAYLOAD" --duration "$DURATION" --stop-when-overloaded
  done
  if [ "$label" != floor ]; then
    loadgen "$label" rooms rooms --clients "$ROOMS_CLIENTS" --room-size 100 --rate "$ROOMS_RATES" \
      --publishers 10 --payload "$PAYLOAD" --duration "$DURATION" --stop-when-overloaded
    if [ "$label" != socketioxide-redis ]; then
      # socketioxide-redis does not speak the Node emitter's protocol.
      loadgen "$label" emitter fanout --source emitter --redis "$MASTER" \
        --clients "$EMITTER_CLIENTS" --rate "$EMITTER_RATES" --publishers 4 \
        --payload "$PAYLOAD" --duration "$DURATION" --stop-when-overloaded
    fi
  fi
  stop_stack
done

MEM=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
CPU=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
MACHINE="$CORES cores ($CPU), $MEM RAM, $(uname -sr); redis $(redis-server --version | awk '{print $3}' | tr -d v=), node $(node --version)"
NOTES="Mode: $MODE. $PINNING Payload $PAYLOAD bytes per message; fanout from 10 publisher clients; rooms of 100 members (1 room per client), messages to random rooms through the \`publish\` event; emitter = loadgen publishing Node-emitter messages on the master. Open files limit $FDS per process. Each rate is measured for ${DURATION}s on the same connections; higher rates are skipped once one loses >1% or has p99 >1s."
mkdir -p "$RESULTS"
"$BIN/loadgen" report --out-dir "$RESULTS" --name "$NAME" --machine "$MACHINE" --notes "$NOTES" "${RUNS[@]}"
cat "$RESULTS/$NAME.md"
