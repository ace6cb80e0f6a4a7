#!/usr/bin/env bash
# Tests of the deployment examples in examples/deploy/.
#
# Usage: make && tests/deploy/run.sh
#
# 1. regprune-maintenance end to end against a real docker-registry (Debian's
#    2.8 package) that the test starts on 127.0.0.1. The restart command the
#    test gives the script stops the registry by its PID and starts it again
#    with the config.yml (or environment file) the script wrote, and records
#    both. A stand-in for regprune records what the registry returns while
#    the prune runs (a manifest PUT, a skopeo push) before it runs the real
#    regprune. Checked: the dry run, a run in each read-only method, a
#    broken policy, a tripped breaker, a failed switch to read-only, SIGTERM
#    during the prune, the lock, and the three steps the systemd unit runs.
# 2. The read-only copy of config.yml for several layouts: parsed with
#    python3-yaml (/usr/bin/python3), and read by regprune itself.
# 3. systemd-analyze verify on the unit files, when systemd-analyze exists.
# 4. YAML syntax and the main fields of the Kubernetes and Compose files
#    (python3-yaml), shellcheck on the scripts when it is installed, and a
#    dry run of the ConfigMap's policy.
#
# Requires docker-registry, skopeo, curl, jq, flock and the GNU tools; on
# Debian 12: apt-get install docker-registry skopeo curl jq python3-yaml.
# Runs as root or as any user, and connects only to the registry it starts.
# Environment: REGPRUNE (binary under test, default: regprune in the
# repository), MKREGISTRY (default: build/mkregistry), REGPRUNE_DEPLOY_KEEP=1
# keeps the scratch directory after a pass; after a failure it is always kept.
#
# Prints one PASS, FAIL or SKIP line per check and ends with
# "N passed, M failed". The exit status is 0 only when every check passed.

# The jq and awk programs in single quotes use their own $variables.
# shellcheck disable=SC2016
# shellcheck source-path=SCRIPTDIR

set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/../.." && pwd)
REGPRUNE=${REGPRUNE:-$REPO_ROOT/regprune}
# The wrapper reads REGPRUNE from the environment before its settings file;
# the test names the binary in the settings, so it must not be exported.
export -n REGPRUNE
MKREGISTRY=${MKREGISTRY:-$REPO_ROOT/build/mkregistry}
DEPLOY=$REPO_ROOT/examples/deploy
WRAPPER=$DEPLOY/regprune-maintenance
KEEP_LAST=$REPO_ROOT/policies/keep-last.lua
PYTHON=/usr/bin/python3

for tool in docker-registry skopeo curl jq flock timeout sha256sum shuf; do
    if ! command -v "$tool" >/dev/null; then
        echo "FAIL required tool not found: $tool. Install it with:" \
            "apt-get install docker-registry skopeo curl jq util-linux"
        echo "0 passed, 1 failed"
        exit 1
    fi
done
for program in "$REGPRUNE" "$MKREGISTRY"; do
    if [ ! -x "$program" ]; then
        echo "FAIL $program not found. Run make first."
        echo "0 passed, 1 failed"
        exit 1
    fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/regprune-deploy.XXXXXX")
# shellcheck source=../integration/lib.sh
. "$REPO_ROOT/tests/integration/lib.sh"

STATE_DIR=$WORK/state
SETTINGS=$WORK/maintenance.conf
REMOVALS_LOG=$WORK/log/removals.jsonl
PID_FILE=$WORK/registry.pid
HOOK_LOG=$WORK/hook.log

skip() {
    printf 'SKIP %s\n' "$1"
}

stop_test_registry() {
    local pid
    pid=$(cat "$PID_FILE" 2>/dev/null || true)
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
    fi
}

cleanup() {
    stop_test_registry
    if [ "$FAILED" -eq 0 ] && [ "${REGPRUNE_DEPLOY_KEEP:-0}" != 1 ]; then
        rm -rf "$WORK"
    else
        echo "scratch directory kept: $WORK" >&2
    fi
}
trap cleanup EXIT
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

# has_python_yaml succeeds when Debian's python3 can import yaml.
has_python_yaml() {
    [ -x "$PYTHON" ] && "$PYTHON" -c 'import yaml' 2>/dev/null
}

# ---------------------------------------------------------------------------
# Test doubles: the restart command and the stand-in for regprune. Both get
# the test's paths through exported variables, as a real restart command
# gets its settings from the environment.

export TEST_WORK=$WORK TEST_PID_FILE=$PID_FILE TEST_HOOK_LOG=$HOOK_LOG
export TEST_REGPRUNE=$REGPRUNE TEST_OCI=$OCI
export TEST_PORT=

cat >"$WORK/restart-registry" <<'EOF'
#!/bin/sh
# Restart command for the test: record the mode, the config and the
# environment file regprune-maintenance hands over, stop the registry by its
# PID, and start it again with that config (and file).
set -eu
n=$(($(wc -l <"$TEST_HOOK_LOG") + 1))
cp "$REGPRUNE_SWITCH_CONFIG" "$TEST_WORK/hook-config-$n.yml"
if [ -f "$REGPRUNE_SWITCH_ENV_FILE" ]; then
    cp "$REGPRUNE_SWITCH_ENV_FILE" "$TEST_WORK/hook-env-$n"
fi
echo "$REGPRUNE_SWITCH_MODE $REGPRUNE_SWITCH_CONFIG" >>"$TEST_HOOK_LOG"
if [ -f "$TEST_WORK/fail-$REGPRUNE_SWITCH_MODE" ]; then
    echo "restart-registry: failing on purpose" >&2
    exit 1
fi

# running PID succeeds while a thread of process PID is alive. The main
# thread of a Go program can be a zombie (state Z) while other threads still
# hold the listening socket, and a process that nobody reaps stays a zombie.
running() {
    for stat in /proc/"$1"/task/*/stat; do
        if [ -r "$stat" ]; then
            case $(sed 's/.*) //' "$stat" | cut -d' ' -f1) in
            Z | X) ;;
            *) return 0 ;;
            esac
        fi
    done
    return 1
}

pid=$(cat "$TEST_PID_FILE" 2>/dev/null || true)
if [ -n "$pid" ] && running "$pid"; then
    kill "$pid"
    tries=0
    while running "$pid"; do
        tries=$((tries + 1))
        if [ "$tries" -gt 100 ]; then
            echo "restart-registry: PID $pid did not stop in 10 s" >&2
            exit 1
        fi
        sleep 0.1
    done
fi

if [ -f "$REGPRUNE_SWITCH_ENV_FILE" ]; then
    set -a
    . "$REGPRUNE_SWITCH_ENV_FILE"
    set +a
fi
docker-registry serve "$REGPRUNE_SWITCH_CONFIG" \
    >>"$TEST_WORK/registry.log" 2>&1 </dev/null &
echo $! >"$TEST_PID_FILE"
tries=0
until [ "$(curl -s -o /dev/null -w '%{http_code}' \
    "http://127.0.0.1:$TEST_PORT/v2/")" = 200 ]; do
    tries=$((tries + 1))
    if [ "$tries" -gt 100 ] || ! running "$(cat "$TEST_PID_FILE")"; then
        echo "restart-registry: the registry did not start" >&2
        exit 1
    fi
    sleep 0.1
done
EOF
chmod 755 "$WORK/restart-registry"

cat >"$WORK/regprune-probe" <<'EOF'
#!/bin/sh
# Stand-in for regprune: record the arguments, the user, the REGISTRY_STORAGE
# variables and, with TEST_PROBE=1, what the registry returns for a manifest
# PUT and a skopeo push. Then sleep TEST_SLEEP seconds when it is set, and
# run the real regprune.
printf '%s\n' "$*" >"$TEST_WORK/probe-args"
id -un >"$TEST_WORK/probe-user"
env | grep '^REGISTRY_STORAGE' >"$TEST_WORK/probe-env" || true
if [ "${TEST_PROBE:-}" = 1 ]; then
    curl -s -o /dev/null -w '%{http_code}' -X PUT \
        -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary '' \
        "http://127.0.0.1:$TEST_PORT/v2/team/app/manifests/during" \
        >"$TEST_WORK/probe-put-status"
    status=0
    timeout 60 skopeo --policy "$TEST_WORK/policy.json" \
        --tmpdir "$TEST_WORK/skopeo-tmp" copy --quiet \
        --dest-tls-verify=false --preserve-digests "oci:$TEST_OCI:extra" \
        "docker://127.0.0.1:$TEST_PORT/team/app:during-prune" \
        >"$TEST_WORK/probe-push.log" 2>&1 || status=$?
    echo "$status" >"$TEST_WORK/probe-push-status"
fi
if [ -n "${TEST_SLEEP:-}" ]; then
    sleep "$TEST_SLEEP" </dev/null >/dev/null 2>&1 &
    sleeper=$!
    trap 'kill "$sleeper"; exit 143' TERM
    wait "$sleeper"
fi
exec "$TEST_REGPRUNE" "$@"
EOF
chmod 755 "$WORK/regprune-probe"

# ---------------------------------------------------------------------------
# Helpers for the end-to-end checks.

# start_registry writes the original config.yml with a free port on
# 127.0.0.1 and starts the registry through the restart command, as a
# read-write restart. Another program on the port makes the registry exit
# with "address already in use", and the next random port is tried.
start_registry() {
    local attempt port
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        port=$(shuf -i 20000-60999 -n 1)
        write_registry_config "$port"
        TEST_PORT=$port
        : >"$HOOK_LOG"
        if REGPRUNE_SWITCH_MODE=read-write \
            REGPRUNE_SWITCH_CONFIG=$REGISTRY_CONFIG \
            REGPRUNE_SWITCH_ENV_FILE=$STATE_DIR/registry.env \
            "$WORK/restart-registry" 2>>"$WORK/registry.log"; then
            REGISTRY=127.0.0.1:$port
            : >"$HOOK_LOG"
            rm -f "$WORK"/hook-config-* "$WORK"/hook-env-*
            return 0
        fi
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

# run_wrapper NAME ARG... runs regprune-maintenance with its output in
# $WORK/NAME.out and $WORK/NAME.err, and sets WRAPPER_STATUS. Files rather
# than pipes, because the registry the restart command starts outlives it.
run_wrapper() {
    local name=$1
    shift
    WRAPPER_STATUS=0
    rm -f "$WORK"/probe-*
    timeout 120 "$WRAPPER" --settings "$SETTINGS" "$@" \
        >"$WORK/$name.out" 2>"$WORK/$name.err" || WRAPPER_STATUS=$?
}

# show_output NAME prints the end of a wrapper run's stderr for a failure.
show_output() {
    printf '%s\n' "stderr of $1:"
    tail -n 15 "$WORK/$1.err" | sed 's/^/| /'
}

check_status() {
    local name=$1 expected=$2
    if [ "$WRAPPER_STATUS" = "$expected" ]; then
        pass "$name"
    else
        fail "$name" "expected exit status $expected, got $WRAPPER_STATUS" \
            "$(show_output "${3:-run}")"
    fi
}

put_status() {
    curl -s -o /dev/null -w '%{http_code}' -X PUT \
        -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary '' "http://$REGISTRY/v2/team/app/manifests/probe"
}

# registry_running succeeds when the process the restart command started
# has a live thread and GET /v2/ returns 200.
registry_running() {
    local pid stat alive=
    pid=$(cat "$PID_FILE")
    for stat in /proc/"$pid"/task/*/stat; do
        if [ -r "$stat" ] &&
            [ "$(sed 's/.*) //' "$stat" | cut -d' ' -f1)" != Z ]; then
            alive=1
        fi
    done
    [ -n "$alive" ] && [ "$(http_status "http://$REGISTRY/v2/")" = 200 ]
}

# check_read_write NAME checks that the registry runs and accepts writes.
check_read_write() {
    if registry_running; then
        pass "$1: registry running"
    else
        fail "$1: registry running" "PID $(cat "$PID_FILE") is gone or" \
            "GET /v2/ does not return 200"
    fi
    check_equal "$1: registry read-write (manifest PUT 400)" 400 \
        "$(put_status)"
}

# contents FILE prints FILE, or nothing when it is missing.
contents() {
    cat "$1" 2>/dev/null || true
}

hook_modes() {
    cut -d' ' -f1 "$HOOK_LOG" | tr '\n' ' ' | sed 's/ $//'
}

tree_snapshot() {
    snapshot "$(v2_dir)"
}

check_tree_unchanged() {
    if [ "$(tree_snapshot)" = "$2" ]; then
        pass "$1: storage tree unchanged"
    else
        fail "$1: storage tree unchanged" "$(diff <(printf '%s\n' "$2") \
            <(tree_snapshot) | head -n 10 || true)"
    fi
}

check_message() {
    if grep -q -- "$3" "$WORK/$2.err"; then
        pass "$1"
    else
        fail "$1" "stderr does not contain: $3" "$(show_output "$2")"
    fi
}

# ---------------------------------------------------------------------------
# 1. Static checks of the scripts.

check "wrapper: sh -n" sh -n "$WRAPPER"
if command -v dash >/dev/null; then
    check "wrapper: dash -n" dash -n "$WRAPPER"
fi
if command -v shellcheck >/dev/null; then
    check "wrapper: shellcheck -s sh" shellcheck -s sh "$WRAPPER"
    check "test: shellcheck" shellcheck -x "$HERE/run.sh"
else
    skip "shellcheck: not installed (apt-get install shellcheck)"
fi
check "wrapper: --help exits 0" "$WRAPPER" --help
WRAPPER_STATUS=0
"$WRAPPER" --bogus >/dev/null 2>&1 || WRAPPER_STATUS=$?
check_equal "wrapper: unknown argument exits 64" 64 "$WRAPPER_STATUS"
printf 'REGPRUNE_POLCY=%s\n' "$KEEP_LAST" >"$WORK/misspelt.conf"
WRAPPER_STATUS=0
"$WRAPPER" --settings "$WORK/misspelt.conf" show-config \
    >/dev/null 2>"$WORK/misspelt.err" || WRAPPER_STATUS=$?
check_equal "wrapper: misspelt setting exits 64" 64 "$WRAPPER_STATUS"
check_message "wrapper: misspelt setting message" misspelt \
    "misspelt.conf:1: expected NAME=VALUE"

# ---------------------------------------------------------------------------
# 2. The read-only copy of config.yml.

mkdir -p "$WORK/configs" "$WORK/sample"
"$MKREGISTRY" --scenario sample "$WORK/sample" >/dev/null

# Accepted layouts, named for what they test. @ROOT@ becomes a real tree so
# that regprune can read each copy.
cat >"$WORK/configs/debian-default.yml" <<'EOF'
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: @ROOT@
  delete:
    enabled: true
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
EOF
cat >"$WORK/configs/four-spaces-uploadpurging.yml" <<'EOF'
# Comments stay where they are.
version: 0.1
storage:
    filesystem:
        rootdirectory: @ROOT@   # the tree
    maintenance:
        uploadpurging:
            enabled: false
http:
    addr: 127.0.0.1:5000
EOF
cat >"$WORK/configs/readonly-disabled.yml" <<'EOF'
version: 0.1
storage:
  filesystem: {rootdirectory: @ROOT@}
  maintenance:
    uploadpurging:
      enabled: true
      age: 168h
    readonly:
      enabled: false  # switched on for maintenance
  delete: {enabled: true}
EOF
cat >"$WORK/configs/readonly-flow.yml" <<'EOF'
version: 0.1
storage:
  maintenance:
    readonly: {enabled: false}
  filesystem:
    rootdirectory: @ROOT@
EOF
cat >"$WORK/configs/readonly-empty.yml" <<'EOF'
version: 0.1
storage:
  filesystem:
    rootdirectory: @ROOT@
  maintenance:
    readonly:
EOF
# Rejected layouts.
cat >"$WORK/configs/reject-storage-flow.yml" <<'EOF'
version: 0.1
storage: {filesystem: {rootdirectory: @ROOT@}}
EOF
cat >"$WORK/configs/reject-maintenance-flow.yml" <<'EOF'
version: 0.1
storage:
  filesystem:
    rootdirectory: @ROOT@
  maintenance: {uploadpurging: {enabled: false}}
EOF
sed -i "s|@ROOT@|$WORK/sample|" "$WORK"/configs/*.yml

cat >"$WORK/compare-config.py" <<'EOF'
"""Compare a config.yml with its read-only copy: the copy must set
storage.maintenance.readonly.enabled to true and differ in nothing else."""
import sys

import yaml

with open(sys.argv[1]) as f:
    original = yaml.safe_load(f)
with open(sys.argv[2]) as f:
    copy = yaml.safe_load(f)

maintenance = copy["storage"].get("maintenance") or {}
readonly = maintenance.get("readonly") or {}
if readonly.get("enabled") is not True:
    sys.exit("storage.maintenance.readonly.enabled is %r, expected True"
             % readonly.get("enabled"))
for config in (original, copy):
    found = config["storage"].get("maintenance")
    if isinstance(found, dict):
        found.pop("readonly", None)
        if not found:
            config["storage"].pop("maintenance")
if original != copy:
    sys.exit("other settings differ:\n%r\n%r" % (original, copy))
EOF

# regprune warns before a run that deletes when the config is not
# read-only. count=100 keeps every tag of the sample tree, so the run
# deletes nothing.
regprune_sees_readonly() {
    local err
    err=$("$REGPRUNE" --config "$1" prune --policy "$KEEP_LAST" \
        --set count=100 2>&1 >/dev/null) || return 1
    ! printf '%s\n' "$err" | grep -q "readonly is not enabled"
}

for config in "$WORK"/configs/*.yml; do
    name=$(basename "$config" .yml)
    copy=$WORK/configs/$name.readonly
    status=0
    REGPRUNE_REGISTRY_CONFIG=$config "$WRAPPER" --settings /dev/null \
        show-config >"$copy" 2>"$copy.err" || status=$?
    case $name in
    reject-*)
        check_equal "show-config $name: exit status 64" 64 "$status"
        if grep -q "write it in block style" "$copy.err"; then
            pass "show-config $name: message"
        else
            fail "show-config $name: message" "$(cat "$copy.err")"
        fi
        continue
        ;;
    esac
    check_equal "show-config $name: exit status 0" 0 "$status"
    if has_python_yaml; then
        check "show-config $name: python3-yaml sees readonly only" \
            "$PYTHON" "$WORK/compare-config.py" "$config" "$copy"
    fi
    if regprune_sees_readonly "$config"; then
        fail "show-config $name: original not read-only for regprune"
    else
        pass "show-config $name: original not read-only for regprune"
    fi
    check "show-config $name: regprune reads the copy as read-only" \
        regprune_sees_readonly "$copy"
done
if ! has_python_yaml; then
    skip "show-config: $PYTHON cannot import yaml (apt-get install python3-yaml)"
fi

# ---------------------------------------------------------------------------
# 3. systemd units.

if command -v systemd-analyze >/dev/null; then
    units=$WORK/units
    mkdir -p "$units/docker-registry.service.d"
    # verify needs the commands to exist, so point them at the repository.
    sed "s|/usr/local/sbin/regprune-maintenance|$WRAPPER|" \
        "$DEPLOY/systemd/regprune.service" >"$units/regprune.service"
    cp "$DEPLOY/systemd/regprune.timer" "$units/"
    cp "$DEPLOY/systemd/docker-registry.service.d/regprune.conf" \
        "$units/docker-registry.service.d/"
    printf '%s\n' '[Unit]' 'Description=registry stand-in' '[Service]' \
        "ExecStart=$(command -v docker-registry) serve /dev/null" \
        >"$units/docker-registry.service"
    # --man=no: the manual pages are not installed here.
    for unit in regprune.service regprune.timer docker-registry.service; do
        status=0
        output=$(systemd-analyze verify --man=no "$units/$unit" 2>&1) ||
            status=$?
        if [ "$status" = 0 ] && [ -z "$output" ]; then
            pass "systemd-analyze verify $unit"
        else
            fail "systemd-analyze verify $unit" "exit status $status" \
                "$output"
        fi
    done
else
    skip "systemd-analyze verify: systemd-analyze is not installed"
fi

# ---------------------------------------------------------------------------
# 4. Kubernetes, Compose and cron files.

if has_python_yaml; then
    cat >"$WORK/check-manifests.py" <<'EOF'
"""Check the fields of the Kubernetes and Compose examples that the deploy
README relies on, and extract the ConfigMap's files."""
import os
import sys

import yaml

cronjob_file, compose_file, out = sys.argv[1:4]
problems = []

with open(cronjob_file) as f:
    documents = [d for d in yaml.safe_load_all(f) if d]
by_kind = {d["kind"]: d for d in documents}
for kind in ("ConfigMap", "ServiceAccount", "Role", "RoleBinding", "CronJob"):
    if kind not in by_kind:
        problems.append("cronjob.yaml has no " + kind)
cronjob = by_kind.get("CronJob", {}).get("spec", {})
if cronjob.get("concurrencyPolicy") != "Forbid":
    problems.append("concurrencyPolicy is not Forbid")
pod = cronjob["jobTemplate"]["spec"]["template"]["spec"]
claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]
          if "persistentVolumeClaim" in v]
if claims != ["registry-data"]:
    problems.append("claims mounted: %r" % claims)
if pod.get("serviceAccountName") != "regprune":
    problems.append("serviceAccountName is not regprune")
if pod.get("initContainers") or len(pod["containers"]) != 1:
    problems.append("the Pod must have one container and no initContainers")
container = pod["containers"][0]
env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
config_map = by_kind["ConfigMap"]["data"]
for name in ("REGPRUNE_POLICY", "REGPRUNE_REGISTRY_CONFIG"):
    if os.path.basename(env.get(name, "")) not in config_map:
        problems.append(name + " does not name a file of the ConfigMap")
for name, text in config_map.items():
    with open(os.path.join(out, name), "w") as f:
        f.write(text)

with open(compose_file) as f:
    compose = yaml.safe_load(f)
services = compose["services"]
if set(services) != {"registry", "regprune"}:
    problems.append("compose services: %r" % sorted(services))
if not services["regprune"].get("profiles"):
    problems.append("the regprune service has no profile")
if "profiles" in services["registry"]:
    problems.append("the registry service has a profile")
volumes = [[v.split(":")[0] for v in services[s]["volumes"]]
           for s in ("registry", "regprune")]
if "registry-data" not in volumes[0] or "registry-data" not in volumes[1]:
    problems.append("the services do not share registry-data: %r" % volumes)
if "registry-data" not in compose.get("volumes", {}):
    problems.append("registry-data is not a named volume")

if problems:
    sys.exit("\n".join(problems))
EOF
    mkdir -p "$WORK/configmap"
    check "kubernetes and compose: YAML and fields" "$PYTHON" \
        "$WORK/check-manifests.py" "$DEPLOY/kubernetes/cronjob.yaml" \
        "$DEPLOY/docker-compose.yml" "$WORK/configmap"
    if [ -f "$WORK/configmap/policy.lua" ]; then
        check "kubernetes: ConfigMap policy dry run" "$REGPRUNE" \
            --root "$WORK/sample" prune --policy "$WORK/configmap/policy.lua" \
            --dry-run -q
        check "kubernetes: restart-registry.sh sh -n" sh -n \
            "$WORK/configmap/restart-registry.sh"
        if command -v shellcheck >/dev/null; then
            check "kubernetes: restart-registry.sh shellcheck" shellcheck \
                -s sh "$WORK/configmap/restart-registry.sh"
        fi
    fi
else
    skip "kubernetes and compose YAML: $PYTHON cannot import yaml (apt-get install python3-yaml)"
fi

# check_cron_line USER FILE checks that FILE has one job, Sundays at 03:30,
# that runs regprune-maintenance. In /etc/cron.d the user is the sixth field.
check_cron_line() {
    local user=$1 file=$2 line
    line=$(grep -Ev '^[[:space:]]*(#|$|[A-Z]+=)' "$file")
    if [ "$(printf '%s\n' "$line" | wc -l)" = 1 ] &&
        printf '%s\n' "$line" | awk -v user="$user" '
            $1 == "30" && $2 == "3" && $3 == "*" && $4 == "*" && $5 == "0" &&
            (user == "" || $6 == user) &&
            / \/usr\/local\/sbin\/regprune-maintenance run / { ok = 1 }
            END { exit !ok }'; then
        pass "cron: $(basename "$file") line"
    else
        fail "cron: $(basename "$file") line" "$line"
    fi
}
check_cron_line "" "$DEPLOY/cron/crontab"
check_cron_line root "$DEPLOY/cron/regprune"

# ---------------------------------------------------------------------------
# 5. regprune-maintenance end to end.

check "maintenance.conf: parsed" env \
    REGPRUNE_REGISTRY_CONFIG="$WORK/configs/debian-default.yml" "$WRAPPER" \
    --settings "$DEPLOY/maintenance.conf" show-config

mkdir -p "$STATE_DIR"
start_registry
oci_init
skopeo_setup

make_layer base 32768
make_image base amd64 "$(date +%s)" base
for minor in 0 1 2 3; do
    make_layer "app-$minor" $((4096 + minor * 512))
    make_image "app-$minor" amd64 "$(date +%s)" base "app-$minor"
done
make_layer extra 4096
make_image extra amd64 "$(date +%s)" base extra

push base library/base:latest
for minor in 0 1 2 3; do
    push "app-$minor" "team/app:v1.$minor.0"
done

# keep-last with count=2 by version keeps v1.3.0 and v1.2.0 and deletes
# half of team/app's tags, which --max-delete-fraction 0.5 allows.
cat >"$SETTINGS" <<EOF
# Settings for the test. The environment overrides them per case.
REGPRUNE=$WORK/regprune-probe
REGPRUNE_REGISTRY_CONFIG=$REGISTRY_CONFIG
REGPRUNE_POLICY=$KEEP_LAST
REGPRUNE_ARGS="--set count=2 --set order=version"
REGPRUNE_MAX_DELETE_FRACTION=0.5
REGPRUNE_LOG=$REMOVALS_LOG
REGPRUNE_READONLY_METHOD=config
REGPRUNE_STATE_DIR=$STATE_DIR
REGPRUNE_RESTART_COMMAND='"$WORK/restart-registry"'
REGPRUNE_REGISTRY_URL=http://$REGISTRY
REGPRUNE_READY_TIMEOUT=20
EOF
printf 'function policy(repo)\n    delete(repo.tags[1]\nend\n' \
    >"$WORK/broken.lua"

# 5a. A dry run changes nothing and restarts nothing.
before=$(tree_snapshot)
run_wrapper dry-run --dry-run
check_status "dry run: exit status 0" 0 dry-run
check_equal "dry run: registry not restarted" "" "$(hook_modes)"
check_tree_unchanged "dry run" "$before"
check_read_write "dry run"
if grep -q 'delete.*v1\.0\.0' "$WORK/dry-run.out"; then
    pass "dry run: plan printed"
else
    fail "dry run: plan printed" "$(head -n 5 "$WORK/dry-run.out")"
fi

# 5b. A run with the config method.
TEST_PROBE=1 run_wrapper config-run run
check_status "config run: exit status 0" 0 config-run
check_equal "config run: restarts" "read-only read-write" "$(hook_modes)"
check_equal "config run: read-only config path" \
    "read-only $STATE_DIR/config.yml" "$(sed -n 1p "$HOOK_LOG")"
check_equal "config run: read-write config path" \
    "read-write $REGISTRY_CONFIG" "$(sed -n 2p "$HOOK_LOG")"
if has_python_yaml; then
    check "config run: read-only config has readonly.enabled true" \
        "$PYTHON" "$WORK/compare-config.py" "$REGISTRY_CONFIG" \
        "$WORK/hook-config-1.yml"
fi
check_equal "config run: read-write config is the original" \
    "$(cat "$REGISTRY_CONFIG")" "$(cat "$WORK/hook-config-2.yml")"
check_equal "config run: manifest PUT during prune is 405" 405 \
    "$(contents "$WORK/probe-put-status")"
if [ -f "$WORK/probe-push-status" ] &&
    [ "$(contents "$WORK/probe-push-status")" != 0 ]; then
    pass "config run: skopeo push during prune fails"
else
    fail "config run: skopeo push during prune fails" \
        "$(contents "$WORK/probe-push.log")"
fi
check_equal "config run: regprune arguments" \
    "--config $STATE_DIR/config.yml prune --policy $KEEP_LAST --max-delete-fraction 0.5 --log $REMOVALS_LOG --set count=2 --set order=version" \
    "$(cat "$WORK/probe-args")"
check_read_write "config run"
if [ ! -e "$STATE_DIR/config.yml" ]; then
    pass "config run: read-only copy removed"
else
    fail "config run: read-only copy removed"
fi
check_equal "config run: removal log lists the deleted tags" \
    "team/app:v1.0.0 team/app:v1.1.0" \
    "$(jq -r 'select(.kind == "tag") | "\(.repository):\(.tag)"' \
        "$REMOVALS_LOG" 2>&1 | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')"
for ref in team/app:v1.2.0 team/app:v1.3.0 library/base:latest; do
    check "config run: $ref pulls" pull_and_verify "$ref"
done
for tag in v1.0.0 v1.1.0; do
    check_equal "config run: team/app:$tag is gone" 404 \
        "$(manifest_status team/app "$tag")"
done
check "config run: push after the run" push extra team/app:pushed-after
check "config run: regprune check" "$REGPRUNE" --config "$REGISTRY_CONFIG" \
    check -q

# 5c. A broken policy: regprune exits 1 and the registry is read-write.
before=$(tree_snapshot)
: >"$HOOK_LOG"
REGPRUNE_POLICY=$WORK/broken.lua run_wrapper broken-policy run
check_status "broken policy: exit status 1" 1 broken-policy
check_equal "broken policy: restarts" "read-only read-write" "$(hook_modes)"
check_message "broken policy: message says what to do" broken-policy \
    "failed and deleted nothing"
check_read_write "broken policy"
check_tree_unchanged "broken policy" "$before"

# 5d. A tripped breaker: count=1 would delete 2 of team/app's 3 tags.
: >"$HOOK_LOG"
REGPRUNE_ARGS="--set count=1 --set order=version" run_wrapper breaker run
check_status "breaker: exit status 1" 1 breaker
check_equal "breaker: restarts" "read-only read-write" "$(hook_modes)"
check_read_write "breaker"
check_tree_unchanged "breaker" "$before"

# 5e. The switch to read-only fails: regprune does not run.
: >"$HOOK_LOG"
touch "$WORK/fail-read-only"
run_wrapper switch-fails run
rm -f "$WORK/fail-read-only"
check_status "read-only switch fails: exit status 4" 4 switch-fails
check_equal "read-only switch fails: restarts" "read-only read-write" \
    "$(hook_modes)"
if [ ! -e "$WORK/probe-args" ]; then
    pass "read-only switch fails: regprune not run"
else
    fail "read-only switch fails: regprune not run"
fi
check_read_write "read-only switch fails"
check_tree_unchanged "read-only switch fails" "$before"

# 5f. SIGTERM while regprune runs: regprune is stopped, then the registry
# is switched back.
: >"$HOOK_LOG"
rm -f "$WORK"/probe-*
WRAPPER_STATUS=0
TEST_SLEEP=30 "$WRAPPER" --settings "$SETTINGS" run \
    >"$WORK/sigterm.out" 2>"$WORK/sigterm.err" &
wrapper_pid=$!
for _ in $(seq 1 200); do
    [ -e "$WORK/probe-args" ] && break
    sleep 0.1
done
started=$(date +%s)
kill -TERM "$wrapper_pid"
wait "$wrapper_pid" || WRAPPER_STATUS=$?
check_status "SIGTERM: exit status 143" 143 sigterm
check_equal "SIGTERM: restarts" "read-only read-write" "$(hook_modes)"
if [ $(($(date +%s) - started)) -lt 25 ]; then
    pass "SIGTERM: regprune stopped at once"
else
    fail "SIGTERM: regprune stopped at once"
fi
check_read_write "SIGTERM"
check_tree_unchanged "SIGTERM" "$before"

# 5g. A second run while the lock is held changes nothing.
: >"$HOOK_LOG"
exec 8>>"$STATE_DIR/maintenance.lock"
flock -n 8
run_wrapper locked run
exec 8>&-
check_status "lock held: exit status 75" 75 locked
check_equal "lock held: registry not restarted" "" "$(hook_modes)"

# 5h. prune on its own fails while the registry was not switched.
run_wrapper prune-alone prune
check_status "prune without read-only: exit status 4" 4 prune-alone
check_equal "prune without read-only: regprune not run" "" \
    "$(contents "$WORK/probe-args")"

# 5i. The three steps of regprune.service, with a policy that fails: the
# registry stays read-only until read-write runs, as ExecStopPost does.
: >"$HOOK_LOG"
run_wrapper step-read-only read-only
check_status "unit steps: read-only exit status 0" 0 step-read-only
check_equal "unit steps: read-only (manifest PUT 405)" 405 "$(put_status)"
REGPRUNE_POLICY=$WORK/broken.lua run_wrapper step-prune prune
check_status "unit steps: failing prune exit status 1" 1 step-prune
check_equal "unit steps: still read-only after prune" 405 "$(put_status)"
run_wrapper step-read-write read-write
check_status "unit steps: read-write exit status 0" 0 step-read-write
check_equal "unit steps: restarts" "read-only read-write" "$(hook_modes)"
check_read_write "unit steps"
check_tree_unchanged "unit steps" "$before"

# 5j. A run with the env method deletes team/app:pushed-after, which is not
# a version and so ranks last.
: >"$HOOK_LOG"
rm -f "$WORK"/hook-config-* "$WORK"/hook-env-*
REGPRUNE_READONLY_METHOD=env TEST_PROBE=1 run_wrapper env-run run
check_status "env run: exit status 0" 0 env-run
check_equal "env run: restarts" "read-only read-write" "$(hook_modes)"
check_equal "env run: environment file during read-only" \
    "REGISTRY_STORAGE_MAINTENANCE_READONLY='{enabled: true}'" \
    "$(contents "$WORK/hook-env-1")"
# systemd reads EnvironmentFile= with the same parser as environment.d
# files, and its environment.d generator prints what it parsed, quoted.
env_generator=/usr/lib/systemd/user-environment-generators/30-systemd-environment-d-generator
if [ -x "$env_generator" ] && [ -f "$WORK/hook-env-1" ]; then
    mkdir -p "$WORK/xdg/environment.d"
    cp "$WORK/hook-env-1" "$WORK/xdg/environment.d/registry.conf"
    check_equal "env run: systemd parses the environment file" \
        'REGISTRY_STORAGE_MAINTENANCE_READONLY="{enabled: true}"' \
        "$(env -i XDG_CONFIG_HOME="$WORK/xdg" "$env_generator" 2>&1 |
            grep '^REGISTRY_' || true)"
else
    skip "env run: systemd's environment.d generator is not installed"
fi
if [ ! -e "$WORK/hook-env-2" ]; then
    pass "env run: environment file removed for read-write"
else
    fail "env run: environment file removed for read-write"
fi
for n in 1 2; do
    check_equal "env run: restart $n gets the original config" \
        "$(cat "$REGISTRY_CONFIG")" "$(contents "$WORK/hook-config-$n.yml")"
done
check_equal "env run: manifest PUT during prune is 405" 405 \
    "$(contents "$WORK/probe-put-status")"
check_equal "env run: regprune sees the variable" \
    "REGISTRY_STORAGE_MAINTENANCE_READONLY={enabled: true}" \
    "$(contents "$WORK/probe-env")"
if ! grep -q "readonly is not enabled" "$WORK/env-run.err"; then
    pass "env run: regprune does not warn"
else
    fail "env run: regprune does not warn" "$(show_output env-run)"
fi
check_read_write "env run"
check_equal "env run: team/app:pushed-after is gone" 404 \
    "$(manifest_status team/app pushed-after)"
check "env run: team/app:v1.3.0 pulls" pull_and_verify team/app:v1.3.0

# 5k. REGPRUNE_USER runs regprune as another user through setpriv.
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
    # The stand-in writes its records to a directory the user nobody can
    # write to.
    chmod 755 "$WORK"
    mkdir -m 1777 "$WORK/shared"
    # Copies of regprune and the policy, because the user nobody cannot
    # enter every source tree's directory (a clone under /root, say).
    cp "$REGPRUNE" "$KEEP_LAST" "$WORK/shared/"
    chmod 755 "$WORK/shared/$(basename "$REGPRUNE")"
    chmod 644 "$WORK/shared/$(basename "$KEEP_LAST")"
    TEST_WORK=$WORK/shared TEST_REGPRUNE=$WORK/shared/$(basename "$REGPRUNE") \
        REGPRUNE_POLICY=$WORK/shared/$(basename "$KEEP_LAST") \
        REGPRUNE_USER=nobody run_wrapper other-user --dry-run
    check_status "REGPRUNE_USER: dry run exit status 0" 0 other-user
    check_equal "REGPRUNE_USER: regprune runs as nobody" nobody \
        "$(contents "$WORK/shared/probe-user")"
else
    skip "REGPRUNE_USER: needs root and the user nobody"
fi

report_summary
if [ "$FAILED" -ne 0 ]; then
    exit 1
fi
