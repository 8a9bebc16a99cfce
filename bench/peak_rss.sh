#!/usr/bin/env bash
# peak_rss.sh FIGURE N COMMAND...: run `seq N | COMMAND...` and print
# `FIGURE: X KiB`, the peak resident memory of COMMAND (GNU time's %M: the
# largest process it waited for, the runner, not its short jobs). Exits 127
# (prints nothing) when COMMAND or /usr/bin/time is not installed.
set -u
fig=$1 n=$2
shift 2
command -v "$1" >/dev/null 2>&1 || exit 127
[ -x /usr/bin/time ] || exit 127
out=$(mktemp)
trap 'rm -f "$out"' EXIT
seq "$n" | /usr/bin/time -f %M -o "$out" "$@" >/dev/null ||
    { echo "$fig: $* failed" >&2; exit 1; }
echo "$fig: $(tail -n 1 "$out") KiB"
