#!/bin/bash
# Container health probe without curl in the image: GET http://127.0.0.1:PORT/PATH
# through bash's /dev/tcp, healthy (exit 0) only on a 200 status line.
#
#   healthcheck [PORT] [PATH]      defaults: 9100 /readyz (the gateway's admin port)
set -u
port="${1:-9100}"
path="${2:-/readyz}"
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$path" "$port" >&3 || exit 1
IFS= read -r -t 5 status_line <&3 || exit 1
case "$status_line" in
"HTTP/1."?" 200 "*) exit 0 ;;
*) exit 1 ;;
esac
