#!/bin/bash
# Measure regprune's peak RSS on the large scenario at several scales, to
# show how memory grows with the number of blobs and tags.
#
# Usage: bench/memory.sh [--scales "S1 S2 ..."] [--runs N] DIR
#
# For each scale S (default "0.1 0.3 1"), the tree is DIR/large-S,
# generated with build/mkregistry --scenario large --scale S unless it is
# there already, and kept for later runs. Each command runs N times
# (default 3) under /usr/bin/time, and the median peak RSS is reported:
#   regprune prune --dry-run   keep-last, count=10, every repository
#   regprune gc --dry-run
#   regprune check
#   docker-registry garbage-collect --dry-run CONFIG, for comparison
# The last lines fit a straight line through the smallest and the largest
# scale. They give its slope in bytes per blob and per tag, and how far the
# middle scales lie from that line.
# Environment: REGPRUNE, MKREGISTRY, POLICY, REGISTRY and NOW as for
# bench/large.sh.
set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")/.."
BENCH_NAME=memory.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh

regprune=${REGPRUNE:-./regprune}
MKREGISTRY=${MKREGISTRY:-build/mkregistry}
policy=${POLICY:-policies/keep-last.lua}
registry=${REGISTRY:-docker-registry}
scales="0.1 0.3 1"
runs=3
dir=

usage() {
    sed -n '5p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
    --scales)
        [ $# -ge 2 ] || usage
        scales=$2
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
for tool in "$regprune" "$MKREGISTRY" /usr/bin/time; do
    [ -x "$tool" ] || bench_die "missing: $tool"
done
command -v "$registry" > /dev/null || bench_die "missing: $registry"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/regprune-memory.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

labels=(prune-dry gc-dry check registry-gc)
cmd_for() {
    local tree=$2
    case $1 in
    prune-dry)
        CMD=("$regprune" --root "$tree" prune --policy "$policy"
            --set count=10 --dry-run)
        ;;
    gc-dry) CMD=("$regprune" --root "$tree" gc --dry-run) ;;
    check) CMD=("$regprune" --root "$tree" check) ;;
    registry-gc) CMD=("$registry" garbage-collect --dry-run "$scratch/cfg") ;;
    esac
}

describe_machine "$dir"
printf 'median peak RSS of %d runs, MiB, and bytes per blob and per tag\n' \
    "$runs"
printf '%6s %6s %7s %8s  %-22s %-22s %-22s %-22s\n' scale repos tags blobs \
    "prune --dry-run" "gc --dry-run" "check" "docker-registry gc"

# One line of results per scale in $scratch/points: scale, tags, blobs,
# then the RSS in KiB of each label.
for scale in $scales; do
    root=$dir/large-$scale
    summary=$(ensure_tree "$root" large "$scale")
    repos=$(summary_field "$summary" repositories)
    tags=$(summary_field "$summary" tags)
    blobs=$(summary_field "$summary" blobs)
    printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n' \
        "$root" > "$scratch/cfg"
    line="$scale $tags $blobs"
    cells=()
    for label in "${labels[@]}"; do
        cmd_for "$label" "$root"
        : > "$scratch/samples"
        for ((i = 0; i < runs; i++)); do
            time_run "$label" "$scratch" "${CMD[@]}" >> "$scratch/samples"
        done
        kib=$(awk '{ print $2 }' "$scratch/samples" | median)
        line="$line $kib"
        cells+=("$(awk -v k="$kib" -v b="$blobs" -v t="$tags" 'BEGIN {
            printf "%.1f (%.0f/b %.0f/t)", k / 1024, k * 1024 / b,
                k * 1024 / t }')")
    done
    echo "$line" >> "$scratch/points"
    printf '%6s %6s %7s %8s  %-22s %-22s %-22s %-22s\n' "$scale" "$repos" \
        "$tags" "$blobs" "${cells[@]}"
done

# Slope between the smallest and the largest tree, and the distance of
# every other tree from that line.
echo
sort -g -k 3 "$scratch/points" | awk -v names="${labels[*]}" '
    { for (f = 1; f <= NF; f++) v[NR, f] = $f }
    END {
        split(names, label, " ")
        if (NR < 2) { print "one scale only: no slope"; exit }
        for (c = 1; c <= 4; c++) {
            f = c + 3
            per_blob = (v[NR, f] - v[1, f]) * 1024 / (v[NR, 3] - v[1, 3])
            per_tag = (v[NR, f] - v[1, f]) * 1024 / (v[NR, 2] - v[1, 2])
            worst = 0
            for (r = 2; r < NR; r++) {
                predicted = v[1, f] + (v[r, 3] - v[1, 3]) * per_blob / 1024
                off = (v[r, f] - predicted) / predicted * 100
                if (off < 0)
                    off = -off
                if (off > worst)
                    worst = off
            }
            printf "%-12s slope %6.0f bytes per blob, %6.0f per tag", \
                label[c], per_blob, per_tag
            if (NR > 2)
                printf "; middle scales within %.1f%% of the line", worst
            printf "\n"
        }
    }'
