#!/bin/bash
# Checks the manual pages and their agreement with the program: both pages
# must format with man(1) and groff(1) without a single warning, and every
# command and option that `regprune --help` lists must appear in
# docs/regprune.1 and in completion/regprune.bash.
#
# Needs man-db and groff-base (Debian). REGPRUNE overrides the binary.
# Prints PASS or FAIL per check and ends with "N passed, M failed".
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
REGPRUNE=${REGPRUNE:-$top/regprune}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0

pass() {
    echo "PASS $1"
    passed=$((passed + 1))
}

fail() {
    echo "FAIL $1: $2"
    failed=$((failed + 1))
}

for tool in man groff; do
    if ! command -v "$tool" >/dev/null; then
        echo "FAIL setup: $tool is missing; install the Debian packages" \
            "man-db and groff-base"
        echo "0 passed, 1 failed"
        exit 1
    fi
done

for page in docs/regprune.1 docs/regprune-policy.5; do
    if MANWIDTH=80 man -l "$top/$page" >/dev/null 2>"$work/man.err" &&
        [ ! -s "$work/man.err" ]; then
        pass "man formats $page"
    else
        fail "man formats $page" "$(head -5 "$work/man.err")"
    fi
    if groff -ww -man -z "$top/$page" 2>"$work/groff.err" &&
        [ ! -s "$work/groff.err" ]; then
        pass "groff -ww finds no warning in $page"
    else
        fail "groff -ww finds no warning in $page" "$(head -5 "$work/groff.err")"
    fi
done

if ! "$REGPRUNE" --help >"$work/help" 2>&1; then
    fail "regprune --help" "$(head -3 "$work/help")"
else
    # Commands: the words two spaces in, in the "commands:" section.
    sed -n '/^commands:/,/^$/p' "$work/help" |
        sed -n -E 's/^  ([a-z]+) .*/\1/p' >"$work/commands"
    # Options: every --long-option anywhere in the help.
    grep -o -E -- '--[a-z][a-z-]*' "$work/help" | sort -u >"$work/options"
    if [ ! -s "$work/commands" ] || [ ! -s "$work/options" ]; then
        fail "read commands and options from --help" "found none"
    fi
    while read -r command; do
        if grep -q -E "^\\.(B|BR|BI) \"?$command\\b" "$top/docs/regprune.1"; then
            pass "regprune.1 describes command $command"
        else
            fail "regprune.1 describes command $command" "no .B $command line"
        fi
        if grep -q -E "^_regprune_commands=.*\\b$command\\b" \
            "$top/completion/regprune.bash"; then
            pass "completion offers command $command"
        else
            fail "completion offers command $command" "not in _regprune_commands"
        fi
    done <"$work/commands"
    while read -r option; do
        roff=${option//-/\\\\-}
        if grep -q -- "$roff" "$top/docs/regprune.1"; then
            pass "regprune.1 describes $option"
        else
            fail "regprune.1 describes $option" "not found"
        fi
        case $option in
        --help | --version | --verbose | --quiet) continue ;;
        esac
        if grep -q -E -- "(^|[ \"])$option( |\"|$)" \
            "$top/completion/regprune.bash"; then
            pass "completion offers $option"
        else
            fail "completion offers $option" "not in any option list"
        fi
    done <"$work/options"
fi

echo "$passed passed, $failed failed"
if [ "$failed" -gt 0 ]; then
    exit 1
fi
