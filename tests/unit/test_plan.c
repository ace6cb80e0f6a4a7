/*
 * Unit tests for plan.c and remove.c: small registry trees built with
 * mkregistry, scanned, given verdicts by hand as a policy would, then
 * planned, and in the last tests removed from disk.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"

#include "digest.h"
#include "log.h"
#include "plan.h"
#include "registry.h"
#include "remove.h"
#include "scan.h"
#include "timeparse.h"

#include <time.h>

#define HOUR 3600
#define DAY 86400

/* A manifest of a media type regprune does not know, written with raw. */
#define UNKNOWN_HEX                                                           \
    "abababababababababababababababababababababababababababababababab"

/* Short path buffers, so that paths built from them fit in PATH_MAX. */
struct tree {
    char dir[256];
    char root[320];
    char v2[400];
    struct registry reg;
    int scanned;
    struct plan plan;
    int planned;
};

static int setup(void **state)
{
    struct tree *t = calloc(1, sizeof(*t));

    if (!t || fixture_mkdtemp(t->dir, sizeof(t->dir)) != 0) {
        free(t);
        return -1;
    }
    fixture_path(t->root, sizeof(t->root), "%s/root", t->dir);
    fixture_path(t->v2, sizeof(t->v2), "%s/docker/registry/v2", t->root);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct tree *t = *state;

    if (t->planned)
        plan_free(&t->plan);
    if (t->scanned)
        registry_free(&t->reg);
    fixture_remove_tree(t->dir);
    free(t);
    return 0;
}

/*** building, scanning and planning ***/

static void scan(struct tree *t, int blob_store)
{
    char err[1024] = "";

    if (t->planned) {
        plan_free(&t->plan);
        t->planned = 0;
    }
    if (t->scanned)
        registry_free(&t->reg);
    t->scanned = 1;
    if (scan_open(&t->reg, t->root, err, sizeof(err)) != 0)
        fail_msg("scan_open: %s", err);
    if (scan_registry(&t->reg, err, sizeof(err)) != 0)
        fail_msg("scan_registry: %s", err);
    if (blob_store && scan_blob_store(&t->reg, err, sizeof(err)) != 0)
        fail_msg("scan_blob_store: %s", err);
}

/* Build the tree with mkregistry (clock: now) and scan it. */
static void build(struct tree *t, const char *spec, int blob_store)
{
    int rc = fixture_build(t->dir, spec, 0);

    if (rc != 0)
        fail_msg("mkregistry exited with %d for spec:\n%s", rc, spec);
    scan(t, blob_store);
}

static void plan(struct tree *t, int sweep, int untagged, int64_t grace)
{
    struct plan_options opt = {
        .sweep = sweep, .untagged = untagged, .grace = grace};

    if (t->planned)
        plan_free(&t->plan);
    plan_build(&t->reg, &opt, &t->plan);
    t->planned = 1;
}

/* Plan as prune does: no sweep, untagged manifests stay. */
static void plan_prune(struct tree *t)
{
    plan(t, 0, 0, HOUR);
}

/*** looking things up ***/

static struct repo *repo_of(struct tree *t, const char *name)
{
    struct repo *repo = registry_find_repo(&t->reg, name);

    if (!repo)
        fail_msg("repository %s not found in the scan", name);
    return repo;
}

/* The tag "REPO:TAG". */
static struct tag *tag_of(struct tree *t, const char *ref)
{
    const char *colon = strrchr(ref, ':');
    char name[256];
    struct tag *tag;

    if (!colon)
        fail_msg("%s is not REPO:TAG", ref);
    snprintf(name, sizeof(name), "%.*s", (int)(colon - ref), ref);
    tag = registry_find_tag(repo_of(t, name), colon + 1);
    if (!tag)
        fail_msg("tag %s not found in the scan", ref);
    return tag;
}

static void delete_tag(struct tree *t, const char *ref)
{
    tag_of(t, ref)->remove = 1;
}

/* Manifest id of a tag. */
static uint32_t manifest_of(struct tree *t, const char *ref)
{
    return tag_of(t, ref)->digest;
}

static const struct manifest *manifest_info(struct tree *t, uint32_t id)
{
    const struct manifest *m = t->reg.manifests[id];

    if (!m || m->state != MSTATE_OK)
        fail_msg("manifest id %u was not read", id);
    return m;
}

static uint32_t config_of(struct tree *t, const char *ref)
{
    return manifest_info(t, manifest_of(t, ref))->config;
}

/* Id of the digest whose 64 hex digits the spec wrote to v2/handles/NAME
 * with raw handles/NAME ${manifest:...} or ${layer:...}. */
static uint32_t handle_id(struct tree *t, const char *name)
{
    char rel[PATH_MAX], path[PATH_MAX], hex[DIGEST_HEX_LEN + 2];
    struct digest d;
    uint32_t id;
    FILE *f;
    size_t n;

    fixture_path(rel, sizeof(rel), "handles/%s", name);
    fixture_path(path, sizeof(path), "%s/%s", t->v2, rel);
    f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    n = fread(hex, 1, sizeof(hex) - 1, f);
    fclose(f);
    hex[n] = '\0';
    if (digest_parse_hex(hex, n, &d) != 0)
        fail_msg("%s does not hold a digest: %s", path, hex);
    id = digest_table_find(&t->reg.ids, &d);
    if (id == DIGEST_NONE)
        fail_msg("digest of handle %s is not in the scan", name);
    return id;
}

static char *hex_of(struct tree *t, uint32_t id, char hex[DIGEST_HEX_LEN + 1])
{
    digest_to_hex(&t->reg.ids.digests[id], hex);
    return hex;
}

/* revision_remove of manifest id in repo. */
static int revision_mark(struct tree *t, const char *repo_name, uint32_t id)
{
    struct repo *repo = repo_of(t, repo_name);
    long pos = registry_find_revision(repo, id);

    if (pos < 0)
        fail_msg("repository %s has no revision for id %u", repo_name, id);
    return repo->revision_remove[pos];
}

/* layer_remove of blob id's layer link in repo. */
static int layer_link_mark(struct tree *t, const char *repo_name,
                           uint32_t id)
{
    struct repo *repo = repo_of(t, repo_name);

    for (size_t i = 0; i < repo->layer_count; i++)
        if (repo->layers[i] == id)
            return repo->layer_remove[i];
    fail_msg("repository %s has no layer link for id %u", repo_name, id);
    return -1;
}

static size_t count_layer_links_removed(struct tree *t, const char *name)
{
    struct repo *repo = repo_of(t, name);
    size_t n = 0;

    for (size_t i = 0; i < repo->layer_count; i++)
        n += repo->layer_remove[i] != 0;
    return n;
}

static size_t count_revisions_removed(struct tree *t, const char *name)
{
    struct repo *repo = repo_of(t, name);
    size_t n = 0;

    for (size_t i = 0; i < repo->revision_count; i++)
        n += repo->revision_remove[i] == REV_REMOVE;
    return n;
}

static int blob_planned(struct tree *t, uint32_t id)
{
    for (size_t i = 0; i < t->plan.blob_count; i++)
        if (t->plan.blobs[i].id == id)
            return 1;
    return 0;
}

/* Every blob of a single-platform image: manifest, config, layers. */
static void expect_image_blobs_planned(struct tree *t, uint32_t id,
                                       int planned)
{
    const struct manifest *m = manifest_info(t, id);

    if (blob_planned(t, id) != planned)
        fail_msg("manifest blob %u: planned %d, expected %d", id, !planned,
                 planned);
    if (blob_planned(t, m->config) != planned)
        fail_msg("config blob %u: planned %d, expected %d", m->config,
                 !planned, planned);
    for (size_t i = 0; i < m->layer_count; i++)
        if (blob_planned(t, m->layers[i]) != planned)
            fail_msg("layer blob %u: planned %d, expected %d", m->layers[i],
                     !planned, planned);
}

/* Every layer link (config included) of an image in repo. */
static void expect_image_links_removed(struct tree *t, const char *repo,
                                       uint32_t id, int removed)
{
    const struct manifest *m = manifest_info(t, id);

    if (layer_link_mark(t, repo, m->config) != removed)
        fail_msg("%s: config link of manifest %u: removed %d, expected %d",
                 repo, id, !removed, removed);
    for (size_t i = 0; i < m->layer_count; i++)
        if (layer_link_mark(t, repo, m->layers[i]) != removed)
            fail_msg("%s: layer link %u of manifest %u: removed %d, "
                     "expected %d",
                     repo, m->layers[i], id, !removed, removed);
}

/* 1 when v2/REL exists. */
static int on_disk(struct tree *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int on_disk(struct tree *t, const char *fmt, ...)
{
    char rel[PATH_MAX];
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(rel, sizeof(rel), fmt, ap) >= (int)sizeof(rel))
        fail_msg("path too long");
    va_end(ap);
    return fixture_exists(t->v2, rel);
}

static int blob_on_disk(struct tree *t, uint32_t id)
{
    char hex[DIGEST_HEX_LEN + 1];

    hex_of(t, id, hex);
    return on_disk(t, "blobs/sha256/%.2s/%s/data", hex, hex);
}

/*** shared layers ***/

static const char shared_layer_spec[] =
    "layer base 4K\n"
    "layer app 3K\n"
    "image team/app:v1 layers=base,app pushed=-3d\n"
    "image team/app:v2 pushed=-1d\n"
    "image other/svc:v1 layers=base pushed=-2d\n"
    "raw handles/base ${layer:base}\n"
    "raw handles/app ${layer:app}\n";

static void test_plan_shared_layer_blob_kept(void **state)
{
    struct tree *t = *state;
    uint32_t base, app;

    build(t, shared_layer_spec, 0);
    base = handle_id(t, "base");
    app = handle_id(t, "app");
    delete_tag(t, "team/app:v1");
    plan_prune(t);

    /* team/app loses its link to base, but other/svc still needs it. */
    assert_int_equal(layer_link_mark(t, "team/app", base), 1);
    assert_int_equal(layer_link_mark(t, "other/svc", base), 0);
    assert_false(blob_planned(t, base));
    assert_int_equal(layer_link_mark(t, "team/app", app), 1);
    assert_true(blob_planned(t, app));
}

static void test_plan_shared_layer_revisions(void **state)
{
    struct tree *t = *state;

    build(t, shared_layer_spec, 0);
    delete_tag(t, "team/app:v1");
    plan_prune(t);

    assert_int_equal(revision_mark(t, "team/app",
                                   manifest_of(t, "team/app:v1")),
                     REV_REMOVE);
    assert_int_equal(revision_mark(t, "team/app",
                                   manifest_of(t, "team/app:v2")),
                     REV_STAYS);
    assert_int_equal(revision_mark(t, "other/svc",
                                   manifest_of(t, "other/svc:v1")),
                     REV_STAYS);
    assert_int_equal(count_layer_links_removed(t, "other/svc"), 0);
    expect_image_links_removed(t, "team/app", manifest_of(t, "team/app:v2"),
                               0);
}

static void test_plan_shared_layer_counts(void **state)
{
    struct tree *t = *state;

    build(t, shared_layer_spec, 0);
    delete_tag(t, "team/app:v1");
    plan_prune(t);

    assert_int_equal(t->plan.tags_deleted, 1);
    assert_int_equal(t->plan.tags_kept, 2);
    assert_int_equal(t->plan.manifests_deleted, 1);
    /* v1's config, app and base links of team/app. */
    assert_int_equal(t->plan.layer_links_deleted, 3);
    assert_int_equal(t->plan.uploads_deleted, 0);
}

/* The blob list names exactly v1's manifest, config and own layer, and
 * bytes_freed is the sum of their sizes on disk. */
static void test_plan_blob_list_and_bytes(void **state)
{
    struct tree *t = *state;
    uint32_t v1, config, app;
    long long expected = 0;

    build(t, shared_layer_spec, 0);
    v1 = manifest_of(t, "team/app:v1");
    config = config_of(t, "team/app:v1");
    app = handle_id(t, "app");
    delete_tag(t, "team/app:v1");
    plan_prune(t);

    assert_int_equal(t->plan.blob_count, 3);
    assert_true(blob_planned(t, v1));
    assert_true(blob_planned(t, config));
    assert_true(blob_planned(t, app));
    for (size_t i = 0; i < t->plan.blob_count; i++) {
        long long size = scan_blob_size(&t->reg, t->plan.blobs[i].id, NULL);
        assert_true(size > 0);
        assert_int_equal(t->plan.blobs[i].size, size);
        expected += size;
    }
    assert_int_equal(t->plan.bytes_freed, expected);
    /* The layer was declared as 3 KiB. */
    assert_int_equal(scan_blob_size(&t->reg, app, NULL), 3072);
}

static void test_plan_nothing_deleted_nothing_planned(void **state)
{
    struct tree *t = *state;

    build(t, shared_layer_spec, 0);
    plan_prune(t);

    assert_int_equal(t->plan.blob_count, 0);
    assert_int_equal(t->plan.bytes_freed, 0);
    assert_int_equal(t->plan.manifests_deleted, 0);
    assert_int_equal(t->plan.layer_links_deleted, 0);
    assert_int_equal(t->plan.tags_kept, 3);
    assert_int_equal(t->plan.tags_deleted, 0);
}

/*** several tags on one manifest ***/

static const char alias_spec[] =
    "image team/app:v1 pushed=-3d\n"
    "alias team/app:latest team/app:v1 pushed=-2d\n"
    "image team/app:v2 pushed=-1d\n";

static void test_plan_two_tags_one_digest_revision_stays(void **state)
{
    struct tree *t = *state;
    uint32_t v1;

    build(t, alias_spec, 0);
    v1 = manifest_of(t, "team/app:v1");
    assert_int_equal(manifest_of(t, "team/app:latest"), v1);
    delete_tag(t, "team/app:v1");
    plan_prune(t);

    assert_int_equal(revision_mark(t, "team/app", v1), REV_STAYS);
    assert_int_equal(t->plan.tags_deleted, 1);
    assert_int_equal(t->plan.manifests_deleted, 0);
    assert_int_equal(t->plan.layer_links_deleted, 0);
    assert_int_equal(t->plan.blob_count, 0);
}

static void test_plan_two_tags_one_digest_both_deleted(void **state)
{
    struct tree *t = *state;
    uint32_t v1;

    build(t, alias_spec, 0);
    v1 = manifest_of(t, "team/app:v1");
    delete_tag(t, "team/app:v1");
    delete_tag(t, "team/app:latest");
    plan_prune(t);

    assert_int_equal(revision_mark(t, "team/app", v1), REV_REMOVE);
    assert_int_equal(t->plan.tags_deleted, 2);
    assert_int_equal(t->plan.manifests_deleted, 1);
    expect_image_links_removed(t, "team/app", v1, 1);
    expect_image_blobs_planned(t, v1, 1);
}

/*** indexes ***/

static const char index_spec[] =
    "image team/app@arm platform=linux/arm64/v8 pushed=-2d\n"
    "image team/app@amd platform=linux/amd64 pushed=-2d\n"
    "index team/app:multi children=arm,amd format=oci pushed=-2d\n"
    "image team/app:plain pushed=-1d\n"
    "raw handles/arm ${manifest:team/app@arm}\n"
    "raw handles/amd ${manifest:team/app@amd}\n";

static void test_plan_index_children_kept_with_index(void **state)
{
    struct tree *t = *state;
    uint32_t arm, amd;

    build(t, index_spec, 1);
    arm = handle_id(t, "arm");
    amd = handle_id(t, "amd");
    /* Even gc --untagged keeps children the tagged index reaches. */
    plan(t, 1, 1, HOUR);

    assert_int_equal(revision_mark(t, "team/app", arm), REV_STAYS);
    assert_int_equal(revision_mark(t, "team/app", amd), REV_STAYS);
    assert_int_equal(revision_mark(t, "team/app",
                                   manifest_of(t, "team/app:multi")),
                     REV_STAYS);
    assert_int_equal(count_layer_links_removed(t, "team/app"), 0);
    assert_int_equal(t->plan.blob_count, 0);
}

static void test_plan_index_children_removed_with_index(void **state)
{
    struct tree *t = *state;
    uint32_t arm, amd, multi;

    build(t, index_spec, 0);
    arm = handle_id(t, "arm");
    amd = handle_id(t, "amd");
    multi = manifest_of(t, "team/app:multi");
    delete_tag(t, "team/app:multi");
    plan_prune(t);

    assert_int_equal(revision_mark(t, "team/app", multi), REV_REMOVE);
    assert_int_equal(revision_mark(t, "team/app", arm), REV_REMOVE);
    assert_int_equal(revision_mark(t, "team/app", amd), REV_REMOVE);
    assert_int_equal(revision_mark(t, "team/app",
                                   manifest_of(t, "team/app:plain")),
                     REV_STAYS);
    assert_int_equal(t->plan.manifests_deleted, 3);
    expect_image_links_removed(t, "team/app", arm, 1);
    expect_image_links_removed(t, "team/app", amd, 1);
    expect_image_links_removed(t, "team/app",
                               manifest_of(t, "team/app:plain"), 0);
    assert_true(blob_planned(t, multi));
    expect_image_blobs_planned(t, arm, 1);
    expect_image_blobs_planned(t, amd, 1);
    expect_image_blobs_planned(t, manifest_of(t, "team/app:plain"), 0);
}

static const char shared_child_spec[] =
    "image team/app@arm platform=linux/arm64 pushed=-3d\n"
    "image team/app@amd platform=linux/amd64 pushed=-3d\n"
    "image team/app@s390 platform=linux/s390x pushed=-1d\n"
    "index team/app:old children=arm,amd pushed=-3d\n"
    "index team/app:new children=amd,s390 pushed=-1d\n"
    "raw handles/arm ${manifest:team/app@arm}\n"
    "raw handles/amd ${manifest:team/app@amd}\n"
    "raw handles/s390 ${manifest:team/app@s390}\n";

static void test_plan_child_shared_with_kept_index_stays(void **state)
{
    struct tree *t = *state;
    uint32_t arm, amd, s390;

    build(t, shared_child_spec, 0);
    arm = handle_id(t, "arm");
    amd = handle_id(t, "amd");
    s390 = handle_id(t, "s390");
    delete_tag(t, "team/app:old");
    plan_prune(t);

    assert_int_equal(revision_mark(t, "team/app",
                                   manifest_of(t, "team/app:old")),
                     REV_REMOVE);
    assert_int_equal(revision_mark(t, "team/app", arm), REV_REMOVE);
    assert_int_equal(revision_mark(t, "team/app", amd), REV_STAYS);
    assert_int_equal(revision_mark(t, "team/app", s390), REV_STAYS);
    expect_image_links_removed(t, "team/app", arm, 1);
    expect_image_links_removed(t, "team/app", amd, 0);
    expect_image_blobs_planned(t, arm, 1);
    expect_image_blobs_planned(t, amd, 0);
    expect_image_blobs_planned(t, s390, 0);
}

/* A manifest named for deletion (delete REPO@DIGEST) that a remaining
 * index lists stays, and the run records why. */
static void test_plan_forced_child_of_kept_index_stays(void **state)
{
    struct tree *t = *state;
    struct repo *repo;
    uint32_t arm;
    size_t problems;

    build(t, index_spec, 0);
    arm = handle_id(t, "arm");
    repo = repo_of(t, "team/app");
    repo->revision_remove = calloc(repo->revision_count + 1, 1);
    assert_non_null(repo->revision_remove);
    repo->revision_remove[registry_find_revision(repo, arm)] = REV_FORCED;
    problems = t->reg.problem_count;
    plan_prune(t);

    assert_int_equal(revision_mark(t, "team/app", arm), REV_STAYS);
    assert_int_equal(t->reg.problem_count, problems + 1);
    assert_non_null(strstr(t->reg.problems[problems].message, "stays"));
    expect_image_blobs_planned(t, arm, 0);
}

static void test_plan_forced_untagged_manifest_removed(void **state)
{
    struct tree *t = *state;
    struct repo *repo;
    uint32_t old;

    build(t,
          "image team/app:v1 pushed=-3d\n"
          "image team/app@old pushed=-2d\n"
          "raw handles/old ${manifest:team/app@old}\n",
          0);
    old = handle_id(t, "old");
    repo = repo_of(t, "team/app");
    repo->revision_remove = calloc(repo->revision_count + 1, 1);
    assert_non_null(repo->revision_remove);
    repo->revision_remove[registry_find_revision(repo, old)] = REV_FORCED;
    plan_prune(t);

    assert_int_equal(revision_mark(t, "team/app", old), REV_REMOVE);
    expect_image_blobs_planned(t, old, 1);
    expect_image_blobs_planned(t, manifest_of(t, "team/app:v1"), 0);
}

/*** untagged manifests and the grace period ***/

static const char untagged_spec[] =
    "image team/app:v1 pushed=-10d\n"
    "image team/app@old pushed=-2d\n"
    "image team/app@fresh pushed=-10m\n"
    "raw handles/old ${manifest:team/app@old}\n"
    "raw handles/fresh ${manifest:team/app@fresh}\n";

static void test_plan_untagged_stay_in_prune(void **state)
{
    struct tree *t = *state;

    build(t, untagged_spec, 0);
    delete_tag(t, "team/app:v1");
    plan_prune(t);

    assert_int_equal(revision_mark(t, "team/app",
                                   manifest_of(t, "team/app:v1")),
                     REV_REMOVE);
    assert_int_equal(revision_mark(t, "team/app", handle_id(t, "old")),
                     REV_STAYS);
    assert_int_equal(revision_mark(t, "team/app", handle_id(t, "fresh")),
                     REV_STAYS);
    expect_image_blobs_planned(t, handle_id(t, "old"), 0);
    expect_image_blobs_planned(t, handle_id(t, "fresh"), 0);
}

static void test_plan_untagged_stay_in_gc_without_flag(void **state)
{
    struct tree *t = *state;

    build(t, untagged_spec, 1);
    plan(t, 1, 0, HOUR);

    assert_int_equal(count_revisions_removed(t, "team/app"), 0);
    assert_int_equal(t->plan.blob_count, 0);
}

static void test_plan_untagged_gc_older_than_grace(void **state)
{
    struct tree *t = *state;
    uint32_t old, fresh;

    build(t, untagged_spec, 1);
    old = handle_id(t, "old");
    fresh = handle_id(t, "fresh");
    plan(t, 1, 1, HOUR);

    assert_int_equal(revision_mark(t, "team/app", old), REV_REMOVE);
    assert_int_equal(revision_mark(t, "team/app", fresh), REV_STAYS);
    assert_int_equal(revision_mark(t, "team/app",
                                   manifest_of(t, "team/app:v1")),
                     REV_STAYS);
    expect_image_links_removed(t, "team/app", old, 1);
    expect_image_links_removed(t, "team/app", fresh, 0);
    expect_image_blobs_planned(t, old, 1);
    expect_image_blobs_planned(t, fresh, 0);
    expect_image_blobs_planned(t, manifest_of(t, "team/app:v1"), 0);
    assert_int_equal(t->plan.tags_deleted, 0);
}

static void test_plan_untagged_gc_longer_grace(void **state)
{
    struct tree *t = *state;

    build(t, untagged_spec, 1);
    plan(t, 1, 1, 3 * DAY);

    assert_int_equal(revision_mark(t, "team/app", handle_id(t, "old")),
                     REV_STAYS);
    assert_int_equal(count_revisions_removed(t, "team/app"), 0);
    assert_int_equal(t->plan.blob_count, 0);
}

/* The age is the revision link's mtime, not the push in the spec. */
static void test_plan_untagged_gc_uses_link_mtime(void **state)
{
    struct tree *t = *state;
    char spec[1024];

    snprintf(spec, sizeof(spec),
             "%stouch repositories/team/app/_manifests/revisions/sha256/"
             "${manifest:team/app@fresh}/link -5d\n",
             untagged_spec);
    build(t, spec, 1);
    plan(t, 1, 1, HOUR);

    assert_int_equal(revision_mark(t, "team/app", handle_id(t, "fresh")),
                     REV_REMOVE);
    assert_int_equal(revision_mark(t, "team/app", handle_id(t, "old")),
                     REV_REMOVE);
}

/*** layer links ***/

static const char layer_link_spec[] =
    "layer base 4K\n"
    "layer older 3K\n"
    "layer newer 3K\n"
    "image team/app:v1 layers=base,older pushed=-3d\n"
    "image team/app:v2 layers=base,newer pushed=-2d\n"
    "image team/app@keeper layers=older pushed=-2d\n"
    "raw handles/base ${layer:base}\n"
    "raw handles/older ${layer:older}\n"
    "raw handles/newer ${layer:newer}\n"
    "raw handles/keeper ${manifest:team/app@keeper}\n";

static void test_plan_layer_link_kept_while_referenced(void **state)
{
    struct tree *t = *state;
    uint32_t base, older, newer;

    build(t, layer_link_spec, 0);
    base = handle_id(t, "base");
    older = handle_id(t, "older");
    newer = handle_id(t, "newer");
    delete_tag(t, "team/app:v1");
    plan_prune(t);

    /* v2 uses base. The untagged manifest, which prune keeps, uses older. */
    assert_int_equal(layer_link_mark(t, "team/app", base), 0);
    assert_int_equal(layer_link_mark(t, "team/app", older), 0);
    assert_int_equal(layer_link_mark(t, "team/app", newer), 0);
    assert_int_equal(layer_link_mark(t, "team/app",
                                     config_of(t, "team/app:v1")),
                     1);
    assert_int_equal(t->plan.layer_links_deleted, 1);
    assert_false(blob_planned(t, base));
    assert_false(blob_planned(t, older));
    assert_true(blob_planned(t, config_of(t, "team/app:v1")));
}

static void test_plan_layer_link_removed_with_last_user(void **state)
{
    struct tree *t = *state;
    uint32_t older;

    build(t, layer_link_spec, 1);
    older = handle_id(t, "older");
    delete_tag(t, "team/app:v1");
    /* gc --untagged also takes the untagged manifest that used older. */
    plan(t, 1, 1, HOUR);

    assert_int_equal(revision_mark(t, "team/app", handle_id(t, "keeper")),
                     REV_REMOVE);
    assert_int_equal(layer_link_mark(t, "team/app", older), 1);
    assert_int_equal(layer_link_mark(t, "team/app", handle_id(t, "base")),
                     0);
    assert_true(blob_planned(t, older));
    assert_false(blob_planned(t, handle_id(t, "base")));
}

/*** frozen and pinned repositories ***/

static const char frozen_spec[] =
    "layer base 4K\n"
    "image team/app:v1 layers=base created=-5d pushed=-5d\n"
    "image team/app:v2 pushed=-1d\n"
    "image frozen/app:v1 layers=base created=-5d pushed=-5d\n"
    "image frozen/app:broken pushed=-1d\n"
    "rm ${manifest-blob:frozen/app:broken}/data\n"
    "raw handles/base ${layer:base}\n";

static void test_plan_frozen_repo_loses_nothing(void **state)
{
    struct tree *t = *state;
    struct repo *frozen;

    build(t, frozen_spec, 0);
    frozen = repo_of(t, "frozen/app");
    assert_non_null(frozen->frozen);
    delete_tag(t, "frozen/app:v1");
    delete_tag(t, "frozen/app:broken");
    plan_prune(t);

    assert_false(tag_of(t, "frozen/app:v1")->remove);
    assert_false(tag_of(t, "frozen/app:broken")->remove);
    assert_int_equal(count_revisions_removed(t, "frozen/app"), 0);
    assert_int_equal(count_layer_links_removed(t, "frozen/app"), 0);
    assert_int_equal(t->plan.tags_deleted, 0);
    assert_int_equal(t->plan.blob_count, 0);
}

/* The same image in a healthy repository is deleted there, but its blobs
 * stay because the frozen repository still links it. */
static void test_plan_frozen_repo_keeps_shared_blobs(void **state)
{
    struct tree *t = *state;
    uint32_t v1;

    build(t, frozen_spec, 0);
    v1 = manifest_of(t, "team/app:v1");
    assert_int_equal(manifest_of(t, "frozen/app:v1"), v1);
    delete_tag(t, "team/app:v1");
    plan_prune(t);

    assert_int_equal(revision_mark(t, "team/app", v1), REV_REMOVE);
    expect_image_links_removed(t, "team/app", v1, 1);
    assert_int_equal(revision_mark(t, "frozen/app", v1), REV_STAYS);
    expect_image_links_removed(t, "frozen/app", v1, 0);
    expect_image_blobs_planned(t, v1, 0);
    assert_int_equal(t->plan.blob_count, 0);
}

/* A frozen repository whose own manifest is unreadable still protects
 * the blobs its layer links name. */
static void test_plan_frozen_repo_layer_links_protect(void **state)
{
    struct tree *t = *state;
    uint32_t base, solo;

    build(t,
          "layer base 4K\n"
          "layer solo 3K\n"
          "image team/app:v1 layers=base,solo pushed=-5d\n"
          "image team/app:v2 pushed=-1d\n"
          "image frozen/app:v1 layers=base pushed=-1d\n"
          "rm ${manifest-blob:frozen/app:v1}/data\n"
          "raw handles/base ${layer:base}\n"
          "raw handles/solo ${layer:solo}\n",
          0);
    base = handle_id(t, "base");
    solo = handle_id(t, "solo");
    assert_non_null(repo_of(t, "frozen/app")->frozen);
    delete_tag(t, "team/app:v1");
    plan_prune(t);

    assert_int_equal(layer_link_mark(t, "team/app", base), 1);
    assert_int_equal(layer_link_mark(t, "frozen/app", base), 0);
    assert_false(blob_planned(t, base));
    assert_true(blob_planned(t, solo));
}

static const char unknown_spec[] =
    "image team/app:v1 pushed=-3d\n"
    "image team/app:v2 pushed=-1d\n"
    "raw repositories/team/app/_manifests/revisions/sha256/" UNKNOWN_HEX
    "/link sha256:" UNKNOWN_HEX "\n"
    "raw blobs/sha256/ab/" UNKNOWN_HEX "/data {\"schemaVersion\": 2, "
    "\"mediaType\": \"application/vnd.example.unknown+json\"}\n";

static void test_plan_unknown_media_type_pins_repo(void **state)
{
    struct tree *t = *state;
    struct repo *repo;
    uint32_t v1;

    build(t, unknown_spec, 0);
    repo = repo_of(t, "team/app");
    assert_non_null(repo->pinned);
    assert_null(repo->frozen);
    v1 = manifest_of(t, "team/app:v1");
    delete_tag(t, "team/app:v1");
    plan_prune(t);

    /* The tag goes, but the revision and layer links stay. */
    assert_true(tag_of(t, "team/app:v1")->remove);
    assert_int_equal(t->plan.tags_deleted, 1);
    assert_int_equal(revision_mark(t, "team/app", v1), REV_STAYS);
    assert_int_equal(count_revisions_removed(t, "team/app"), 0);
    assert_int_equal(count_layer_links_removed(t, "team/app"), 0);
    assert_int_equal(t->plan.blob_count, 0);
}

static void test_plan_unknown_media_type_survives_gc(void **state)
{
    struct tree *t = *state;
    struct digest d;
    uint32_t unknown;

    build(t, unknown_spec, 1);
    assert_int_equal(digest_parse_hex(UNKNOWN_HEX, DIGEST_HEX_LEN, &d), 0);
    unknown = digest_table_find(&t->reg.ids, &d);
    assert_int_not_equal(unknown, DIGEST_NONE);
    plan(t, 1, 1, 0);

    assert_int_equal(revision_mark(t, "team/app", unknown), REV_STAYS);
    assert_false(blob_planned(t, unknown));
}

/*** gc sweep ***/

static void test_plan_gc_sweeps_stray_blob(void **state)
{
    struct tree *t = *state;
    static const char stray_hex[] =
        "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";
    static const char young_hex[] =
        "cececececececececececececececececececececececececececececececece";
    char spec[1024];
    struct digest d;
    uint32_t stray, young;

    snprintf(spec, sizeof(spec),
             "image team/app:v1 pushed=-3d\n"
             "raw blobs/sha256/cd/%s/data stray\n"
             "touch blobs/sha256/cd/%s/data -2d\n"
             "raw blobs/sha256/ce/%s/data young\n",
             stray_hex, stray_hex, young_hex);
    build(t, spec, 1);
    digest_parse_hex(stray_hex, DIGEST_HEX_LEN, &d);
    stray = digest_table_find(&t->reg.ids, &d);
    digest_parse_hex(young_hex, DIGEST_HEX_LEN, &d);
    young = digest_table_find(&t->reg.ids, &d);
    assert_int_not_equal(stray, DIGEST_NONE);
    assert_int_not_equal(young, DIGEST_NONE);
    plan(t, 1, 0, HOUR);

    assert_true(blob_planned(t, stray));
    assert_false(blob_planned(t, young));
    expect_image_blobs_planned(t, manifest_of(t, "team/app:v1"), 0);
    assert_int_equal(t->plan.blob_count, 1);
    assert_int_equal(t->plan.bytes_freed, 5);
}

static void test_plan_prune_does_not_sweep(void **state)
{
    struct tree *t = *state;
    static const char stray_hex[] =
        "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";
    char spec[512];

    snprintf(spec, sizeof(spec),
             "image team/app:v1 pushed=-3d\n"
             "raw blobs/sha256/cd/%s/data stray\n"
             "touch blobs/sha256/cd/%s/data -2d\n",
             stray_hex, stray_hex);
    build(t, spec, 1);
    plan_prune(t);

    assert_int_equal(t->plan.blob_count, 0);
}

/* Return the startedat text of upload i of repo, or "" when unreadable. */
static void read_startedat(struct tree *t, const char *repo, size_t i,
                           char *buf, size_t size)
{
    char path[PATH_MAX];
    FILE *f;
    size_t n;

    fixture_path(path, sizeof(path),
                 "%s/repositories/%s/_uploads/%s/startedat", t->v2, repo,
                 repo_of(t, repo)->uploads[i]);
    buf[0] = '\0';
    f = fopen(path, "r");
    if (!f)
        return;
    n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
}

static void test_plan_gc_stale_upload(void **state)
{
    struct tree *t = *state;
    struct repo *repo;
    int64_t now = (int64_t)time(NULL);

    build(t,
          "image team/app:v1\n"
          "upload team/app stale started=-2d\n"
          "upload team/app active started=-10m\n",
          1);
    repo = repo_of(t, "team/app");
    assert_int_equal(repo->upload_count, 2);
    plan(t, 1, 0, HOUR);

    assert_int_equal(t->plan.uploads_deleted, 1);
    for (size_t i = 0; i < repo->upload_count; i++) {
        char text[64];
        int64_t started;

        read_startedat(t, "team/app", i, text, sizeof(text));
        assert_int_equal(timeparse_rfc3339(text, strlen(text), &started), 0);
        assert_int_equal(repo->upload_remove[i], started < now - HOUR);
    }
}

static void test_plan_prune_keeps_uploads(void **state)
{
    struct tree *t = *state;

    build(t,
          "image team/app:v1\n"
          "upload team/app stale started=-2d\n",
          0);
    plan_prune(t);

    assert_int_equal(t->plan.uploads_deleted, 0);
    assert_int_equal(repo_of(t, "team/app")->upload_remove[0], 0);
}

/*** remove_execute ***/

static const char remove_spec[] =
    "layer base 4K\n"
    "layer app 3K\n"
    "image team/app:v1 layers=base,app pushed=-3d\n"
    "image team/app:v2 pushed=-2d\n"
    "alias team/app:latest team/app:v1 pushed=-3d\n"
    "retag team/app:latest team/app:v2 pushed=-1d\n"
    "image other/svc:v1 layers=base pushed=-2d\n"
    "raw handles/base ${layer:base}\n"
    "raw handles/app ${layer:app}\n";

static void test_remove_execute_files_left(void **state)
{
    struct tree *t = *state;
    char v1_hex[DIGEST_HEX_LEN + 1], v2_hex[DIGEST_HEX_LEN + 1];
    char config_hex[DIGEST_HEX_LEN + 1], app_hex[DIGEST_HEX_LEN + 1];
    char base_hex[DIGEST_HEX_LEN + 1];
    const char *app_dir = "repositories/team/app";
    uint32_t v1, config, app, base;

    build(t, remove_spec, 0);
    v1 = manifest_of(t, "team/app:v1");
    config = config_of(t, "team/app:v1");
    app = handle_id(t, "app");
    base = handle_id(t, "base");
    hex_of(t, v1, v1_hex);
    hex_of(t, manifest_of(t, "team/app:v2"), v2_hex);
    hex_of(t, config, config_hex);
    hex_of(t, app, app_hex);
    hex_of(t, base, base_hex);
    assert_true(on_disk(t, "%s/_manifests/tags/latest/index/sha256/%s",
                        app_dir, v1_hex));
    delete_tag(t, "team/app:v1");
    plan_prune(t);
    assert_int_equal(t->plan.blob_count, 3);

    assert_int_equal(remove_execute(&t->reg, &t->plan, NULL), 0);

    /* Tags: v1 gone, the others left. */
    assert_false(on_disk(t, "%s/_manifests/tags/v1", app_dir));
    assert_true(on_disk(t, "%s/_manifests/tags/v2/current/link", app_dir));
    assert_true(on_disk(t, "%s/_manifests/tags/latest/current/link",
                        app_dir));
    /* latest's history no longer names the removed revision. */
    assert_false(on_disk(t, "%s/_manifests/tags/latest/index/sha256/%s",
                         app_dir, v1_hex));
    assert_true(on_disk(t, "%s/_manifests/tags/latest/index/sha256/%s",
                        app_dir, v2_hex));
    /* Revisions. */
    assert_false(on_disk(t, "%s/_manifests/revisions/sha256/%s", app_dir,
                         v1_hex));
    assert_true(on_disk(t, "%s/_manifests/revisions/sha256/%s/link",
                        app_dir, v2_hex));
    /* Layer links of team/app go. other/svc keeps its link to base. */
    assert_false(on_disk(t, "%s/_layers/sha256/%s", app_dir, config_hex));
    assert_false(on_disk(t, "%s/_layers/sha256/%s", app_dir, app_hex));
    assert_false(on_disk(t, "%s/_layers/sha256/%s", app_dir, base_hex));
    assert_true(on_disk(t, "repositories/other/svc/_layers/sha256/%s/link",
                        base_hex));
    /* Blobs. */
    assert_false(blob_on_disk(t, v1));
    assert_false(blob_on_disk(t, config));
    assert_false(blob_on_disk(t, app));
    assert_false(on_disk(t, "blobs/sha256/%.2s/%s", app_hex, app_hex));
    assert_true(blob_on_disk(t, base));
    assert_true(blob_on_disk(t, manifest_of(t, "team/app:v2")));
    assert_true(blob_on_disk(t, manifest_of(t, "other/svc:v1")));
}

/* After the removal the tree scans cleanly and contains what remains. */
static void test_remove_execute_rescan_clean(void **state)
{
    struct tree *t = *state;
    struct repo *repo;

    build(t, remove_spec, 0);
    delete_tag(t, "team/app:v1");
    plan_prune(t);
    assert_int_equal(remove_execute(&t->reg, &t->plan, NULL), 0);
    assert_int_equal(t->reg.problem_count, 0);

    scan(t, 1);
    assert_int_equal(t->reg.problem_count, 0);
    repo = repo_of(t, "team/app");
    assert_null(repo->frozen);
    assert_int_equal(repo->tag_count, 2);
    assert_int_equal(repo->revision_count, 1);
    /* v2's config and its own layer. */
    assert_int_equal(repo->layer_count, 2);
    assert_int_equal(repo_of(t, "other/svc")->layer_count, 2);
    /* A gc right after finds nothing more to delete. */
    plan(t, 1, 0, HOUR);
    assert_int_equal(t->plan.blob_count, 0);
    assert_int_equal(t->plan.layer_links_deleted, 0);
}

/* A tag pushed again between scan and removal stays, and no blob goes. */
static void test_remove_execute_tag_changed_since_scan(void **state)
{
    struct tree *t = *state;
    char link[PATH_MAX], text[DIGEST_TEXT_LEN + 1];
    uint32_t v1;

    build(t, remove_spec, 0);
    v1 = manifest_of(t, "team/app:v1");
    delete_tag(t, "team/app:v1");
    plan_prune(t);
    digest_to_text(&t->reg.ids.digests[manifest_of(t, "team/app:v2")],
                   text);
    fixture_path(link, sizeof(link),
                 "%s/repositories/team/app/_manifests/tags/v1/current/link",
                 t->v2);
    assert_int_equal(fixture_write(link, text, strlen(text)), 0);

    assert_true(remove_execute(&t->reg, &t->plan, NULL) >= 1);

    assert_true(on_disk(t, "repositories/team/app/_manifests/tags/v1/"
                           "current/link"));
    assert_true(blob_on_disk(t, v1));
    assert_true(blob_on_disk(t, handle_id(t, "app")));
    assert_true(t->reg.problem_count >= 1);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        TEST(test_plan_shared_layer_blob_kept),
        TEST(test_plan_shared_layer_revisions),
        TEST(test_plan_shared_layer_counts),
        TEST(test_plan_blob_list_and_bytes),
        TEST(test_plan_nothing_deleted_nothing_planned),
        TEST(test_plan_two_tags_one_digest_revision_stays),
        TEST(test_plan_two_tags_one_digest_both_deleted),
        TEST(test_plan_index_children_kept_with_index),
        TEST(test_plan_index_children_removed_with_index),
        TEST(test_plan_child_shared_with_kept_index_stays),
        TEST(test_plan_forced_child_of_kept_index_stays),
        TEST(test_plan_forced_untagged_manifest_removed),
        TEST(test_plan_untagged_stay_in_prune),
        TEST(test_plan_untagged_stay_in_gc_without_flag),
        TEST(test_plan_untagged_gc_older_than_grace),
        TEST(test_plan_untagged_gc_longer_grace),
        TEST(test_plan_untagged_gc_uses_link_mtime),
        TEST(test_plan_layer_link_kept_while_referenced),
        TEST(test_plan_layer_link_removed_with_last_user),
        TEST(test_plan_frozen_repo_loses_nothing),
        TEST(test_plan_frozen_repo_keeps_shared_blobs),
        TEST(test_plan_frozen_repo_layer_links_protect),
        TEST(test_plan_unknown_media_type_pins_repo),
        TEST(test_plan_unknown_media_type_survives_gc),
        TEST(test_plan_gc_sweeps_stray_blob),
        TEST(test_plan_prune_does_not_sweep),
        TEST(test_plan_gc_stale_upload),
        TEST(test_plan_prune_keeps_uploads),
        TEST(test_remove_execute_files_left),
        TEST(test_remove_execute_rescan_clean),
        TEST(test_remove_execute_tag_changed_since_scan),
    };

    (void)argc;
    fixture_init(argv[0]);
    /* Corrupt-tree fixtures log warnings by design, so show only test
     * results and errors. */
    log_max_level = LOG_ERROR;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
