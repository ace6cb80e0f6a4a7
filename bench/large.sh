#!/bin/bash
# Time regprune side by side with find, cat and docker-registry's own
# garbage collector on one large generated registry tree.
#
# Usage: bench/large.sh [--scale S] [--huge] [--runs N] [--cold-runs N]
#                       [--real-runs N] [--no-strace] [--only LABELS] [ROOT]
#
# The tree is `build/mkregistry --scenario large --scale S` (1,000
# repositories of 70 tags at scale 1), or with --huge the huge scenario
# (2,500 repositories at scale 1). It is written to ROOT, or to a
# temporary directory that is removed at the end when ROOT is not given. A
# ROOT that already contains the same tree (its .bench-tree file says how it
# was made) is reused, so a huge tree is generated once.
#
# Every measurement is the median of several runs in one invocation.
# Warm-cache rounds run each command once per round, in turn, after one
# untimed warm-up round; cold-cache runs drop the page cache before each
# command when /proc/sys/vm/drop_caches is writable. The commands are:
#   find ROOT                       every directory entry, no stat
#   find ROOT -type f               the floor for listing the tree
#   read every link file            find -name link | xargs cat
#   read every file                 find -type f | xargs cat
#   regprune prune --dry-run        keep-last, count=10, every repository
#   regprune gc --dry-run
#   regprune check
#   docker-registry garbage-collect --dry-run CONFIG
#   regprune prune                  the real run, on a copy made with
#                                   cp -a before the clock starts
# Peak RSS comes from /usr/bin/time. With strace installed, the script
# also counts system calls of the dry runs and of one more real run.
#
# Options:
#   --scale S        scenario scale, where 0.1 gives 100 repositories
#                    (default: the scale of the tree in ROOT, or else 1)
#   --huge           the huge scenario; needs ROOT, and --real-runs
#                    defaults to 0 because every copy is as large as ROOT
#   --runs N         warm-cache rounds (default 5); 0 skips the warm
#                    cache, which suits a tree larger than the page cache
#   --cold-runs N    cold-cache runs of each command (default 3, 0 skips)
#   --real-runs N    real runs, each on its own copy (default 3)
#   --no-strace      skip the system call counts
#   --only LABELS    time only these commands, by label, separated by
#                    commas: find-bare, find-files, read-links, read-all,
#                    prune-dry, gc-dry, check, registry-gc (the real runs
#                    follow --real-runs)
# Environment: REGPRUNE, MKREGISTRY, POLICY and REGISTRY (the
# docker-registry program) to use other files; NOW, the --now given to
# mkregistry (default 1733000000).
set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")/.."
BENCH_NAME=large.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh

regprune=${REGPRUNE:-./regprune}
MKREGISTRY=${MKREGISTRY:-build/mkregistry}
policy=${POLICY:-policies/keep-last.lua}
registry=${REGISTRY:-docker-registry}
scenario=large
scale=
runs=5
cold_runs=3
real_runs=
use_strace=true
only=
root=

usage() {
    sed -n '4,5p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
    --scale)
        [ $# -ge 2 ] || usage
        scale=$2
        shift 2
        ;;
    --huge)
        scenario=huge
        shift
        ;;
    --runs | --cold-runs | --real-runs)
        if [ $# -lt 2 ] || ! [[ $2 =~ ^[0-9]+$ ]]; then
            usage
        fi
        case $1 in
        --runs) runs=$2 ;;
        --cold-runs) cold_runs=$2 ;;
        *) real_runs=$2 ;;
        esac
        shift 2
        ;;
    --no-strace)
        use_strace=false
        shift
        ;;
    --only)
        [ $# -ge 2 ] || usage
        only=$2
        shift 2
        ;;
    -*) usage ;;
    *)
        [ -z "$root" ] || usage
        root=$1
        shift
        ;;
    esac
done
if [ "$scenario" = huge ] && [ -z "$root" ]; then
    bench_die "--huge needs a ROOT directory, so that the tree is generated" \
        "once and reused"
fi
if [ -z "$scale" ] && [ -n "$root" ]; then
    scale=$(marker_scale "$root" "$scenario")
fi
[ -n "$scale" ] || scale=1
if [ -z "$real_runs" ]; then
    real_runs=3
    [ "$scenario" = huge ] && real_runs=0
fi
[ "$runs" -ge 1 ] || [ "$real_runs" -ge 1 ] ||
    { [ "$cold_runs" -ge 1 ] && can_drop_caches; } ||
    bench_die "--runs 0 leaves nothing to time: pass --real-runs, or" \
        "--cold-runs with a writable /proc/sys/vm/drop_caches"

missing=()
for tool in "$regprune" "$MKREGISTRY"; do
    [ -x "$tool" ] || missing+=("$tool (run make)")
done
[ -f "$policy" ] || missing+=("$policy")
command -v "$registry" > /dev/null || missing+=("$registry (Debian package docker-registry)")
[ -x /usr/bin/time ] || missing+=("/usr/bin/time (Debian package time)")
if [ ${#missing[@]} -gt 0 ]; then
    printf '%s: missing: %s\n' "$BENCH_NAME" "${missing[@]}" >&2
    exit 1
fi
if $use_strace && ! command -v strace > /dev/null; then
    echo "$BENCH_NAME: strace not found; skipping system call counts" >&2
    use_strace=false
fi

# Scratch files live in their own directory; copies for the real runs go
# next to the tree, on the same file system.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/regprune-large.XXXXXX")
remove_root=false
if [ -z "$root" ]; then
    root=$(mktemp -d "${TMPDIR:-/var/tmp}/regprune-large-tree.XXXXXX")
    rmdir "$root"
    remove_root=true
fi
copies=
cleanup() {
    rm -rf "$scratch"
    [ -z "$copies" ] || rm -rf "$copies"
    if $remove_root; then rm -rf "$root"; fi
}
trap cleanup EXIT

summary=$(ensure_tree "$root" "$scenario" "$scale")
root=$(cd "$root" && pwd)
tags=$(summary_field "$summary" tags)
blobs=$(summary_field "$summary" blobs)
# Counting walks the whole tree, minutes on a huge one, so the counts are
# kept beside the tree's description and reused.
census=$root/.bench-census
if [ ! -s "$census" ] ||
    [ "$(sed -n 1p "$census")" != "$(sed -n 1p "$root/.bench-tree")" ]; then
    {
        sed -n 1p "$root/.bench-tree"
        find "$root/docker" -printf '%y %k\n' | awk '
            $1 == "f" { files++ }
            $1 == "d" { dirs++ }
            { kib += $2 }
            END { printf "%d\n%d\n%d\n", files, dirs, kib }'
    } > "$census.tmp"
    mv "$census.tmp" "$census"
fi
files=$(sed -n 2p "$census")
dirs=$(sed -n 3p "$census")
tree_kib=$(sed -n 4p "$census")

config=$scratch/registry.yml
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n' \
    "$root" > "$config"

# Commands by label. cmd_for LABEL TREE sets the array CMD.
labels=(find-bare find-files read-links read-all prune-dry gc-dry check
    registry-gc)
if [ -n "$only" ]; then
    chosen=()
    for label in ${only//,/ }; do
        [[ " ${labels[*]} " == *" $label "* ]] ||
            bench_die "--only: unknown label $label"
        chosen+=("$label")
    done
    labels=("${chosen[@]}")
fi
describe() {
    case $1 in
    find-bare) echo "find ROOT" ;;
    find-files) echo "find ROOT -type f" ;;
    read-links) echo "read every link file" ;;
    read-all) echo "read every file" ;;
    prune-dry) echo "regprune prune --dry-run" ;;
    gc-dry) echo "regprune gc --dry-run" ;;
    check) echo "regprune check" ;;
    registry-gc) echo "docker-registry garbage-collect --dry-run" ;;
    prune-real) echo "regprune prune (real run, fresh copy)" ;;
    rm-floor) echo "rm -rf what the real run removes" ;;
    esac
}
# The single-quoted pipelines take the tree as $1 of their own shell.
# shellcheck disable=SC2016
cmd_for() {
    local tree=$2
    case $1 in
    find-bare) CMD=(find "$tree") ;;
    find-files) CMD=(find "$tree" -type f) ;;
    read-links)
        CMD=(sh -c 'find "$1" -type f -name link -print0 | xargs -0 cat' sh
            "$tree")
        ;;
    read-all)
        CMD=(sh -c 'find "$1" -type f -print0 | xargs -0 cat' sh "$tree")
        ;;
    prune-dry)
        CMD=("$regprune" --root "$tree" prune --policy "$policy"
            --set count=10 --dry-run)
        ;;
    gc-dry) CMD=("$regprune" --root "$tree" gc --dry-run) ;;
    check) CMD=("$regprune" --root "$tree" check) ;;
    registry-gc) CMD=("$registry" garbage-collect --dry-run "$config") ;;
    prune-real)
        CMD=("$regprune" --root "$tree" prune --policy "$policy"
            --set count=10)
        ;;
    rm-floor)
        CMD=(sh -c 'cd "$1" && xargs -d "\n" rm -rf -- < "$2"' sh "$tree"
            "$scratch/removed")
        ;;
    esac
}

# measure LABEL TREE FILE: time one run and append "SECONDS RSS_KIB".
measure() {
    cmd_for "$1" "$2"
    time_run "$(describe "$1")" "$scratch" "${CMD[@]}" >> "$3"
}

describe_machine "$root"
printf 'tree: %s\n' "$summary"
printf '      %s files, %s directories, %s MiB on disk (%s)\n' "$files" \
    "$dirs" "$((tree_kib / 1024))" "$(sed -n 3p "$root/.bench-tree")"
printf 'regprune: %s (%s)\n' "$regprune" "$("$regprune" --version)"
printf 'reference: %s\n' "$("$registry" --version)"

# The copies for the real runs are made before any run deletes anything:
# on ext4 without a journal, creating many inodes soon after deleting many
# is much slower (the allocator skips recently freed inodes).
spare=0
$use_strace && spare=1
copy_count=$((2 * real_runs + spare))
if [ "$real_runs" -gt 0 ]; then
    copy_tree "$root" "$copy_count" "pass a smaller --real-runs or --no-strace"
fi
sync

# Warm cache: one untimed round, then the timed rounds.
[ "$runs" -eq 0 ] || for label in "${labels[@]}"; do
    measure "$label" "$root" /dev/null
done
for ((round = 0; round < runs; round++)); do
    for label in "${labels[@]}"; do
        measure "$label" "$root" "$scratch/warm.$label"
    done
done

# Print the paths under ROOT that are missing in COPY, leaving out those
# inside a missing directory: what rm -rf needs to remove the same.
removed_paths() {
    (cd "$1" && find docker) | sort > "$scratch/before"
    (cd "$2" && find docker) | sort > "$scratch/after"
    comm -23 "$scratch/before" "$scratch/after" | awk '
        { gone[NR] = $0; is_gone[$0] = 1 }
        END {
            for (i = 1; i <= NR; i++) {
                p = gone[i]
                inside = 0
                while (!inside && sub(/\/[^\/]*$/, "", p))
                    inside = p in is_gone
                if (!inside) print gone[i]
            }
        }'
}

# Real runs, each followed by the floor: rm -rf of exactly the paths the
# first real run removed, on another copy. A dry run on each copy warms
# the cache first, untimed.
for ((i = 0; i < real_runs; i++)); do
    measure prune-dry "$copies/$i" /dev/null
    measure prune-real "$copies/$i" "$scratch/warm.prune-real"
    if [ "$i" -eq 0 ]; then
        removed_paths "$root" "$copies/0" > "$scratch/removed"
    fi
    measure prune-dry "$copies/$((real_runs + i))" /dev/null
    measure rm-floor "$copies/$((real_runs + i))" "$scratch/warm.rm-floor"
done

cold=false
if [ "$cold_runs" -gt 0 ] && can_drop_caches; then
    cold=true
    for ((round = 0; round < cold_runs; round++)); do
        for label in "${labels[@]}"; do
            drop_caches
            measure "$label" "$root" "$scratch/cold.$label"
        done
    done
fi

# kind_median KIND LABEL: the median seconds, or nothing when LABEL was
# not timed.
kind_median() {
    [ -s "$scratch/$1.$2" ] || return 0
    awk '{ print $1 }' "$scratch/$1.$2" | median
}

# ratio_or_dash A B [SUFFIX]: A / B followed by SUFFIX, or "-" when
# either is missing.
ratio_or_dash() {
    if [ -n "$1" ] && [ -n "$2" ]; then
        echo "$(ratio "$1" "$2")${3:-}"
    else
        echo -
    fi
}

# print_table KIND: the medians of warm or cold runs, with their spread
# and multiples of the two floors.
print_table() {
    local kind=$1 label file floor_list floor_read t range rss
    floor_list=$(kind_median "$kind" find-files)
    floor_read=$(kind_median "$kind" read-all)
    printf '%-42s %9s %17s %8s %8s %8s\n' "command" "median s" \
        "min..max s" "x find" "x read" "RSS MiB"
    for label in "${labels[@]}" prune-real rm-floor; do
        file=$scratch/$kind.$label
        [ -s "$file" ] || continue
        t=$(awk '{ print $1 }' "$file" | median)
        range=$(awk '{ print $1 }' "$file" | min_max | awk \
            '{ printf "%.3f..%.3f", $1, $2 }')
        # Peak RSS means something only for a single program.
        rss=-
        case $label in
        prune-* | gc-dry | check | registry-gc)
            rss=$(awk '{ print $2 }' "$file" | median | awk \
                '{ printf "%.1f", $1 / 1024 }')
            ;;
        esac
        printf '%-42s %9.3f %17s %8s %8s %8s\n' "$(describe "$label")" \
            "$t" "$range" "$(ratio_or_dash "$t" "$floor_list")" \
            "$(ratio_or_dash "$t" "$floor_read")" "$rss"
    done
}

echo
printf '("x find" is the multiple of find ROOT -type f, "x read" of reading every file)\n'
if [ "$runs" -gt 0 ] || [ "$real_runs" -gt 0 ]; then
    printf 'warm cache:'
    if [ "$runs" -gt 0 ]; then
        printf ' median of %d rounds after one warm-up round' "$runs"
        [ "$real_runs" -eq 0 ] || printf ';'
    fi
    if [ "$real_runs" -gt 0 ]; then
        printf ' real run: median of %d runs' "$real_runs"
    fi
    printf '\n'
    print_table warm
fi
if $cold; then
    echo
    printf 'cold cache: median of %d runs, page cache dropped before each\n' \
        "$cold_runs"
    print_table cold
elif [ "$cold_runs" -gt 0 ]; then
    echo
    echo "cold cache: skipped, /proc/sys/vm/drop_caches is not writable here"
fi

# Side-by-side ratios of the like-for-like pairs.
echo
for kind in warm cold; do
    [ -s "$scratch/$kind.gc-dry" ] || [ -s "$scratch/$kind.prune-dry" ] ||
        continue
    printf '%s: docker-registry garbage-collect --dry-run takes %s as long as regprune gc --dry-run, %s as long as regprune prune --dry-run\n' \
        "$kind" "$(ratio_or_dash "$(kind_median "$kind" registry-gc)" \
        "$(kind_median "$kind" gc-dry)" x)" \
        "$(ratio_or_dash "$(kind_median "$kind" registry-gc)" \
        "$(kind_median "$kind" prune-dry)" x)"
    printf '%s: regprune prune --dry-run takes %s find ROOT, %s find -type f, %s reading every link file\n' \
        "$kind" "$(ratio_or_dash "$(kind_median "$kind" prune-dry)" \
        "$(kind_median "$kind" find-bare)" x)" \
        "$(ratio_or_dash "$(kind_median "$kind" prune-dry)" \
        "$(kind_median "$kind" find-files)" x)" \
        "$(ratio_or_dash "$(kind_median "$kind" prune-dry)" \
        "$(kind_median "$kind" read-links)" x)"
done
if [ "$real_runs" -gt 0 ]; then
    printf 'warm: the real run takes %sx rm -rf of the %s paths it removes\n' \
        "$(ratio "$(kind_median warm prune-real)" \
        "$(kind_median warm rm-floor)")" "$(wc -l < "$scratch/removed")"
fi

# System calls: strace -c -f, per tag and per blob of the tree.
# strace_counts LABEL TREE
strace_counts() {
    local out=$scratch/strace.$1
    cmd_for "$1" "$2"
    strace -f -c -S calls -o "$out" "${CMD[@]}" > "$scratch/stdout.$1" \
        2> /dev/null || [ $? -eq 3 ]
    # Columns: % time, seconds, usecs/call, calls, [errors,] syscall.
    awk -v tags="$tags" -v blobs="$blobs" -v name="$(describe "$1")" '
        $NF == "total" { total = $4 }
        $1 ~ /^[0-9.]+$/ && $NF != "total" {
            n++
            line[n] = sprintf("%s %s", $NF, $4)
        }
        END {
            printf "%s: %d system calls, %.1f per tag, %.1f per blob\n",
                name, total, total / tags, total / blobs
            printf "  most frequent:"
            for (i = 1; i <= n && i <= 6; i++) printf " %s", line[i]
            printf "\n"
        }' "$out"
    grep '^summary:' "$scratch/stdout.$1" | sed 's/^/  /' || true
    # For a real run, also print the system calls per deleted blob.
    if [ "$1" = prune-real ]; then
        awk -v total="$(awk '$NF == "total" { print $4 }' "$out")" '
            /^summary:/ {
                for (i = 2; i <= NF; i++)
                    if ($i ~ /^blobs_deleted=/) {
                        n = substr($i, 15)
                        if (n > 0)
                            printf "  %.1f system calls per deleted blob\n",
                                total / n
                    }
            }' "$scratch/stdout.$1"
    fi
}
if $use_strace; then
    echo
    echo "system calls (strace -f -c; per tag and per blob of the whole tree):"
    strace_counts prune-dry "$root"
    strace_counts gc-dry "$root"
    if [ "$real_runs" -gt 0 ]; then
        measure prune-dry "$copies/$((2 * real_runs))" /dev/null
        strace_counts prune-real "$copies/$((2 * real_runs))"
    fi
fi
