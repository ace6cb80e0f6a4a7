#!/bin/bash
# Drives the bash completion in completion/regprune.bash as bash would,
# with COMP_LINE, COMP_POINT and COMP_WORDS, and checks COMPREPLY. The
# cases cover commands, options per command, option values, and
# repository and tag names from a sample registry that build/mkregistry
# writes.
#
# REGPRUNE and MKREGISTRY override the binaries. Prints PASS or FAIL per
# check and ends with "N passed, M failed".
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
REGPRUNE=${REGPRUNE:-$top/regprune}
MKREGISTRY=${MKREGISTRY:-$top/build/mkregistry}
NOW=1764806400 # 2025-12-04T00:00:00Z
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0

# A prefix as `make install` lays it out, so that the completion finds the
# shipped policies beside the regprune it runs.
mkdir -p "$work/prefix/bin" "$work/prefix/share/regprune/policies"
ln -s "$REGPRUNE" "$work/prefix/bin/regprune"
cp "$top"/policies/*.lua "$work/prefix/share/regprune/policies/"
PATH=$work/prefix/bin:$PATH
shipped=$work/prefix/bin/../share/regprune/policies

sample=$work/sample
if ! "$MKREGISTRY" -q --now "$NOW" --scenario sample "$sample" \
    >"$work/mk.out" 2>&1; then
    echo "FAIL setup: mkregistry failed: $(cat "$work/mk.out")"
    echo "0 passed, 1 failed"
    exit 1
fi
"$REGPRUNE" --root "$sample" ls --json >"$work/inventory.json"

# shellcheck source=SCRIPTDIR/../../completion/regprune.bash
source "$top/completion/regprune.bash"

# complete_line LINE: run the completion for LINE with the cursor at its
# end. The candidates go to $reply, one per line, sorted.
complete_line() {
    COMP_LINE=$1
    COMP_POINT=${#1}
    read -r -a COMP_WORDS <<<"$1"
    if [[ $1 =~ [[:space:]]$ ]]; then
        COMP_WORDS+=("")
    fi
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    _regprune regprune "${COMP_WORDS[COMP_CWORD]}" \
        "${COMP_WORDS[COMP_CWORD - 1]}" 2>/dev/null
    reply=$(printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort)
}

# expect_has NAME LINE WORD...: every WORD is among the candidates.
expect_has() {
    local name=$1 line=$2 word missing=""
    shift 2
    complete_line "$line"
    for word in "$@"; do
        grep -qxF -- "$word" <<<"$reply" || missing+=" $word"
    done
    if [[ -z $missing ]]; then
        echo "PASS $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name: missing$missing; got: $(tr '\n' ' ' <<<"$reply")"
        failed=$((failed + 1))
    fi
}

# expect_exactly NAME LINE WORD...: the candidates are exactly the WORDs.
expect_exactly() {
    local name=$1 line=$2 expected
    shift 2
    complete_line "$line"
    expected=$(printf '%s\n' "$@" | sed '/^$/d' | sort)
    if [[ $reply == "$expected" ]]; then
        echo "PASS $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name: expected: $(tr '\n' ' ' <<<"$expected");" \
            "got: $(tr '\n' ' ' <<<"$reply")"
        failed=$((failed + 1))
    fi
}

# expect_lacks NAME LINE WORD...: no WORD is among the candidates.
expect_lacks() {
    local name=$1 line=$2 word present=""
    shift 2
    complete_line "$line"
    for word in "$@"; do
        grep -qxF -- "$word" <<<"$reply" && present+=" $word"
    done
    if [[ -z $present ]]; then
        echo "PASS $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name: unexpected$present"
        failed=$((failed + 1))
    fi
}

expect_exactly "commands" "regprune " \
    ls prune delete gc check explain diff restore apply
expect_exactly "command prefix" "regprune pr" prune
expect_exactly "command after option" "regprune --root /tmp g" gc
expect_exactly "gc option" "regprune gc --un" --untagged
expect_has "check options" "regprune check --" --verify --json --root
expect_lacks "check rejects prune options" "regprune check --" \
    --policy --dry-run --untagged
expect_has "ls options" "regprune ls --" --json --inventory
expect_lacks "ls has no dry run" "regprune ls --" --dry-run
expect_has "prune options" "regprune prune --" --policy --set --now \
    --dry-run --in-use --max-delete --max-delete-fraction --expect
expect_has "diff options" "regprune diff --" --policy --policy-new
expect_has "gc trash options" "regprune gc --" --trash --log --plan-out \
    --empty-trash --older-than
expect_exactly "apply options" "regprune apply --" --config --json --strict \
    --trash --log --root --jobs --verbose --quiet --help --version
expect_exactly "trash directory" "regprune --root /tmp prune --trash $work/sam" \
    "$sample"
expect_exactly "apply takes a file" "regprune apply $work/inventory.js" \
    "$work/inventory.json"
expect_exactly "policy file" "regprune prune --policy $top/policies/keep-l" \
    "$top/policies/keep-last.lua"
expect_exactly "policy file after equals" \
    "regprune prune --policy=$top/policies/keep-m" \
    "$top/policies/keep-matching.lua"
expect_has "shipped policies" "regprune prune --policy " \
    "$shipped/keep-last.lua" "$shipped/older-than.lua" \
    "$shipped/keep-matching.lua"
expect_lacks "policy completes no other files" \
    "regprune prune --policy $top/tests/docs/" \
    "$top/tests/docs/completion.sh"
expect_exactly "root directory" "regprune --root $work/sam" "$sample"
expect_exactly "set names of keep-last" \
    "regprune prune --policy $top/policies/keep-last.lua --set " \
    count= order=
expect_exactly "set names of two policies" \
    "regprune prune --policy $top/policies/keep-last.lua --policy=$top/policies/keep-matching.lua --set " \
    count= order= pattern=
expect_exactly "set name prefix" \
    "regprune prune --policy $top/policies/older-than.lua --set a" age=
expect_exactly "repositories" "regprune --root $sample ls team/" \
    team/api team/web/frontend team/worker
expect_exactly "repositories after command" \
    "regprune prune --policy x.lua --root $sample l" library/nginx
expect_exactly "repository for delete" "regprune --root $sample delete team/a" \
    team/api:
expect_exactly "tags for delete" \
    "regprune --root $sample delete team/api:v1" v1.10.0 v1.9.0
expect_exactly "tags from an inventory" \
    "regprune --inventory $work/inventory.json explain --policy x.lua library/nginx:1" \
    1.24 1.25 1.25.3
expect_exactly "no repositories without a root" "regprune ls te"
if [[ ${_regprune_cache_key-} == "inventory:$work/inventory.json" ]]; then
    echo "PASS listing cached in the shell"
    passed=$((passed + 1))
else
    echo "FAIL listing cached in the shell: key is '${_regprune_cache_key-}'"
    failed=$((failed + 1))
fi

# Without "=" and ":" in COMP_WORDBREAKS bash replaces the whole word, so
# the candidates must carry the option and the repository.
COMP_WORDBREAKS=${COMP_WORDBREAKS//[:=]/}
expect_exactly "whole tag word without colon breaks" \
    "regprune --root $sample delete team/api:v1" \
    team/api:v1.10.0 team/api:v1.9.0
expect_exactly "whole option word without equals breaks" \
    "regprune prune --policy=$top/policies/keep-l" \
    "--policy=$top/policies/keep-last.lua"

echo "$passed passed, $failed failed"
if [ "$failed" -gt 0 ]; then
    exit 1
fi
