# shellcheck shell=bash
# Helpers for bench/large.sh and bench/memory.sh: generated trees that are
# reused between runs, wall-clock timing with peak RSS, medians, and a
# description of the machine. Source this file from bash with
# `set -euo pipefail` after setting BENCH_NAME (used in messages) and
# MKREGISTRY.

# The clock mkregistry uses for relative times, so that every tree of a
# scenario and scale has the same digests. 2024-11-30T20:53:20Z.
BENCH_NOW=${NOW:-1733000000}

bench_die() {
    echo "$BENCH_NAME: $*" >&2
    exit 1
}

subtract() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f\n", a - b }'
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", (b > 0 ? a / b : 0) }'
}

# Read numbers, one a line, and print their median.
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) print "nan"
        else if (NR % 2) print v[(NR + 1) / 2]
        else print (v[NR / 2] + v[NR / 2 + 1]) / 2
    }'
}

# Read numbers, one a line, and print "MIN MAX".
min_max() {
    sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo, hi }'
}

# Print the machine, kernel and the file system that contains directory $1.
describe_machine() {
    local cpu mem_kib source fstype options journal=
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    mem_kib=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
    read -r source fstype options < <(findmnt -n -T "$1" \
        -o SOURCE,FSTYPE,OPTIONS)
    # jbd2 lists the journal of each ext4 file system that has one.
    if [ "$fstype" = ext4 ] && [ -d /proc/fs/jbd2 ]; then
        journal=", without a journal"
        if compgen -G "/proc/fs/jbd2/$(basename "$source")-*" > /dev/null; then
            journal=", with a journal"
        fi
    fi
    printf 'machine: %s, %s cores, %.1f GiB memory; %s\n' \
        "${cpu:-unknown CPU}" "$(nproc)" "$(awk -v k="$mem_kib" \
        'BEGIN { print k / 1048576 }')" "$(uname -sr)"
    printf 'file system of the tree: %s on %s%s (%s)\n' "$fstype" \
        "$source" "$journal" "$options"
}

# The command line that identifies a generated scenario tree. A tree whose
# marker file starts with the same line is reused.
tree_identity() {
    local scenario=$1 scale=$2
    printf 'mkregistry --now %s --scenario %s --scale %s\n' "$BENCH_NOW" \
        "$scenario" "$scale"
}

# ensure_generated ROOT IDENTITY MKREGISTRY_ARG...: run mkregistry with the
# arguments and ROOT unless ROOT already contains the tree IDENTITY names,
# then print mkregistry's summary line. The marker file ROOT/.bench-tree
# records the identity, the summary and the generation time; it lies
# outside docker/, so regprune and the registry ignore it.
ensure_generated() {
    local root=$1 identity=$2 start seconds summary
    shift 2
    if [ -f "$root/.bench-tree" ]; then
        if [ "$(head -n 1 "$root/.bench-tree")" != "$identity" ]; then
            bench_die "$root contains another tree ($(head -n 1 \
                "$root/.bench-tree")); pass an empty or missing directory"
        fi
        sed -n 2p "$root/.bench-tree"
        return
    fi
    if [ -e "$root" ] && [ -n "$(ls -A "$root")" ]; then
        bench_die "$root is not empty and has no .bench-tree marker; pass" \
            "an empty or missing directory"
    fi
    start=$EPOCHREALTIME
    summary=$("$MKREGISTRY" --now "$BENCH_NOW" "$@" "$root")
    seconds=$(subtract "$EPOCHREALTIME" "$start")
    printf '%s\n%s\ngenerated in %.1f s\n' "$identity" "$summary" \
        "$seconds" > "$root/.bench-tree"
    echo "$summary"
}

# marker_scale ROOT SCENARIO: print the scale of the SCENARIO tree that
# ROOT/.bench-tree records, or nothing when ROOT has no such tree.
marker_scale() {
    [ -f "$1/.bench-tree" ] || return 0
    head -n 1 "$1/.bench-tree" | awk -v scenario="$2" -v now="$BENCH_NOW" '
        NF == 7 && $1 == "mkregistry" && $2 == "--now" && $3 == now &&
            $4 == "--scenario" && $5 == scenario && $6 == "--scale" {
            print $7
        }'
}

# ensure_tree ROOT SCENARIO SCALE: the same for a built-in scenario.
ensure_tree() {
    ensure_generated "$1" "$(tree_identity "$2" "$3")" --scenario "$2" \
        --scale "$3"
}

# Fields of mkregistry's summary line "ROOT: R repositories, T tags, B
# blobs, N bytes".
summary_field() {
    local summary=$1 word=$2
    awk -v w="$word" '{
        for (i = 2; i <= NF; i++) {
            f = $i
            sub(/,$/, "", f)
            if (f == w) { print $(i - 1); exit }
        }
    }' <<< "$summary"
}

# time_run LABEL OUTDIR COMMAND [ARG...]: run the command once and print
# "SECONDS" followed by what /usr/bin/time reports in the format
# $TIME_FORMAT (default %M, the peak RSS in KiB). The wall clock is read
# around it by bash. The command's stdout and stderr go to OUTDIR/stdout
# and OUTDIR/stderr, and /usr/bin/time's report to OUTDIR/usage. A failing
# command stops the benchmark with its stderr. Exit status 3 (problems
# found) is accepted, because check and prune return it for a tree with
# problems.
time_run() {
    local label=$1 outdir=$2 t0 t1 status=0
    shift 2
    t0=$EPOCHREALTIME
    /usr/bin/time -f "${TIME_FORMAT:-%M}" -o "$outdir/usage" "$@" \
        > "$outdir/stdout" 2> "$outdir/stderr" || status=$?
    t1=$EPOCHREALTIME
    if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then
        echo "$BENCH_NAME: $label failed (exit status $status): $*" >&2
        tail -n 20 "$outdir/stderr" >&2
        exit 1
    fi
    printf '%s %s\n' "$(subtract "$t1" "$t0")" "$(tail -n 1 "$outdir/usage")"
}

# copy_tree SOURCE COUNT HINT: make COUNT copies of SOURCE with cp -a in a
# new directory beside it, named in $copies, after checking that they fit.
# HINT is the advice printed when they do not fit.
copy_tree() {
    local source=$1 count=$2 hint=$3 tree_kib need_kib free_kib start i
    tree_kib=$(du -sk "$source/docker" | awk '{ print $1 }')
    need_kib=$((count * tree_kib))
    free_kib=$(df -Pk "$(dirname "$source")" | awk 'NR == 2 { print $4 }')
    if [ "$need_kib" -gt "$free_kib" ]; then
        bench_die "$count copies of $source need" \
            "$((need_kib / 1048576)) GiB, but only" \
            "$((free_kib / 1048576)) GiB are free; $hint"
    fi
    copies=$(mktemp -d "$(dirname "$source")/.regprune-copies.XXXXXX")
    start=$EPOCHREALTIME
    for ((i = 0; i < count; i++)); do
        cp -a "$source" "$copies/$i"
    done
    printf 'copies for the real runs: %d made with cp -a in %.1f s\n' \
        "$count" "$(subtract "$EPOCHREALTIME" "$start")"
}

# Whether this process may drop the page cache, for cold-cache runs.
can_drop_caches() {
    [ -w /proc/sys/vm/drop_caches ] &&
        sync && echo 3 > /proc/sys/vm/drop_caches 2> /dev/null
}

drop_caches() {
    sync
    echo 3 > /proc/sys/vm/drop_caches
}
