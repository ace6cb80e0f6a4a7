#!/usr/bin/env python3
"""Check regprune's results on the wide tree that tests/limits/run.sh builds.

The tree has one repository, wide/app, with MINORS minor versions of 100
patch tags each: v1.M.P for M in 0..MINORS-1 and P in 0..99. Tags v1.M.0 to
v1.M.98 share one image and v1.M.99 has an image of its own, so every minor
version has two manifests. Every subcommand prints one line per mismatch
and exits 1 when it finds any.

  verify.py plan REPORT POLICY MINORS KEPT_OUT
      REPORT is a prune report (--json) for POLICY, keep-last (count=10,
      order=version) or semver-patches (defaults). Checks every verdict and
      the totals, and writes the kept tags as "TAG DIGEST" lines to
      KEPT_OUT.
  verify.py same PLAN REAL
      The real run's report equals its dry run's, apart from dry_run.
  verify.py disk ROOT KEPT
      The tag directories of ROOT are exactly the kept tags, each pointing
      at its digest, and the revisions and blobs left are the kept ones.
  verify.py ls INVENTORY KEPT
      `regprune ls --json` lists exactly the kept tags, as readable images.
"""

import json
import os
import sys

REPOSITORY = "wide/app"
PATCHES = 100
# Tags v1.M.0 to v1.M.(SHARED_PATCHES - 1) share the image of v1.M.0.
SHARED_PATCHES = 99
KEEP_LAST_COUNT = 10
SEMVER_MINORS = 2


class Mismatches:
    """Mismatch messages, of which the first ten are printed."""

    SHOWN = 10

    def __init__(self):
        self.count = 0

    def add(self, message):
        self.count += 1
        if self.count <= self.SHOWN:
            print(message)
        elif self.count == self.SHOWN + 1:
            print("further mismatches are not shown")

    def expect_equal(self, label, expected, actual):
        if expected == actual:
            return
        if isinstance(expected, list) and isinstance(actual, list):
            # Lists here can have 200,000 entries, so the message shows the
            # first entry that differs rather than both lists.
            index = next((i for i, (a, b) in enumerate(zip(expected, actual))
                          if a != b), min(len(expected), len(actual)))
            first_expected = expected[index:index + 1] or "nothing"
            first_actual = actual[index:index + 1] or "nothing"
            self.add(f"{label}: {len(expected)} entries expected, "
                     f"{len(actual)} found; at index {index} expected "
                     f"{first_expected}, got {first_actual}")
            return
        self.add(f"{label}: expected {expected}, got {actual}")

    def exit(self):
        if self.count:
            print(f"{self.count} mismatches")
        sys.exit(1 if self.count else 0)


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"cannot read the JSON document {path}: {e}")


def the_repository(report, mismatches):
    names = [r["name"] for r in report["repositories"]]
    if names != [REPOSITORY]:
        mismatches.add(f"repositories: expected [{REPOSITORY}], got {names}")
        mismatches.exit()
    return report["repositories"][0]


def all_tags(minors):
    return [f"v1.{m}.{p}" for m in range(minors) for p in range(PATCHES)]


def expected_kept(policy, minors):
    """Return the set of tags the policy keeps and the number of images
    (manifests) that lose every tag."""
    if policy == "keep-last":
        newest = minors - 1
        kept = {f"v1.{newest}.{p}"
                for p in range(PATCHES - KEEP_LAST_COUNT, PATCHES)}
        # Only the newest minor keeps tags, on both of its images.
        return kept, 2 * (minors - 1)
    if policy == "semver-patches":
        kept = set()
        for m in range(minors):
            if m >= minors - SEMVER_MINORS:
                kept.update(f"v1.{m}.{p}" for p in range(PATCHES))
            else:
                kept.add(f"v1.{m}.{PATCHES - 1}")
        # Older minors lose their shared image and keep v1.M.99's.
        return kept, minors - SEMVER_MINORS
    raise SystemExit(f"verify.py: unknown policy {policy}")


def check_plan(report_path, policy, minors, kept_out):
    mismatches = Mismatches()
    report = load(report_path)
    repo = the_repository(report, mismatches)
    kept, manifests_gone = expected_kept(policy, minors)
    names = all_tags(minors)

    verdicts = {}
    digests = {}
    for tag in repo["tags"]:
        if tag["name"] in verdicts:
            mismatches.add(f"tag {tag['name']} listed twice")
        verdicts[tag["name"]] = tag["verdict"]
        digests[tag["name"]] = tag["digest"]
    mismatches.expect_equal("tags in the report", len(names), len(verdicts))
    for name in names:
        want = "keep" if name in kept else "delete"
        got = verdicts.get(name, "missing")
        if got != want:
            mismatches.add(f"tag {name}: expected {want}, got {got}")
    for name in sorted(set(verdicts) - set(names)):
        mismatches.add(f"tag {name}: not in the tree")

    # Two tags share a digest exactly when both are below v1.M.99 of the
    # same minor version.
    images = {}
    for name, digest in digests.items():
        minor, patch = (int(n) for n in name.split(".")[1:])
        image = (minor, patch < SHARED_PATCHES)
        if images.setdefault(image, digest) != digest:
            mismatches.add(f"tag {name}: digest {digest}, expected "
                           f"{images[image]} as on its image's other tags")
    mismatches.expect_equal("distinct digests", 2 * minors,
                            len(set(digests.values())))

    totals = report["totals"]
    mismatches.expect_equal("totals.tags_kept", len(kept),
                            totals["tags_kept"])
    mismatches.expect_equal("totals.tags_deleted", len(names) - len(kept),
                            totals["tags_deleted"])
    mismatches.expect_equal("totals.manifests_deleted", manifests_gone,
                            totals["manifests_deleted"])
    # Each image that goes frees its manifest and its config, and unlinks
    # its config from _layers; the shared base layer stays.
    mismatches.expect_equal("totals.layer_links_deleted", manifests_gone,
                            totals["layer_links_deleted"])
    mismatches.expect_equal("totals.blobs_deleted", 2 * manifests_gone,
                            totals["blobs_deleted"])
    mismatches.expect_equal("manifests_deleted listed", manifests_gone,
                            len(repo["manifests_deleted"]))
    mismatches.expect_equal("problems", [], report["problems"])
    mismatches.expect_equal("frozen", False, repo["frozen"])

    with open(kept_out, "w", encoding="utf-8") as f:
        for name in sorted(kept):
            f.write(f"{name} {digests.get(name, 'missing')}\n")
    mismatches.exit()


def check_same(plan_path, real_path):
    mismatches = Mismatches()
    plan = load(plan_path)
    real = load(real_path)
    mismatches.expect_equal("dry_run of the plan", True, plan.pop("dry_run"))
    mismatches.expect_equal("dry_run of the real run", False,
                            real.pop("dry_run"))
    for key in sorted(set(plan) | set(real)):
        if plan.get(key) == real.get(key):
            continue
        if key != "repositories":
            mismatches.expect_equal(key, plan.get(key), real.get(key))
            continue
        mismatches.expect_equal("number of repositories", len(plan[key]),
                                len(real[key]))
        for planned, done in zip(plan[key], real[key]):
            for field in sorted(set(planned) | set(done)):
                if field == "tags":
                    pairs = zip(planned["tags"], done["tags"])
                    for planned_tag, done_tag in pairs:
                        mismatches.expect_equal(
                            f"tag {planned_tag.get('name')}",
                            planned_tag, done_tag)
                    mismatches.expect_equal("number of tags",
                                            len(planned["tags"]),
                                            len(done["tags"]))
                else:
                    mismatches.expect_equal(f"repository field {field}",
                                            planned.get(field),
                                            done.get(field))
    mismatches.exit()


def read_kept(path):
    kept = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                name, digest = line.split()
                kept[name] = digest
    except OSError as e:
        raise SystemExit(f"cannot read the kept tags: {e}")
    return kept


def check_disk(root, kept_path):
    mismatches = Mismatches()
    kept = read_kept(kept_path)
    v2 = os.path.join(root, "docker", "registry", "v2")
    manifests = os.path.join(v2, "repositories", REPOSITORY, "_manifests")

    tags_dir = os.path.join(manifests, "tags")
    on_disk = set(os.listdir(tags_dir))
    for name in sorted(on_disk - set(kept)):
        mismatches.add(f"tag directory {name} was not removed")
    for name in sorted(set(kept) - on_disk):
        mismatches.add(f"kept tag directory {name} is missing")
    for name in sorted(on_disk & set(kept)):
        link = os.path.join(tags_dir, name, "current", "link")
        try:
            with open(link, encoding="ascii") as f:
                text = f.read()
        except OSError as e:
            mismatches.add(f"tag {name}: cannot read current/link: {e}")
            continue
        mismatches.expect_equal(f"tag {name} current/link", kept[name], text)

    revisions = {"sha256:" + hex_digest for hex_digest in os.listdir(
        os.path.join(manifests, "revisions", "sha256"))}
    mismatches.expect_equal("revisions left", sorted(set(kept.values())),
                            sorted(revisions))

    blobs = 0
    for _, _, files in os.walk(os.path.join(v2, "blobs")):
        blobs += files.count("data")
    # The base layer, and a manifest and a config for each image left.
    mismatches.expect_equal("blobs left", 1 + 2 * len(revisions), blobs)
    if os.path.exists(os.path.join(root, ".regprune.journal")):
        mismatches.add("the journal was left after a successful run")
    mismatches.exit()


def check_ls(inventory_path, kept_path):
    mismatches = Mismatches()
    kept = read_kept(kept_path)
    repo = the_repository(load(inventory_path), mismatches)
    listed = {tag["name"]: tag for tag in repo["tags"]}
    mismatches.expect_equal("tags listed", len(kept), len(listed))
    for name, digest in sorted(kept.items()):
        tag = listed.get(name)
        if tag is None:
            mismatches.add(f"tag {name} is not listed")
            continue
        mismatches.expect_equal(f"tag {name} digest", digest, tag["digest"])
        mismatches.expect_equal(f"tag {name} kind", "image", tag["kind"])
    for name in sorted(set(listed) - set(kept)):
        mismatches.add(f"tag {name} is listed but was deleted")
    mismatches.exit()


def main(argv):
    commands = {
        "plan": (4, lambda a: check_plan(a[0], a[1], int(a[2]), a[3])),
        "same": (2, lambda a: check_same(a[0], a[1])),
        "disk": (2, lambda a: check_disk(a[0], a[1])),
        "ls": (2, lambda a: check_ls(a[0], a[1])),
    }
    if len(argv) < 2 or argv[1] not in commands:
        raise SystemExit(__doc__)
    count, command = commands[argv[1]]
    if len(argv) != count + 2:
        raise SystemExit(__doc__)
    command(argv[2:])


if __name__ == "__main__":
    main(sys.argv)
