#!/bin/bash
# Time regprune at several --jobs values, to show what the worker threads
# gain on a large generated registry tree.
#
# Usage: bench/jobs.sh [--jobs "1 2 4"] [--runs N] [--scale S]
#                      [--real-scale S] [--real-runs N] ROOT [REAL_ROOT]
#
# ROOT contains build/mkregistry --scenario large --scale S, and REAL_ROOT
# the same scenario at --real-scale. Either is generated unless its
# .bench-tree file shows that it is there already. Each scale defaults to
# that of the tree already in its directory, or else to 1 for ROOT and to
# 0.1 for REAL_ROOT.
# With a warm page cache, every round runs each of these once at each
# --jobs value, after one untimed warm-up round:
#   regprune prune --dry-run   keep-last, count=10, every repository, on ROOT
#   regprune gc --dry-run      on ROOT
# With REAL_ROOT, the real prune also runs --real-runs times (default 3)
# at each --jobs value, each on its own copy of REAL_ROOT made with cp -a
# before anything is deleted, and warmed by an untimed dry run. The copies
# need free space for (number of --jobs values) x --real-runs trees.
#
# The output gives, per command and --jobs value, the median wall-clock
# seconds of --runs rounds (default 3), the minimum and maximum, the
# speed-up over the first --jobs value, the median user and system CPU
# seconds and the median peak RSS.
# Environment: REGPRUNE, MKREGISTRY, POLICY and NOW as for bench/large.sh.
set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")/.."
BENCH_NAME=jobs.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh

regprune=${REGPRUNE:-./regprune}
MKREGISTRY=${MKREGISTRY:-build/mkregistry}
policy=${POLICY:-policies/keep-last.lua}
job_counts="1 2 4"
runs=3
real_runs=3
scale=
real_scale=
root=
real_root=

usage() {
    sed -n '5,6p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
    --jobs)
        [ $# -ge 2 ] || usage
        job_counts=$2
        shift 2
        ;;
    --scale | --real-scale)
        [ $# -ge 2 ] || usage
        if [ "$1" = --scale ]; then scale=$2; else real_scale=$2; fi
        shift 2
        ;;
    --runs | --real-runs)
        if [ $# -lt 2 ] || ! [[ $2 =~ ^[1-9][0-9]*$ ]]; then
            usage
        fi
        if [ "$1" = --runs ]; then runs=$2; else real_runs=$2; fi
        shift 2
        ;;
    -*) usage ;;
    *)
        if [ -z "$root" ]; then
            root=$1
        elif [ -z "$real_root" ]; then
            real_root=$1
        else
            usage
        fi
        shift
        ;;
    esac
done
[ -n "$root" ] || usage
[ -n "$scale" ] || scale=$(marker_scale "$root" large)
[ -n "$scale" ] || scale=1
if [ -n "$real_root" ] && [ -z "$real_scale" ]; then
    real_scale=$(marker_scale "$real_root" large)
fi
[ -n "$real_scale" ] || real_scale=0.1
for n in $job_counts; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || bench_die "--jobs: '$n' is not a count"
done
[ -n "$job_counts" ] || bench_die "--jobs: no counts given"
for tool in "$regprune" "$MKREGISTRY" /usr/bin/time; do
    [ -x "$tool" ] || bench_die "missing: $tool"
done
[ -f "$policy" ] || bench_die "missing: $policy"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/regprune-jobs.XXXXXX")
copies=
cleanup() {
    rm -rf "$scratch"
    [ -z "$copies" ] || rm -rf "$copies"
}
trap cleanup EXIT

# time_jobs LABEL COMMAND [ARG...]: run the command once with stdout saved
# in $scratch/stdout and print "SECONDS USER_S SYSTEM_S PEAK_RSS_KIB".
time_jobs() {
    TIME_FORMAT='%U %S %M' time_run "$1" "$scratch" "${@:2}"
}

# cmd_for LABEL TREE JOBS sets the array CMD.
cmd_for() {
    local tree=$2 jobs=$3
    case $1 in
    prune-dry)
        CMD=("$regprune" --root "$tree" --jobs "$jobs" prune
            --policy "$policy" --set count=10 --dry-run)
        ;;
    gc-dry) CMD=("$regprune" --root "$tree" --jobs "$jobs" gc --dry-run) ;;
    prune-real)
        CMD=("$regprune" --root "$tree" --jobs "$jobs" prune
            --policy "$policy" --set count=10)
        ;;
    esac
}

describe() {
    case $1 in
    prune-dry) echo "prune --dry-run" ;;
    gc-dry) echo "gc --dry-run" ;;
    prune-real) echo "prune (real run)" ;;
    esac
}

# measure LABEL TREE JOBS FILE: time one run and append its figures.
measure() {
    cmd_for "$1" "$2" "$3"
    time_jobs "$(describe "$1") --jobs $3" "${CMD[@]}" >> "$4"
}

summary=$(ensure_tree "$root" large "$scale")
root=$(cd "$root" && pwd)
describe_machine "$root"
printf 'tree: %s\n' "$summary"
if [ -n "$real_root" ]; then
    real_summary=$(ensure_tree "$real_root" large "$real_scale")
    real_root=$(cd "$real_root" && pwd)
    printf 'tree for the real runs: %s\n' "$real_summary"
fi
printf 'regprune: %s (%s); --jobs %s\n' "$regprune" \
    "$("$regprune" --version)" "$job_counts"

# All copies are made before any run deletes anything, because on ext4,
# creating many inodes soon after deleting many is much slower.
if [ -n "$real_root" ]; then
    read -ra job_list <<< "$job_counts"
    copy_tree "$real_root" $((${#job_list[@]} * real_runs)) \
        "pass a smaller --real-runs or fewer --jobs values"
    sync
fi

# Warm cache: one untimed round, then the timed rounds, each running every
# command at every --jobs value so that load from other users spreads.
labels=(prune-dry gc-dry)
for label in "${labels[@]}"; do
    for jobs in $job_counts; do
        measure "$label" "$root" "$jobs" /dev/null
    done
done
for ((round = 0; round < runs; round++)); do
    for label in "${labels[@]}"; do
        for jobs in $job_counts; do
            measure "$label" "$root" "$jobs" "$scratch/times.$label.$jobs"
        done
    done
done

# Real runs, interleaved over the --jobs values. Each summary line must
# match the others, because every copy starts as the same tree. The copies
# are removed at the end, so that no removal runs beside a timed run.
if [ -n "$real_root" ]; then
    labels+=(prune-real)
    copy=0
    for ((round = 0; round < real_runs; round++)); do
        for jobs in $job_counts; do
            measure prune-dry "$copies/$copy" "$jobs" /dev/null
            measure prune-real "$copies/$copy" "$jobs" \
                "$scratch/times.prune-real.$jobs"
            grep '^summary:' "$scratch/stdout" >> "$scratch/real-summaries"
            copy=$((copy + 1))
        done
    done
    if [ "$(sort -u "$scratch/real-summaries" | wc -l)" -ne 1 ]; then
        echo "$BENCH_NAME: the real runs printed different summaries:" >&2
        sort "$scratch/real-summaries" | uniq -c >&2
    fi
fi

# median_field N FILE: the median of field N of FILE.
median_field() {
    awk -v n="$1" '{ print $n }' "$2" | median
}

echo
printf 'median of %d rounds after one warm-up round' "$runs"
if [ -n "$real_root" ]; then
    printf '; real run: median of %d runs, each on a fresh copy' \
        "$real_runs"
fi
printf '\n("speed-up" is the time at --jobs %s divided by the time at' \
    "${job_counts%% *}"
printf ' each --jobs value)\n'
printf '%-18s %5s %9s %17s %9s %8s %8s %8s\n' command jobs "median s" \
    "min..max s" speed-up "user s" "sys s" "RSS MiB"
for label in "${labels[@]}"; do
    first=
    for jobs in $job_counts; do
        file=$scratch/times.$label.$jobs
        t=$(median_field 1 "$file")
        [ -n "$first" ] || first=$t
        range=$(awk '{ print $1 }' "$file" | min_max | awk \
            '{ printf "%.3f..%.3f", $1, $2 }')
        printf '%-18s %5s %9.3f %17s %9s %8.2f %8.2f %8.1f\n' \
            "$(describe "$label")" "$jobs" "$t" "$range" \
            "$(ratio "$first" "$t")" "$(median_field 2 "$file")" \
            "$(median_field 3 "$file")" \
            "$(awk -v k="$(median_field 4 "$file")" 'BEGIN { print k / 1024 }')"
    done
done
echo
echo "every run in the order it ran, seconds:"
for label in "${labels[@]}"; do
    for jobs in $job_counts; do
        printf '%-18s %5s  %s\n' "$(describe "$label")" "$jobs" \
            "$(awk '{ printf "%s%.3f", (NR > 1 ? " " : ""), $1 }' \
            "$scratch/times.$label.$jobs")"
    done
done
if [ -n "$real_root" ]; then
    echo
    echo "real runs: $(head -n 1 "$scratch/real-summaries")"
fi
