#!/bin/bash
# Time regprune against the floor of reading every file in the tree.
#
# Builds the seed registry (build/mkregistry --scenario seed) in a temporary
# directory, then reports the median of RUNS timed runs (after one warm-up
# run) of:
#   floor     find ROOT -type f -print0 | xargs -0 cat > /dev/null
#   dry run   regprune --root ROOT prune --policy POLICY --set count=10
#             --dry-run acme/app
#   real run  the same without --dry-run, each time on a fresh copy made
#             with cp -a before the clock starts
# and each regprune median as a multiple of the floor.
#
# Usage: bench/seed.sh [--floor-only]
# Build first with `make` (it makes ./regprune and build/mkregistry).
# Environment: RUNS (default 5), LAYER_SIZE (largest layer in bytes,
# default 8192), REGPRUNE, MKREGISTRY and POLICY to use other files, and
# TMPDIR for the file system the tree is written to.
set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")/.."

runs=${RUNS:-5}
layer_size=${LAYER_SIZE:-8192}
regprune=${REGPRUNE:-./regprune}
mkregistry=${MKREGISTRY:-build/mkregistry}
policy=${POLICY:-policies/keep-last.lua}
repo=acme/app
floor_only=false

case "${1:-}" in
--floor-only) floor_only=true ;;
"") ;;
*)
    echo "usage: bench/seed.sh [--floor-only]" >&2
    exit 2
    ;;
esac

missing=()
[ -x "$mkregistry" ] || missing+=("$mkregistry")
if ! $floor_only; then
    [ -x "$regprune" ] || missing+=("$regprune")
    [ -f "$policy" ] || missing+=("$policy")
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "seed.sh: missing: ${missing[*]}" >&2
    echo "seed.sh: run 'make' first, or pass --floor-only to time the" \
        "floor alone" >&2
    exit 1
fi
if ! [[ $runs =~ ^[1-9][0-9]*$ ]]; then
    echo "seed.sh: RUNS must be a positive integer, not '$runs'" >&2
    exit 2
fi

subtract() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f\n", a - b }'
}

work=$(mktemp -d "${TMPDIR:-/tmp}/regprune-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/seed

start=$EPOCHREALTIME
summary=$("$mkregistry" --scenario seed --layer-size "$layer_size" "$root")
generate_seconds=$(subtract "$EPOCHREALTIME" "$start")

# Print the wall-clock seconds one run of "$@" takes. Its stdout is
# discarded, and a failing command stops the benchmark with its stderr.
time_once() {
    local t0 t1
    t0=$EPOCHREALTIME
    if ! "$@" > /dev/null 2> "$work/stderr"; then
        echo "seed.sh: failed: $*" >&2
        cat "$work/stderr" >&2
        exit 1
    fi
    t1=$EPOCHREALTIME
    subtract "$t1" "$t0"
}

median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR % 2) print v[(NR + 1) / 2]
        else print (v[NR / 2] + v[NR / 2 + 1]) / 2
    }'
}

read_all() {
    find "$1" -type f -print0 | xargs -0 cat > /dev/null
}

# Run "$@" once to warm up, then $runs timed times, and print the median.
measure() {
    local i
    "$@" > /dev/null 2>&1 || true
    for ((i = 0; i < runs; i++)); do
        time_once "$@"
    done | median
}

# The real run deletes, so each run gets its own copy, made untimed.
measure_real() {
    local i copy=$work/copy
    for ((i = 0; i <= runs; i++)); do
        rm -rf "$copy"
        cp -a "$root" "$copy"
        if [ "$i" -eq 0 ]; then
            "$@" --root "$copy" prune --policy "$policy" --set count=10 \
                "$repo" > /dev/null 2>&1 || true
            continue
        fi
        time_once "$@" --root "$copy" prune --policy "$policy" \
            --set count=10 "$repo"
    done | median
    rm -rf "$copy"
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f\n", a / b }'
}

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
printf 'machine: %s, %s cores; %s\n' "${cpu:-unknown CPU}" "$(nproc)" \
    "$(uname -sr)"
printf 'tree: %s (generated in %.2f s)\n' "$summary" "$generate_seconds"
printf 'median of %d runs after one warm-up run, wall-clock seconds:\n' \
    "$runs"

floor=$(measure read_all "$root")
printf '  %-38s %8.4f\n' "floor (read every file)" "$floor"
if $floor_only; then
    exit 0
fi

dry=$(measure "$regprune" --root "$root" prune --policy "$policy" \
    --set count=10 --dry-run "$repo")
printf '  %-38s %8.4f  %6.2f x floor\n' "dry run (prune --dry-run $repo)" \
    "$dry" "$(ratio "$dry" "$floor")"

real=$(measure_real "$regprune")
printf '  %-38s %8.4f  %6.2f x floor\n' "real run (prune $repo, fresh copy)" \
    "$real" "$(ratio "$real" "$floor")"
