# Helpers shared by the scripts in this folder; sourced, never run.
# Each script sets its own `set -euo pipefail`.

# Polls COMMAND every 0.1 s for up to EVENT_TIMEOUT seconds (default 10).
eventually() {
    local deadline=$((SECONDS + ${EVENT_TIMEOUT:-10}))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# redis-cli on 127.0.0.1, errors included, without the carriage returns.
redis_cli() { redis-cli -h 127.0.0.1 "$@" 2>&1 | tr -d '\r'; }

# Whether the Redis server on port $1 answers PING.
redis_pong() { [ "$(redis_cli -p "$1" PING)" = PONG ]; }

# Whether the replica on port $1 has its link to its master up.
replica_linked() { redis_cli -p "$1" INFO replication | grep -qx 'master_link_status:up'; }

# The result lines of the test scripts, counted in PASSED and FAILED (each
# script sets both to 0 and prints its own summary).
pass() {
    PASSED=$((PASSED + 1))
    printf 'ok   %s\n' "$1"
}
# failed NAME [DETAIL]: a failure, DETAIL indented under it.
failed() {
    FAILED=$((FAILED + 1))
    printf 'FAIL %s\n' "$1" >&2
    [ -z "${2:-}" ] || printf '%s\n' "$2" | sed 's/^/     /' >&2
}

# apt_install [--with-recommends] PACKAGE...: installs Debian packages, as
# root or through sudo (`env` carries DEBIAN_FRONTEND past sudo, which
# resets the environment). Without recommends by default: docker-compose
# alone would recommend a whole Docker engine.
apt_install() {
    local sudo=() recommends=--no-install-recommends
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    if [ "${1:-}" = --with-recommends ]; then
        recommends=
        shift
    fi
    "${sudo[@]}" apt-get update -qq
    # shellcheck disable=SC2086 # an empty $recommends is no argument
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $recommends "$@" >/dev/null
}
