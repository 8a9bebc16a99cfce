#!/usr/bin/env bash
# bench/run.sh BUILD_DIR [REGEX]: run every figure of bench/figures.d/*.txt (or of
# $BENCH_FIGURES/*.txt: bench/scaling.d for the scaling sweep) whose name matches
# REGEX, concur's and its peers', interleaved (A B C A B C ...) for $BENCH_RUNS
# rounds (default 5), and print a markdown table of the medians.
#
# ratio = how many times better concur is than the peer: peer/concur for figures where
# lower is better (ns, us, ms, KiB, s), concur/peer where higher is better (x/s, x).
set -uo pipefail
B=$(cd "${1:?usage: bench/run.sh BUILD_DIR [REGEX]}" && pwd)
ONLY=${2:-.}
RUNS=${BENCH_RUNS:-5}
FIGDIR=${BENCH_FIGURES:-bench/figures.d}
export B
cd "$(dirname "$0")/.."

declare -A CMD       # "figure|who" -> command
declare -A SAMPLES   # "figure|who" -> space-separated values
declare -A UNIT      # figure -> unit
FIGURES=()           # in order of first appearance
declare -A WHOS      # figure -> space-separated whos, in order

while IFS=$'\t' read -r fig who cmd; do
    [[ -z "$fig" || "$fig" == \#* ]] && continue
    [[ "$fig" =~ $ONLY ]] || continue
    [[ -n "${WHOS[$fig]+x}" ]] || { FIGURES+=("$fig"); WHOS[$fig]=""; }
    WHOS[$fig]+="$who "
    CMD["$fig|$who"]=$cmd
done < <(cat "$FIGDIR"/*.txt 2>/dev/null)

# run_one FIGURE WHO: run the command once, record its value (or nothing).
run_one() {
    local fig=$1 who=$2 line value unit
    line=$(timeout 120 bash -c "${CMD[$fig|$who]}" 2>/dev/null | grep -m1 "^$fig: ")
    [[ -n "$line" ]] || return 0
    read -r _ value unit <<<"$line"
    SAMPLES["$fig|$who"]+="$value "
    [[ "$who" == concur ]] && UNIT[$fig]=$unit
    [[ -n "${UNIT[$fig]:-}" ]] || UNIT[$fig]=$unit
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]}'; }

# human VALUE: 48646935 -> 48.6 M, 0.585 -> 0.585
human() {
    [[ "$1" =~ ^[0-9.eE+-]+$ ]] || { echo "$1"; return; }
    awk -v v="$1" 'BEGIN {
        if (v >= 1e9) printf "%.3g G", v / 1e9; else if (v >= 1e6) printf "%.3g M", v / 1e6;
        else if (v >= 1e4) printf "%.3g k", v / 1e3; else if (v >= 100) printf "%.0f", v;
        else printf "%.3g", v }'
}

higher_is_better() { [[ "$1" == */s || "$1" == x ]]; }

for fig in "${FIGURES[@]}"; do
    for ((r = 0; r < RUNS; r++)); do
        for who in ${WHOS[$fig]}; do run_one "$fig" "$who"; done
    done
done

echo "| figure | unit | concur | peer | peer's value | ratio (concur better if > 1) |"
echo "|---|---|---|---|---|---|"
for fig in "${FIGURES[@]}"; do
    unit=${UNIT[$fig]:-?}
    mine=$(median <<<"${SAMPLES[$fig|concur]:-}")
    [[ -n "$mine" ]] || mine=failed
    for who in ${WHOS[$fig]}; do
        [[ "$who" == concur ]] && continue
        theirs=$(median <<<"${SAMPLES[$fig|$who]:-}")
        if [[ -z "$theirs" ]]; then
            echo "| $fig | $unit | $(human "$mine") | $who | not installed | |"
            continue
        fi
        ratio=""
        if [[ "$mine" != failed ]]; then
            if higher_is_better "$unit"; then
                ratio=$(awk -v a="$mine" -v b="$theirs" 'BEGIN {printf "%.2f", a / b}')
            else
                ratio=$(awk -v a="$mine" -v b="$theirs" 'BEGIN {printf "%.2f", b / a}')
            fi
        fi
        echo "| $fig | $unit | $(human "$mine") | $who | $(human "$theirs") | $ratio |"
    done
    [[ "${WHOS[$fig]}" == "concur " ]] && echo "| $fig | $unit | $(human "$mine") | (no peer) | | |"
done
echo
target=bench
[[ "$FIGDIR" == bench/scaling.d ]] && target=bench-scaling
echo "Medians of $RUNS interleaved runs; $(nproc) cores; $(date -u +%Y-%m-%d); command: make $target ONLY='$ONLY'"
