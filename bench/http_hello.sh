#!/usr/bin/env bash
# http_hello.sh SERVER [FIGURE]: start SERVER (it prints "port N" once it
# listens on 127.0.0.1), run `wrk -t1 -c$HTTP_CONNS -d5s` against it
# (HTTP_CONNS: 64 unless set; the scaling sweep goes from 1 to 10,000), and
# print
#   http_hello: REQ req/s
#   http_hello_cpu: US µs/request
# (server CPU: utime+stime from /proc/PID/stat over the run, divided by the
# requests wrk counted). FIGURE (http_hello or http_hello_cpu) prints only
# that line. Exits 127 when wrk or the server is missing; 1 on errors (a
# non-2xx answer, a socket error, no request).
set -u
conns=${HTTP_CONNS:-64}
ulimit -n $((conns + 1024)) 2>/dev/null # the server's and wrk's sockets
server=$1
only=${2:-}
command -v wrk >/dev/null || exit 127
[ -x "$server" ] || exit 127
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
"$server" 0 >"$tmp/port" 2>"$tmp/err" &
pid=$!
for _ in $(seq 100); do
    grep -q '^port ' "$tmp/port" 2>/dev/null && break
    sleep 0.05
done
port=$(sed -n 's/^port //p' "$tmp/port")
[ -n "$port" ] || { echo "http_hello: server did not start" >&2; exit 1; }

# utime + stime of the server, in clock ticks (fields 14 and 15, counted
# after the ")" that ends the command name).
cpu_ticks() {
    sed 's/.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }'
}
before=$(cpu_ticks)
wrk -t1 -c"$conns" -d5s "http://127.0.0.1:$port/" >"$tmp/wrk" 2>&1
after=$(cpu_ticks)
hz=$(getconf CLK_TCK)

if grep -q -e 'Non-2xx' -e 'Socket errors' "$tmp/wrk"; then
    cat "$tmp/wrk" >&2
    exit 1
fi
reqs=$(awk '/requests in/ { print $1 }' "$tmp/wrk")
rate=$(awk '/^Requests\/sec:/ { print $2 }' "$tmp/wrk")
[ -n "$reqs" ] && [ "$reqs" -gt 0 ] || { cat "$tmp/wrk" >&2; exit 1; }
us=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$reqs" \
    'BEGIN { printf "%.2f", t * 1e6 / hz / n }')
[ "$only" = http_hello_cpu ] || printf 'http_hello: %.0f req/s\n' "$rate"
[ "$only" = http_hello ] || printf 'http_hello_cpu: %s µs/request\n' "$us"
