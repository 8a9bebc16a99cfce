#!/usr/bin/env bash
# per_job.sh FIGURE N COMMAND...: time `seq N | COMMAND...`, print
# `FIGURE: X ms/job`. Exits 127 (prints nothing) when COMMAND is not installed.
set -u
fig=$1 n=$2
shift 2
command -v "$1" >/dev/null 2>&1 || exit 127
t0=$(date +%s%N)
seq "$n" | "$@" >/dev/null || { echo "$fig: $* failed" >&2; exit 1; }
t1=$(date +%s%N)
awk -v f="$fig" -v ns=$((t1 - t0)) -v n="$n" 'BEGIN { printf "%s: %.3f ms/job\n", f, ns / 1e6 / n }'
