#!/usr/bin/env bash
# Validates the deployment files with the real tools, without a Docker
# engine (`make deploy-check`, run by `make test`):
#
#   - docker-compose.yml: `docker-compose config` (Debian's docker-compose),
#     then every file it references exists and the names the configs use
#     (Prometheus targets, HAProxy servers) are Compose services;
#   - deploy/haproxy/haproxy.cfg: `haproxy -c`;
#   - deploy/prometheus/prometheus.yml: `promtool check config`;
#   - docker-compose.fixed.yml (override: no Sentinel) merged with it:
#     `docker-compose config`, fixed URLs, sentinels kept out by a profile;
#   - deploy/redis/*.conf: a real redis-server runs each (network directives
#     overridden to a free loopback port), the replica syncs from the master,
#     and persistence is confirmed off; three real sentinels run
#     sentinel.conf against them, find each other and fail over;
#   - deploy/Dockerfile: multi-stage, locked release build of both binaries,
#     non-root USER, HEALTHCHECK, and every COPY source exists;
#   - deploy/healthcheck.sh: probes a live HTTP server (200 -> healthy,
#     404 or closed port -> unhealthy).
#
# Missing tools are installed from Debian's packages (docker-compose,
# haproxy, prometheus); nothing is installed when they are present.
set -euo pipefail
# eventually, redis_cli, redis_pong, replica_linked, pass, failed, apt_install
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

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
    apt_install "${missing[@]}"
fi

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- compose

check "docker-compose.yml: docker-compose config" docker-compose -f docker-compose.yml config -q
check "docker-compose.yml + docker-compose.fixed.yml: docker-compose config" \
    docker-compose -f docker-compose.yml -f docker-compose.fixed.yml config -q

# compose_references MODE FILE...: MODE is `sentinel` (the default layout:
# gateways and emitter ask the sentinels) or `fixed` (the override file:
# fixed master and replica URLs, sentinels kept out by a profile).
compose_references() {
    local mode="$1" files=() file
    shift
    for file in "$@"; do files+=(-f "$file"); done
    docker-compose "${files[@]}" config >"$WORK/compose-$mode.yml"
    "$PYTHON" - "$WORK/compose-$mode.yml" "$mode" <<'EOF'
import os, re, sys, yaml

compose = yaml.safe_load(open(sys.argv[1]))
mode = sys.argv[2]
services = compose["services"]
problems = []
sentinels = ["sentinel-1", "sentinel-2", "sentinel-3"]
expected = {"redis-master", "redis-replica-1", "redis-replica-2", "gateway", "emitter", "lb", "prometheus", *sentinels}
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
emitter_env = services.get("emitter", {}).get("environment", {})
replicas = [u for u in (env.get("GATEWAY_REDIS__REPLICA_URLS") or "").split(",") if u]
gateway_sentinels = [u for u in (env.get("GATEWAY_REDIS__SENTINEL_URLS") or "").split(",") if u]
emitter_sentinels = [u for u in (emitter_env.get("EMITTER_REDIS__SENTINEL_URLS") or "").split(",") if u]
# The master group the sentinels monitor, as deploy/redis/sentinel.conf names it.
monitor = re.search(r"^sentinel monitor (\S+) (\S+) (\d+) (\d+)$", open("deploy/redis/sentinel.conf").read(), re.M)
if not monitor:
    problems.append("deploy/redis/sentinel.conf has no `sentinel monitor` line")
elif monitor.group(2, 3) != ("redis-master", "6379"):
    problems.append(f"sentinel.conf monitors {monitor.group(2)}:{monitor.group(3)}, not redis-master:6379")
master_name = monitor.group(1) if monitor else "?"
for name in sentinels:
    sentinel = services.get(name, {})
    profiles = sentinel.get("profiles") or []
    if mode == "fixed" and not profiles:
        problems.append(f"{name} would start in the fixed layout (no profile): a failover would move the master away from the fixed URL")
    if mode == "sentinel" and profiles:
        problems.append(f"{name} has profiles {profiles}: it would not start by default")
    if "sentinel.conf" not in " ".join(sentinel.get("command") or []) or "/data/" not in " ".join(sentinel.get("command") or []):
        problems.append(f"{name} does not run from a writable copy of sentinel.conf")
    if sentinel.get("ports"):
        problems.append(f"{name} publishes host ports")
for dependency in (gateway.get("depends_on") or {}):
    if dependency in sentinels:
        problems.append(f"gateway depends on {dependency}, which the fixed layout disables")
if mode == "sentinel":
    want = [f"{name}:26379" for name in sentinels]
    if gateway_sentinels != want:
        problems.append(f"gateway sentinel URLs are {gateway_sentinels}, expected {want}")
    if emitter_sentinels != want:
        problems.append(f"emitter sentinel URLs are {emitter_sentinels}, expected {want}")
    for who, key, environment in [("gateway", "GATEWAY_REDIS__SENTINEL_MASTER", env), ("emitter", "EMITTER_REDIS__SENTINEL_MASTER", emitter_env)]:
        if environment.get(key, "mymaster") != master_name:
            problems.append(f"{who} {key} is {environment.get(key)!r}, sentinel.conf monitors {master_name!r}")
    if replicas:
        problems.append(f"gateway replica URLs {replicas} would override the replicas the sentinels report")
    for name, service in services.items():
        if name.startswith("redis-"):
            command = service.get("command") or []
            if command[-2:] != ["--replica-announce-ip", name]:
                problems.append(f"{name} does not announce its service name (--replica-announce-ip {name}): sentinels would hand out container IPs")
else:
    if gateway_sentinels or emitter_sentinels:
        problems.append(f"fixed layout still names sentinels: gateway {gateway_sentinels}, emitter {emitter_sentinels}")
    if replicas != ["redis://redis-replica-1:6379", "redis://redis-replica-2:6379"]:
        problems.append(f"gateway replica URLs are {replicas}")
    if env.get("GATEWAY_REDIS__URL") != "redis://redis-master:6379":
        problems.append(f"gateway master URL is {env.get('GATEWAY_REDIS__URL')!r}")
    if emitter_env.get("EMITTER_REDIS__URL") != "redis://redis-master:6379":
        problems.append(f"emitter master URL is {emitter_env.get('EMITTER_REDIS__URL')!r}")
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
check "docker-compose.yml: referenced files, services, sentinels, discovery names and ports" \
    compose_references sentinel docker-compose.yml
check "docker-compose.yml + docker-compose.fixed.yml: fixed master and replicas, sentinels disabled" \
    compose_references fixed docker-compose.yml docker-compose.fixed.yml

# ---------------------------------------------------------------- haproxy, prometheus

check "deploy/haproxy/haproxy.cfg: haproxy -c" haproxy -c -f deploy/haproxy/haproxy.cfg
check "deploy/prometheus/prometheus.yml: promtool check config" promtool check config deploy/prometheus/prometheus.yml

# ---------------------------------------------------------------- redis

subscribed() { [ "$(redis_cli -p "$1" PUBSUB NUMSUB "$2" | tail -1)" = 1 ]; }


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

sentinel_master_addr() { redis_cli -p "$1" SENTINEL get-master-addr-by-name mymaster | paste -sd: -; }
# sentinel_field PORT FIELD: a field of `SENTINEL MASTER mymaster`.
sentinel_field() { redis_cli -p "$1" SENTINEL MASTER mymaster | awk -v f="$2" 'prev == f { print; exit } { prev = $0 }'; }
sentinel_knows() { [ "$(sentinel_field "$1" num-other-sentinels)" = 2 ] && [ "$(sentinel_field "$1" num-slaves)" = 1 ]; }
master_is() { [ "$(sentinel_master_addr "$1")" = "127.0.0.1:$2" ]; }

# Three real sentinels run deploy/redis/sentinel.conf (a private copy each,
# as in Compose) against a master and a replica started from the shipped
# files: they must find the master, each other and the replica, and carry
# out a failover. Only the network directives and the monitored address
# (`redis-master 6379`, a Compose name) are changed.
sentinel_conf() {
    trap kill_children EXIT
    local master_port replica_port i port ports=()
    master_port="$(free_port)"
    replica_port="$(free_port)"
    mkdir -p "$WORK/s-master" "$WORK/s-replica"
    # Copies: the failover makes the servers CONFIG REWRITE their files
    # (in Compose the mounts are read-only and the rewrite just fails).
    cp deploy/redis/master.conf "$WORK/s-master/redis.conf"
    cp deploy/redis/replica.conf "$WORK/s-replica/redis.conf"
    redis-server "$WORK/s-master/redis.conf" --port "$master_port" --bind 127.0.0.1 \
        --dir "$WORK/s-master" --daemonize no >"$WORK/s-master.log" 2>&1 &
    CHILD_PIDS+=($!)
    redis-server "$WORK/s-replica/redis.conf" --port "$replica_port" --bind 127.0.0.1 \
        --replicaof 127.0.0.1 "$master_port" --dir "$WORK/s-replica" --daemonize no >"$WORK/s-replica.log" 2>&1 &
    CHILD_PIDS+=($!)
    eventually replica_linked "$replica_port" || {
        echo "the replica did not sync from the master"
        return 1
    }
    for i in 1 2 3; do
        port="$(free_port)"
        ports+=("$port")
        mkdir -p "$WORK/sentinel-$i"
        sed "s/^sentinel monitor mymaster redis-master 6379 2\$/sentinel monitor mymaster 127.0.0.1 $master_port 2/" \
            deploy/redis/sentinel.conf >"$WORK/sentinel-$i/sentinel.conf"
        grep -q "^sentinel monitor mymaster 127.0.0.1 $master_port 2\$" "$WORK/sentinel-$i/sentinel.conf" || {
            echo "sentinel.conf has no line \`sentinel monitor mymaster redis-master 6379 2\`"
            return 1
        }
        redis-server "$WORK/sentinel-$i/sentinel.conf" --sentinel --port "$port" --bind 127.0.0.1 \
            --dir "$WORK/sentinel-$i" --daemonize no >"$WORK/sentinel-$i.log" 2>&1 &
        CHILD_PIDS+=($!)
    done
    for i in 0 1 2; do
        eventually master_is "${ports[$i]}" "$master_port" || {
            echo "sentinel $((i + 1)) does not report the master: $(sentinel_master_addr "${ports[$i]}")"
            cat "$WORK/sentinel-$((i + 1)).log"
            return 1
        }
        eventually sentinel_knows "${ports[$i]}" || {
            echo "sentinel $((i + 1)) knows $(sentinel_field "${ports[$i]}" num-other-sentinels) other sentinels and $(sentinel_field "${ports[$i]}" num-slaves) replicas (want 2 and 1)"
            cat "$WORK/sentinel-$((i + 1)).log"
            return 1
        }
    done
    [ "$(sentinel_field "${ports[0]}" quorum)" = 2 ] || {
        echo "quorum is $(sentinel_field "${ports[0]}" quorum), not 2"
        return 1
    }
    # Sentinel rewrote its private copy (its id): the copy must be writable.
    grep -q '^sentinel myid ' "$WORK/sentinel-1/sentinel.conf" || {
        echo "sentinel 1 did not rewrite its configuration file"
        return 1
    }
    redis_cli -p "${ports[0]}" SENTINEL FAILOVER mymaster >/dev/null
    for i in 0 1 2; do
        eventually master_is "${ports[$i]}" "$replica_port" || {
            echo "after SENTINEL FAILOVER, sentinel $((i + 1)) reports $(sentinel_master_addr "${ports[$i]}"), not the promoted replica 127.0.0.1:$replica_port"
            cat "$WORK/sentinel-$((i + 1)).log"
            return 1
        }
    done
}
check "deploy/redis/sentinel.conf: three sentinels find the master, each other and the replica, and fail over" sentinel_conf

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
    # must not be excluded by the Dockerfile's .dockerignore; deploy/.bin/
    # holds the host's binaries only once `make compose-up` put them there.
    local source
    while read -r source; do
        [[ "$source" == deploy/.bin/* ]] || [ -e "$source" ] || {
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
