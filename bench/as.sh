#!/usr/bin/env bash
# as.sh FIGURE COMMAND...: run COMMAND (a benchmark or a peer, which prints
# `NAME: VALUE UNIT`) and print its first such line as `FIGURE: VALUE UNIT`,
# so that one program can stand for several figures (the scaling sweep in
# bench/scaling.d/ runs each at several sizes). Exits as COMMAND does (127:
# not installed, prints nothing).
set -u
fig=$1
shift
out=$("$@")
rc=$?
[ $rc -eq 0 ] || exit $rc
line=$(grep -m1 -E '^[A-Za-z0-9_]+: ' <<<"$out") || exit 1
echo "$fig: ${line#*: }"
