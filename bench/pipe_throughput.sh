#!/usr/bin/env bash
# pipe_throughput.sh FIGURE MIB COMMAND...: pipe MIB MiB of 32-byte lines
# through COMMAND... (which prints line counts, one or more: wc -l per block)
# and print `FIGURE: X MiB/s` (wall clock, the generator included, the same
# for every peer). Checks that the counts add up to the lines sent. Exits 127
# (prints nothing) when COMMAND is not installed.
set -u
fig=$1 mib=$2
shift 2
command -v "$1" >/dev/null 2>&1 || exit 127
bytes=$((mib * 1048576))
t0=$(date +%s%N)
sum=$(yes 'concur pipe throughput 01234567' | head -c $bytes | "$@" |
      awk '{ s += $1 } END { print s }') || exit 1
t1=$(date +%s%N)
if [ "$sum" != $((bytes / 32)) ]; then
    echo "$fig: $* counted $sum lines, not $((bytes / 32))" >&2
    exit 1
fi
awk -v f="$fig" -v ns=$((t1 - t0)) -v m="$mib" \
    'BEGIN { printf "%s: %.0f MiB/s\n", f, m / (ns / 1e9) }'
