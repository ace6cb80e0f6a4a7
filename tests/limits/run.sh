#!/usr/bin/env bash
# Limits test: one repository with 200,000 tags.
#
# Usage: make && tests/limits/run.sh
#
# build/mkregistry writes wide/app with tags v1.M.P for M in 0..1999 and P
# in 0..99, pushed a minute apart in version order. Tags v1.M.0 to v1.M.98
# share one image and v1.M.99 has its own, so the tree has 4,000 images.
# Then regprune
#   - plans keep-last (count=10, order=version) as a dry run,
#   - plans semver-patches (defaults: every patch of the 2 newest minors, the
#     newest patch of each older one) as a dry run,
#   - runs semver-patches for real, then `check --verify` and `ls`.
# tests/limits/verify.py checks every verdict and total of the plans, that
# the real run did what its dry run planned, and which tag directories,
# revisions and blobs are left. Each regprune run must exit 0 and stay
# under a peak RSS bound, measured with /usr/bin/time. The wall times are
# printed but not checked: bench/wide.sh measures speed.
#
# Each tag has five directories and two small files. On tmpfs each file
# takes a 4 KiB page, so the tree takes about 8 KiB a tag. On a disk file
# system with 4 KiB blocks each directory takes a block too, which makes
# about 28 KiB a tag.
# Environment:
#   REGPRUNE, MKREGISTRY  the binaries (default: ./regprune, build/mkregistry)
#   LIMITS_MINORS         minor versions of 100 tags each; default 2000, that
#                         is 200,000 tags. A smaller number runs faster.
#   LIMITS_TMPDIR         the directory for the tree; default /dev/shm when
#                         it is a tmpfs with room for it, else $TMPDIR or /tmp
#   LIMITS_MAX_RSS_MIB    the peak RSS allowed to each regprune run, in MiB;
#                         default 1024
#   LIMITS_KEEP           set to 1 to keep the scratch directory
#
# Prints one PASS or FAIL line per check, the measured times and peak RSS,
# and "N passed, M failed". Exits 0 only when every check passed.
set -u
export LC_ALL=C

top=$(cd "$(dirname "$0")/../.." && pwd)
REGPRUNE=${REGPRUNE:-$top/regprune}
MKREGISTRY=${MKREGISTRY:-$top/build/mkregistry}
VERIFY=$top/tests/limits/verify.py
minors=${LIMITS_MINORS:-2000}
max_rss_mib=${LIMITS_MAX_RSS_MIB:-1024}
# mkregistry's clock for relative push times, so every run builds the same
# digests: 2024-11-30T20:53:20Z.
NOW=1733000000
# timeout stops a command after this many seconds, to catch a hang. Speed
# is not checked.
HANG_SECONDS=900

die() {
    echo "limits: $*" >&2
    exit 2
}

for tool in "$REGPRUNE" "$MKREGISTRY"; do
    [ -x "$tool" ] || die "$tool not found or not executable: run make first"
done
[ -x /usr/bin/time ] ||
    die "/usr/bin/time not found: install the Debian package time"
command -v python3 >/dev/null || die "python3 not found: install python3"
if ! [[ $minors =~ ^[1-9][0-9]*$ ]] || [ "$minors" -lt 3 ]; then
    die "LIMITS_MINORS must be a whole number >= 3, got '$minors'"
fi
[[ $max_rss_mib =~ ^[1-9][0-9]*$ ]] ||
    die "LIMITS_MAX_RSS_MIB must be a whole number, got '$max_rss_mib'"
tags=$((minors * 100))

# available_kib DIR prints the free space of DIR's file system in KiB.
available_kib() {
    df -P -k "$1" | awk 'NR == 2 { print $4 }'
}

# needed_kib DIR prints the space the tree and the reports take on DIR's
# file system, by the estimates in the header, plus half a KiB a tag for
# each of the three JSON reports.
needed_kib() {
    if [ "$(stat -f -c %T "$1")" = tmpfs ]; then
        echo $((tags * (8 + 2)))
    else
        echo $((tags * (28 + 2)))
    fi
}

if [ -n "${LIMITS_TMPDIR:-}" ]; then
    parent=$LIMITS_TMPDIR
elif [ -d /dev/shm ] && [ -w /dev/shm ] &&
    [ "$(stat -f -c %T /dev/shm)" = tmpfs ] &&
    [ "$(available_kib /dev/shm)" -gt "$(needed_kib /dev/shm)" ]; then
    parent=/dev/shm
else
    parent=${TMPDIR:-/tmp}
fi
[ -d "$parent" ] || die "$parent is not a directory"
if [ "$(available_kib "$parent")" -le "$(needed_kib "$parent")" ]; then
    die "$parent has $(($(available_kib "$parent") / 1024)) MiB free but" \
        "the tree needs about $(($(needed_kib "$parent") / 1024)) MiB;" \
        "set LIMITS_TMPDIR to a directory with more room"
fi
work=$(mktemp -d "$parent/regprune-limits.XXXXXX") ||
    die "cannot create a scratch directory in $parent"
cleanup() {
    if [ "${LIMITS_KEEP:-0}" = 1 ]; then
        echo "scratch directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
root=$work/tree

measurements=()

# pass, fail and check, with their PASSED and FAILED counters.
WORK=$work
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"

# measure NAME COMMAND [ARG...] runs the command with stdout in
# $work/NAME.out and stderr in $work/NAME.err, and sets STATUS, SECONDS_TAKEN
# and RSS_KIB, the peak resident set size that /usr/bin/time reports.
measure() {
    local name=$1 start
    shift
    STATUS=0
    start=$EPOCHREALTIME
    timeout "$HANG_SECONDS" /usr/bin/time -v -o "$work/$name.time" "$@" \
        >"$work/$name.out" 2>"$work/$name.err" || STATUS=$?
    SECONDS_TAKEN=$(awk -v a="$start" -v b="$EPOCHREALTIME" \
        'BEGIN { printf "%.1f", b - a }')
    RSS_KIB=$(awk -F': ' '/Maximum resident set size/ { print $2 }' \
        "$work/$name.time" 2>/dev/null)
    RSS_KIB=${RSS_KIB:-0}
    measurements+=("$(printf '%-34s %7s s %7d MiB' "$name" "$SECONDS_TAKEN" \
        $((RSS_KIB / 1024)))")
}

# check_run NAME checks the exit status and the peak RSS of the last
# measured regprune run.
check_run() {
    if [ "$STATUS" -eq 0 ]; then
        pass "$1: exits 0"
    else
        fail "$1: exits 0" "exit status $STATUS (124: no exit within" \
            "$HANG_SECONDS s)" "$(head -n 5 "$work/$1.err")"
    fi
    if [ "$RSS_KIB" -gt 0 ] && [ "$RSS_KIB" -le $((max_rss_mib * 1024)) ]; then
        pass "$1: peak RSS within $max_rss_mib MiB"
    else
        fail "$1: peak RSS within $max_rss_mib MiB" \
            "peak RSS $((RSS_KIB / 1024)) MiB"
    fi
}

rp=("$REGPRUNE" --root "$root")

echo "tree: $tags tags in $parent ($(stat -f -c %T "$parent"))"
if [ "$(stat -f -c %T "$parent")" != tmpfs ]; then
    echo "note: on a disk file system, building and pruning the tree can" \
        "take minutes rather than the seconds it takes on tmpfs"
fi

# The spec lists each minor version's tags in version order, one minute
# apart, the newest tag pushed a minute before NOW.
awk -v minors="$minors" 'BEGIN {
    print "layer base 2K"
    for (m = 0; m < minors; m++) {
        age = (minors - m) * 100
        printf "image wide/app:v1.%d.0 layers=base pushed=-%dm\n", m, age
        for (p = 1; p < 99; p++)
            printf "alias wide/app:v1.%d.%d wide/app:v1.%d.0 pushed=-%dm\n",
                m, p, m, age - p
        printf "image wide/app:v1.%d.99 layers=base pushed=-%dm\n", m,
            age - 99
    }
}' >"$work/spec"
measure mkregistry "$MKREGISTRY" -q --now "$NOW" --spec "$work/spec" "$root"
if [ "$STATUS" -ne 0 ]; then
    fail "mkregistry builds the tree" "exit status $STATUS" \
        "$(head -n 5 "$work/mkregistry.err")"
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi
pass "mkregistry builds the tree"

measure keep-last-dry-run "${rp[@]}" prune \
    --policy "$top/policies/keep-last.lua" --set count=10 --set order=version \
    --now "$NOW" --dry-run --json
check_run keep-last-dry-run
check "keep-last plan: verdicts and totals" python3 "$VERIFY" plan \
    "$work/keep-last-dry-run.out" keep-last "$minors" "$work/keep-last.kept"

# NOTE: semver-patches needs between 280 and 290 MiB of the Lua state's
# default --max-memory of 512 MiB here (keep-last between 150 and 200). A
# linear estimate puts the default's limit near 350,000 tags.
measure semver-patches-dry-run "${rp[@]}" prune \
    --policy "$top/policies/semver-patches.lua" --now "$NOW" --dry-run --json
check_run semver-patches-dry-run
check "semver-patches plan: verdicts and totals" python3 "$VERIFY" plan \
    "$work/semver-patches-dry-run.out" semver-patches "$minors" \
    "$work/semver-patches.kept"

measure semver-patches-prune "${rp[@]}" prune \
    --policy "$top/policies/semver-patches.lua" --now "$NOW" --json
check_run semver-patches-prune
check "semver-patches prune: report equals the plan" python3 "$VERIFY" same \
    "$work/semver-patches-dry-run.out" "$work/semver-patches-prune.out"
check "semver-patches prune: tree holds the kept tags" python3 "$VERIFY" \
    disk "$root" "$work/semver-patches.kept"

measure check-verify "${rp[@]}" check --verify --json
check_run check-verify
check "check --verify finds no problem" test \
    "$(jq -c .problems "$work/check-verify.out" 2>&1)" = "[]"

measure ls "${rp[@]}" ls --json
check_run ls
check "ls lists the kept tags as images" python3 "$VERIFY" ls \
    "$work/ls.out" "$work/semver-patches.kept"

echo "wall time and peak RSS of each step:"
printf '  %s\n' "${measurements[@]}"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
