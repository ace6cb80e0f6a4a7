#!/usr/bin/env bash
# Runs the data-driven policy cases in tests/policies/.
#
# Usage: tests/policies/run.sh [CASE...]
#
# Each case is a folder containing:
#   spec             build/mkregistry spec describing the registry tree
#   args             regprune arguments that follow --root ROOT, as one line
#                    of shell words. regprune runs in the repository root,
#                    and $CASE expands to the case folder relative to it,
#                    for policies kept in the case.
#   expected         optional, the verdict of every tag in the JSON report
#                    as sorted lines "keep REPO:TAG" or "delete REPO:TAG".
#                    The report must list exactly these tags.
#   expected-exit    optional, the exit status of regprune (default 0)
#   expected-stderr  optional, lines that must each appear in stderr
#   expected-jq      optional, one jq expression per line (# starts a
#                    comment) that must produce true on the JSON report
#   now              optional, the --now value for mkregistry
#                    (default 1733000000, 2024-11-30T20:53:20Z)
#
# When args contain --dry-run, or regprune is expected to fail, the runner
# also checks that ROOT/docker/registry/v2 is byte for byte unchanged. Files
# that regprune keeps beside it in ROOT, such as its lock file, are not
# compared.
#
# Environment: REGPRUNE and MKREGISTRY override the paths of the binaries
# (default ./regprune and build/mkregistry, both built by make), and
# REGPRUNE_WRAPPER runs regprune under a tool such as valgrind.
# Prints PASS or FAIL per case and ends with "N passed, M failed". Exits 1
# if a case failed and 2 if the runner cannot start.

set -u

repo_root=$(cd "$(dirname "$0")/../.." && pwd)
regprune=${REGPRUNE:-$repo_root/regprune}
mkregistry=${MKREGISTRY:-$repo_root/build/mkregistry}
wrapper=${REGPRUNE_WRAPPER:-}
default_now=1733000000

for tool in "$regprune" "$mkregistry"; do
    if [ ! -x "$tool" ]; then
        echo "run.sh: $tool not found or not executable: run make first" >&2
        exit 2
    fi
done
if ! command -v jq >/dev/null 2>&1; then
    echo "run.sh: jq not found: install it (apt-get install jq)" >&2
    exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/regprune-policies.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT

# Prints a listing of every file and folder under $1 with its type, size,
# modification time and content hash, so two listings differ when anything
# in the tree was added, removed or changed.
snapshot_tree() {
    (
        cd "$1" || exit 1
        find . -printf '%y %p %s %T@\n' | LC_ALL=C sort
        find . -type f -exec sha256sum {} + | LC_ALL=C sort -k 2
    )
}

# Prints "keep REPO:TAG" or "delete REPO:TAG" for every tag in the report.
extract_verdicts() {
    jq -r '.repositories[] | .name as $repo | .tags[]
           | "\(.verdict) \($repo):\(.name)"' "$1" | LC_ALL=C sort
}

# Indents the text on stdin so failure details stand out under FAIL lines.
indent() {
    sed 's/^/    /'
}

# Runs one case and prints its failures on stdout. Returns 1 if any check
# failed.
run_case() {
    local case_dir=$1
    local name
    name=$(basename "$case_dir")
    local scratch=$work/$name
    local root=$scratch/root
    local failed=0

    mkdir -p "$scratch"

    local now=$default_now
    if [ -f "$case_dir/now" ]; then
        now=$(cat "$case_dir/now")
    fi
    if ! "$mkregistry" --now "$now" --spec "$case_dir/spec" "$root" \
            >"$scratch/mkregistry.out" 2>&1; then
        echo "mkregistry failed on $case_dir/spec:"
        indent <"$scratch/mkregistry.out"
        return 1
    fi

    local expected_exit=0
    if [ -f "$case_dir/expected-exit" ]; then
        expected_exit=$(cat "$case_dir/expected-exit")
    fi

    # CASE is referenced by args files, which eval expands below.
    local CASE="tests/policies/$name"
    local args_line
    args_line=$(tr '\n' ' ' <"$case_dir/args")
    eval "set -- $args_line"

    local check_unchanged=0
    local arg
    for arg in "$@"; do
        if [ "$arg" = "--dry-run" ]; then
            check_unchanged=1
        fi
    done
    if [ "$expected_exit" != 0 ]; then
        check_unchanged=1
    fi
    if [ "$check_unchanged" = 1 ]; then
        snapshot_tree "$root/docker/registry/v2" >"$scratch/before"
    fi

    local status=0
    # $wrapper is unquoted so that it splits into a command and options.
    (cd "$repo_root" && $wrapper "$regprune" --root "$root" "$@") \
        >"$scratch/stdout" 2>"$scratch/stderr" || status=$?

    if [ "$status" != "$expected_exit" ]; then
        echo "exit status $status, expected $expected_exit"
        failed=1
    fi

    if [ -f "$case_dir/expected-stderr" ]; then
        local line
        while IFS= read -r line; do
            if [ -n "$line" ] && ! grep -qF -- "$line" "$scratch/stderr"; then
                echo "stderr does not contain: $line"
                failed=1
            fi
        done <"$case_dir/expected-stderr"
    fi

    if [ -f "$case_dir/expected" ] || [ -f "$case_dir/expected-jq" ]; then
        if ! jq -e '.regprune == 1 and .command == "prune"' \
                "$scratch/stdout" >/dev/null 2>"$scratch/jq.err"; then
            echo "stdout is not a prune report in JSON:"
            head -c 2000 "$scratch/stdout" "$scratch/jq.err" | indent
            failed=1
        else
            if [ -f "$case_dir/expected" ]; then
                extract_verdicts "$scratch/stdout" >"$scratch/verdicts"
                if ! diff -u "$case_dir/expected" "$scratch/verdicts" \
                        >"$scratch/verdicts.diff"; then
                    echo "verdicts differ (- expected, + actual):"
                    tail -n +3 "$scratch/verdicts.diff" | indent
                    failed=1
                fi
            fi
            if [ -f "$case_dir/expected-jq" ]; then
                local expression
                while IFS= read -r expression; do
                    case $expression in
                    '' | '#'*) continue ;;
                    esac
                    # An expression that yields nothing (a select that
                    # found no tag) fails, as does any output but true.
                    if ! jq -e "[$expression] | length > 0 and all(. == true)" \
                            "$scratch/stdout" >/dev/null 2>&1; then
                        echo "jq check is not true: $expression"
                        failed=1
                    fi
                done <"$case_dir/expected-jq"
            fi
        fi
    fi

    if [ "$check_unchanged" = 1 ]; then
        snapshot_tree "$root/docker/registry/v2" >"$scratch/after"
        if ! diff -u "$scratch/before" "$scratch/after" \
                >"$scratch/tree.diff"; then
            echo "registry tree changed although nothing may be deleted:"
            tail -n +3 "$scratch/tree.diff" | head -40 | indent
            failed=1
        fi
    fi

    if [ "$failed" = 1 ] && [ -s "$scratch/stderr" ]; then
        echo "stderr of regprune:"
        head -20 "$scratch/stderr" | indent
    fi
    return "$failed"
}

cases=()
if [ "$#" -gt 0 ]; then
    for name in "$@"; do
        cases+=("$repo_root/tests/policies/$(basename "$name")")
    done
else
    for case_dir in "$repo_root"/tests/policies/*/; do
        cases+=("${case_dir%/}")
    done
fi

passed=0
failed=0
for case_dir in "${cases[@]}"; do
    name=$(basename "$case_dir")
    if [ ! -f "$case_dir/spec" ] || [ ! -f "$case_dir/args" ]; then
        echo "FAIL $name: spec or args file missing in $case_dir"
        failed=$((failed + 1))
        continue
    fi
    if report=$(run_case "$case_dir"); then
        echo "PASS $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        printf '%s\n' "$report" | indent
        failed=$((failed + 1))
    fi
done

echo "$passed passed, $failed failed"
if [ "$failed" -gt 0 ]; then
    exit 1
fi
