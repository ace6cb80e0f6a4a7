#!/usr/bin/env bash
# End-to-end test of regprune against a real docker-registry server (the
# Debian docker-registry 2.8 package) with images pushed and pulled by skopeo.
#
# Usage: make && tests/integration/e2e.sh
#
# Requires docker-registry, skopeo, curl, jq and the GNU tools (tar, gzip,
# find, stat, sha256sum, shuf, timeout). On Debian 12:
#   apt-get install docker-registry skopeo curl jq
# Runs as root or as any user. It needs no Docker engine and connects only to
# the registry it starts on 127.0.0.1. Environment:
#   REGPRUNE           binary under test (default: regprune in the repository)
#   REGPRUNE_WRAPPER   a command, split into words, that every regprune run
#                      goes through, such as "valgrind -q --error-exitcode=99"
#   REGPRUNE_E2E_KEEP  set to 1 to keep the scratch directory after a pass.
#                      After a failure it is always kept and its path printed.
#
# Prints one PASS or FAIL line per check and ends with "N passed, M failed".
# The exit status is 0 only when every check passed.
#
# Scenario 1 pushes three repositories that share base layers, runs
# `prune --dry-run`, then `prune`, with policies/keep-last.lua keeping the
# highest 3 versions, and checks the plan, the storage tree, pulls, 404s and
# `docker-registry garbage-collect`. Scenario 2 runs `delete REPO:TAG` and
# `delete REPO@DIGEST` on the same tree.

# Digest and tag lists are split into words on purpose: digests and tag
# references contain no blanks or glob characters. The jq programs in single
# quotes use jq's own $variables.
# shellcheck disable=SC2046,SC2086,SC2016

set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/../.." && pwd)
REGPRUNE=${REGPRUNE:-$REPO_ROOT/regprune}
read -r -a WRAPPER <<<"${REGPRUNE_WRAPPER:-}"
POLICY=$REPO_ROOT/policies/keep-last.lua
KEEP_COUNT=3
DAY=86400

for tool in docker-registry skopeo curl jq tar gzip sha256sum shuf timeout; do
    if ! command -v "$tool" >/dev/null; then
        echo "FAIL required tool not found: $tool." \
            "Install it with: apt-get install docker-registry skopeo curl jq"
        echo "0 passed, 1 failed"
        exit 1
    fi
done
if [ ! -x "$REGPRUNE" ]; then
    echo "FAIL regprune binary not found at $REGPRUNE. Run make first."
    echo "0 passed, 1 failed"
    exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/regprune-e2e.XXXXXX")
# shellcheck source=lib.sh
. "$HERE/lib.sh"

cleanup() {
    registry_stop
    if [ "$FAILED" -eq 0 ] && [ "${REGPRUNE_E2E_KEEP:-0}" != 1 ]; then
        rm -rf "$WORK"
    else
        echo "scratch directory kept: $WORK" >&2
    fi
}
trap cleanup EXIT
# Exiting on a signal runs the EXIT trap, which stops the registry.
trap 'exit 130' INT
trap 'exit 143' TERM

# A failing command outside a check is a broken test setup: count it, print
# the summary and stop.
on_setup_error() {
    fail "setup command at line $1" "$2"
    report_summary
    exit 1
}
trap 'on_setup_error "$LINENO" "$BASH_COMMAND"' ERR

START_TIME=$(date +%s)
NOW=$START_TIME

days_ago() {
    printf '%s\n' $((NOW - $1 * DAY))
}

# ---------------------------------------------------------------------------
# Fixture. Every tag gets an expected verdict under keep-last with count=3
# and order=version, and an age in days for its pushed time.

declare -A EXPECTED_VERDICT AGE_DAYS
ALL_REFS=()

# push_tag NAME REPO:TAG VERDICT AGE_DAYS [v2s2]
push_tag() {
    push "$1" "$2" "${5:-}"
    EXPECTED_VERDICT[$2]=$3
    AGE_DAYS[$2]=$4
    ALL_REFS+=("$2")
}

build_images() {
    local minor version layers

    make_layer base 65536
    make_layer base-arm 65536
    # deps is shared by two API versions that prune deletes and one that it
    # keeps. tools is shared only by images that prune deletes.
    make_layer deps 16384
    make_layer tools 16384

    make_image base amd64 "$(days_ago 60)" base

    for minor in 0 1 2 3 4 5 6 7 8 9 10; do
        version=1.$minor.0
        make_layer "api-$version" $((4096 + minor * 512))
        layers=(base)
        case $minor in
        0) layers+=(tools) ;;
        1 | 2 | 9) layers+=(deps) ;;
        esac
        layers+=("api-$version")
        if [ "$minor" = 5 ]; then
            make_image "api-$version" amd64 none "${layers[@]}"
        else
            make_image "api-$version" amd64 \
                "$(days_ago $((45 - minor * 3)))" "${layers[@]}"
        fi
    done
    make_layer api-1.10.0-rc.1 8192
    make_image api-1.10.0-rc.1 amd64 "$(days_ago 12)" \
        base api-1.10.0-rc.1

    # web-2-arm is a child of two indexes, one deleted and one kept, and
    # web-15-amd is both a tagged image and a child of a kept index.
    make_layer web-1-amd 8192
    make_layer web-2-amd 8192
    make_layer web-2-arm 8192
    make_layer web-15-amd 8192
    make_layer web-21-arm 8192
    make_image web-1-amd amd64 "$(days_ago 21)" base tools web-1-amd
    make_image web-2-amd amd64 "$(days_ago 7)" base web-2-amd
    make_image web-2-arm arm64 "$(days_ago 21)" base-arm web-2-arm
    make_image web-15-amd amd64 "$(days_ago 16)" base web-15-amd
    make_image web-21-arm arm64 "$(days_ago 3)" base-arm web-21-arm
    make_index web-1 web-1-amd:amd64 web-2-arm:arm64
    make_index web-2 web-2-amd:amd64 web-2-arm:arm64
    make_index web-21 web-15-amd:amd64 web-21-arm:arm64
}

# Version order keeps v1.10.0, v1.10.0-rc.1 and v1.9.0. Byte order of the
# names would keep v1.9.0, v1.8.0 and v1.7.0, and pushed order v1.9.0,
# v1.10.0 and latest, so a wrong order shows up as wrong verdicts.
push_images() {
    local minor

    # Docker schema 2 with two tags on one digest. Neither tag is a version,
    # but the repository has only two tags, so count=3 keeps both.
    push_tag base library/base:bookworm keep 35 v2s2
    push_tag base library/base:latest keep 5 v2s2

    for minor in 0 1 2 3 4 5 6 7 8; do
        push_tag "api-1.$minor.0" "team/app/api:v1.$minor.0" delete \
            $((30 - minor * 2))
    done
    push_tag api-1.10.0-rc.1 team/app/api:v1.10.0-rc.1 keep 10
    # latest first points at v1.9.0, then moves to v1.10.0, so its tag
    # history lists two digests.
    push api-1.9.0 team/app/api:latest
    push_tag api-1.10.0 team/app/api:v1.10.0 keep 8
    push_tag api-1.10.0 team/app/api:latest delete 8
    push_tag api-1.9.0 team/app/api:v1.9.0 keep 1

    push_tag web-1 team/app/web:v1.0.0 delete 20
    push_tag web-15-amd team/app/web:v1.5.0 keep 15
    push_tag web-2 team/app/web:v2.0.0 keep 6
    push_tag web-21 team/app/web:v2.1.0 keep 2
}

# Sets the pushed time of every tag. The registry must be stopped.
set_tag_ages() {
    local ref
    for ref in "${ALL_REFS[@]}"; do
        touch -d "@$((NOW - ${AGE_DAYS[$ref]} * DAY))" \
            "$(tag_link "${ref%%:*}" "${ref#*:}")"
    done
}

# ---------------------------------------------------------------------------
# Expected results, derived from what was pushed.

refs_with_verdict() {
    local ref
    for ref in "${ALL_REFS[@]}"; do
        if [ "${EXPECTED_VERDICT[$ref]}" = "$1" ]; then
            printf '%s\n' "$ref"
        fi
    done
}

# ref_manifests REF... prints the manifest digests the tags point at,
# including index children.
ref_manifests() {
    local ref
    for ref in "$@"; do
        printf '%s\n' "${PUSHED[$ref]}" ${CHILDREN[${IMAGE_OF[$ref]}]}
    done | LC_ALL=C sort -u
}

# ref_layers REF... prints the config and layer digests of the tags, which
# the registry links from the repository's _layers directory.
ref_layers() {
    local ref
    for ref in "$@"; do
        printf '%s\n' ${BLOBS[${IMAGE_OF[$ref]}]}
    done | LC_ALL=C sort -u
}

# ref_blobs REF... prints every blob the tags keep alive.
ref_blobs() {
    { ref_manifests "$@"; ref_layers "$@"; } | LC_ALL=C sort -u
}

# refs_in_repo REPO REF... prints the refs that belong to REPO.
refs_in_repo() {
    local repo=$1 ref
    shift
    for ref in "$@"; do
        if [ "${ref%%:*}" = "$repo" ]; then
            printf '%s\n' "$ref"
        fi
    done
}

# lines_minus A B prints the lines of A that are not in B. A and B are
# sorted, newline-separated lists.
lines_minus() {
    LC_ALL=C comm -23 <(printf '%s\n' "$1" | sed '/^$/d') \
        <(printf '%s\n' "$2" | sed '/^$/d')
}

# sum_blob_sizes DIGEST... prints the total size of the blobs in storage.
sum_blob_sizes() {
    local digest total=0
    for digest in "$@"; do
        total=$((total + $(stat -c %s "$(blob_data "$digest")")))
    done
    printf '%s\n' "$total"
}

# ---------------------------------------------------------------------------
# Reading regprune reports. A query that fails prints its error instead, so
# the check that uses it fails with the reason.

json_query() {
    local file=$1
    shift
    jq -r "$@" "$file" 2>&1 || true
}

report_verdicts() {
    json_query "$1" '.repositories[] | .name as $repo | .tags[]
        | "\($repo):\(.name) \(.verdict) \(.digest)"' | LC_ALL=C sort
}

# report_tag_field FILE FIELD prints "REPO:TAG VALUE" for every tag.
report_tag_field() {
    json_query "$1" --arg field "$2" '.repositories[] | .name as $repo
        | .tags[] | "\($repo):\(.name) \(.[$field])"' | LC_ALL=C sort
}

report_manifests() {
    json_query "$1" '.repositories[] | .name as $repo
        | .manifests_deleted[] | "\($repo) \(.)"' | LC_ALL=C sort
}

report_layer_links() {
    json_query "$1" '.repositories[] | .name as $repo
        | .layer_links_deleted[] | "\($repo) \(.)"' | LC_ALL=C sort
}

report_blobs() {
    json_query "$1" '.blobs_deleted[] | "\(.digest) \(.size)"' | LC_ALL=C sort
}

# check_lines NAME EXPECTED ACTUAL compares two line lists and shows the
# difference on failure.
check_lines() {
    if [ "$2" = "$3" ]; then
        pass "$1"
    else
        local difference
        difference=$(diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") \
            | head -n 20 || true)
        fail "$1" "difference (< expected, > actual):" "$difference"
    fi
}

# run_regprune NAME ARG... runs the binary with its output in $WORK/NAME.json
# and $WORK/NAME.err and sets RUN_STATUS, which is 124 after a 120 s timeout.
run_regprune() {
    local name=$1
    shift
    RUN_STATUS=0
    timeout 120 "${WRAPPER[@]}" "$REGPRUNE" --root "$STORAGE_ROOT" "$@" \
        >"$WORK/$name.json" 2>"$WORK/$name.err" || RUN_STATUS=$?
    if [ "$RUN_STATUS" -ne 0 ] || [ -s "$WORK/$name.err" ]; then
        printf '     regprune %s: exit status %s, stderr:\n' "$*" "$RUN_STATUS"
        sed 's/^/     | /' "$WORK/$name.err" | head -n 20
    fi
}

# ---------------------------------------------------------------------------
# Checks on the storage tree (registry stopped) and through the registry.

# layer_links REPO lists the digests linked from the repository's _layers.
layer_links() {
    local dir
    dir=$(v2_dir)/repositories/$1/_layers/sha256
    if [ -d "$dir" ]; then
        find "$dir" -mindepth 1 -maxdepth 1 -printf 'sha256:%f\n' \
            | LC_ALL=C sort
    fi
}

# stored_blobs lists the digests of all blob data files.
stored_blobs() {
    find "$(v2_dir)/blobs/sha256" -name data -printf '%h\n' \
        | sed 's|.*/|sha256:|' | LC_ALL=C sort
}

# Fails when a tag, revision or layer link names a blob that does not exist.
links_resolve() {
    local link digest status=0
    while IFS= read -r link; do
        digest=$(cat "$link")
        if [ ! -f "$(blob_data "$digest")" ]; then
            echo "${link#"$(v2_dir)/"} names missing blob $digest"
            status=1
        fi
    done < <(find "$(v2_dir)/repositories" -name link -type f)
    return "$status"
}

# tag_points_to REPO:TAG DIGEST
tag_points_to() {
    local link
    link=$(tag_link "${1%%:*}" "${1#*:}")
    [ -f "$link" ] || { echo "$link is missing"; return 1; }
    [ "$(cat "$link")" = "$2" ] || {
        echo "$link contains $(cat "$link"), expected $2"
        return 1
    }
}

tag_absent() {
    local dir
    dir=$(v2_dir)/repositories/${1%%:*}/_manifests/tags/${1#*:}
    [ ! -e "$dir" ] || { echo "$dir still exists"; return 1; }
}

revision_absent() {
    local link
    link=$(v2_dir)/repositories/$1/_manifests/revisions/sha256/${2#sha256:}
    [ ! -e "$link" ] || { echo "$link still exists"; return 1; }
}

# expect_status WANT COMMAND [ARG...] compares the HTTP status a command
# prints.
expect_status() {
    local want=$1 got
    shift
    got=$("$@") || true
    [ "$got" = "$want" ] || {
        echo "HTTP status $got, expected $want"
        return 1
    }
}

# expect_manifest_unknown REPO:TAG checks that skopeo cannot inspect a tag.
expect_manifest_unknown() {
    local output
    if output=$(skopeo_run inspect --tls-verify=false --raw \
        "docker://$REGISTRY/$1" 2>&1); then
        echo "skopeo inspect of $1 succeeded"
        return 1
    fi
    case $output in
    *"manifest unknown"*) return 0 ;;
    esac
    echo "skopeo inspect of $1 failed without 'manifest unknown': $output"
    return 1
}

# blob_pullable REPO DIGEST downloads a blob and checks its digest.
blob_pullable() {
    local got
    got=$(curl -sf "http://$REGISTRY/v2/$1/blobs/$2" | sha256sum \
        | cut -d' ' -f1) || return 1
    [ "sha256:$got" = "$2" ] || {
        echo "blob $2 from $1 came back with digest sha256:$got"
        return 1
    }
}

# Parses the summary line of `docker-registry garbage-collect`, for example
# "13 blobs marked, 0 blobs and 0 manifests eligible for deletion", and
# prints "BLOBS MANIFESTS" eligible for deletion.
gc_eligible_counts() {
    sed -n 's/^[0-9]* blobs marked, \([0-9]*\) blobs and \([0-9]*\) manifests eligible for deletion$/\1 \2/p' "$1"
}

# check_registry_gc NAME runs a dry-run garbage collection and checks that
# the registry finds nothing to delete.
check_registry_gc() {
    local output=$WORK/gc-$1.txt counts
    docker-registry garbage-collect --dry-run "$REGISTRY_CONFIG" \
        >"$output" 2>&1
    counts=$(gc_eligible_counts "$output")
    check_equal "$1: garbage-collect finds 0 blobs, 0 manifests" \
        "0 0" "${counts:-no summary line in $output}"
    check_equal "$1: garbage-collect lists no blob to delete" 0 \
        "$(grep -c '^blob eligible for deletion:' "$output" || true)"
}

# ---------------------------------------------------------------------------
# Scenario 1: prune with keep-last.

scenario_prune() {
    local ref repo digest kept deleted repos

    oci_init
    skopeo_setup
    build_images
    registry_start
    push_images
    registry_stop

    # library/base was converted to Docker schema 2 on push, which changes
    # its manifest digest. Every other push must keep the layout's digest.
    for ref in "${ALL_REFS[@]}"; do
        if [ "${IS_INDEX[${IMAGE_OF[$ref]}]}" = 1 ] ||
            [ "${ref%%:*}" != library/base ]; then
            check_equal "push keeps digest of $ref" \
                "${DIGEST[${IMAGE_OF[$ref]}]}" "${PUSHED[$ref]}"
        fi
    done

    # Make every file old, so no grace period protects any blob, and give
    # each tag its own pushed time.
    backdate $((60 * DAY))
    set_tag_ages

    mapfile -t kept < <(refs_with_verdict keep)
    mapfile -t deleted < <(refs_with_verdict delete)
    repos=$(printf '%s\n' "${ALL_REFS[@]}" | sed 's/:.*//' | LC_ALL=C sort -u)

    # Expected report lines.
    local expected_verdicts expected_manifests expected_links expected_blobs
    expected_verdicts=$(for ref in "${ALL_REFS[@]}"; do
        printf '%s %s %s\n' "$ref" "${EXPECTED_VERDICT[$ref]}" "${PUSHED[$ref]}"
    done | LC_ALL=C sort)
    expected_manifests=$(for repo in $repos; do
        lines_minus \
            "$(ref_manifests $(refs_in_repo "$repo" "${ALL_REFS[@]}"))" \
            "$(ref_manifests $(refs_in_repo "$repo" "${kept[@]}"))" \
            | sed "s|^|$repo |"
    done | LC_ALL=C sort)
    expected_links=$(for repo in $repos; do
        lines_minus \
            "$(ref_layers $(refs_in_repo "$repo" "${ALL_REFS[@]}"))" \
            "$(ref_layers $(refs_in_repo "$repo" "${kept[@]}"))" \
            | sed "s|^|$repo |"
    done | LC_ALL=C sort)
    local gone_manifests gone_links line
    mapfile -t gone_manifests < <(printf '%s\n' "$expected_manifests" \
        | sed '/^$/d')
    mapfile -t gone_links < <(printf '%s\n' "$expected_links" | sed '/^$/d')
    local freed_digests
    freed_digests=$(lines_minus "$(ref_blobs "${ALL_REFS[@]}")" \
        "$(ref_blobs "${kept[@]}")")
    expected_blobs=$(for digest in $freed_digests; do
        printf '%s %s\n' "$digest" "$(sum_blob_sizes "$digest")"
    done | LC_ALL=C sort)
    local expected_bytes
    expected_bytes=$(sum_blob_sizes $freed_digests)

    check_lines "fixture: storage holds exactly the pushed blobs" \
        "$(ref_blobs "${ALL_REFS[@]}")" "$(stored_blobs)"

    # Dry run.
    local prune_args=(prune --policy "$POLICY" --set "count=$KEEP_COUNT"
        --set order=version)
    local before after
    before=$(snapshot "$STORAGE_ROOT")
    run_regprune plan "${prune_args[@]}" --dry-run --json
    after=$(snapshot "$STORAGE_ROOT")
    check_equal "prune --dry-run exits 0" 0 "$RUN_STATUS"
    check_lines "prune --dry-run leaves the tree byte-identical" \
        "$before" "$after"
    check_equal "plan: command and dry_run" "prune true" \
        "$(json_query "$WORK/plan.json" '"\(.command) \(.dry_run)"')"
    check_lines "plan: tag verdicts by version order" \
        "$expected_verdicts" "$(report_verdicts "$WORK/plan.json")"
    check_lines "plan: manifests_deleted" \
        "$expected_manifests" "$(report_manifests "$WORK/plan.json")"
    check_lines "plan: layer_links_deleted" \
        "$expected_links" "$(report_layer_links "$WORK/plan.json")"
    check_lines "plan: blobs_deleted with sizes" \
        "$expected_blobs" "$(report_blobs "$WORK/plan.json")"
    local freed_count expected_totals
    freed_count=$(printf '%s\n' "$freed_digests" | sed '/^$/d' | wc -l)
    expected_totals="tags_kept=${#kept[@]} tags_deleted=${#deleted[@]}"
    expected_totals+=" manifests_deleted=${#gone_manifests[@]}"
    expected_totals+=" layer_links_deleted=${#gone_links[@]}"
    expected_totals+=" blobs_deleted=$freed_count bytes_freed=$expected_bytes"
    check_equal "plan: totals" "$expected_totals" \
        "$(json_query "$WORK/plan.json" '.totals | "tags_kept=\(.tags_kept)"
            + " tags_deleted=\(.tags_deleted)"
            + " manifests_deleted=\(.manifests_deleted)"
            + " layer_links_deleted=\(.layer_links_deleted)"
            + " blobs_deleted=\(.blobs_deleted)"
            + " bytes_freed=\(.bytes_freed)"')"
    check_lines "plan: pushed times" \
        "$(for ref in "${ALL_REFS[@]}"; do
            printf '%s %s\n' "$ref" "$(days_ago "${AGE_DAYS[$ref]}")"
        done | LC_ALL=C sort)" \
        "$(report_tag_field "$WORK/plan.json" pushed)"
    # The creation time of an index is not defined, so only images count.
    local image_refs
    image_refs=$(for ref in "${ALL_REFS[@]}"; do
        if [ "${IS_INDEX[${IMAGE_OF[$ref]}]}" = 0 ]; then
            printf '%s\n' "$ref"
        fi
    done | LC_ALL=C sort)
    check_lines "plan: created times of images" \
        "$(for ref in $image_refs; do
            printf '%s %s\n' "$ref" "${CREATED[${IMAGE_OF[$ref]}]}"
        done)" \
        "$(report_tag_field "$WORK/plan.json" created \
            | grep -F -f <(printf '%s \n' $image_refs) || true)"
    check_lines "plan: sizes count every blob once" \
        "$(for ref in "${ALL_REFS[@]}"; do
            printf '%s %s\n' "$ref" "$(sum_blob_sizes $(ref_blobs "$ref"))"
        done | LC_ALL=C sort)" \
        "$(report_tag_field "$WORK/plan.json" size)"
    check_equal "plan: no problems" 0 \
        "$(json_query "$WORK/plan.json" '.problems | length')"

    # Real run.
    local layer_links_before bytes_before
    layer_links_before=$(for repo in $repos; do
        layer_links "$repo" | sed "s|^|$repo |"
    done)
    bytes_before=$(blob_bytes)
    run_regprune prune "${prune_args[@]}" --json
    check_equal "prune exits 0" 0 "$RUN_STATUS"
    check_equal "prune report: dry_run is false" false \
        "$(json_query "$WORK/prune.json" '.dry_run')"
    check_lines "prune verdicts equal the plan" \
        "$(report_verdicts "$WORK/plan.json")" \
        "$(report_verdicts "$WORK/prune.json")"
    check_lines "prune manifests_deleted equal the plan" \
        "$(report_manifests "$WORK/plan.json")" \
        "$(report_manifests "$WORK/prune.json")"
    check_lines "prune layer_links_deleted equal the plan" \
        "$(report_layer_links "$WORK/plan.json")" \
        "$(report_layer_links "$WORK/prune.json")"
    check_lines "prune blobs_deleted equal the plan" \
        "$(report_blobs "$WORK/plan.json")" \
        "$(report_blobs "$WORK/prune.json")"
    check_equal "prune totals equal the plan" \
        "$(json_query "$WORK/plan.json" -c .totals)" \
        "$(json_query "$WORK/prune.json" -c .totals)"

    # What is on disk now.
    for ref in "${deleted[@]}"; do
        check "disk: tag $ref removed" tag_absent "$ref"
    done
    for ref in "${kept[@]}"; do
        check "disk: tag $ref kept" tag_points_to "$ref" "${PUSHED[$ref]}"
    done
    for line in "${gone_manifests[@]}"; do
        check "disk: revision ${line% *}@${line:${#line}-64:12} removed" \
            revision_absent "${line% *}" "${line#* }"
    done
    check_lines "disk: removed layer links are those reported" \
        "$(report_layer_links "$WORK/prune.json")" \
        "$(lines_minus "$(printf '%s\n' "$layer_links_before" | LC_ALL=C sort)" \
            "$(for repo in $repos; do
                layer_links "$repo" | sed "s|^|$repo |"
            done | LC_ALL=C sort)")"
    check_lines "disk: remaining blobs are those of kept tags" \
        "$(ref_blobs "${kept[@]}")" "$(stored_blobs)"
    check_equal "disk: blob bytes went down by the plan's bytes_freed" \
        "$(json_query "$WORK/plan.json" .totals.bytes_freed)" \
        "$((bytes_before - $(blob_bytes)))"
    check "disk: every link names an existing blob" links_resolve

    # Through the registry.
    registry_start
    for ref in "${kept[@]}"; do
        check "pull: $ref matches the push" pull_and_verify "$ref"
    done
    for ref in "${deleted[@]}"; do
        check "pull: $ref returns 404" expect_status 404 \
            manifest_status "${ref%%:*}" "${ref#*:}"
        check "pull: skopeo reports $ref unknown" \
            expect_manifest_unknown "$ref"
    done
    for line in "${gone_manifests[@]}"; do
        check "pull: manifest ${line% *}@${line:${#line}-64:12} returns 404" \
            expect_status 404 manifest_status "${line% *}" "${line#* }"
    done
    for line in "${gone_links[@]}"; do
        check "pull: blob ${line% *}@${line:${#line}-64:12} returns 404" \
            expect_status 404 blob_status "${line% *}" "${line#* }"
    done
    check "pull: shared base layer from library/base" \
        blob_pullable library/base "${LAYER_DIGEST[base]}"
    check "pull: shared base layer from team/app/web" \
        blob_pullable team/app/web "${LAYER_DIGEST[base]}"
    registry_stop

    check_registry_gc "after prune"
    check_registry_gc_untagged

    # Unlike docker-registry 2.8.2, regprune counts index children as
    # reachable from their tag, so gc --untagged has nothing left to delete.
    before=$(snapshot "$STORAGE_ROOT")
    run_regprune gc gc --untagged --dry-run --json
    after=$(snapshot "$STORAGE_ROOT")
    check_equal "regprune gc --untagged --dry-run exits 0" 0 "$RUN_STATUS"
    check_lines "regprune gc --dry-run leaves the tree byte-identical" \
        "$before" "$after"
    check_equal "regprune gc --untagged finds nothing after prune" \
        "manifests=0 layer_links=0 blobs=0" \
        "$(json_query "$WORK/gc.json" '.totals
            | "manifests=\(.manifests_deleted)"
            + " layer_links=\(.layer_links_deleted)"
            + " blobs=\(.blobs_deleted)"')"
}

# docker-registry 2.8.2 garbage-collect --delete-untagged lists the children
# of an image index as untagged manifests eligible for deletion, so running
# it for real would break the index. This check pins that behaviour: after
# prune, the only untagged manifests are children of kept indexes that no
# tag names.
check_registry_gc_untagged() {
    local output=$WORK/gc-untagged.txt ref name expected actual
    docker-registry garbage-collect --dry-run --delete-untagged \
        "$REGISTRY_CONFIG" >"$output" 2>&1
    expected=$(lines_minus \
        "$(for ref in $(refs_with_verdict keep); do
            name=${IMAGE_OF[$ref]}
            printf '%s\n' ${CHILDREN[$name]}
        done | LC_ALL=C sort -u)" \
        "$(for ref in $(refs_with_verdict keep); do
            printf '%s\n' "${PUSHED[$ref]}"
        done | LC_ALL=C sort -u)")
    actual=$(sed -n 's/^manifest eligible for deletion: //p' "$output" \
        | LC_ALL=C sort)
    check_lines "garbage-collect --delete-untagged lists only index children" \
        "$expected" "$actual"
}

# ---------------------------------------------------------------------------
# Scenario 2: delete by tag and by digest, on the tree scenario 1 left.

scenario_delete() {
    local ref digest expected_blobs freed before after bytes_before

    # Two tags on one digest: deleting one keeps the manifest.
    run_regprune delete-tag delete --json library/base:latest
    check_equal "delete REPO:TAG exits 0" 0 "$RUN_STATUS"
    check_lines "delete REPO:TAG reports one deleted tag" \
        "library/base:latest delete ${PUSHED[library/base:latest]}" \
        "$(report_verdicts "$WORK/delete-tag.json" | grep ' delete ' || true)"
    check_equal "delete REPO:TAG deletes no manifest or blob" "0 0" \
        "$(json_query "$WORK/delete-tag.json" \
            '"\(.totals.manifests_deleted) \(.totals.blobs_deleted)"')"
    check_lines "delete REPO:TAG reports created time" \
        "library/base:latest ${CREATED[base]}" \
        "$(report_tag_field "$WORK/delete-tag.json" created \
            | grep '^library/base:latest ' || true)"
    check "disk: library/base:latest removed" tag_absent library/base:latest
    check "disk: library/base:bookworm kept" tag_points_to \
        library/base:bookworm "${PUSHED[library/base:bookworm]}"
    EXPECTED_VERDICT[library/base:latest]=delete

    # Give v1.9.0 a second tag, then delete its digest.
    registry_start
    push api-1.9.0 team/app/api:stable
    registry_stop
    EXPECTED_VERDICT[team/app/api:stable]=keep
    ALL_REFS+=(team/app/api:stable)
    backdate $((60 * DAY))

    digest=${PUSHED[team/app/api:v1.9.0]}
    local live_before
    live_before=$(ref_blobs $(refs_with_verdict keep))
    EXPECTED_VERDICT[team/app/api:v1.9.0]=delete
    EXPECTED_VERDICT[team/app/api:stable]=delete
    freed=$(lines_minus "$live_before" "$(ref_blobs $(refs_with_verdict keep))")
    expected_blobs=$(for ref in $freed; do
        printf '%s %s\n' "$ref" "$(sum_blob_sizes "$ref")"
    done | LC_ALL=C sort)

    before=$(snapshot "$STORAGE_ROOT")
    run_regprune delete-digest-plan delete --dry-run --json \
        "team/app/api@$digest"
    after=$(snapshot "$STORAGE_ROOT")
    check_equal "delete --dry-run REPO@DIGEST exits 0" 0 "$RUN_STATUS"
    check_lines "delete --dry-run leaves the tree byte-identical" \
        "$before" "$after"

    bytes_before=$(blob_bytes)
    run_regprune delete-digest delete --json "team/app/api@$digest"
    check_equal "delete REPO@DIGEST exits 0" 0 "$RUN_STATUS"
    check_lines "delete REPO@DIGEST reports both tags deleted" \
        "$(printf 'team/app/api:stable delete %s\nteam/app/api:v1.9.0 delete %s' \
            "$digest" "$digest")" \
        "$(report_verdicts "$WORK/delete-digest.json" | grep ' delete ' || true)"
    check_lines "delete REPO@DIGEST reports created times" \
        "$(printf 'team/app/api:stable %s\nteam/app/api:v1.9.0 %s' \
            "${CREATED[api-1.9.0]}" "${CREATED[api-1.9.0]}")" \
        "$(report_tag_field "$WORK/delete-digest.json" created \
            | grep -E '^team/app/api:(stable|v1\.9\.0) ' || true)"
    check_lines "delete REPO@DIGEST reports the manifest deleted" \
        "team/app/api $digest" "$(report_manifests "$WORK/delete-digest.json")"
    check_lines "delete REPO@DIGEST frees the image's own blobs" \
        "$expected_blobs" "$(report_blobs "$WORK/delete-digest.json")"
    check_lines "delete REPO@DIGEST equals its dry run" \
        "$(json_query "$WORK/delete-digest-plan.json" -c \
            'del(.dry_run, .now)')" \
        "$(json_query "$WORK/delete-digest.json" -c 'del(.dry_run, .now)')"
    check "disk: team/app/api:v1.9.0 removed" tag_absent team/app/api:v1.9.0
    check "disk: team/app/api:stable removed" tag_absent team/app/api:stable
    check "disk: revision of v1.9.0 removed" revision_absent team/app/api \
        "$digest"
    check_lines "disk: remaining blobs are those of remaining tags" \
        "$(ref_blobs $(refs_with_verdict keep))" "$(stored_blobs)"
    check_equal "disk: blob bytes went down by bytes_freed" \
        "$(json_query "$WORK/delete-digest.json" .totals.bytes_freed)" \
        "$((bytes_before - $(blob_bytes)))"
    check "disk: every link names an existing blob" links_resolve

    # web-2-arm has no tag but the kept index v2.0.0 lists it. Deleting it
    # would break v2.0.0, so the request must fail and change nothing.
    local child=${DIGEST[web-2-arm]}
    before=$(snapshot "$STORAGE_ROOT")
    run_regprune delete-child delete --json "team/app/web@$child"
    after=$(snapshot "$STORAGE_ROOT")
    check "delete of a listed index child exits 1 or 3" \
        grep -qx '[13]' <<<"$RUN_STATUS"
    check_lines "delete of a listed index child changes nothing" \
        "$before" "$after"

    registry_start
    check "pull: team/app/web:v2.0.0 after deleting its child" \
        pull_and_verify team/app/web:v2.0.0
    check "pull: library/base:bookworm after deleting latest" \
        pull_and_verify library/base:bookworm
    check "pull: library/base:latest returns 404" expect_status 404 \
        manifest_status library/base latest
    for ref in team/app/api:v1.9.0 team/app/api:stable; do
        check "pull: $ref returns 404" expect_status 404 \
            manifest_status team/app/api "${ref#*:}"
        check "pull: skopeo reports $ref unknown" \
            expect_manifest_unknown "$ref"
    done
    check "pull: manifest team/app/api@${digest:7:12} returns 404" \
        expect_status 404 manifest_status team/app/api "$digest"
    check "pull: team/app/api:v1.10.0 after deleting v1.9.0" \
        pull_and_verify team/app/api:v1.10.0
    check "pull: shared base layer from library/base" \
        blob_pullable library/base "${LAYER_DIGEST[base]}"
    registry_stop

    check_registry_gc "after delete"
}

# A push into the running registry while a prune runs: an image that
# reuses a layer the prune is deleting must still pull afterwards, because
# the run lists the tree again before it removes blobs.
scenario_push_during_prune() {
    make_layer race-shared 4096
    make_layer race-old 2048
    make_layer race-new 2048
    make_image race-old amd64 none race-shared race-old
    make_image race-new amd64 none race-shared race-new
    registry_start
    push race-old race/app:old
    push race-old race/app:keep-me
    registry_stop
    backdate $((60 * DAY))
    # Leave race/app with its other tag, and make the prune delete "old"
    # and its blobs: re-point keep-me to an image of its own first.
    registry_start
    push race-new race/app:keep-me
    registry_stop
    backdate $((60 * DAY))
    printf '%s\n' 'function policy(repo)' \
        '  for _, t in ipairs(repo.tags) do' \
        '    if repo.name == "race/app" and t.name == "old" then delete(t) end' \
        '  end' 'end' >"$WORK/race.lua"

    registry_start
    REGPRUNE_TEST_PAUSE_BEFORE_BLOBS=4 timeout 120 "${WRAPPER[@]}" \
        "$REGPRUNE" --root "$STORAGE_ROOT" prune --policy "$WORK/race.lua" \
        --json race/app >"$WORK/race.json" 2>"$WORK/race.err" &
    local prune_pid=$! status=0
    sleep 1.5
    # The old image, pushed again under a new name in another repository,
    # while the prune waits with its blobs still planned for removal.
    push race-old race/other:copy
    wait "$prune_pid" || status=$?
    check_equal "prune during a push exits 0" 0 "$status"
    check "the image pushed during the prune pulls completely" \
        pull_and_verify race/other:copy
    check "the tag the prune deleted is gone" \
        test "$(manifest_status race/app old)" = 404
    registry_stop
}

# A prune stopped at several points, as kill -9 would stop it: after each
# stop every tag left on disk pulls completely from the registry, and a
# second run finishes the job.
scenario_stopped_prune() {
    local saved=$STORAGE_ROOT step ref repo tag status
    printf '%s\n' 'function policy(repo)' \
        '  for rank, t in ipairs(regprune.sort(repo.tags, "pushed")) do' \
        '    if rank > 1 then delete(t, "not newest") end' \
        '  end' 'end' >"$WORK/stop.lua"
    for step in 1 4 9 16 30; do
        rm -rf "$WORK/stopped"
        cp -a "$saved" "$WORK/stopped"
        STORAGE_ROOT=$WORK/stopped
        # The hook ends the run with 137, or the run ends with 0 when it
        # has fewer removals than the step. Any other status fails the
        # check, such as valgrind's error status under REGPRUNE_WRAPPER.
        status=0
        REGPRUNE_CRASH_AFTER=$step "${WRAPPER[@]}" "$REGPRUNE" \
            --root "$STORAGE_ROOT" prune --policy "$WORK/stop.lua" \
            >"$WORK/stopped-$step.err" 2>&1 || status=$?
        check "stopped at step $step: the run exits 137 or 0" \
            grep -qxE '137|0' <<<"$status"
        registry_start
        for ref in "${!PUSHED[@]}"; do
            repo=${ref%:*}
            tag=${ref##*:}
            if [ -e "$(v2_dir)/repositories/$repo/_manifests/tags/$tag/current/link" ] &&
                [ "$(cat "$(v2_dir)/repositories/$repo/_manifests/tags/$tag/current/link")" = "${PUSHED[$ref]}" ]; then
                check "stopped at step $step: $ref pulls" pull_and_verify "$ref"
            fi
        done
        registry_stop
        run_regprune "finish-$step" prune --policy "$WORK/stop.lua" --json
        check_equal "stopped at step $step: a second run exits 0" 0 \
            "$RUN_STATUS"
        check "stopped at step $step: the tree checks clean" \
            "${WRAPPER[@]}" "$REGPRUNE" --root "$STORAGE_ROOT" check
    done
    STORAGE_ROOT=$saved
}

scenario_prune
scenario_delete
scenario_push_during_prune
scenario_stopped_prune

echo "runtime: $(($(date +%s) - START_TIME)) s"
report_summary
if [ "$FAILED" -ne 0 ]; then
    exit 1
fi
