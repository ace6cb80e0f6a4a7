#!/bin/bash
# Validates the JSON that regprune writes against the schemas in docs/.
# report.schema.json covers prune, delete, gc, apply and --plan-out,
# inventory.schema.json covers ls, and check.schema.json covers check.
# The documents come from real runs on trees that build/mkregistry
# writes: the sample scenario, and a damaged tree with a frozen repository
# and problems outside any repository. Each schema must also reject a few
# broken documents, so that a schema that accepts anything fails here.
#
# Needs Debian's python3-jsonschema (PYTHON overrides the interpreter,
# default /usr/bin/python3). REGPRUNE and MKREGISTRY override the
# binaries. Prints PASS or FAIL per check and ends with "N passed, M failed".
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
REGPRUNE=${REGPRUNE:-$top/regprune}
MKREGISTRY=${MKREGISTRY:-$top/build/mkregistry}
PYTHON=${PYTHON:-/usr/bin/python3}
SCHEMAS=$top/docs
NOW=1764806400 # 2025-12-04T00:00:00Z, the clock of the trees below
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

if ! "$PYTHON" -c 'import jsonschema' 2>/dev/null; then
    echo "FAIL setup: $PYTHON cannot import jsonschema; install the Debian" \
        "package python3-jsonschema, or set PYTHON"
    echo "0 passed, 1 failed"
    exit 1
fi
for tool in "$REGPRUNE" "$MKREGISTRY"; do
    if [ ! -x "$tool" ]; then
        echo "FAIL setup: $tool is missing; run make first"
        echo "0 passed, 1 failed"
        exit 1
    fi
done

# validate SCHEMA DOCUMENT: print nothing and succeed when DOCUMENT is
# valid. Otherwise print the first errors and fail.
validate() {
    "$PYTHON" - "$1" "$2" <<'PY'
import json
import sys

import jsonschema

with open(sys.argv[1]) as f:
    schema = json.load(f)
try:
    with open(sys.argv[2]) as f:
        document = json.load(f)
except ValueError as e:
    print(f"not JSON: {e}")
    sys.exit(1)
validator = jsonschema.Draft202012Validator(schema)
errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
for error in errors[:3]:
    where = "/".join(str(p) for p in error.absolute_path) or "(top)"
    print(f"{where}: {error.message[:300]}")
sys.exit(1 if errors else 0)
PY
}

# run_case NAME SCHEMA EXPECTED_STATUS ARGS...: run regprune with ARGS,
# check its exit status, and validate its stdout against SCHEMA.
run_case() {
    local name=$1 schema=$2 expected=$3 rc errors
    shift 3
    "$REGPRUNE" "$@" >"$work/$name.json" 2>"$work/$name.err"
    rc=$?
    if [ "$rc" -ne "$expected" ]; then
        fail "$name" "exit status $rc, expected $expected; stderr:" \
            "$(head -c 600 "$work/$name.err")"
        return
    fi
    if errors=$(validate "$SCHEMAS/$schema" "$work/$name.json"); then
        pass "$name"
    else
        fail "$name" "$errors"
    fi
}

# expect_invalid NAME SCHEMA DOCUMENT EXPRESSION: the schema must reject
# DOCUMENT after the Python EXPRESSION changes it (the variable d).
expect_invalid() {
    local name=$1 schema=$2
    "$PYTHON" - "$3" "$4" >"$work/$name.json" <<'PY'
import json
import sys

with open(sys.argv[1]) as f:
    d = json.load(f)
exec(sys.argv[2])
print(json.dumps(d))
PY
    if validate "$SCHEMAS/$schema" "$work/$name.json" >/dev/null; then
        fail "$name" "the schema accepts a document with: $4"
    else
        pass "$name"
    fi
}

for schema in report inventory check; do
    if "$PYTHON" -c '
import json, sys, jsonschema
jsonschema.Draft202012Validator.check_schema(json.load(open(sys.argv[1])))
' "$SCHEMAS/$schema.schema.json" 2>"$work/schema.err"; then
        pass "schema $schema.schema.json is valid"
    else
        fail "schema $schema.schema.json is valid" "$(tail -3 "$work/schema.err")"
    fi
done

# The sample scenario: shared layers, indexes, untagged manifests and an
# abandoned upload, all readable.
sample=$work/sample
if ! "$MKREGISTRY" -q --now "$NOW" --scenario sample "$sample" \
    >"$work/mk.out" 2>&1; then
    fail "build sample tree" "$(cat "$work/mk.out")"
fi
policy=$top/policies/keep-last.lua

run_case ls inventory.schema.json 0 --root "$sample" ls --json
run_case ls-one-repository inventory.schema.json 0 \
    --root "$sample" ls --json team/api
run_case prune-dry-run report.schema.json 0 --root "$sample" prune \
    --policy "$policy" --set count=2 --now "$NOW" --dry-run --json
run_case prune-by-version report.schema.json 0 --root "$sample" prune \
    --policy "$policy" --set count=1 --set order=version --now "$NOW" \
    --dry-run --json team/api
run_case delete-dry-run report.schema.json 0 --root "$sample" delete \
    --dry-run --json team/api:v1.9.0 team/worker:0.9
run_case gc-dry-run report.schema.json 0 --root "$sample" gc --dry-run \
    --json
run_case gc-untagged-dry-run report.schema.json 0 --root "$sample" gc \
    --untagged --grace 0 --dry-run --json
run_case check check.schema.json 0 --root "$sample" check --json
run_case check-verify check.schema.json 0 --root "$sample" check --verify \
    --json

# An inventory written by ls --json, evaluated without the registry.
cp "$work/ls.json" "$work/inventory.json"
run_case prune-inventory report.schema.json 0 --inventory \
    "$work/inventory.json" prune --policy "$policy" --set count=1 \
    --now "$NOW" --json
run_case ls-inventory inventory.schema.json 0 --inventory \
    "$work/inventory.json" ls --json

# Runs that delete, on copies of the sample tree.
cp -a "$sample" "$work/prune-copy"
run_case prune-real report.schema.json 0 --root "$work/prune-copy" prune \
    --policy "$policy" --set count=1 --now "$NOW" --json
cp -a "$sample" "$work/delete-copy"
run_case delete-real report.schema.json 0 --root "$work/delete-copy" \
    delete --json team/api:v1.9.0
cp -a "$sample" "$work/gc-copy"
run_case gc-real report.schema.json 0 --root "$work/gc-copy" gc \
    --untagged --grace 0 --json

# A reviewed plan (--plan-out) is a report too, and so is what apply
# writes when it carries the plan out into a trash.
cp -a "$sample" "$work/apply-copy"
mkdir "$work/trash"
run_case plan-out-stdout report.schema.json 0 --root "$work/apply-copy" \
    prune --policy "$policy" --set count=2 --now "$NOW" --dry-run --json \
    --plan-out "$work/plan.json"
if errors=$(validate "$SCHEMAS/report.schema.json" "$work/plan.json"); then
    pass "plan-out-file"
else
    fail "plan-out-file" "$errors"
fi
run_case apply-trash report.schema.json 0 --root "$work/apply-copy" \
    apply --json --trash "$work/trash" "$work/plan.json"
if grep -q '"trash": "' "$work/apply-trash.json"; then
    pass "apply-trash names the trash run"
else
    fail "apply-trash names the trash run" "no \"trash\" member"
fi

# A damaged tree: an invalid link freezes bad/app, a stray entry in the
# blob store and a symbolic link in the repositories tree are problems
# outside any repository. Every command then exits 3.
damaged=$work/damaged
cat >"$work/damaged.spec" <<'SPEC'
layer base 2K
image good/app:v1 layers=base pushed=-10d
image good/app:v2 layers=base pushed=-2d
image bad/app:v1 layers=base pushed=-10d
image bad/app:v2 pushed=-5d
raw repositories/bad/app/_manifests/tags/v1/current/link sha256:not-a-digest
raw blobs/sha256/zzz/stray not a blob
upload good/app stale started=-3d
SPEC
if ! "$MKREGISTRY" -q --now "$NOW" --spec "$work/damaged.spec" "$damaged" \
    >"$work/mk.out" 2>&1; then
    fail "build damaged tree" "$(cat "$work/mk.out")"
fi
ln -s /nonexistent "$damaged/docker/registry/v2/repositories/elsewhere"

run_case damaged-ls inventory.schema.json 3 --root "$damaged" ls --json
run_case damaged-prune report.schema.json 3 --root "$damaged" prune \
    --policy "$policy" --set count=0 --now "$NOW" --dry-run --json
run_case damaged-delete report.schema.json 3 --root "$damaged" delete \
    --dry-run --json bad/app:v2 good/app:v1
run_case damaged-gc report.schema.json 3 --root "$damaged" gc --dry-run \
    --grace 0 --json
run_case damaged-check check.schema.json 3 --root "$damaged" check \
    --verify --json

# The damaged documents must show what they were built to show, or the
# cases above prove less than they claim.
if "$PYTHON" - "$work/damaged-prune.json" <<'PY'; then
import json
import sys

d = json.load(open(sys.argv[1]))
repos = {r["name"]: r for r in d["repositories"]}
assert repos["bad/app"]["frozen"] is True, "bad/app is not frozen"
assert "frozen_reason" in repos["bad/app"], "no frozen_reason"
assert any(p["repository"] is None for p in d["problems"]), \
    "no problem outside a repository"
PY
    pass "damaged-prune shows a frozen repository and a null repository"
else
    fail "damaged-prune shows a frozen repository and a null repository" \
        "see the assertion above"
fi

# Each schema must reject documents that break it.
expect_invalid report-rejects-missing-totals report.schema.json \
    "$work/prune-dry-run.json" 'del d["totals"]'
expect_invalid report-rejects-other-version report.schema.json \
    "$work/prune-dry-run.json" 'd["regprune"] = 2'
expect_invalid report-rejects-unknown-member report.schema.json \
    "$work/prune-dry-run.json" 'd["repositories"][0]["tags"][0]["extra"] = 1'
expect_invalid report-rejects-bad-verdict report.schema.json \
    "$work/prune-dry-run.json" 'd["repositories"][0]["tags"][0]["verdict"] = "maybe"'
expect_invalid report-rejects-short-digest report.schema.json \
    "$work/prune-dry-run.json" 'd["blobs_deleted"][0]["digest"] = "sha256:abc"'
expect_invalid report-rejects-gc-tags report.schema.json \
    "$work/gc-untagged-dry-run.json" 'd["repositories"][0]["tags"] = []'
expect_invalid report-rejects-frozen-without-reason report.schema.json \
    "$work/damaged-prune.json" '[r.pop("frozen_reason", None) for r in d["repositories"]]'
expect_invalid inventory-rejects-missing-kind inventory.schema.json \
    "$work/ls.json" 'del d["repositories"][0]["tags"][0]["kind"]'
expect_invalid inventory-rejects-negative-size inventory.schema.json \
    "$work/ls.json" 'd["repositories"][0]["tags"][0]["size"] = -1'
expect_invalid check-rejects-string-count check.schema.json \
    "$work/check.json" 'd["manifests"] = "23"'

echo "$passed passed, $failed failed"
if [ "$failed" -gt 0 ]; then
    exit 1
fi
