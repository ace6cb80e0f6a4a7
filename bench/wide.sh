#!/bin/bash
# Time regprune on a single repository with more and more tags, to show
# how the work per repository grows with its number of tags.
#
# Usage: bench/wide.sh [--tags "N1 N2 ..."] [--runs N] DIR
#
# For each N (default "2000 4000 8000 16000 32000"), DIR/wide-N contains one
# repository, wide/app, with N tags on N images that share one layer,
# pushed a minute apart. The tree is generated from a spec unless it is
# there already, and kept for later runs. Each line gives the median of
# RUNS runs (default 3) of
#   regprune prune --dry-run   keep-last, count=10
#   regprune gc --dry-run      the same scan without a policy
# in seconds and in microseconds per tag, and the time as a multiple of
# the line before. The default counts double from line to line, so 2.0
# there means linear growth and 4.0 quadratic.
# Environment: REGPRUNE, MKREGISTRY, POLICY and NOW as for bench/large.sh.
set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")/.."
BENCH_NAME=wide.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh

regprune=${REGPRUNE:-./regprune}
MKREGISTRY=${MKREGISTRY:-build/mkregistry}
policy=${POLICY:-policies/keep-last.lua}
counts="2000 4000 8000 16000 32000"
runs=3
dir=

usage() {
    sed -n '5p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
    --tags)
        [ $# -ge 2 ] || usage
        counts=$2
        shift 2
        ;;
    --runs)
        if [ $# -lt 2 ] || ! [[ $2 =~ ^[1-9][0-9]*$ ]]; then
            usage
        fi
        runs=$2
        shift 2
        ;;
    -*) usage ;;
    *)
        [ -z "$dir" ] || usage
        dir=$1
        shift
        ;;
    esac
done
[ -n "$dir" ] || usage
for n in $counts; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || bench_die "--tags: '$n' is not a count"
done
for tool in "$regprune" "$MKREGISTRY" /usr/bin/time; do
    [ -x "$tool" ] || bench_die "missing: $tool"
done

scratch=$(mktemp -d "${TMPDIR:-/tmp}/regprune-wide.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# write_spec N: one repository with N tags, each on its own image.
write_spec() {
    local n=$1 i
    echo "layer base 2K"
    for ((i = 0; i < n; i++)); do
        echo "image wide/app:t$i layers=base pushed=-$((n - i))m"
    done
}

# median_seconds COMMAND...: the median wall-clock seconds of $runs runs.
median_seconds() {
    local i
    for ((i = 0; i < runs; i++)); do
        time_run "$*" "$scratch" "$@"
    done | awk '{ print $1 }' | median
}

# cell SECONDS PREVIOUS_SECONDS: seconds, microseconds per tag (of $n)
# and the multiple of the previous line.
cell() {
    awk -v s="$1" -v n="$n" -v p="$2" 'BEGIN {
        printf "%8.3f %8.1f %6s", s, s * 1e6 / n,
            (p == "" ? "-" : sprintf("%.2f", s / p)) }'
}

describe_machine "$dir"
printf 'one repository, N tags; median of %d runs after one warm-up run\n' \
    "$runs"
printf '%7s  %-30s  %-30s\n' tags "prune --dry-run: s, us/tag, x" \
    "gc --dry-run: s, us/tag, x"
previous_prune=
previous_gc=
for n in $counts; do
    root=$dir/wide-$n
    write_spec "$n" > "$scratch/spec"
    ensure_generated "$root" "mkregistry --now $BENCH_NOW wide $n" \
        --spec "$scratch/spec" > /dev/null
    prune=("$regprune" --root "$root" prune --policy "$policy"
        --set count=10 --dry-run)
    gc=("$regprune" --root "$root" gc --dry-run)
    time_run warm-up "$scratch" "${prune[@]}" > /dev/null
    time_run warm-up "$scratch" "${gc[@]}" > /dev/null
    prune_s=$(median_seconds "${prune[@]}")
    gc_s=$(median_seconds "${gc[@]}")
    printf '%7s  %-30s  %-30s\n' "$n" "$(cell "$prune_s" "$previous_prune")" \
        "$(cell "$gc_s" "$previous_gc")"
    previous_prune=$prune_s
    previous_gc=$gc_s
done
