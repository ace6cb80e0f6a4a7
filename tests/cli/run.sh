#!/bin/bash
# Command-line tests: each case builds a small registry tree with
# build/mkregistry, runs regprune on it and checks the exit status, the
# messages and exactly which files remain.
#
# REGPRUNE and MKREGISTRY override the binaries; REGPRUNE_WRAPPER runs
# regprune under a tool such as valgrind.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
REGPRUNE=${REGPRUNE:-$top/regprune}
MKREGISTRY=${MKREGISTRY:-$top/build/mkregistry}
WRAPPER=${REGPRUNE_WRAPPER:-}
NOW=1764806400 # 2025-12-04T00:00:00Z, the clock of every spec below
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
current=""
case_failed=0

fail() {
    echo "    $current: $*"
    case_failed=1
}

# mk NAME: build the tree described on stdin into $work/NAME; sets $root
# and $v2.
mk() {
    root=$work/$1
    v2=$root/docker/registry/v2
    rm -rf "$root"
    cat >"$work/$1.spec"
    if ! "$MKREGISTRY" -q --now "$NOW" --spec "$work/$1.spec" "$root" \
        >"$work/mk.out" 2>&1; then
        fail "mkregistry failed: $(cat "$work/mk.out")"
    fi
}

# rp ARGS...: run regprune on $root; output in $out, $err, status in $rc.
rp() {
    # shellcheck disable=SC2086
    $WRAPPER "$REGPRUNE" --root "$root" "$@" >"$work/out" 2>"$work/err"
    rc=$?
    out=$(cat "$work/out")
    err=$(cat "$work/err")
}

expect_rc() {
    [ "$rc" -eq "$1" ] || fail "exit status $rc, expected $1; stderr: $err"
}

expect_err() {
    grep -qF -- "$1" "$work/err" || fail "stderr lacks '$1': $err"
}

expect_out() {
    grep -qF -- "$1" "$work/out" || fail "stdout lacks '$1'"
}

# jq_true EXPR: the JSON report satisfies EXPR.
jq_true() {
    [ "$(jq -r "$1" "$work/out" 2>&1)" = "true" ] ||
        fail "JSON check failed: $1"
}

exists() {
    for p in "$@"; do
        [ -e "$v2/$p" ] || fail "missing: $p"
    done
}

gone() {
    for p in "$@"; do
        [ ! -e "$v2/$p" ] || fail "still present: $p"
    done
}

# Paths of a blob's directory, a tag and a revision, by mkregistry names.
blob() { echo "blobs/sha256/${1:0:2}/$1"; }
tagdir() { echo "repositories/$1/_manifests/tags/$2"; }
# hex of the manifest a tag points at
tag_hex() {
    local link
    link=$(cat "$v2/repositories/$1/_manifests/tags/$2/current/link")
    echo "${link#sha256:}"
}
revdir() { echo "repositories/$1/_manifests/revisions/sha256/$2"; }
layerdir() { echo "repositories/$1/_layers/sha256/$2"; }
# Every path with type, size, mtime and mode, and every file's sha256. The
# lock file that a real run creates in the root is left out.
snapshot() {
    (cd "$root" &&
        find . -mindepth 1 ! -name .regprune.lock -printf '%p %y %s %T@ %m\n' | sort &&
        find . -type f ! -name .regprune.lock -print0 | sort -z |
        xargs -0 -r sha256sum)
}

run_case() {
    current=$1
    case_failed=0
    "$1"
    if [ "$case_failed" -eq 0 ]; then
        echo "PASS $1"
        passed=$((passed + 1))
    else
        echo "FAIL $1"
        failed=$((failed + 1))
    fi
}

# A base layer shared by two repositories, three tagged images in one.
basic_spec() {
    cat <<'SPEC'
layer base 4K
layer a1 3K
layer a2 3K
layer a3 3K
layer b1 3K
image team/app:v1.0.0 layers=base,a1 pushed=-30d
image team/app:v1.1.0 layers=base,a2 pushed=-20d
image team/app:v1.2.0 layers=base,a3 pushed=-10d
alias team/app:stable team/app:v1.2.0 pushed=-10d
image other/svc:1.0 layers=base,b1 pushed=-40d
SPEC
}

keep_one='function policy(repo)
  for _, t in ipairs(regprune.sort(repo.tags, "version")) do
    if t.name == "v1.2.0" or t.name == "stable" or repo.name ~= "team/app" then
      keep(t, "wanted")
    else
      delete(t, "unwanted")
    end
  end
end'

test_dry_run_changes_nothing() {
    mk t < <(basic_spec)
    echo "$keep_one" >"$work/p.lua"
    snapshot >"$work/before"
    rp prune --policy "$work/p.lua" --dry-run --json
    expect_rc 0
    snapshot >"$work/after"
    cmp -s "$work/before" "$work/after" || fail "dry run changed the tree"
    jq_true '.totals.tags_deleted == 2'
    jq_true '.dry_run == true'
    [ ! -e "$root/.regprune.lock" ] || fail "dry run created a lock file"
}

test_dry_run_plan_matches_real_run() {
    mk t < <(basic_spec)
    echo "$keep_one" >"$work/p.lua"
    rp prune --policy "$work/p.lua" --dry-run --json --now "$NOW"
    jq 'del(.dry_run)' "$work/out" >"$work/plan"
    rp prune --policy "$work/p.lua" --json --now "$NOW"
    expect_rc 0
    jq 'del(.dry_run)' "$work/out" >"$work/done"
    cmp -s "$work/plan" "$work/done" || fail "real run differs from its plan"
}

test_shared_layer_kept() {
    mk t < <(basic_spec)
    local base a1 a3 old
    echo "$keep_one" >"$work/p.lua"
    old=$(tag_hex team/app v1.0.0)
    rp prune --policy "$work/p.lua" --json
    expect_rc 0
    gone "$(tagdir team/app v1.0.0)" "$(tagdir team/app v1.1.0)" \
        "$(revdir team/app "$old")" "$(blob "$old")"
    exists "$(tagdir team/app v1.2.0)" "$(tagdir team/app stable)" \
        "$(tagdir other/svc 1.0)"
    # Every blob a remaining manifest names is still there.
    for repo_tag in team/app:v1.2.0 other/svc:1.0; do
        local repo=${repo_tag%%:*} tag=${repo_tag#*:} hex
        hex=$(tag_hex "$repo" "$tag")
        exists "$(blob "$hex")/data"
        for d in $(jq -r '.config.digest, .layers[].digest' \
            "$v2/$(blob "$hex")/data"); do
            exists "$(blob "${d#sha256:}")/data" \
                "$(layerdir "$repo" "${d#sha256:}")/link"
        done
    done
    jq_true '.totals.blobs_deleted == 6'
    jq_true '.totals.manifests_deleted == 2'
}

test_rerun_finds_nothing() {
    mk t < <(basic_spec)
    echo "$keep_one" >"$work/p.lua"
    rp prune --policy "$work/p.lua"
    rp prune --policy "$work/p.lua" --json
    expect_rc 0
    jq_true '.totals.tags_deleted == 0 and .totals.blobs_deleted == 0'
    rp gc --json --grace 0
    expect_rc 0
    jq_true '.totals.blobs_deleted == 0 and .totals.layer_links_deleted == 0'
}

test_tag_sharing_digest() {
    mk t < <(basic_spec)
    local hex
    hex=$(tag_hex team/app v1.2.0)
    rp delete team/app:stable --json
    expect_rc 0
    gone "$(tagdir team/app stable)"
    exists "$(tagdir team/app v1.2.0)" "$(revdir team/app "$hex")" \
        "$(blob "$hex")"
    jq_true '.totals.manifests_deleted == 0 and .totals.blobs_deleted == 0'
}

test_delete_by_digest() {
    mk t < <(basic_spec)
    local hex
    hex=$(tag_hex team/app v1.2.0)
    rp delete "team/app@sha256:$hex" --json
    expect_rc 0
    gone "$(tagdir team/app stable)" "$(tagdir team/app v1.2.0)" \
        "$(revdir team/app "$hex")" "$(blob "$hex")"
    exists "$(tagdir team/app v1.1.0)"
    jq_true '.totals.tags_deleted == 2 and .totals.manifests_deleted == 1'
}

test_delete_unknown_changes_nothing() {
    mk t < <(basic_spec)
    snapshot >"$work/before"
    rp delete team/app:v1.0.0 team/app:nope
    expect_rc 1
    expect_err "team/app:nope: no such tag"
    rp delete nosuch/repo:v1
    expect_rc 1
    expect_err "no such repository"
    rp delete team/app
    expect_rc 2
    expect_err "names no tag or digest"
    rp delete "team/app@sha256:abc"
    expect_rc 2
    expect_err "invalid digest"
    snapshot >"$work/after"
    cmp -s "$work/before" "$work/after" || fail "tree changed"
}

index_spec() {
    cat <<'SPEC'
layer base 4K
layer amd 3K
layer arm 3K
layer arm2 3K
image multi/app@amd1 layers=base,amd platform=linux/amd64 format=oci pushed=-9d
image multi/app@arm1 layers=base,arm platform=linux/arm64 format=oci pushed=-9d
index multi/app:v1 children=amd1,arm1 format=oci pushed=-9d
image multi/app@arm2 layers=base,arm2 platform=linux/arm64 format=oci pushed=-2d
index multi/app:v2 children=amd1,arm2 format=oci pushed=-2d
SPEC
}

test_index_children() {
    mk t < <(index_spec)
    local v1 amd arm1 arm2
    v1=$(tag_hex multi/app v1)
    amd=$(jq -r '.manifests[0].digest' "$v2/$(blob "$v1")/data")
    arm1=$(jq -r '.manifests[1].digest' "$v2/$(blob "$v1")/data")
    arm2=$(jq -r '.manifests[1].digest' \
        "$v2/$(blob "$(tag_hex multi/app v2)")/data")
    rp ls --json
    jq_true '.repositories[0].tags[0].platforms == ["linux/amd64","linux/arm64"]'
    rp delete multi/app:v1 --json
    expect_rc 0
    gone "$(revdir multi/app "$v1")" "$(revdir multi/app "${arm1#sha256:}")" \
        "$(blob "${arm1#sha256:}")"
    # The amd64 child belongs to v2 as well.
    exists "$(revdir multi/app "${amd#sha256:}")" "$(blob "${amd#sha256:}")" \
        "$(revdir multi/app "${arm2#sha256:}")"
    jq_true '.totals.manifests_deleted == 2'
}

test_child_of_kept_index_not_deletable() {
    mk t < <(index_spec)
    local v2hex amd
    v2hex=$(tag_hex multi/app v2)
    amd=$(jq -r '.manifests[0].digest' "$v2/$(blob "$v2hex")/data")
    rp delete "multi/app@$amd" --json
    expect_rc 3
    expect_err "an index that stays"
    exists "$(revdir multi/app "${amd#sha256:}")"
}

test_missing_manifest_freezes_repo() {
    mk t < <(basic_spec)
    local hex
    hex=$(tag_hex team/app v1.1.0)
    rm -rf "${v2:?}/$(blob "$hex")"
    echo "$keep_one" >"$work/p.lua"
    rp prune --policy "$work/p.lua" --json
    expect_rc 3
    expect_err "is missing"
    exists "$(tagdir team/app v1.0.0)" "$(tagdir team/app v1.1.0)"
    jq_true '.repositories[] | select(.name=="team/app") | .frozen'
    jq_true '.totals.tags_deleted == 0'
}

test_invalid_link_freezes_repo() {
    mk t < <(basic_spec)
    printf 'sha256:%s\n' "$(tag_hex team/app v1.0.0)" \
        >"$v2/$(tagdir team/app v1.0.0)/current/link"
    echo 'function policy(repo) for _, t in ipairs(repo.tags) do delete(t) end end' \
        >"$work/all.lua"
    rp prune --policy "$work/all.lua" --allow-empty --json
    expect_rc 3
    expect_err "invalid link"
    expect_err "tags/v1.0.0/current/link"
    exists "$(tagdir team/app v1.1.0)"
    # The other repository is pruned all the same.
    gone "$(tagdir other/svc 1.0)"
    [ "$(tail -c 1 "$v2/$(tagdir team/app v1.0.0)/current/link" | od -An -c | tr -d ' ')" = '\n' ] ||
        fail "the invalid link was rewritten"
}

# prune and gc look at a revision link without reading it: a link of the
# right size is taken to name its directory. check reads every link.
test_revision_link_naming_another_digest() {
    mk t < <(basic_spec)
    local v1 v2hex
    v1=$(tag_hex team/app v1.0.0)
    v2hex=$(tag_hex team/app v1.1.0)
    printf 'sha256:%s' "$v2hex" >"$v2/$(revdir team/app "$v1")/link"
    rp check
    expect_rc 3
    grep -qF "link names another digest than its directory" "$work/out" ||
        fail "check does not report the link: $out"
    grep -qF "$(revdir team/app "$v1")" "$work/out" ||
        fail "check does not name the revision: $out"
    # The registry serves v1.1.0's manifest under v1.0.0's digest, so a
    # prune that deletes both tags must leave the repository alone.
    echo "$keep_one" >"$work/p.lua"
    rp prune --policy "$work/p.lua"
    expect_rc 3
    expect_err "link names another digest than its directory"
    exists "$(blob "$v1")" "$(blob "$v2hex")" "$(revdir team/app "$v1")" \
        "$(revdir team/app "$v2hex")" "$(tagdir team/app v1.0.0)"
    # A link of another size is invalid.
    printf 'sha256:%s\n' "$v2hex" >"$v2/$(revdir team/app "$v1")/link"
    rp prune --policy "$work/p.lua" --dry-run
    expect_rc 3
    expect_err "invalid link"
}

# ls shows what the image configs hold: creation time and platform.
test_ls_shows_config_fields() {
    mk t < <(basic_spec)
    rp --now "$NOW" ls
    expect_rc 0
    grep -E '^  v1\.0\.0 .* created [0-9]{4}-[0-9]{2}-[0-9]{2} .* linux/amd64$' \
        "$work/out" >/dev/null ||
        fail "ls lacks the creation time or platform of v1.0.0: $(cat "$work/out")"
}

# check reads every _layers link: the registry cannot serve a layer whose
# link is invalid or names another blob.
test_check_reports_bad_layer_links() {
    mk t < <(basic_spec)
    local a1 base
    a1=$(ls "$v2/repositories/team/app/_layers/sha256" | head -1)
    base=$(ls "$v2/repositories/team/app/_layers/sha256" | tail -1)
    echo garbage >"$v2/$(layerdir team/app "$a1")/link"
    printf 'sha256:%s' "$a1" >"$v2/$(layerdir team/app "$base")/link"
    rp check
    expect_rc 3
    grep -qF "$(layerdir team/app "$a1")/link: invalid link" "$work/out" ||
        fail "check does not report the invalid layer link: $out"
    grep -qF "$(layerdir team/app "$base"): link names another digest" \
        "$work/out" ||
        fail "check does not report the layer link naming $a1: $out"
}

# The number of threads changes neither the report nor what is removed.
test_jobs_give_the_same_result() {
    mk t < <(basic_spec; index_spec | grep -v '^layer base')
    cat >"$work/p.lua" <<'LUA'
function policy(repo)
  for _, t in ipairs(repo.tags) do
    if t.name == "v1" or t.name == "v1.0.0" then delete(t) else keep(t) end
  end
end
LUA
    rp --jobs 1 prune --policy "$work/p.lua" --dry-run --json --now "$NOW"
    cp "$work/out" "$work/jobs1.json"
    rp --jobs 7 prune --policy "$work/p.lua" --dry-run --json --now "$NOW"
    cmp -s "$work/out" "$work/jobs1.json" ||
        fail "--jobs 7 plans differently from --jobs 1"
    cp -a "$root" "$work/t-copy"
    rp --jobs 1 prune --policy "$work/p.lua"
    expect_rc 0
    snapshot >"$work/jobs1.state"
    root=$work/t-copy
    v2=$root/docker/registry/v2
    rp --jobs 7 prune --policy "$work/p.lua"
    expect_rc 0
    snapshot >"$work/jobs7.state"
    grep -q "tags/v1.0.0" "$work/jobs1.state" &&
        fail "the tag to delete is still there"
    diff -q <(awk '{print $1, $2, $3, $5}' "$work/jobs1.state") \
        <(awk '{print $1, $2, $3, $5}' "$work/jobs7.state") >/dev/null ||
        fail "--jobs 7 leaves another tree than --jobs 1"
    rp --jobs 0 ls
    expect_rc 2
    expect_err "invalid --jobs '0'"
}

test_strict_stops_before_deleting() {
    mk t < <(basic_spec)
    : >"$v2/$(tagdir team/app v1.0.0)/current/link"
    echo "$keep_one" >"$work/p.lua"
    snapshot >"$work/before"
    rp prune --policy "$work/p.lua" --strict
    expect_rc 1
    expect_err "the file is empty"
    expect_err "--strict"
    snapshot >"$work/after"
    cmp -s "$work/before" "$work/after" || fail "tree changed"
}

test_unknown_manifest_pins_repo() {
    mk t < <(basic_spec)
    local hex
    hex=$(tag_hex team/app v1.0.0)
    # An artifact of a kind regprune does not know, stored as the registry
    # would: a revision link and its blob.
    printf '{"schemaVersion":2,"mediaType":"application/x-future+json"}' \
        >"$work/m"
    local mhex
    mhex=$(sha256sum "$work/m" | cut -c1-64)
    mkdir -p "$v2/$(blob "$mhex")" "$v2/$(revdir team/app "$mhex")"
    cp "$work/m" "$v2/$(blob "$mhex")/data"
    printf 'sha256:%s' "$mhex" >"$v2/$(revdir team/app "$mhex")/link"
    echo "$keep_one" >"$work/p.lua"
    rp prune --policy "$work/p.lua" --json
    expect_rc 0
    expect_err "unknown manifest media type"
    gone "$(tagdir team/app v1.0.0)"
    exists "$(revdir team/app "$hex")" "$(blob "$hex")"
    jq_true '.totals.manifests_deleted == 0 and .totals.layer_links_deleted == 0'
}

# A manifest of an unknown kind pins its own repository only: blobs that
# other repositories no longer need still go in the real run, as planned.
test_unknown_manifest_leaves_other_blobs_deletable() {
    mk t < <(basic_spec)
    printf '{"schemaVersion":2,"mediaType":"application/x-future+json"}' |
        put_manifest team/app >/dev/null
    cat >"$work/p.lua" <<'LUA'
function policy(repo)
  for _, t in ipairs(repo.tags) do
    if repo.name == "other/svc" then delete(t) else keep(t) end
  end
end
LUA
    rp prune --policy "$work/p.lua" --allow-empty --dry-run --json
    expect_rc 0
    cp "$work/out" "$work/dry.json"
    jq_true '.totals.blobs_deleted > 0'
    rp prune --policy "$work/p.lua" --allow-empty --json
    expect_rc 0
    [ "$(jq -c '.blobs_deleted' "$work/out")" = \
        "$(jq -c '.blobs_deleted' "$work/dry.json")" ] ||
        fail "the real run deleted other blobs than the dry run planned"
    grep -qF "cannot follow" "$work/err" && fail "blobs were left: $err"
    [ -e "$root/.regprune.journal" ] && fail "a journal was left behind"
    rp check
    expect_rc 0
}

# A FIFO where a link or a manifest belongs is reported, never opened for
# reading in a way that waits for a writer.
test_fifo_is_not_read() {
    mk t < <(basic_spec)
    local hex
    hex=$(tag_hex other/svc 1.0)
    rm "$v2/$(tagdir team/app v1.0.0)/current/link"
    mkfifo "$v2/$(tagdir team/app v1.0.0)/current/link"
    rm "$v2/$(blob "$hex")/data"
    mkfifo "$v2/$(blob "$hex")/data"
    rc=0
    timeout 20 "$REGPRUNE" --root "$root" ls >"$work/out" 2>"$work/err" ||
        rc=$?
    [ "$rc" -ne 124 ] || fail "ls waited on the FIFO"
    expect_err "not a regular file"
    rc=0
    timeout 20 "$REGPRUNE" --root "$root" check --verify >"$work/out" \
        2>"$work/err" || rc=$?
    expect_rc 3
    grep -qF "not a regular file" "$work/out" ||
        fail "check does not report the FIFO: $(cat "$work/out")"
}

# With part of the tree unreadable, no blob is planned, so the real run
# has none to keep back and leaves no journal.
test_incomplete_tree_leaves_no_journal() {
    mk t < <(basic_spec)
    mkdir -p "$work/elsewhere"
    ln -s "$work/elsewhere" "$v2/repositories/linked"
    echo "$keep_one" >"$work/p.lua"
    rp prune --policy "$work/p.lua"
    expect_rc 3
    expect_err "symbolic link"
    grep -qF "left for the next run" "$work/err" &&
        fail "the run speaks of blobs it never planned: $err"
    [ -e "$root/.regprune.journal" ] && fail "a journal was left behind"
    gone "$(tagdir team/app v1.0.0)"
}

test_policy_error_deletes_nothing() {
    mk t < <(basic_spec)
    printf 'function policy(repo)\n  keep(repo.tags[1])\n  delete("no-such-tag")\nend\n' \
        >"$work/bad.lua"
    snapshot >"$work/before"
    rp prune --policy "$work/bad.lua"
    expect_rc 1
    expect_err "bad.lua:3:"
    expect_err "no tag 'no-such-tag'"
    expect_err "nothing was deleted"
    printf 'function policy(repo)\n  if then\nend\n' >"$work/syntax.lua"
    rp prune --policy "$work/syntax.lua"
    expect_rc 1
    expect_err "syntax.lua:2:"
    printf 'function policy(repo) while true do end end\n' >"$work/loop.lua"
    rp prune --policy "$work/loop.lua" --max-instructions 100000
    expect_rc 1
    expect_err "instruction"
    printf 'function policy(repo) string.find(string.rep("a", 3000), string.rep("a-", 12) .. "b") end\n' \
        >"$work/slow.lua"
    rp prune --policy "$work/slow.lua" --policy-timeout 1s
    expect_rc 1
    expect_err "ran past its time limit"
    printf 'function policy(repo) os.execute("true") end\n' >"$work/os.lua"
    rp prune --policy "$work/os.lua"
    expect_rc 1
    expect_err "undefined global 'os'"
    snapshot >"$work/after"
    cmp -s "$work/before" "$work/after" || fail "tree changed"
}

test_last_tag_protected() {
    mk t < <(basic_spec)
    echo 'function policy(repo) for _, t in ipairs(repo.tags) do delete(t, "all") end end' \
        >"$work/all.lua"
    rp prune --policy "$work/all.lua" --json
    expect_rc 0
    exists "$(tagdir other/svc 1.0)"
    jq_true '[.repositories[] | select(.name=="team/app") | .tags[] | select(.verdict=="keep") | .name] == ["v1.2.0"]'
    expect_out "last tag of the repository"
    mk t2 < <(basic_spec)
    rp prune --policy "$work/all.lua" --allow-empty --json
    expect_rc 0
    gone "$(tagdir other/svc 1.0)" "$(tagdir team/app stable)"
}

test_tag_history_cleaned() {
    mk t <<'SPEC'
layer l1 3K
layer l2 3K
image hist/app:v1 layers=l1 pushed=-5d
image hist/app:latest layers=l1 pushed=-5d
image hist/app:v2 layers=l2 pushed=-1d
retag hist/app:latest hist/app:v2 pushed=-1d
SPEC
    local old
    old=$(tag_hex hist/app v1)
    exists "$(tagdir hist/app latest)/index/sha256/$old/link"
    rp delete hist/app:v1
    expect_rc 0
    gone "$(tagdir hist/app latest)/index/sha256/$old" "$(revdir hist/app "$old")"
    exists "$(tagdir hist/app latest)/index/sha256/$(tag_hex hist/app v2)/link"
}

test_untagged_kept_by_prune_removed_by_gc() {
    mk t <<'SPEC'
layer l1 3K
layer l2 3K
image u/app@old layers=l1 pushed=-5d
image u/app:v2 layers=l2 pushed=-1d
SPEC
    local old
    old=$(ls "$v2/repositories/u/app/_manifests/revisions/sha256" |
        grep -v "$(tag_hex u/app v2)")
    echo 'function policy(repo) end' >"$work/none.lua"
    rp prune --policy "$work/none.lua" --json
    expect_rc 0
    exists "$(revdir u/app "$old")"
    rp gc --json
    jq_true '.totals.manifests_deleted == 0'
    exists "$(revdir u/app "$old")"
    touch -d '-2 hours' "$v2/$(revdir u/app "$old")/link"
    rp gc --untagged --json
    expect_rc 0
    gone "$(revdir u/app "$old")" "$(blob "$old")"
    exists "$(revdir u/app "$(tag_hex u/app v2)")"
    jq_true '.totals.manifests_deleted == 1'
}

test_gc_grace_window() {
    local minute_ago=$(($(date +%s) - 60))
    mk t <<SPEC
layer l1 3K
image g/app:v1 layers=l1 pushed=-5d
raw blobs/sha256/aa/aa00000000000000000000000000000000000000000000000000000000000000/data old orphan
raw blobs/sha256/bb/bb00000000000000000000000000000000000000000000000000000000000000/data new orphan
raw repositories/g/app/_layers/sha256/aa00000000000000000000000000000000000000000000000000000000000000/link sha256:aa00000000000000000000000000000000000000000000000000000000000000
upload g/app stale started=-3h
upload g/app fresh started=$minute_ago
raw repositories/g/app/_uploads/garbled/startedat not a time
SPEC
    local old=aa00000000000000000000000000000000000000000000000000000000000000
    local new=bb00000000000000000000000000000000000000000000000000000000000000
    touch -d '-2 hours' "$v2/$(blob $old)/data" "$v2/$(layerdir g/app $old)/link"
    touch "$v2/$(blob $new)/data"
    rp gc --dry-run --json
    expect_rc 0
    local uploads stale
    uploads=$(ls "$v2/repositories/g/app/_uploads" | wc -l)
    rp gc --json
    expect_rc 0
    stale=$(jq -r '.repositories[0].uploads_deleted[0]' "$work/out")
    gone "$(blob $old)" "$(layerdir g/app $old)" \
        "repositories/g/app/_uploads/$stale"
    exists "$(blob $new)/data" repositories/g/app/_uploads/garbled \
        "$(tagdir g/app v1)"
    [ "$(ls "$v2/repositories/g/app/_uploads" | wc -l)" -eq $((uploads - 1)) ] ||
        fail "expected only the stale upload to go"
    jq_true '.totals.blobs_deleted == 1 and .totals.uploads_deleted == 1'
    rp gc --grace 0 --json
    gone "$(blob $new)"
}

test_lock_refuses_second_run() {
    mk t < <(basic_spec)
    echo "$keep_one" >"$work/p.lua"
    : >"$root/.regprune.lock"
    # The holder ends by itself; killing flock would leave sleep holding it.
    flock "$root/.regprune.lock" sleep 2 &
    local holder=$!
    sleep 0.3
    rp prune --policy "$work/p.lua"
    expect_rc 1
    expect_err "another regprune run holds"
    exists "$(tagdir team/app v1.0.0)"
    rp prune --policy "$work/p.lua" --dry-run
    expect_rc 0
    wait "$holder"
}

test_symlinks_not_followed() {
    mk t < <(basic_spec)
    mkdir -p "$work/canary/current"
    printf 'sha256:%s' "$(tag_hex team/app v1.0.0)" >"$work/canary/current/link"
    ln -s "$work/canary" "$v2/repositories/team/app/_manifests/tags/evil"
    (cd "$work/canary" && find . -printf '%p %s\n' | sort) >"$work/canary.before"
    echo 'function policy(repo) for _, t in ipairs(repo.tags) do delete(t) end end' \
        >"$work/all.lua"
    rp prune --policy "$work/all.lua" --allow-empty
    expect_err "tags/evil"
    (cd "$work/canary" && find . -printf '%p %s\n' | sort) >"$work/canary.after"
    cmp -s "$work/canary.before" "$work/canary.after" || fail "canary changed"
    [ -L "$v2/repositories/team/app/_manifests/tags/evil" ] ||
        fail "the symlink itself was removed"
}

test_root_checks_and_usage() {
    root=$work/empty
    mkdir -p "$root"
    rp ls
    expect_rc 1
    expect_err "does not look like a registry root"
    mk t < <(basic_spec)
    rp
    expect_rc 2
    expect_err "no command given"
    rp frobnicate
    expect_rc 2
    rp prune
    expect_rc 2
    expect_err "prune needs --policy"
    rp ls --bogus
    expect_rc 2
    expect_err "unknown option '--bogus'"
    rp prune --policy x.lua --now yesterday
    expect_rc 2
    expect_err "invalid --now"
    rp gc --grace 5x
    expect_rc 2
    rp --help
    expect_rc 0
    expect_out "exit status"
    rp ls nosuch/repo
    expect_rc 1
    expect_err "no repository 'nosuch/repo'"
}

test_options_after_command() {
    mk t < <(basic_spec)
    echo "$keep_one" >"$work/p.lua"
    "$REGPRUNE" prune --json --root "$root" --policy="$work/p.lua" --dry-run \
        team/app >"$work/out" 2>"$work/err"
    rc=$?
    expect_rc 0
    jq_true '[.repositories[].name] == ["team/app"]'
    jq_true '.totals.tags_deleted == 2'
}

test_now_and_params_reach_policy() {
    mk t < <(basic_spec)
    cat >"$work/p.lua" <<'LUA'
function policy(repo)
  for _, t in ipairs(repo.tags) do
    if regprune.now - t.pushed > regprune.duration(regprune.params.age) then
      delete(t, "old")
    end
  end
end
LUA
    rp prune --policy "$work/p.lua" --set age=15d --now 2025-12-04T00:00:00Z \
        --dry-run --json
    expect_rc 0
    jq_true '[.repositories[] | .tags[] | select(.verdict=="delete") | .name] == ["1.0","v1.0.0","v1.1.0"] or [.repositories[] | .tags[] | select(.verdict=="delete") | .name] == ["v1.0.0","v1.1.0"]'
    jq_true '.now == 1764806400'
}

# A file that reads regprune.params at its top level takes its own --set
# names beside a shipped policy that declares its parameters. A misspelled
# name still stops the run. A load-time error prints no traceback.
test_params_beside_shipped_policy() {
    mk t < <(basic_spec)
    cat >"$work/pin.lua" <<'LUA'
local pinned = regprune.params.pin
function policy(repo)
  for _, t in ipairs(repo.tags) do
    if t.name == pinned then keep(t, "pinned") end
  end
end
LUA
    rp prune --policy "$top/policies/keep-last.lua" --policy "$work/pin.lua" \
        --set count=0 --set pin=v1.0.0 --dry-run --json
    expect_rc 0
    jq_true '[.repositories[] | select(.name=="team/app") | .tags[] | select(.verdict=="keep") | .name] == ["v1.0.0"]'
    rp prune --policy "$top/policies/keep-last.lua" --policy "$work/pin.lua" \
        --set count=0 --set pni=v1.0.0 --dry-run
    expect_rc 1
    expect_err "unknown parameter 'pni' (known parameters: count, order, pin)"
    rp prune --policy "$top/policies/keep-last.lua" --set cnt=3 --dry-run
    expect_rc 1
    expect_err "keep-last: unknown parameter 'cnt'"
    grep -qF "stack traceback" "$work/err" &&
        fail "a parameter error printed a traceback: $err"
    return 0
}

test_empty_dirs_removed() {
    mk t < <(basic_spec)
    local old
    old=$(tag_hex team/app v1.0.0)
    rp delete team/app:v1.0.0
    expect_rc 0
    gone "$(revdir team/app "$old")" "$(blob "$old")"
    # No empty directories are left behind but the fixed layout.
    local empty
    empty=$(find "$v2/blobs" "$v2/repositories" -type d -empty \
        ! -name _uploads)
    [ -z "$empty" ] || fail "empty directories left: $empty"
}

test_in_use_protects() {
    mk t < <(
        index_spec
        basic_spec | grep -v '^layer base'
    )
    local amd
    amd=$(jq -r '.manifests[0].digest' \
        "$v2/$(blob "$(tag_hex multi/app v1)")/data")
    cat >"$work/running" <<EOF
# what the cluster runs
registry.example.com:5000/team/app:v1.0.0
localhost/other/svc@sha256:$(tag_hex other/svc 1.0)
EOF
    echo 'function policy(repo) for _, t in ipairs(repo.tags) do delete(t, "all") end end' \
        >"$work/all.lua"
    rp prune --policy "$work/all.lua" --allow-empty --in-use "$work/running" \
        --dry-run --json
    expect_rc 0
    jq_true '[.repositories[] | .tags[] | select(.verdict=="keep") | .name] == ["1.0","v1.0.0"]'
    jq_true '.repositories[] | select(.name=="team/app") | .tags[] | select(.name=="v1.0.0") | .reason == "in use: registry.example.com:5000/team/app:v1.0.0"'
    # A pod reports the platform digest; the index tags holding it stay.
    cat >"$work/pods.json" <<EOF
{"items": [{"spec": {"containers": [{"image": "nginx:1.25"}]},
  "status": {"containerStatuses": [
    {"imageID": "docker-pullable://r.example.com/multi/app@$amd"}]}}]}
EOF
    rp prune --policy "$work/all.lua" --allow-empty --in-use "$work/pods.json" \
        --dry-run --json
    expect_rc 0
    jq_true '[.repositories[] | select(.name=="multi/app") | .tags[] | select(.verdict=="keep") | .name] == ["v1","v2"]'
    # delete by digest of an in-use tag names the tag that keeps it.
    echo "team/app:v1.0.0" >"$work/one"
    rp delete "team/app@sha256:$(tag_hex team/app v1.0.0)" --in-use "$work/one"
    expect_rc 3
    expect_err "tag v1.0.0 still points at it (in use: team/app:v1.0.0)"
    printf '{"items": [' >"$work/bad.json"
    rp prune --policy "$work/all.lua" --in-use "$work/bad.json" --dry-run
    expect_rc 1
    expect_err "bad.json: invalid JSON"
    rp prune --policy "$work/all.lua" --in-use "$work/none.txt" --dry-run
    expect_rc 1
    expect_err "cannot open --in-use file"
    # A shortened digest, as ls prints it, protects nothing: a text file
    # with one stops the run, and JSON gets a warning.
    printf 'team/app:v1.0.0\nteam/app@sha256:%.12s\n' \
        "$(tag_hex team/app v1.1.0)" >"$work/short.txt"
    rp prune --policy "$work/all.lua" --in-use "$work/short.txt" --dry-run
    expect_rc 1
    expect_err "short.txt:2: 'team/app@sha256:"
    expect_err "is not an image reference; write REPO:TAG"
    printf '{"items": [{"image": "team/app@sha256:12", "imageID": ""}]}' \
        >"$work/short.json"
    rp prune --policy "$work/all.lua" --in-use "$work/short.json" --dry-run
    expect_rc 0
    expect_err "'team/app@sha256:12' is not an image reference, so it protects nothing"
    [ "$(grep -c "is not an image reference" "$work/err")" -eq 1 ] ||
        fail "the empty imageID was reported too: $err"
}

test_breakers_stop_run() {
    mk t < <(basic_spec)
    echo 'function policy(repo) for _, t in ipairs(repo.tags) do delete(t, "all") end end' \
        >"$work/all.lua"
    snapshot >"$work/before"
    rp prune --policy "$work/all.lua" --max-delete 2
    expect_rc 1
    expect_err "the plan deletes 3 tags, more than --max-delete 2"
    expect_err "team/app"
    rp prune --policy "$work/all.lua" --max-delete-fraction 50%
    expect_rc 1
    expect_err "deletes 3 of the 4 tags of team/app"
    snapshot >"$work/after"
    cmp -s "$work/before" "$work/after" || fail "tree changed"
    rp prune --policy "$work/all.lua" --max-delete-fraction 0.75 --dry-run
    expect_rc 0
    rp prune --policy "$work/all.lua" --max-delete-fraction 2
    expect_rc 2
    # A dry run shows the plan that trips the breaker, and fails.
    rp prune --policy "$work/all.lua" --max-delete 2 --dry-run --json
    expect_rc 1
    jq_true '.totals.tags_deleted == 3'
    rp gc --max-delete 2
    expect_rc 2
    expect_err "apply to prune and delete, not gc"
}

test_protect_beats_keep_and_delete() {
    mk t < <(basic_spec)
    cat >"$work/p.lua" <<'LUA'
function policy(repo)
  for _, t in ipairs(repo.tags) do delete(t, "sweep") end
  protect("v1.0.0", "audited release")
  keep("v1.0.0", "later keep")
end
LUA
    rp prune --policy "$work/p.lua" --dry-run --json team/app
    expect_rc 0
    jq_true '.repositories[0].tags[] | select(.name=="v1.0.0") | .verdict == "keep" and .reason == "audited release"'
    jq_true '.repositories[0].tags[] | select(.name=="v1.0.0") | .source | endswith("p.lua:3")'
}

test_policy_helpers() {
    mk t < <(basic_spec)
    cat >"$work/p.lua" <<'LUA'
local function check(cond, what) if not cond then error("failed: " .. what) end end
function policy(repo)
  if repo.name ~= "team/app" then return end
  local newest = regprune.newest(repo.tags, 2, {by = "version"})
  check(#newest == 2 and newest[1].name == "v1.2.0", "newest")
  local images = regprune.images(regprune.sort(repo.tags, "pushed"))
  check(#images == 3 and #images[1].tags == 2, "images")
  local groups = regprune.group(repo.tags, function(t) return t.name:sub(1, 1) end)
  check(#groups.v == 3 and #groups.s == 1, "group")
  check(regprune.glob("team/app", "team/**") and not regprune.glob("a/b", "*"), "glob")
  check(regprune.glob("v1.2.0", "v{1,2}.*"), "glob braces")
  check(regprune.prefix("release-1", "release-"), "prefix")
  check(regprune.version("v1.2.3-rc.1").prerelease == "rc.1", "version")
  check(regprune.version("latest") == nil, "not a version")
  check(regprune.compare_versions("1.2.3-4-gdeadbeef", "1.2.3") == 1, "describe")
  local t = repo.tags[1]
  check(regprune.age(t) == regprune.now - t.pushed, "age")
  check(regprune.older_than(t, "1d") and not regprune.older_than(t, "1000d"), "older_than")
  keep(t, "all checks passed")
end
LUA
    rp prune --policy "$work/p.lua" --dry-run --json --now "$NOW"
    expect_rc 0
    jq_true '[.repositories[] | .tags[] | select(.reason=="all checks passed")] | length == 1'
}

test_check_finds_problems() {
    mk t < <(basic_spec)
    rp check --verify
    expect_rc 0
    expect_out "problems=0"
    local hex layer
    hex=$(tag_hex team/app v1.1.0)
    layer=$(jq -r '.layers[1].digest' "$v2/$(blob "$hex")/data")
    layer=${layer#sha256:}
    rm -r "${v2:?}/$(layerdir team/app "$layer")"
    echo corrupt >>"$v2/$(blob "$(tag_hex other/svc 1.0)")/data"
    rp check --verify --json
    expect_rc 3
    jq_true '[.problems[].message | select(test("no _layers link"))] | length == 1'
    jq_true '[.problems[].message | select(test("not to its name"))] | length == 1'
    jq_true '.blobs_verified > 0'
    [ -z "$err" ] || fail "check wrote to stderr: $err"
    rm -r "${v2:?}/$(blob "$layer")"
    snapshot >"$work/before"
    rp check --verify team/app
    expect_rc 3
    expect_out "missing from the blob store"
    snapshot >"$work/after"
    cmp -s "$work/before" "$work/after" || fail "check changed the tree"
    rp check --dry-run
    expect_rc 2
}

test_registry_deleted_revision() {
    mk t <<'SPEC'
layer l1 3K
layer l2 3K
image d/app:v1 layers=l1 pushed=-5d
image d/app:latest layers=l1 pushed=-5d
image d/app:v2 layers=l2 pushed=-1d
retag d/app:latest d/app:v2 pushed=-1d
delete d/app:v1
SPEC
    rp ls --json d/app
    expect_rc 0
    jq_true '[.repositories[0].tags[].name] == ["latest","v2"]'
    [ -z "$err" ] || fail "stderr: $err"
    mkdir -p "$v2/$(tagdir d/app broken)/current"
    echo 'function policy(repo) end' >"$work/none.lua"
    rp prune --policy "$work/none.lua" --json
    expect_rc 0
    expect_err "tags/broken: the tag has no current/link"
    exists "$(tagdir d/app broken)"
}

# A tag directory with more in it than the registry writes: the extra
# entries go with the tag, and a tag whose removal fails keeps its
# current/link, so the registry still serves it.
test_tag_with_extra_entries() {
    mk t <<'SPEC'
layer l1 3K
layer l2 3K
layer l3 3K
image x/app:v1 layers=l1 pushed=-9d
image x/app:v2 layers=l2 pushed=-8d
image x/app:v3 layers=l3 pushed=-1d
SPEC
    local deep i
    echo stray >"$v2/$(tagdir x/app v1)/notes.txt"
    mkdir -p "$v2/$(tagdir x/app v1)/index/sha256/extra/sub"
    deep=$v2/$(tagdir x/app v2)/junk
    mkdir -p "$deep"
    # Nesting far below anything a registry writes: removal stops there.
    for ((i = 0; i < 300; i++)); do
        deep=$deep/d
    done
    mkdir -p "$deep"
    rp prune --policy "$top/policies/keep-last.lua" --set count=1
    expect_rc 3
    gone "$(tagdir x/app v1)"
    exists "$(tagdir x/app v2)/current/link"
    expect_err "tags/v2: cannot remove: File name too long"
    exists "$(tagdir x/app v3)/current/link"
    rm -rf "$v2/$(tagdir x/app v2)/junk"
    rp prune --policy "$top/policies/keep-last.lua" --set count=1
    expect_rc 0
    gone "$(tagdir x/app v2)"
    rp check
    expect_rc 0
}

# The state of a tree without times: paths, types, sizes and contents.
contents() {
    (cd "$1" &&
        find . -mindepth 1 ! -name .regprune.lock -printf '%p %y %s\n' |
        sort &&
        find . -type f ! -name .regprune.lock -print0 | sort -z |
        xargs -0 -r sha256sum)
}

test_crash_at_every_step() {
    mk pristine < <(
        index_spec
        basic_spec | grep -v '^layer base'
    )
    local pristine=$root
    cat >"$work/p.lua" <<'LUA'
function policy(repo)
  for _, t in ipairs(repo.tags) do
    if t.name == "v1.2.0" or t.name == "stable" or t.name == "v2" or
       repo.name == "other/svc" then
      keep(t, "wanted")
    else
      delete(t, "unwanted")
    end
  end
end
LUA
    root=$work/reference
    rm -rf "$root"
    cp -a "$pristine" "$root"
    rp prune --policy "$work/p.lua" --json
    expect_rc 0
    jq_true '.totals.blobs_deleted > 5'
    contents "$root" >"$work/reference.state"
    [ ! -e "$root/.regprune.journal" ] || fail "journal left after success"
    # Stop the run before each removal in turn; a sanitizer or valgrind
    # wrapper makes each run slow, so then every third step is enough.
    local step=0 stride=1 crashes=0
    [ -n "$WRAPPER" ] && stride=3
    while :; do
        root=$work/crash
        rm -rf "$root"
        cp -a "$pristine" "$root"
        REGPRUNE_CRASH_AFTER=$step $WRAPPER "$REGPRUNE" --root "$root" \
            prune --policy "$work/p.lua" >/dev/null 2>&1
        rc=$?
        [ "$rc" -eq 137 ] || break
        crashes=$((crashes + 1))
        rp check
        [ "$rc" -eq 0 ] || fail "after a stop at step $step, check: $out"
        rp prune --policy "$work/p.lua"
        [ "$rc" -eq 0 ] || fail "re-run after step $step: $err"
        contents "$root" >"$work/crash.state"
        cmp -s "$work/reference.state" "$work/crash.state" ||
            fail "re-run after a stop at step $step differs: $(diff \
                "$work/reference.state" "$work/crash.state" | head -5)"
        step=$((step + stride))
    done
    [ "$rc" -eq 0 ] || fail "the last run ended with $rc"
    [ "$crashes" -gt 20 ] || fail "only $crashes stops exercised"
}

# A second run stopped before it finishes does not lose what the first
# stopped run left: a half-removed tag directory, and history entries that
# name revisions already gone.
test_two_stopped_runs_then_rerun() {
    local n
    mk pristine < <(
        printf 'layer l1 3K\nimage r/x:main-1 layers=l1 pushed=-9d\n'
        printf 'alias r/x:latest r/x:main-1\n'
        for n in 2 3 4 5; do
            printf 'layer l%s 3K\nimage r/x:main-%s layers=l%s pushed=-%sd\n' \
                "$n" "$n" "$n" "$((10 - n))"
            printf 'retag r/x:latest r/x:main-%s pushed=-%sd\n' "$n" "$((10 - n))"
        done
    )
    local pristine=$root first second
    root=$work/reference
    rm -rf "$root"
    cp -a "$pristine" "$root"
    rp prune --policy keep-last --set count=2
    expect_rc 0
    contents "$root" >"$work/reference.state"
    for first in 4 10 16; do
        for second in 3 12 22; do
            root=$work/crash
            rm -rf "$root"
            cp -a "$pristine" "$root"
            REGPRUNE_CRASH_AFTER=$first $WRAPPER "$REGPRUNE" --root "$root" \
                prune --policy keep-last --set count=2 >/dev/null 2>&1
            REGPRUNE_CRASH_AFTER=$second $WRAPPER "$REGPRUNE" --root "$root" \
                prune --policy keep-last --set count=2 >/dev/null 2>&1
            rp prune --policy keep-last --set count=2
            [ "$rc" -eq 0 ] || fail "re-run after stops at $first, $second: $err"
            rp prune --policy keep-last --set count=2
            grep -qF "no current/link" "$work/err" &&
                fail "a tag directory stayed after stops at $first, $second"
            contents "$root" >"$work/crash.state"
            cmp -s "$work/reference.state" "$work/crash.state" ||
                fail "stops at $first, $second, then a re-run differ: $(diff \
                    "$work/reference.state" "$work/crash.state" | head -5)"
        done
    done
}

test_unreadable_subtree_keeps_blobs() {
    mk t <<'SPEC'
layer base 4K
layer shared 3K
image team/app:v1 layers=base,shared pushed=-30d
image lib/x:v0 layers=base,shared pushed=-40d
image lib/x:v1 layers=base pushed=-30d
SPEC
    local hex
    hex=$(tag_hex team/app v1)
    mkdir "$work/ext"
    mv "$v2/repositories/team/app" "$work/ext/app"
    ln -s "$work/ext/app" "$v2/repositories/team/app"
    rp delete lib/x:v0 --json
    expect_rc 3
    expect_err "repositories/team/app: a symbolic link"
    expect_err "no blob is deleted in this run"
    jq_true '.totals.blobs_deleted == 0'
    gone "$(tagdir lib/x v0)"
    exists "$(blob "$hex")/data"
    rp gc --grace 0 --json
    expect_rc 3
    jq_true '.totals.blobs_deleted == 0'
    exists "$(blob "$hex")/data"
    # A repository nested beyond what a registry name allows is not read.
    mk deep < <(printf 'layer own 3K\nimage deep/app:v1 layers=own pushed=-30d\nimage x/y:v1\n')
    local far
    far=$v2/repositories/$(printf 'a/%.0s' $(seq 130))
    mkdir -p "$far"
    mv "$v2/repositories/deep/app" "$far/app"
    rp gc --grace 0 --json
    expect_rc 3
    expect_err "longer than 255 characters"
    jq_true '.totals.blobs_deleted == 0'
}

test_frozen_revision_keeps_blob() {
    mk t <<'SPEC'
layer base 4K
layer l-amd 3K
layer l-arm 3K
image a/app@amd layers=base,l-amd platform=linux/amd64 pushed=-30d
image a/app@arm layers=base,l-arm platform=linux/arm64 pushed=-30d
index a/app:v1 children=amd,arm pushed=-30d
image a/app:v2 layers=base pushed=-20d
raw repositories/a/app/_manifests/revisions/sha256/${manifest:a/app@arm}/link sha256:${manifest:a/app@arm}\r\n
SPEC
    local arm
    arm=$(jq -r '.manifests[1].digest' "$v2/$(blob "$(tag_hex a/app v1)")/data")
    rp gc --grace 0 --untagged --json
    expect_rc 3
    expect_err "invalid link"
    jq_true '.totals.blobs_deleted == 0'
    exists "$(blob "${arm#sha256:}")/data"
}

test_control_characters_escaped() {
    mk t < <(basic_spec)
    mkdir -p "$v2/repositories/team/app/_manifests/tags/"$'evil\e[31m'
    rp ls
    expect_rc 3
    case "$err" in
    *$'\e'*) fail "an escape character reached stderr" ;;
    esac
    expect_err "evil?[31m"
    # A newline in a name cannot forge a line of check's output.
    mkdir -p "$v2/repositories/team/app/_manifests/tags/"$'x\nsummary: forged'
    rp check
    expect_rc 3
    grep -q '^summary: forged' "$work/out" && fail "check printed a forged line"
    expect_out "tags/x?summary: forged: invalid tag name"
    grep -q '^summary: forged' "$work/err" && fail "a warning printed a forged line"
    return 0
}

# A reason cannot forge a report line or reach the terminal as an escape
# sequence; the JSON report keeps it whole.
test_reason_control_characters_escaped() {
    mk t < <(basic_spec)
    cat >"$work/p.lua" <<'LUA'
function policy(repo)
  for _, t in ipairs(repo.tags) do
    keep(t, "fine\nsummary: forged\27[31m")
  end
end
LUA
    rp prune --policy "$work/p.lua" --dry-run
    expect_rc 0
    if grep -q '^summary: forged' "$work/out"; then
        fail "a reason started a line of its own: $out"
    fi
    case "$out" in
    *$'\e'*) fail "an escape character reached the text report" ;;
    esac
    grep -qF 'fine?summary: forged?[31m' "$work/out" ||
        fail "the reason is not shown with ? for control characters: $out"
    rp prune --policy "$work/p.lua" --dry-run --json
    jq_true '[.repositories[].tags[].reason] | all(. == "fine\nsummary: forged\u001b[31m")'
}

test_symlinked_tag_freezes_repo() {
    mk t <<'SPEC'
layer own 3K
image r/a:v1 layers=own pushed=-30d
image r/a:v2 pushed=-20d
SPEC
    local hex
    hex=$(tag_hex r/a v1)
    ln -s v1 "$v2/repositories/r/a/_manifests/tags/stable"
    rp delete r/a:v1 --json
    expect_rc 3
    expect_err "tags/stable: not a directory"
    exists "$(tagdir r/a v1)" "$(blob "$hex")/data"
    jq_true '.totals.tags_deleted == 0 and .totals.blobs_deleted == 0'
}

test_in_use_bare_name_means_latest() {
    mk t <<'SPEC'
image team/app:latest pushed=-20d
image team/app:v3 pushed=-10d
SPEC
    echo 'function policy(r) for _, t in ipairs(r.tags) do delete(t) end end' \
        >"$work/all.lua"
    echo 'registry.example.com:5000/team/app' >"$work/inuse"
    echo 'other/unknown:1.0' >>"$work/inuse"
    rp prune --policy "$work/all.lua" --allow-empty --in-use "$work/inuse" \
        --dry-run --json -v
    expect_rc 0
    jq_true '[.repositories[0].tags[] | select(.verdict=="keep") | .name] == ["latest"]'
    expect_err "other/unknown:1.0 matches no tag"
    rp --root "" ls
    expect_rc 2
    expect_err "--root needs a directory"
}

test_inventory_expect_explain_diff() {
    mk t < <(basic_spec)
    rp ls --json
    cp "$work/out" "$work/inventory.json"
    echo "$keep_one" >"$work/p.lua"
    # The same verdicts from the inventory as from the tree, no tree needed.
    rp prune --policy "$work/p.lua" --dry-run --json --now "$NOW"
    jq -c '[.repositories[] | .tags[] | [.name, .verdict, .reason]]' \
        "$work/out" >"$work/from-tree"
    "$REGPRUNE" prune --inventory "$work/inventory.json" --policy "$work/p.lua" \
        --json --now "$NOW" >"$work/out" 2>"$work/err"
    rc=$?
    expect_rc 0
    jq -c '[.repositories[] | .tags[] | [.name, .verdict, .reason]]' \
        "$work/out" >"$work/from-inventory"
    cmp -s "$work/from-tree" "$work/from-inventory" ||
        fail "inventory verdicts differ from the tree's"
    jq_true '.dry_run == true'
    cat >"$work/expected" <<'EOF'
# what the policy must decide
keep team/app:v1.2.0
delete team/app:v1.0.0
keep team/app:v1.0.0
EOF
    "$REGPRUNE" prune --inventory "$work/inventory.json" --policy "$work/p.lua" \
        --expect "$work/expected" >"$work/out" 2>"$work/err"
    rc=$?
    expect_rc 1
    expect_out "expected keep team/app:v1.0.0, the policy deletes it: unwanted"
    expect_out "2 passed, 1 failed"
    printf 'keep team/app:nope\n' >"$work/bad-expected"
    "$REGPRUNE" prune --inventory "$work/inventory.json" --policy "$work/p.lua" \
        --expect "$work/bad-expected" >"$work/out" 2>"$work/err"
    rc=$?
    expect_rc 2
    expect_err "no tag team/app:nope"
    printf 'function policy(repo)\n  if repo.name == "team/app" then delete("stable", "second opinion") end\nend\n' \
        >"$work/q.lua"
    rp explain --policy "$work/p.lua" --policy "$work/q.lua" team/app:stable
    expect_rc 0
    expect_out "team/app:stable: keep"
    expect_out "keep    wanted"
    expect_out "delete  second opinion (${work}/q.lua:2)"
    rp diff --policy "$work/p.lua" --policy-new "$work/q.lua"
    expect_rc 0
    expect_out "team/app:v1.0.0: delete -> keep"
    expect_out "tags_changed=3"
    rp diff --policy "$work/p.lua"
    expect_rc 2
    "$REGPRUNE" gc --inventory "$work/inventory.json" >/dev/null 2>"$work/err"
    rc=$?
    expect_rc 2
}

# Two OCI images, v1 and v2, and sigv1 to be renamed into v1's signature
# tag.
signed_spec() {
    cat <<'SPEC'
layer a 3K
layer b 3K
layer s1 2K
image r/app:v1 layers=a pushed=-10d format=oci
image r/app:v2 layers=b pushed=-5d format=oci
image r/app:sigv1 layers=s1 pushed=-10d format=oci
SPEC
}

# gc --untagged removes a signature tag with the untagged manifest it
# names, and its report lists the tag.
test_gc_names_signature_tags() {
    mk t < <(signed_spec)
    local h1
    h1=$(tag_hex r/app v1)
    mv "$v2/$(tagdir r/app sigv1)" "$v2/$(tagdir r/app "sha256-$h1.sig")"
    rm -r "${v2:?}/$(tagdir r/app v1)"
    rp gc --untagged --grace 0
    expect_rc 0
    expect_out "delete  sha256-$h1.sig"
    gone "$(tagdir r/app "sha256-$h1.sig")" "$(revdir r/app "$h1")"
    exists "$(tagdir r/app v2)"
}

test_referrers_follow_subject() {
    mk t < <(signed_spec)
    local h1 h2 sig
    h1=$(tag_hex r/app v1)
    h2=$(tag_hex r/app v2)
    sig=$(tag_hex r/app sigv1)
    mv "$v2/repositories/r/app/_manifests/tags/sigv1" \
        "$v2/repositories/r/app/_manifests/tags/sha256-$h1.sig"
    # An OCI referrer of v2: an artifact whose subject is v2's manifest.
    printf '{}' >"$work/empty.json"
    local ehex rhex
    ehex=$(sha256sum "$work/empty.json" | cut -c1-64)
    mkdir -p "$v2/$(blob "$ehex")" "$v2/$(layerdir r/app "$ehex")"
    cp "$work/empty.json" "$v2/$(blob "$ehex")/data"
    printf 'sha256:%s' "$ehex" >"$v2/$(layerdir r/app "$ehex")/link"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sbom","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:%s","size":2},"layers":[{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:%s","size":2}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s}}' \
        "$ehex" "$ehex" "$h2" "$(stat -c %s "$v2/$(blob "$h2")/data")" >"$work/referrer"
    rhex=$(sha256sum "$work/referrer" | cut -c1-64)
    mkdir -p "$v2/$(blob "$rhex")" "$v2/$(revdir r/app "$rhex")"
    cp "$work/referrer" "$v2/$(blob "$rhex")/data"
    printf 'sha256:%s' "$rhex" >"$v2/$(revdir r/app "$rhex")/link"
    touch -d '-2 hours' "$v2/$(revdir r/app "$rhex")/link"
    cat >"$work/p.lua" <<'LUA'
function policy(repo)
  assert(#repo.tags == 2, "signature tag hidden from the policy")
  for _, t in ipairs(repo.tags) do
    if t.name == "v1" then
      assert(#t.referrers == 1 and t.referrers[1].tag:match("%.sig$"))
      delete(t, "old")
    else
      assert(#t.referrers == 1 and t.referrers[1].tag == nil)
      assert(t.kind == "image")
      keep(t, "current")
    end
  end
  assert(#repo.untagged == 1 and repo.untagged[1].kind == "referrer")
  assert(regprune.now - repo.untagged[1].pushed >= 7000, "referrer's push time")
end
LUA
    rp prune --policy "$work/p.lua" --json
    expect_rc 0
    gone "$(tagdir r/app v1)" "$(tagdir r/app "sha256-$h1.sig")" \
        "$(revdir r/app "$sig")" "$(blob "$sig")"
    exists "$(revdir r/app "$rhex")" "$(blob "$rhex")" "$(blob "$ehex")"
    jq_true '.totals.tags_deleted == 2'
    jq_true '[.repositories[0].tags[] | select(.name | endswith(".sig")) | .reason][0] | startswith("belongs to sha256:")'
    # The referrer stays through gc --untagged while its subject stays...
    rp gc --untagged --grace 0 --json
    expect_rc 0
    exists "$(revdir r/app "$rhex")"
    # ...and goes with it.
    rp delete "r/app@sha256:$h2" --json
    expect_rc 0
    gone "$(revdir r/app "$h2")" "$(revdir r/app "$rhex")" "$(blob "$rhex")"
    jq_true '.totals.manifests_deleted == 2'
}

test_trash_restore_and_audit_log() {
    mk t < <(basic_spec)
    echo "$keep_one" >"$work/p.lua"
    contents "$root" >"$work/before.state"
    mkdir -p "$work/trash"
    rp prune --policy "$work/p.lua" --trash "$work/trash" --log "$work/audit" --json
    expect_rc 0
    local run
    run=$(jq -r '.trash' "$work/out")
    [ -d "$run" ] || fail "no trash run directory: $run"
    gone "$(tagdir team/app v1.0.0)"
    jq_true '.totals.blobs_deleted == 6'
    # Every removal is in the audit log, tags with the policy's reason.
    [ "$(wc -l <"$work/audit")" -eq "$(wc -l <"$run/MOVED")" ] ||
        fail "audit log and trash list differ in length"
    jq -e -s 'map(select(.kind == "tag")) | length == 2 and
        all(.reason == "unwanted" and (.source | test("p.lua:")))' \
        "$work/audit" >/dev/null || fail "audit log lacks the tag reasons"
    local moved
    moved=$(wc -l <"$run/MOVED")
    rp restore "$run"
    expect_rc 0
    [ "$out" = "restored $moved paths from $run" ] ||
        fail "restore printed '$out'"
    contents "$root" >"$work/after.state"
    cmp -s "$work/before.state" "$work/after.state" ||
        fail "restore did not bring back the tree: $(diff "$work/before.state" \
            "$work/after.state" | head -3)"
    [ ! -e "$run" ] || fail "restored run directory left behind"
    # Emptying the trash frees only old runs.
    rp prune --policy "$work/p.lua" --trash "$work/trash" --json
    run=$(jq -r '.trash' "$work/out")
    rp gc --empty-trash "$work/trash" --older-than 1d
    expect_rc 0
    expect_out "trash_runs_deleted=0"
    touch -d '-2 days' "$run/MOVED"
    rp gc --empty-trash "$work/trash" --older-than 1d
    expect_out "trash_runs_deleted=1"
    [ ! -e "$run" ] || fail "old trash run not freed"
    # The trash must be outside the root.
    rp prune --policy "$work/p.lua" --trash "$root/docker"
    expect_rc 1
    expect_err "is inside the registry root"
    rp prune --policy "$work/p.lua" --trash /dev/shm
    if [ "$(stat -c %d /dev/shm)" != "$(stat -c %d "$root")" ]; then
        expect_rc 1
        expect_err "another filesystem"
    fi
}

test_apply_reviewed_plan() {
    mk t < <(basic_spec)
    echo "$keep_one" >"$work/p.lua"
    rp prune --policy "$work/p.lua" --dry-run --plan-out "$work/plan.json"
    expect_rc 0
    jq -e '.totals.tags_deleted == 2' "$work/plan.json" >/dev/null ||
        fail "plan file lacks the plan"
    # The same plan, applied on an unchanged tree, does exactly that.
    cp -a "$root" "$work/copy"
    rp apply "$work/plan.json" --json
    expect_rc 0
    jq -c 'del(.dry_run, .command, .now) | .repositories |= map(del(.tags))' \
        "$work/out" >"$work/applied"
    jq -c 'del(.dry_run, .command, .now) | .repositories |= map(del(.tags))' \
        "$work/plan.json" >"$work/reviewed"
    cmp -s "$work/applied" "$work/reviewed" ||
        fail "apply did not carry out the reviewed plan exactly"
    # On a tree that changed since, drifted items are skipped: v1.1.0 now
    # points at the image stable has, so that image must stay.
    root=$work/copy
    v2=$root/docker/registry/v2
    cp "$v2/$(tagdir team/app stable)/current/link" \
        "$v2/$(tagdir team/app v1.1.0)/current/link"
    rp apply "$work/plan.json" --json
    expect_rc 0
    expect_err "team/app:v1.1.0: re-pointed or pushed again since the plan was made"
    exists "$(tagdir team/app v1.1.0)" "$(revdir team/app "$(tag_hex team/app stable)")"
    gone "$(tagdir team/app v1.0.0)"
    jq_true '.totals.tags_deleted == 1'
    rp check
    expect_rc 0
    rp apply "$work/nonexistent.json"
    expect_rc 1
    rp prune --policy "$work/p.lua" --plan-out "$work/plan2.json"
    expect_rc 2
    expect_err "--plan-out goes with --dry-run"
}

test_config_file_root_and_readonly() {
    mk t < <(basic_spec)
    echo "$keep_one" >"$work/p.lua"
    cat >"$work/config.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $root
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
EOF
    "$REGPRUNE" --config "$work/config.yml" prune --policy "$work/p.lua" \
        --json >"$work/out" 2>"$work/err"
    rc=$?
    expect_rc 0
    expect_err "storage.maintenance.readonly is not enabled"
    gone "$(tagdir team/app v1.0.0)"
    cat >"$work/s3.yml" <<'EOF'
version: 0.1
storage:
  s3:
    bucket: images
EOF
    "$REGPRUNE" --config "$work/s3.yml" ls >"$work/out" 2>"$work/err"
    rc=$?
    expect_rc 1
    expect_err "storage driver 's3' is not supported"
    # The registry's own environment override wins over the file.
    mk t2 < <(basic_spec)
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=$root "$REGPRUNE" \
        --config "$work/config.yml" ls --json >"$work/out" 2>"$work/err"
    rc=$?
    expect_rc 0
    jq_true '[.repositories[] | .tags[]] | length == 5'
}

test_stale_journal_and_readonly_commands() {
    mk t < <(basic_spec)
    echo "$keep_one" >"$work/p.lua"
    # A journal whose entries are already gone is dropped by the next run.
    printf 'regprune-journal 1\nblob %s\n' "$(printf 'ab%.0s' $(seq 32))" \
        >"$root/.regprune.journal"
    rp prune --policy "$work/p.lua" --json
    expect_rc 0
    [ ! -e "$root/.regprune.journal" ] || fail "stale journal left behind"
    rp prune --policy "$work/p.lua"
    case "$err" in
    *"interrupted run"*) fail "journal warning repeated: $err" ;;
    esac
    # A journal that names what a kept tag needs deletes none of it, and a
    # dry run leaves the journal for the real run.
    local hex
    hex=$(tag_hex team/app v1.2.0)
    printf 'regprune-journal 1\nblob %s\nrevision team/app %s\n' "$hex" \
        "$hex" >"$root/.regprune.journal"
    rp prune --policy "$work/p.lua" --dry-run
    expect_rc 0
    expect_err "an interrupted run left 2 removals unfinished; this run plans again those that no kept image needs"
    [ -e "$root/.regprune.journal" ] || fail "a dry run removed the journal"
    rp prune --policy "$work/p.lua"
    expect_rc 0
    exists "$(revdir team/app "$hex")/link" "$(blob "$hex")/data"
    [ ! -e "$root/.regprune.journal" ] || fail "journal left after the run"
    # A leftover entry that names a whole tag or revision removes nothing,
    # and one that names a repository is invalid.
    printf 'regprune-journal 1\nleftover %s\nleftover %s\n' \
        "$(tagdir team/app v1.2.0)" "$(revdir team/app "$hex")" \
        >"$root/.regprune.journal"
    rp prune --policy "$work/p.lua"
    expect_rc 0
    exists "$(tagdir team/app v1.2.0)/current/link" "$(revdir team/app "$hex")/link"
    # Entries whose tag name or path leaves its place are invalid.
    local entry
    for entry in "leftover repositories/team/app" "tag team/app ../revisions" \
        "tag team/app v1.2.0/current" "tag team/app ." \
        "leftover $(tagdir team/app .)" \
        "leftover $(tagdir team/app v1.2.0/current)/index/sha256/$hex"; do
        printf 'regprune-journal 1\n%s\n' "$entry" >"$root/.regprune.journal"
        rp prune --policy "$work/p.lua"
        expect_rc 1
        expect_err ".regprune.journal:2: invalid journal entry"
    done
    { echo "regprune-journal 1"; printf 'x%.0s' $(seq 1100); echo; } \
        >"$root/.regprune.journal"
    rp prune --policy "$work/p.lua"
    expect_rc 1
    expect_err ".regprune.journal:2: journal line too long"
    exists "$(tagdir team/app v1.2.0)/current/link" "$(revdir team/app "$hex")/link"
    rm "$root/.regprune.journal"
    # explain and diff change nothing, so they take no lock.
    rm -f "$root/.regprune.lock"
    rp explain --policy "$work/p.lua" team/app:stable
    expect_rc 0
    [ ! -e "$root/.regprune.lock" ] || fail "explain created the lock file"
    rp explain --policy "$work/p.lua" --json team/app:stable
    expect_rc 2
    # Several policies: each --set name must be known to one of them.
    rp prune --policy "$top/policies/keep-last.lua" \
        --policy "$top/policies/keep-matching.lua" --set count=2 \
        --set 'pattern=v1\.2\.0' --dry-run --json
    expect_rc 0
    rp prune --policy "$top/policies/keep-last.lua" \
        --policy "$top/policies/keep-matching.lua" --set pattern=x \
        --set cnt=2 --dry-run
    expect_rc 1
    expect_err "keep-last, keep-matching: unknown parameter 'cnt'"
}

# Store a manifest given on stdin as an untagged revision of REPO, or tag
# it as TAG when given; prints its hex digest.
put_manifest() {
    local repo=$1 tag=${2:-} hex
    cat >"$work/manifest.json"
    hex=$(sha256sum "$work/manifest.json" | cut -c1-64)
    mkdir -p "$v2/$(blob "$hex")" "$v2/$(revdir "$repo" "$hex")"
    cp "$work/manifest.json" "$v2/$(blob "$hex")/data"
    printf 'sha256:%s' "$hex" >"$v2/$(revdir "$repo" "$hex")/link"
    if [ -n "$tag" ]; then
        mkdir -p "$v2/$(tagdir "$repo" "$tag")/current"
        printf 'sha256:%s' "$hex" >"$v2/$(tagdir "$repo" "$tag")/current/link"
    fi
    echo "$hex"
}

test_resource_limits() {
    mk t < <(basic_spec)
    # A manifest with 20,000 layers is read, sized and planned quickly.
    python3 -c '
import json, hashlib
layers = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
           "digest": "sha256:" + hashlib.sha256(str(i).encode()).hexdigest(),
           "size": 10} for i in range(20000)]
print(json.dumps({"schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": "sha256:" + "0" * 64, "size": 2},
    "layers": layers}, separators=(",", ":")), end="")
' | put_manifest big/app v1 >/dev/null
    SECONDS=0
    rp ls --json big/app
    expect_rc 0
    [ "$SECONDS" -lt 5 ] || fail "20,000 layers took ${SECONDS}s"
    jq_true '.repositories[0].tags[0].size > 200000'
    # JSON nested past the parser's limit freezes the repository.
    python3 -c 'print("[" * 5000 + "]" * 5000, end="")' |
        put_manifest deep/app >/dev/null
    # A manifest over the registry's 4 MiB cap is refused as well.
    python3 -c '
import json
print(json.dumps({"schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "annotations": {"x": "y" * (5 << 20)}}), end="")' |
        put_manifest huge/app >/dev/null
    rp gc --untagged --grace 0 --json
    expect_rc 3
    expect_err "larger than 4194304 bytes"
    expect_err "invalid JSON"
    jq_true '[.problems[].repository] | index("deep/app") != null and index("huge/app") != null'
    # Names at the maximum lengths: a 128-character tag is valid, 129 is not.
    mk t2 < <(basic_spec)
    local long
    long=$(printf 'a%.0s' $(seq 128))
    cp -a "$v2/$(tagdir team/app v1.0.0)" "$v2/$(tagdir team/app "$long")"
    rp ls --json team/app
    expect_rc 0
    cp -a "$v2/$(tagdir team/app v1.0.0)" "$v2/$(tagdir team/app "${long}b")"
    rp ls --json team/app
    expect_rc 3
    expect_err "invalid tag name"
}

test_failed_removal_retried() {
    mk t < <(basic_spec)
    echo "$keep_one" >"$work/p.lua"
    local old
    old=$(tag_hex team/app v1.0.0)
    # An immutable file cannot be unlinked even by root.
    if ! chattr +i "$v2/$(blob "$old")/data" 2>/dev/null; then
        echo "    (skipped: chattr +i is not supported here)"
        return
    fi
    rp prune --policy "$work/p.lua" --json
    chattr -i "$v2/$(blob "$old")/data"
    expect_rc 3
    expect_err "cannot remove"
    expect_err "a later run will retry"
    gone "$(tagdir team/app v1.0.0)" "$(revdir team/app "$old")"
    exists "$(blob "$old")/data"
    [ -e "$root/.regprune.journal" ] || fail "no journal after a failed removal"
    rp check
    expect_rc 0
    rp prune --policy "$work/p.lua" --json
    expect_rc 0
    gone "$(blob "$old")"
    [ ! -e "$root/.regprune.journal" ] || fail "journal left after the re-run"
}

# A tag whose removal fails stays, with its manifest. Its verdict in the
# report is "keep", and its reason names the failure.
test_failed_tag_removal_reported() {
    mk t < <(basic_spec)
    echo "$keep_one" >"$work/p.lua"
    local link old
    link=$v2/$(tagdir team/app v1.0.0)/current/link
    old=$(tag_hex team/app v1.0.0)
    if ! chattr +i "$link" 2>/dev/null; then
        echo "    (skipped: chattr +i is not supported here)"
        return
    fi
    rp prune --policy "$work/p.lua" --json
    chattr -i "$link"
    expect_rc 3
    expect_err "cannot remove"
    jq_true '.repositories[] | select(.name=="team/app") | .tags[] | select(.name=="v1.0.0") | .verdict == "keep" and (.reason | endswith("but it was not removed (see the warning about its path)"))'
    exists "$(tagdir team/app v1.0.0)/current/link" "$(revdir team/app "$old")/link" \
        "$(blob "$old")/data"
    gone "$(tagdir team/app v1.1.0)"
    rp check
    expect_rc 0
}

# latest first points at v1's manifest, then is moved to v2's, so its
# history names both.
history_spec() {
    cat <<'SPEC'
layer l1 3K
layer l2 3K
image h/app:v1 layers=l1 pushed=-20d
image h/app:latest layers=l1 pushed=-20d
image h/app:v2 layers=l2 pushed=-2d
retag h/app:latest h/app:v2 pushed=-2d
SPEC
}

# A history entry of a kept tag that names a deleted manifest goes with
# that manifest. When the entry cannot be removed, the warning names
# removal by hand as the remedy.
test_history_entry_failure_named() {
    mk t < <(history_spec)
    cat >"$work/p.lua" <<'LUA'
function policy(repo)
  for _, t in ipairs(repo.tags) do
    if t.name == "v1" then delete(t, "old") else keep(t, "new") end
  end
end
LUA
    local old entry
    old=$(tag_hex h/app v1)
    entry=$v2/$(tagdir h/app latest)/index/sha256/$old/link
    [ -f "$entry" ] || fail "no history entry of latest names v1's manifest"
    if ! chattr +i "$entry" 2>/dev/null; then
        echo "    (skipped: chattr +i is not supported here)"
        return
    fi
    rp prune --policy "$work/p.lua"
    chattr -i "$entry"
    expect_rc 3
    expect_err "it names a deleted manifest, and later runs leave it, so remove it by hand"
    gone "$(tagdir h/app v1)" "$(revdir h/app "$old")"
    rp prune --policy "$work/p.lua"
    expect_rc 0
    exists "$(tagdir h/app latest)/index/sha256/$old/link"
}

test_tag_history_for_policies() {
    mk t < <(history_spec)
    cat >"$work/p.lua" <<'LUA'
function policy(repo)
  for _, t in ipairs(repo.tags) do
    if t.name == "latest" then
      assert(#t.history == 2, "two digests in latest's history")
      assert(t.history[1].time < t.history[2].time)
      assert(t.pushed_first == t.history[1].time)
      assert(regprune.age(t, "pushed_first") > regprune.age(t))
      keep(t, "first pushed " .. (regprune.now - t.pushed_first) // 86400 .. "d ago")
    end
  end
end
LUA
    rp prune --policy "$work/p.lua" --dry-run --json --now "$NOW"
    expect_rc 0
    jq_true '.repositories[0].tags[] | select(.name=="latest") | .reason == "first pushed 20d ago"'
}

test_sample_registry_every_command() {
    root=$work/sample
    v2=$root/docker/registry/v2
    rm -rf "$root"
    "$MKREGISTRY" -q --now "$NOW" --scenario sample "$root" >/dev/null 2>&1 ||
        fail "mkregistry --scenario sample failed"
    for args in "ls" "ls --sort reclaimable --json" "check --verify" \
        "prune --policy $top/policies/keep-last.lua --set count=2 --dry-run" \
        "gc --untagged --dry-run" "delete --dry-run team/api:latest"; do
        # shellcheck disable=SC2086
        rp $args
        [ "$rc" -eq 0 ] || fail "regprune $args: exit $rc: $err"
    done
    rp ls --sort reclaimable --json
    jq_true '[.repositories[].reclaimable] == ([.repositories[].reclaimable] | sort | reverse)'
    jq_true 'all(.repositories[]; .reclaimable <= .size)'
    rp prune --policy "$top/policies/keep-last.lua" --set count=2
    expect_rc 0
    rp check
    expect_rc 0
}

test_trash_crash_and_wrong_root() {
    mk pristine < <(basic_spec)
    local pristine=$root
    echo "$keep_one" >"$work/p.lua"
    contents "$pristine" >"$work/pristine.state"
    # Stop a --trash run before each move in turn; restore must bring back
    # everything it moved, and leave nothing behind.
    local step=0 stride=1 runs
    [ -n "$WRAPPER" ] && stride=4
    while :; do
        root=$work/crash
        v2=$root/docker/registry/v2
        rm -rf "$root" "$work/tr"
        cp -a "$pristine" "$root"
        mkdir "$work/tr"
        REGPRUNE_CRASH_AFTER=$step $WRAPPER "$REGPRUNE" --root "$root" \
            prune --policy "$work/p.lua" --trash "$work/tr" >/dev/null 2>&1
        local stopped=$?
        runs=$(ls "$work/tr")
        if [ -z "$runs" ]; then
            fail "no run directory after step $step"
            break
        fi
        rp restore "$work/tr/$runs/"
        [ "$rc" -eq 0 ] || fail "restore after a stop at step $step: $err"
        contents "$root" >"$work/crash.state"
        cmp -s "$work/pristine.state" "$work/crash.state" ||
            fail "restore after a stop at step $step differs: $(diff \
                "$work/pristine.state" "$work/crash.state" | head -3)"
        [ -z "$(ls "$work/tr")" ] || fail "run directory left after step $step"
        [ "$stopped" -eq 137 ] || break
        step=$((step + stride))
    done
    [ "$step" -gt 10 ] || fail "only $step stops exercised"
    # A trash run goes back only into the registry it came from.
    root=$work/crash
    rm -rf "$root" "$work/tr"
    cp -a "$pristine" "$root"
    mkdir "$work/tr"
    rp prune --policy "$work/p.lua" --trash "$work/tr" --json
    runs=$(jq -r '.trash' "$work/out")
    mk other < <(basic_spec)
    rp restore "$runs"
    expect_rc 1
    expect_err "was not moved from this registry"
    # The trash is emptied only for real, never in a dry run.
    touch -d '-2 days' "$runs/MOVED"
    rp gc --empty-trash "$work/tr" --older-than 1d --dry-run
    expect_rc 0
    expect_out "trash_runs_deleted=1"
    [ -d "$runs" ] || fail "a dry run emptied the trash"
    rp restore "$runs" --dry-run
    expect_rc 2
}

test_policy_by_name_and_command_help() {
    mk t < <(basic_spec)
    rp prune --policy keep-last --set count=1 --dry-run --json
    expect_rc 0
    jq_true '.repositories[0].tags[0].source | test("policies/keep-last.lua:")'
    rp prune --policy no-such-policy --dry-run
    expect_rc 1
    expect_err "policy 'no-such-policy' not found"
    mkdir -p "$work/mine"
    printf 'function policy(repo) end\n' >"$work/mine/team-rules.lua"
    REGPRUNE_POLICY_PATH=$work/mine "$REGPRUNE" --root "$root" prune \
        --policy team-rules --dry-run >/dev/null 2>"$work/err"
    rc=$?
    expect_rc 0
    # An installed copy finds the shipped policies under its prefix.
    if [ -z "$WRAPPER" ]; then
        make -s -C "$top" install DESTDIR="$work/inst" PREFIX=/usr \
            >/dev/null 2>&1 || fail "make install failed"
        "$work/inst/usr/bin/regprune" --root "$root" prune \
            --policy gitlab-cleanup --set 'name_regex_delete=.*' \
            --dry-run >/dev/null 2>"$work/err"
        rc=$?
        expect_rc 0
        [ -f "$work/inst/usr/share/man/man1/regprune.1" ] ||
            fail "make install left out the manual page"
    fi
    rp prune --help
    expect_rc 0
    expect_out "usage: regprune [--root DIR|--config FILE] prune"
    rp --help gc
    expect_rc 0
    expect_out "--empty-trash"
}

test_trees_in_the_wild() {
    mk t <<'SPEC'
layer base 3K
layer x 2K
image a:v1 layers=base pushed=-30d
image a/b:v1 layers=base,x pushed=-30d
image a/b:_hidden layers=base pushed=-30d
image plain/app:v1 layers=x pushed=-30d
image plain/app:v2 pushed=-20d
SPEC
    echo 'function policy(repo) for _, t in ipairs(repo.tags) do delete(t, "all") end end' \
        >"$work/all.lua"
    # Nested repositories a and a/b are both read, and a tag may start
    # with "_".
    rp ls --json
    expect_rc 0
    jq_true '[.repositories[].name] == ["a","a/b","plain/app"]'
    jq_true '[.repositories[] | select(.name=="a/b") | .tags[].name] == ["_hidden","v1"]'
    # Uppercase hex and a leading space: invalid, warned about, never
    # rewritten, and the repository loses nothing.
    local hex link
    hex=$(tag_hex plain/app v1)
    link=$v2/$(tagdir plain/app v1)/current/link
    printf 'sha256:%s' "${hex^^}" >"$link"
    rp prune --policy "$work/all.lua" --allow-empty --json plain/app
    expect_rc 3
    expect_err "invalid link"
    [ "$(cat "$link")" = "sha256:${hex^^}" ] || fail "the link was rewritten"
    exists "$(tagdir plain/app v1)" "$(tagdir plain/app v2)"
    printf ' sha256:%s' "$hex" >"$link"
    rp prune --policy "$work/all.lua" --allow-empty --json plain/app
    expect_rc 3
    exists "$(tagdir plain/app v2)"
    printf 'sha256:%s' "$hex" >"$link"
    # Leftover *.tmp files and a stray file among the repositories are
    # ignored; a file where _layers belongs freezes the repository.
    echo partial >"$v2/$(revdir plain/app "$hex")/link.tmp"
    echo stray >"$v2/repositories/README.tmp"
    mkdir -p "$v2/repositories/nolayers/app/_manifests/tags"
    : >"$v2/repositories/nolayers/app/_layers"
    rp ls --json
    expect_rc 3
    jq_true '.repositories[] | select(.name=="nolayers/app") | .frozen'
    jq_true '.repositories[] | select(.name=="plain/app") | .frozen | not'
    rm "$v2/repositories/nolayers/app/_layers"
    # A repository with no _layers, no revisions and no tags is read as
    # empty, and a policy run over it is no error.
    rp prune --policy "$work/all.lua" --dry-run --json nolayers/app
    expect_rc 0
    jq_true '.repositories[0].tags == []'
    # Uploads: missing startedat, an empty directory, a name that is not
    # a UUID: only the stale, well-formed upload goes.
    mkdir -p "$v2/repositories/plain/app/_uploads/0a0b0c0d-1111-4222-8333-444455556666" \
        "$v2/repositories/plain/app/_uploads/empty" \
        "$v2/repositories/plain/app/_uploads/not-a-uuid"
    printf '2020-01-01T00:00:00Z' >"$v2/repositories/plain/app/_uploads/not-a-uuid/startedat"
    printf '2020-01-01T00:00:00Z' \
        >"$v2/repositories/plain/app/_uploads/0a0b0c0d-1111-4222-8333-444455556666/startedat"
    rp gc --json
    expect_rc 0
    jq_true '[.repositories[] | .uploads_deleted[]] == ["0a0b0c0d-1111-4222-8333-444455556666"]'
    exists repositories/plain/app/_uploads/empty \
        repositories/plain/app/_uploads/not-a-uuid
}

test_kill_at_random_moments() {
    # Enough tags that a real run takes long enough to be killed midway.
    {
        echo "layer base 2K"
        for r in 1 2 3 4 5 6 7 8; do
            for t in $(seq 1 40); do
                echo "layer r${r}t${t} 2K"
                echo "image kill/r${r}:v1.${t}.0 layers=base,r${r}t${t} pushed=-$((100 - t))d"
            done
        done
    } >"$work/kill.spec"
    mk pristine <"$work/kill.spec"
    local pristine=$root
    printf 'function policy(repo)\n  for rank, t in ipairs(regprune.sort(repo.tags, "version")) do\n    if rank > 3 then delete(t, "old") end\n  end\nend\n' \
        >"$work/k.lua"
    root=$work/reference
    rm -rf "$root"
    cp -a "$pristine" "$root"
    rp prune --policy "$work/k.lua"
    expect_rc 0
    contents "$root" >"$work/reference.state"
    local i delay pid killed=0
    for i in 1 2 3 4 5 6; do
        root=$work/killed
        rm -rf "$root"
        cp -a "$pristine" "$root"
        delay=$(awk -v i="$i" 'BEGIN { srand(i * 7919); printf "%.3f", rand() * 0.25 }')
        $WRAPPER "$REGPRUNE" --root "$root" prune --policy "$work/k.lua" \
            >/dev/null 2>&1 &
        pid=$!
        sleep "$delay"
        kill -9 "$pid" 2>/dev/null && killed=$((killed + 1))
        wait "$pid" 2>/dev/null
        rp check
        [ "$rc" -eq 0 ] || fail "after a kill at ${delay}s, check: $out"
        rp prune --policy "$work/k.lua"
        [ "$rc" -eq 0 ] || fail "re-run after a kill at ${delay}s: $err"
        contents "$root" >"$work/killed.state"
        cmp -s "$work/reference.state" "$work/killed.state" ||
            fail "re-run after a kill at ${delay}s differs"
    done
    [ "$killed" -gt 0 ] || fail "no run was still going when killed"
}

if [ $# -gt 0 ]; then
    tests=$*
else
    tests=$(declare -F | awk '{print $3}' | grep '^test_')
fi
for t in $tests; do
    run_case "$t"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
