#!/usr/bin/env bash
# Validates the deployment files with the real tools, without a Docker
# engine (`make deploy-check`, run by `make test`):
#
#   - docker-compose.yml: `docker-compose config` (Debian's docker-compose),
#     then every file it references exists and the names the configs use
#     (Prometheus targets, HAProxy servers) are Compose services;
#   - deploy/haproxy/haproxy.cfg: `haproxy -c`;
#   - deploy/prometheus/prometheus.yml: `promtool check config`;
#   - deploy/redis/*.conf: a real redis-server runs each (network directives
#     overridden to a free loopback port), the replica syncs from the master,
#     and persistence is confirmed off;
#   - deploy/Dockerfile: multi-stage, locked release build of both binaries,
#     non-root USER, HEALTHCHECK, and every COPY source exists;
#   - deploy/healthcheck.sh: probes a live HTTP server (200 -> healthy,
#     404 or closed port -> unhealthy).
#
# Missing tools are installed from Debian's packages (docker-compose,
# haproxy, prometheus); nothing is installed when they are present.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PASSED=0
FAILED=0
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# The checks run in the subshell of `check`'s command substitution: one that
# starts processes records them in CHILD_PIDS and sets `trap kill_children
# EXIT`, which fires when that subshell ends, passed or failed.
CHILD_PIDS=()
kill_children() {
    local pid
    for pid in "${CHILD_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

pass() {
    PASSED=$((PASSED + 1))
    printf 'ok   %s\n' "$1"
}
failed() {
    FAILED=$((FAILED + 1))
    printf 'FAIL %s\n' "$1" >&2
    if [ -n "${2:-}" ]; then printf '%s\n' "$2" | sed 's/^/     /' >&2; fi
}

# check NAME COMMAND...: runs COMMAND, output shown only when it fails.
check() {
    local name="$1" output
    shift
    if output="$("$@" 2>&1)"; then
        pass "$name"
    else
        failed "$name" "$output"
    fi
}

# ---------------------------------------------------------------- tools

# /usr/bin/python3 with PyYAML comes with Debian's docker-compose.
PYTHON=/usr/bin/python3
missing=()
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ -x "$PYTHON" ] && ! "$PYTHON" -c 'import yaml' 2>/dev/null; then missing+=(python3-yaml); fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]} (Debian packages) for the deployment checks"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- compose

check "docker-compose.yml: docker-compose config" docker-compose -f docker-compose.yml config -q

compose_references() {
    docker-compose -f docker-compose.yml config >"$WORK/compose.yml"
    "$PYTHON" - "$WORK/compose.yml" <<'EOF'
import os, re, sys, yaml

compose = yaml.safe_load(open(sys.argv[1]))
services = compose["services"]
problems = []
expected = {"redis-master", "redis-replica-1", "redis-replica-2", "gateway", "emitter", "lb", "prometheus"}
if set(services) != expected:
    problems.append(f"services are {sorted(services)}, expected {sorted(expected)}")

for name, service in services.items():
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source = volume.split(":")[0]
            kind = "bind" if source.startswith(("/", ".")) else "volume"
        else:
            source, kind = volume.get("source", ""), volume.get("type")
        if kind == "bind" and not os.path.isfile(source):
            problems.append(f"{name}: mounted file {source} does not exist")
        if kind == "volume" and source not in (compose.get("volumes") or {}):
            problems.append(f"{name}: volume {source} is not declared")
    build = service.get("build")
    if build:
        dockerfile = os.path.join(build["context"], build.get("dockerfile", "Dockerfile"))
        if not os.path.isfile(dockerfile):
            problems.append(f"{name}: {dockerfile} does not exist")
    for dependency, spec in (service.get("depends_on") or {}).items():
        if dependency not in services:
            problems.append(f"{name}: depends on unknown service {dependency}")
        if not isinstance(spec, dict) or spec.get("condition") != "service_healthy":
            problems.append(f"{name}: depends_on {dependency} without condition service_healthy")
        elif "healthcheck" not in services.get(dependency, {}):
            problems.append(f"{name}: waits for {dependency} to be healthy but it has no healthcheck")

gateway = services.get("gateway", {})
if gateway.get("ports"):
    problems.append("gateway publishes host ports: `--scale gateway=N` would collide")
if "container_name" in gateway:
    problems.append("gateway has a container_name: it could not be scaled")
env = gateway.get("environment", {})
replicas = [u for u in env.get("GATEWAY_REDIS__REPLICA_URLS", "").split(",") if u]
if replicas != ["redis://redis-replica-1:6379", "redis://redis-replica-2:6379"]:
    problems.append(f"gateway replica URLs are {replicas}")
if env.get("GATEWAY_REDIS__SUBSCRIBER_SELECTION", "hash") != "hash":
    problems.append("gateway subscriber selection is not `hash`: gateways would not spread")
admin_port = env.get("GATEWAY_ADMIN_LISTEN", "0.0.0.0:9100").rsplit(":", 1)[1]
listen_port = env.get("GATEWAY_LISTEN", "0.0.0.0:3000").rsplit(":", 1)[1]

# Prometheus must find every gateway replica on its admin port, and scrape
# only hosts that are services.
prometheus = yaml.safe_load(open("deploy/prometheus/prometheus.yml"))
gateway_sd = False
for job in prometheus.get("scrape_configs", []):
    for sd in job.get("dns_sd_configs", []):
        for host in sd.get("names", []):
            if host not in services:
                problems.append(f"prometheus job {job['job_name']}: {host} is not a service")
            if host == "gateway" and sd.get("type") == "A" and str(sd.get("port")) == admin_port:
                gateway_sd = True
    for static in job.get("static_configs", []):
        for target in static.get("targets", []):
            host = target.rsplit(":", 1)[0]
            if host != "localhost" and host not in services:
                problems.append(f"prometheus job {job['job_name']}: {host} is not a service")
if not gateway_sd:
    problems.append(f"prometheus has no dns_sd_configs of type A for gateway on port {admin_port}")

# HAProxy must discover the gateway service on its Socket.IO port and
# check it on the admin port.
haproxy = open("deploy/haproxy/haproxy.cfg").read()
templates = re.findall(r"^\s*server-template\s+\S+\s+\S+\s+(\S+)", haproxy, re.M)
if f"gateway:{listen_port}" not in templates:
    problems.append(f"haproxy has no server-template for gateway:{listen_port} (found {templates})")
if not re.search(rf"^\s*default-server\b.*\bport {admin_port}\b.*\bresolvers docker\b", haproxy, re.M):
    problems.append(f"haproxy default-server does not check port {admin_port} with resolvers docker")

for problem in problems:
    print(problem)
sys.exit(1 if problems else 0)
EOF
}
check "docker-compose.yml: referenced files, services, discovery names and ports" compose_references

# ---------------------------------------------------------------- haproxy, prometheus

check "deploy/haproxy/haproxy.cfg: haproxy -c" haproxy -c -f deploy/haproxy/haproxy.cfg
check "deploy/prometheus/prometheus.yml: promtool check config" promtool check config deploy/prometheus/prometheus.yml

# ---------------------------------------------------------------- redis

redis_cli() { redis-cli -h 127.0.0.1 "$@" 2>&1 | tr -d '\r'; }
redis_pong() { [ "$(redis_cli -p "$1" PING)" = PONG ]; }
replica_linked() { redis_cli -p "$1" INFO replication | grep -qx master_link_status:up; }
subscribed() { [ "$(redis_cli -p "$1" PUBSUB NUMSUB "$2" | tail -1)" = 1 ]; }

# Polls COMMAND for up to 10 s.
eventually() {
    local deadline=$((SECONDS + 10))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

redis_confs() {
    trap kill_children EXIT
    local master_port replica_port
    master_port="$(free_port)"
    replica_port="$(free_port)"
    mkdir -p "$WORK/master" "$WORK/replica"
    # Network and working-directory directives are overridden (the files
    # are written for the Compose network); everything else is as shipped.
    redis-server deploy/redis/master.conf --port "$master_port" --bind 127.0.0.1 \
        --dir "$WORK/master" --daemonize no >"$WORK/master.log" 2>&1 &
    CHILD_PIDS+=($!)
    redis-server deploy/redis/replica.conf --port "$replica_port" --bind 127.0.0.1 \
        --replicaof 127.0.0.1 "$master_port" --dir "$WORK/replica" --daemonize no >"$WORK/replica.log" 2>&1 &
    CHILD_PIDS+=($!)
    if ! eventually redis_pong "$master_port"; then
        echo "master.conf: redis-server does not answer"
        cat "$WORK/master.log"
        return 1
    fi
    if ! eventually replica_linked "$replica_port"; then
        echo "replica.conf: the replica did not sync from the master"
        cat "$WORK/replica.log"
        return 1
    fi
    local port
    for port in "$master_port" "$replica_port"; do
        [ "$(redis_cli -p "$port" CONFIG GET save | sed -n 2p)" = "" ] || {
            echo "port $port: RDB snapshots are on"
            return 1
        }
        [ "$(redis_cli -p "$port" CONFIG GET appendonly | sed -n 2p)" = "no" ] || {
            echo "port $port: AOF is on"
            return 1
        }
    done
    # A message published on the master reaches a subscriber of the replica,
    # which is what the gateways rely on.
    redis-cli -h 127.0.0.1 -p "$replica_port" SUBSCRIBE deploy-check >"$WORK/sub.out" 2>&1 &
    CHILD_PIDS+=($!)
    eventually subscribed "$replica_port" deploy-check || {
        echo "subscriber on the replica did not subscribe"
        return 1
    }
    redis_cli -p "$master_port" PUBLISH deploy-check hello >/dev/null
    eventually grep -qx hello "$WORK/sub.out" || {
        echo "a message published on the master did not reach the replica's subscriber"
        return 1
    }
    redis_cli -p "$replica_port" SHUTDOWN NOSAVE >/dev/null || true
    redis_cli -p "$master_port" SHUTDOWN NOSAVE >/dev/null || true
}
check "deploy/redis/{master,replica}.conf: run, replicate, relay pub/sub, persistence off" redis_confs

# ---------------------------------------------------------------- dockerfile

dockerfile() {
    local file=deploy/Dockerfile problems=0
    [ "$(grep -c '^FROM ' "$file")" -ge 2 ] || {
        echo "not multi-stage"
        problems=1
    }
    grep -q 'cargo build --release -p gateway -p emitter --locked' "$file" || {
        echo "no locked release build of gateway and emitter"
        problems=1
    }
    local user
    user="$(awk '$1 == "USER" { u = $2 } END { print u }' "$file")"
    case "${user%%:*}" in
    "" | 0 | root)
        echo "the final stage runs as root (USER '$user')"
        problems=1
        ;;
    esac
    grep -q '^HEALTHCHECK ' "$file" || {
        echo "no HEALTHCHECK"
        problems=1
    }
    grep -q '^EXPOSE ' "$file" || {
        echo "no EXPOSE"
        problems=1
    }
    # COPY sources from the build context (not --from=stage) must exist and
    # must not be excluded by the Dockerfile's .dockerignore.
    local source
    while read -r source; do
        [ -e "$source" ] || {
            echo "COPY source $source does not exist"
            problems=1
        }
        if grep -qxF "$source" deploy/Dockerfile.dockerignore; then
            echo "COPY source $source is excluded by deploy/Dockerfile.dockerignore"
            problems=1
        fi
    done < <(awk '$1 == "COPY" && $0 !~ /--from=/ { for (i = 2; i < NF; i++) if ($i !~ /^--/) print $i }' "$file")
    for source in Cargo.toml Cargo.lock crates; do
        if grep -qxF "$source" deploy/Dockerfile.dockerignore; then
            echo "$source is excluded from the build context"
            problems=1
        fi
    done
    return "$problems"
}
check "deploy/Dockerfile: multi-stage, locked release build, non-root, healthcheck" dockerfile

healthcheck_probe() {
    trap kill_children EXIT
    local port closed
    port="$(free_port)"
    closed="$(free_port)"
    mkdir -p "$WORK/www"
    echo ok >"$WORK/www/readyz"
    "$PYTHON" -m http.server "$port" --bind 127.0.0.1 --directory "$WORK/www" >/dev/null 2>&1 &
    CHILD_PIDS+=($!)
    eventually deploy/healthcheck.sh "$port" /readyz || {
        echo "healthy server (200) reported unhealthy"
        return 1
    }
    if deploy/healthcheck.sh "$port" /missing; then
        echo "404 reported healthy"
        return 1
    fi
    if deploy/healthcheck.sh "$closed" /readyz 2>/dev/null; then
        echo "closed port reported healthy"
        return 1
    fi
}
check "deploy/healthcheck.sh: 200 healthy, 404 and closed port unhealthy" healthcheck_probe

syntax() {
    local script
    for script in scripts/*.sh deploy/healthcheck.sh; do bash -n "$script" || return 1; done
}
check "scripts/*.sh, deploy/healthcheck.sh: bash -n" syntax

echo "deploy-check: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
