#!/usr/bin/env bash
# go_peer.sh NAME [ARGS...]: build bench/peers/NAME.go into $B/bench/NAME_go
# once (GOPATH mode, no network), then run it with ARGS. Exits 127 when Go is
# not installed or the build fails.
set -u
name=$1
shift
bin=$B/bench/${name}_go
if [ ! -x "$bin" ]; then
    command -v go >/dev/null || exit 127
    GOCACHE=$B/gocache GOPATH=$B/gopath GO111MODULE=off \
        go build -o "$bin" "bench/peers/$name.go" || exit 127
fi
exec "$bin" "$@"
