# shellcheck shell=bash
# Digest lists are split into words on purpose: digests contain no blanks or
# glob characters.
# shellcheck disable=SC2086,SC2206,SC2034
#
# Helpers for the end-to-end tests: check counters, a docker-registry server
# under test, OCI image layouts built from shell tools, pushes and pulls with
# skopeo, and snapshots of the storage tree. Source this file from bash with
# `set -Eeuo pipefail` after setting WORK to an empty scratch directory.

: "${WORK:?WORK must name an empty scratch directory}"

# ---------------------------------------------------------------------------
# Check counters. Every check prints one PASS or FAIL line, and
# report_summary prints "N passed, M failed".

PASSED=0
FAILED=0

pass() {
    PASSED=$((PASSED + 1))
    printf 'PASS %s\n' "$1"
}

# fail NAME [DETAIL...] prints the check name and, indented, what went wrong.
fail() {
    local name=$1
    shift
    FAILED=$((FAILED + 1))
    printf 'FAIL %s\n' "$name"
    local line
    for line in "$@"; do
        printf '     %s\n' "$line"
    done
}

# check NAME COMMAND [ARG...] runs COMMAND and counts it as one check. The
# command's output is shown only when it fails.
check() {
    local name=$1 output status=0
    shift
    output=$("$@" 2>&1) || status=$?
    if [ "$status" -eq 0 ]; then
        pass "$name"
    else
        fail "$name" "command: $*" "exit status: $status"
        if [ -n "$output" ]; then
            printf '%s\n' "$output" | head -n 20 | sed 's/^/     | /'
        fi
    fi
}

# check_equal NAME EXPECTED ACTUAL
check_equal() {
    if [ "$2" = "$3" ]; then
        pass "$1"
    else
        fail "$1" "expected: $2" "actual:   $3"
    fi
}

report_summary() {
    printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
}

# ---------------------------------------------------------------------------
# Registry server. registry_start writes $WORK/config.yml with a free port on
# 127.0.0.1 and starts docker-registry. registry_stop stops it by its PID.

REGISTRY_PID=
REGISTRY=
REGISTRY_CONFIG=$WORK/config.yml
STORAGE_ROOT=$WORK/storage

# write_registry_config PORT
write_registry_config() {
    cat >"$REGISTRY_CONFIG" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STORAGE_ROOT
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$1
  secret: regprune-e2e-test-secret
EOF
}

# Succeeds when process PID has a TCP socket listening on 127.0.0.1:PORT.
# Reading /proc avoids connecting to a port that another program may own.
pid_listens_on() {
    local pid=$1 port=$2 fd target inodes=" "
    for fd in /proc/"$pid"/fd/*; do
        target=$(readlink "$fd" 2>/dev/null) || continue
        case $target in
        socket:\[*\])
            target=${target#socket:[}
            inodes="$inodes${target%]} "
            ;;
        esac
    done
    awk -v want="0100007F:$(printf '%04X' "$port")" -v inodes="$inodes" '
        NR > 1 && $2 == want && $4 == "0A" && index(inodes, " " $10 " ") {
            found = 1
        }
        END { exit !found }' /proc/net/tcp
}

# Starts docker-registry on a random free port from 20000 to 60999. When
# another program uses the port, the server exits with "address already in
# use" and the next random port is tried.
registry_start() {
    local attempt port
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        port=$(shuf -i 20000-60999 -n 1)
        write_registry_config "$port"
        docker-registry serve "$REGISTRY_CONFIG" >>"$WORK/registry.log" 2>&1 &
        REGISTRY_PID=$!
        for _ in $(seq 1 100); do
            if ! kill -0 "$REGISTRY_PID" 2>/dev/null; then
                break
            fi
            if pid_listens_on "$REGISTRY_PID" "$port"; then
                REGISTRY=127.0.0.1:$port
                wait_for_v2
                return 0
            fi
            sleep 0.1
        done
        if kill -0 "$REGISTRY_PID" 2>/dev/null; then
            echo "docker-registry (PID $REGISTRY_PID) did not listen on" \
                "port $port within 10 s. See $WORK/registry.log" >&2
            registry_stop
            return 1
        fi
        wait "$REGISTRY_PID" || true
        REGISTRY_PID=
        if ! grep -q "address already in use" "$WORK/registry.log"; then
            echo "docker-registry failed to start on port $port:" >&2
            tail -n 5 "$WORK/registry.log" >&2
            return 1
        fi
        : >"$WORK/registry.log"
    done
    echo "docker-registry found no free port after $attempt attempts" >&2
    return 1
}

wait_for_v2() {
    for _ in $(seq 1 50); do
        if [ "$(http_status "http://$REGISTRY/v2/")" = 200 ]; then
            return 0
        fi
        sleep 0.1
    done
    echo "docker-registry at $REGISTRY did not answer GET /v2/ with 200" >&2
    return 1
}

registry_stop() {
    if [ -n "$REGISTRY_PID" ]; then
        kill "$REGISTRY_PID" 2>/dev/null || true
        wait "$REGISTRY_PID" 2>/dev/null || true
        REGISTRY_PID=
    fi
}

# http_status URL prints the HTTP status code of a GET that accepts every
# manifest media type.
http_status() {
    curl -s -o /dev/null -w '%{http_code}' \
        -H 'Accept: application/vnd.oci.image.index.v1+json' \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
        -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        "$1"
}

# ---------------------------------------------------------------------------
# OCI image layout in $OCI. Each image or index gets a local NAME, which is
# also its reference name in index.json. Arrays indexed by NAME:
#   DIGEST    digest of the manifest or index as stored in the layout
#   BLOBS     config and layer digests (for an index, those of all children)
#   CHILDREN  child manifest digests of an index, empty for an image
#   IS_INDEX  1 for an index, 0 for an image
#   CREATED   creation time of an image in Unix seconds, or null

declare -A LAYER_DIGEST LAYER_DIFF_ID DIGEST BLOBS CHILDREN IS_INDEX CREATED
OCI=$WORK/oci

OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
OCI_INDEX=application/vnd.oci.image.index.v1+json
OCI_CONFIG=application/vnd.oci.image.config.v1+json
OCI_LAYER=application/vnd.oci.image.layer.v1.tar+gzip

oci_init() {
    mkdir -p "$OCI/blobs/sha256" "$WORK/build"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$OCI/oci-layout"
    printf '{"schemaVersion":2,"manifests":[]}' >"$OCI/index.json"
}

# oci_put_blob FILE stores FILE as a blob and prints its digest.
oci_put_blob() {
    local hex
    hex=$(sha256sum "$1" | cut -d' ' -f1)
    cp "$1" "$OCI/blobs/sha256/$hex"
    printf 'sha256:%s\n' "$hex"
}

# blob_size DIGEST prints the size of a blob in the layout.
blob_size() {
    stat -c %s "$OCI/blobs/sha256/${1#sha256:}"
}

# make_layer NAME SIZE builds a gzip layer holding one file of SIZE random
# bytes, so every layer has its own digest.
make_layer() {
    local name=$1 size=$2 dir=$WORK/build/layer-$1
    mkdir -p "$dir/files"
    head -c "$size" /dev/urandom >"$dir/files/$name.bin"
    tar -C "$dir/files" --sort=name --owner=0 --group=0 --numeric-owner \
        --mtime=@0 -cf "$dir/layer.tar" .
    LAYER_DIFF_ID[$name]=sha256:$(sha256sum "$dir/layer.tar" | cut -d' ' -f1)
    gzip -n -c "$dir/layer.tar" >"$dir/layer.tar.gz"
    LAYER_DIGEST[$name]=$(oci_put_blob "$dir/layer.tar.gz")
}

# make_image NAME ARCH CREATED LAYER... builds an image manifest and config.
# CREATED is a Unix time, written to the config in RFC 3339 form, or "none"
# for a config without "created".
make_image() {
    local name=$1 arch=$2 created=none layer config_digest
    if [ "$3" != none ]; then
        created=$(date -u -d "@$3" +%Y-%m-%dT%H:%M:%SZ)
        CREATED[$name]=$3
    else
        CREATED[$name]=null
    fi
    shift 3
    local diff_ids=() layers_json=() blobs=()
    for layer in "$@"; do
        diff_ids+=("${LAYER_DIFF_ID[$layer]}")
        layers_json+=("$(jq -cn --arg d "${LAYER_DIGEST[$layer]}" \
            --argjson s "$(blob_size "${LAYER_DIGEST[$layer]}")" \
            --arg m "$OCI_LAYER" '{mediaType: $m, digest: $d, size: $s}')")
        blobs+=("${LAYER_DIGEST[$layer]}")
    done

    jq -cn --arg arch "$arch" --arg created "$created" --arg name "$name" \
        --args '{architecture: $arch, os: "linux",
                 config: {Labels: {"test.image": $name}},
                 rootfs: {type: "layers", diff_ids: $ARGS.positional}}
                + (if $created == "none" then {} else {created: $created} end)' \
        "${diff_ids[@]}" >"$WORK/build/config-$name.json"
    config_digest=$(oci_put_blob "$WORK/build/config-$name.json")

    printf '%s\n' "${layers_json[@]}" | jq -cs --arg m "$OCI_MANIFEST" \
        --arg cm "$OCI_CONFIG" --arg cd "$config_digest" \
        --argjson cs "$(blob_size "$config_digest")" \
        '{schemaVersion: 2, mediaType: $m,
          config: {mediaType: $cm, digest: $cd, size: $cs}, layers: .}' \
        | tr -d '\n' >"$WORK/build/manifest-$name.json"
    DIGEST[$name]=$(oci_put_blob "$WORK/build/manifest-$name.json")
    BLOBS[$name]="$config_digest ${blobs[*]}"
    CHILDREN[$name]=
    IS_INDEX[$name]=0
    oci_add_ref "$name" "$OCI_MANIFEST"
}

# make_index NAME CHILD:ARCH... builds an image index of earlier images.
make_index() {
    local name=$1 item child arch entries=() blobs=() children=()
    shift
    for item in "$@"; do
        child=${item%%:*}
        arch=${item#*:}
        entries+=("$(jq -cn --arg m "$OCI_MANIFEST" --arg d "${DIGEST[$child]}" \
            --argjson s "$(blob_size "${DIGEST[$child]}")" --arg a "$arch" \
            '{mediaType: $m, digest: $d, size: $s,
              platform: {architecture: $a, os: "linux"}}')")
        children+=("${DIGEST[$child]}")
        blobs+=(${BLOBS[$child]})
    done
    printf '%s\n' "${entries[@]}" | jq -cs --arg m "$OCI_INDEX" \
        '{schemaVersion: 2, mediaType: $m, manifests: .}' \
        | tr -d '\n' >"$WORK/build/index-$name.json"
    DIGEST[$name]=$(oci_put_blob "$WORK/build/index-$name.json")
    BLOBS[$name]=$(printf '%s\n' "${blobs[@]}" | sort -u | tr '\n' ' ')
    CHILDREN[$name]="${children[*]}"
    IS_INDEX[$name]=1
    oci_add_ref "$name" "$OCI_INDEX"
}

# oci_add_ref NAME MEDIA_TYPE lists DIGEST[NAME] in index.json under NAME.
oci_add_ref() {
    local digest=${DIGEST[$1]}
    jq -c --arg n "$1" --arg m "$2" --arg d "$digest" \
        --argjson s "$(blob_size "$digest")" \
        '.manifests += [{mediaType: $m, digest: $d, size: $s,
          annotations: {"org.opencontainers.image.ref.name": $n}}]' \
        "$OCI/index.json" >"$OCI/index.json.new"
    mv "$OCI/index.json.new" "$OCI/index.json"
}

# ---------------------------------------------------------------------------
# Pushes and pulls. PUSHED[REPO:TAG] is the manifest digest the registry
# stores for a tag and IMAGE_OF[REPO:TAG] the local image name behind it.

declare -A PUSHED IMAGE_OF

# skopeo_run ARG... runs skopeo with the test's trust policy and a 120 s
# timeout, so a stalled registry fails the step instead of hanging CI.
skopeo_run() {
    timeout 120 skopeo --policy "$WORK/policy.json" --tmpdir "$WORK/skopeo-tmp" "$@"
}

skopeo_setup() {
    mkdir -p "$WORK/skopeo-tmp"
    printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' \
        >"$WORK/policy.json"
}

# push NAME REPO:TAG [v2s2] copies a layout image to the registry. With v2s2
# skopeo converts the manifest to the Docker schema 2 format, which changes
# its digest, so the digest always comes from --digestfile.
push() {
    local name=$1 ref=$2 format=${3:-} flags=()
    if [ "${IS_INDEX[$name]}" = 1 ]; then
        flags+=(--all)
    fi
    if [ "$format" = v2s2 ]; then
        flags+=(--format v2s2)
    else
        flags+=(--preserve-digests)
    fi
    skopeo_run copy --quiet --dest-tls-verify=false "${flags[@]}" \
        --digestfile "$WORK/build/digest" \
        "oci:$OCI:$name" "docker://$REGISTRY/$ref"
    PUSHED[$ref]=$(cat "$WORK/build/digest")
    IMAGE_OF[$ref]=$name
}

# pull_and_verify REPO:TAG checks that the registry serves the pushed manifest
# and that a full pull brings every config and layer blob with its digest.
pull_and_verify() {
    local ref=$1 name=${IMAGE_OF[$1]} dir digest blob flags=()
    dir=$WORK/pull/$(printf '%s' "$ref" | tr '/:' '__')
    rm -rf "$dir"
    mkdir -p "$dir"

    digest=sha256:$(skopeo_run inspect --tls-verify=false --raw \
        "docker://$REGISTRY/$ref" | sha256sum | cut -d' ' -f1)
    if [ "$digest" != "${PUSHED[$ref]}" ]; then
        echo "manifest digest of $ref is $digest, pushed ${PUSHED[$ref]}"
        return 1
    fi

    if [ "${IS_INDEX[$name]}" = 1 ]; then
        flags+=(--all)
    fi
    skopeo_run copy --quiet --src-tls-verify=false --preserve-digests \
        "${flags[@]}" "docker://$REGISTRY/$ref" "dir:$dir"
    for blob in ${BLOBS[$name]}; do
        if [ ! -f "$dir/${blob#sha256:}" ]; then
            echo "blob $blob of $ref missing from the pull"
            return 1
        fi
        digest=sha256:$(sha256sum "$dir/${blob#sha256:}" | cut -d' ' -f1)
        if [ "$digest" != "$blob" ]; then
            echo "blob $blob of $ref pulled with digest $digest"
            return 1
        fi
    done
}

# manifest_status REPO REFERENCE prints the HTTP status of GET
# /v2/REPO/manifests/REFERENCE, where REFERENCE is a tag or a digest.
manifest_status() {
    http_status "http://$REGISTRY/v2/$1/manifests/$2"
}

# blob_status REPO DIGEST prints the HTTP status of GET /v2/REPO/blobs/DIGEST.
blob_status() {
    http_status "http://$REGISTRY/v2/$1/blobs/$2"
}

# ---------------------------------------------------------------------------
# Storage tree helpers. Run them only while the registry is stopped.

v2_dir() {
    printf '%s/docker/registry/v2\n' "$STORAGE_ROOT"
}

# tag_link REPO TAG prints the path of the tag's current/link file.
tag_link() {
    printf '%s/repositories/%s/_manifests/tags/%s/current/link\n' \
        "$(v2_dir)" "$1" "$2"
}

# blob_data DIGEST prints the path of a blob's data file.
blob_data() {
    local hex=${1#sha256:}
    printf '%s/blobs/sha256/%s/%s/data\n' "$(v2_dir)" "${hex:0:2}" "$hex"
}

# snapshot DIR prints every path under DIR with its type, size, mtime and
# link target, then the sha256 of every regular file.
snapshot() {
    (
        cd "$1" || exit 1
        find . -printf '%p %y %s %T@ %l\n' | LC_ALL=C sort
        find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
    )
}

# blob_bytes prints the total size of all blob data files.
blob_bytes() {
    find "$(v2_dir)/blobs" -type f -name data -printf '%s\n' \
        | awk '{ total += $1 } END { print total + 0 }'
}

# backdate SECONDS_AGO sets the mtime of everything in the storage tree.
backdate() {
    find "$STORAGE_ROOT" -exec touch -h -d "@$(($(date +%s) - $1))" {} +
}
