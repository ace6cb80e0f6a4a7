/*
 * Deciding what goes. From the verdicts in the tags, plan.c marks the
 * revisions, layer links, uploads and blobs that a run removes, following
 * the safety contract: nothing that a remaining tag or manifest of any
 * repository needs is marked. It never touches the disk beyond stat calls.
 */
#ifndef REGPRUNE_PLAN_H
#define REGPRUNE_PLAN_H

#include <stdint.h>

#include "registry.h"

/*
 * Values of repo->revision_remove: the plan's outcome (STAYS, REMOVE) and,
 * before planning, the roots a caller marks: FORCED for a manifest named
 * on the command line, JOURNAL for one an interrupted run meant to remove.
 */
enum { REV_STAYS = 0, REV_REMOVE = 1, REV_FORCED = 2, REV_JOURNAL = 3 };
/* Values of repo->layer_remove, likewise. */
enum { LAYER_STAYS = 0, LAYER_REMOVE = 1, LAYER_JOURNAL = 2 };

struct plan_options {
    int sweep;     /* gc: also sweep what nothing referenced at the scan */
    int untagged;  /* gc --untagged: remove manifests no tag reaches */
    int64_t grace; /* seconds; unreferenced objects younger than this stay */
};

struct plan_blob {
    uint32_t id;
    int64_t size;
};

struct plan {
    struct plan_blob *blobs;
    size_t blob_count, blob_capacity;
    int64_t bytes_freed;
    size_t tags_kept, tags_deleted, manifests_deleted, layer_links_deleted,
        uploads_deleted;
    size_t leftovers; /* half-removed directories of an interrupted run */
};

/* Allocate the per-repository plan arrays, if not done yet. */
void plan_prepare(struct registry *reg);

/*
 * Mark what goes. Tags marked remove and revisions marked REV_FORCED by the
 * caller are the roots; frozen and unselected repositories lose nothing.
 */
void plan_build(struct registry *reg, const struct plan_options *opt,
                struct plan *plan);

/*
 * Recompute which blobs something remaining needs, after the caller has
 * cleared remove marks of items that could not be removed.
 */
void plan_mark_live(struct registry *reg);

/* Count again what the marks in the selected repositories remove. */
void plan_count(struct registry *reg, struct plan *plan);

void plan_free(struct plan *plan);

#endif
