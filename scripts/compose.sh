#!/usr/bin/env bash
# The Compose deployment (docker-compose.yml) on a machine without Docker:
# podman's Docker-compatible API driven by docker-compose, with stand-in
# images built from Debian's packages for the upstream images no registry
# can give here (`make compose-up`, `make compose-down`).
#
#   scripts/compose.sh up [GATEWAYS]   default 2; COMPOSE_LAYOUT=fixed for
#                                      docker-compose.fixed.yml on top
#   scripts/compose.sh scale N         gateways, without restarting the rest
#   scripts/compose.sh down            containers and network gone; the
#                                      Prometheus volume stays, as `down` keeps it
#   scripts/compose.sh images          the stand-in images, built when missing
#
# What is set up when missing, and why (../shared notes, checked here):
#   - podman, docker-compose and mmdebstrap, from Debian's packages;
#   - `default_ulimits = []` in /etc/containers/containers.conf: podman's
#     default open-files limit is above this machine's hard limit, and every
#     container would fail to start; and `runtime = "runc"`, as Debian's
#     crun refuses a hybrid cgroup v1 host;
#   - `podman system service` on /run/podman/podman.sock, for docker-compose;
#   - a loop that runs the containers' healthchecks every 2 s: podman 4.3
#     schedules them with systemd timers, and without systemd they never run,
#     so `depends_on: service_healthy` would wait forever;
#   - the stand-ins, tagged with the upstream names the compose file and
#     deploy/Dockerfile use (podman then takes the local image and pulls
#     nothing): one Debian bookworm root filesystem (mmdebstrap) with
#     redis-server, redis-sentinel, haproxy, prometheus and wget, under
#     four entrypoints. An image that exists (pulled, or built before) is
#     kept.
# The app image is deploy/Dockerfile with `BINARIES=host`: the binaries
# built here (PROFILE=release by default; the test takes `debug`, which
# `cargo test` built), no Rust image needed. NO_BUILD=1 skips cargo.
#
# Ports on the host: LB_PORT (3000), LB_STATS_PORT (8404), EMITTER_PORT
# (8080), PROMETHEUS_PORT (9090), from the environment as the compose file
# reads them. State (pid files, logs): RUN_DIR/compose (RUN_DIR=.run).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

STATE="${RUN_DIR:-.run}/compose"
SOCKET=/run/podman/podman.sock
export DOCKER_HOST="unix://$SOCKET"
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-socketio-cluster}"
STANDIN_BASE=localhost/socketio-standin:bookworm
APP_IMAGE=socketio-cluster:local
UP_TIMEOUT="${UP_TIMEOUT:-180}"
CARGO="${CARGO:-cargo}"

log() { printf '[compose] %s\n' "$*" >&2; }
die() {
    log "$*"
    exit 1
}

compose_files() {
    local files=(-f docker-compose.yml)
    if [ "${COMPOSE_LAYOUT:-sentinel}" = fixed ]; then
        files+=(-f docker-compose.fixed.yml)
    fi
    printf '%s\n' "${files[@]}"
}

compose() {
    local files
    mapfile -t files < <(compose_files)
    docker-compose "${files[@]}" "$@"
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# apt_install
source scripts/lib.sh

# ---------------------------------------------------------------- engine

install_tools() {
    local engine=() clients=()
    command -v podman >/dev/null || engine+=(podman)
    command -v mmdebstrap >/dev/null || engine+=(mmdebstrap)
    command -v runc >/dev/null || engine+=(runc)
    command -v docker-compose >/dev/null || clients+=(docker-compose)
    command -v curl >/dev/null || clients+=(curl)
    if [ "${#engine[@]}" -gt 0 ]; then
        log "installing ${engine[*]}"
        # With their recommends (catatonit, uidmap, gpg, distro-info...),
        # as they were checked here.
        apt_install --with-recommends "${engine[@]}"
    fi
    if [ "${#clients[@]}" -gt 0 ]; then
        log "installing ${clients[*]}"
        # docker-compose would recommend a whole Docker engine.
        apt_install "${clients[@]}"
    fi
}

# set_in_conf SECTION KEY VALUE: adds `KEY = VALUE` to SECTION of
# containers.conf unless KEY is set there already.
set_in_conf() {
    local conf=/etc/containers/containers.conf section="$1" key="$2" value="$3"
    grep -qs "^ *$key *=" "$conf" && return 0
    log "setting $key = $value in $conf"
    as_root mkdir -p /etc/containers
    if grep -qs "^\[$section\]" "$conf"; then
        as_root sed -i "s/^\[$section\]\$/[$section]\n$key = $value/" "$conf"
    else
        printf '[%s]\n%s = %s\n' "$section" "$key" "$value" | as_root tee -a "$conf" >/dev/null
    fi
}

configure_containers() {
    # Without it every container fails with "error setting rlimit type 7".
    set_in_conf containers default_ulimits '[]'
    # Debian's crun refuses this machine's hybrid cgroup v1 hierarchy
    # ("cgroups in hybrid mode not supported"); runc runs on it.
    set_in_conf engine runtime '"runc"'
}

api_answers() { curl -sf --max-time 2 --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_service() {
    api_answers && return 0
    mkdir -p "$STATE"
    as_root mkdir -p /run/podman
    log "starting podman system service on $SOCKET"
    setsid podman system service --time=0 "unix://$SOCKET" >"$STATE/podman.log" 2>&1 &
    echo $! >"$STATE/podman.pid"
    local deadline=$((SECONDS + 30))
    until api_answers; do
        ((SECONDS < deadline)) || die "podman's API did not answer in 30 s: $(tail -5 "$STATE/podman.log")"
        sleep 0.2
    done
}

# podman 4.3 runs healthchecks from systemd timers only: run them here.
start_health_loop() {
    alive "$STATE/health.pid" && return 0
    mkdir -p "$STATE"
    (
        while true; do
            for id in $(podman ps -q --filter label=com.docker.compose.project 2>/dev/null); do
                podman healthcheck run "$id" >/dev/null 2>&1 || true
            done
            sleep 2
        done
    ) </dev/null >/dev/null 2>&1 &
    echo $! >"$STATE/health.pid"
}

stop_pid_file() {
    local file="$1" pid
    alive "$file" || {
        rm -f "$file"
        return 0
    }
    pid="$(cat "$file")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$file"
}

engine() {
    install_tools
    configure_containers
    start_service
    start_health_loop
}

# ---------------------------------------------------------------- images

# build_on_base TAG: a Containerfile read from stdin, FROM the stand-in base.
build_on_base() {
    local tag="$1" context
    context="$(mktemp -d)"
    cat >"$context/Containerfile"
    podman build -q -t "$tag" -f "$context/Containerfile" "$context" >/dev/null
    rm -rf "$context"
}

standin_base() {
    podman image exists "$STANDIN_BASE" && return 0
    local rootfs
    rootfs="$(mktemp -d)/rootfs.tar"
    log "building the stand-in root filesystem (mmdebstrap, Debian bookworm)"
    as_root mmdebstrap --quiet --variant=apt \
        --include=redis-server,redis-sentinel,redis-tools,haproxy,prometheus,wget,passwd,ca-certificates \
        bookworm "$rootfs"
    podman import -q "$rootfs" "$STANDIN_BASE" >/dev/null
    rm -rf "$(dirname "$rootfs")"
}

images() {
    local started=$SECONDS
    # The Redis image's users start redis-server, redis-sentinel and
    # redis-cli by name, in /data.
    if ! podman image exists docker.io/library/redis:7.2-alpine; then
        standin_base
        build_on_base docker.io/library/redis:7.2-alpine <<EOF
FROM $STANDIN_BASE
RUN mkdir -p /data /usr/local/etc/redis
WORKDIR /data
CMD ["redis-server"]
EOF
    fi
    if ! podman image exists docker.io/library/haproxy:2.8-alpine; then
        standin_base
        build_on_base docker.io/library/haproxy:2.8-alpine <<EOF
FROM $STANDIN_BASE
RUN mkdir -p /usr/local/etc/haproxy
USER haproxy
STOPSIGNAL SIGUSR1
CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
EOF
    fi
    if ! podman image exists docker.io/prom/prometheus:v2.53.4; then
        standin_base
        build_on_base docker.io/prom/prometheus:v2.53.4 <<EOF
FROM $STANDIN_BASE
RUN mkdir -p /prometheus /etc/prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
EOF
    fi
    # deploy/Dockerfile's runtime base (and its `host` stage).
    if ! podman image exists docker.io/library/debian:bookworm-slim; then
        standin_base
        podman tag "$STANDIN_BASE" docker.io/library/debian:bookworm-slim
    fi
    log "stand-in images ready ($((SECONDS - started)) s)"
}

app_image() {
    local profile="${PROFILE:-release}"
    if [ "${NO_BUILD:-0}" != 1 ]; then
        if [ "$profile" = debug ]; then
            "$CARGO" build -p gateway -p emitter
        else
            "$CARGO" build --profile "$profile" -p gateway -p emitter
        fi
    fi
    local target="${CARGO_TARGET_DIR:-target}/$profile"
    mkdir -p deploy/.bin
    cp "$target/gateway" "$target/emitter" deploy/.bin/
    log "building $APP_IMAGE from deploy/Dockerfile with the host's binaries"
    podman build -q --build-arg BINARIES=host -f deploy/Dockerfile -t "$APP_IMAGE" . >/dev/null
}

# ---------------------------------------------------------------- up / down

# Prints "name status" for each container of the project.
containers() {
    podman ps -a --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" \
        --format '{{.Names}} {{.Status}}'
}

# Waits until no container of the project is starting or unhealthy and
# every one runs; on timeout prints the logs of those that are not.
wait_healthy() {
    local deadline=$((SECONDS + UP_TIMEOUT)) pending
    while true; do
        pending="$(containers | grep -v -E ' Up .*\(healthy\)$' | grep -v -E ' Up [^(]*$' || true)"
        [ -z "$pending" ] && return 0
        if ((SECONDS >= deadline)); then
            log "not healthy after ${UP_TIMEOUT} s:"
            printf '%s\n' "$pending" >&2
            local name
            for name in $(printf '%s\n' "$pending" | awk '{ print $1 }'); do
                log "---- logs of $name"
                podman logs --tail 40 "$name" >&2 2>&1 || true
            done
            return 1
        fi
        sleep 1
    done
}

up() {
    local gateways="${1:-${GATEWAYS:-2}}" started=$SECONDS
    engine
    images
    app_image
    log "docker-compose up ($COMPOSE_PROJECT_NAME, ${COMPOSE_LAYOUT:-sentinel} layout, $gateways gateways)"
    compose up -d --no-build --scale "gateway=$gateways" >&2
    wait_healthy
    log "every container healthy, $((SECONDS - started)) s after compose-up began"
}

scale() {
    local gateways="$1"
    engine
    compose up -d --no-build --no-recreate --scale "gateway=$gateways" >&2
    wait_healthy
}

down() {
    if api_answers; then
        COMPOSE_LAYOUT=sentinel compose down --remove-orphans --timeout 10 >&2 || true
    fi
    stop_pid_file "$STATE/health.pid"
    stop_pid_file "$STATE/podman.pid"
}

case "${1:-}" in
up) up "${2:-}" ;;
scale) scale "${2:?scale N}" ;;
down) down ;;
images)
    engine
    images
    ;;
*) die "usage: $0 up [GATEWAYS] | scale N | down | images" ;;
esac
