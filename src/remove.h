/*
 * Carrying out a plan: the only code that removes anything from the tree.
 * It removes tags, then revisions, then layer links, then blobs, so a run
 * stopped at any point leaves every remaining tag pullable.
 */
#ifndef REGPRUNE_REMOVE_H
#define REGPRUNE_REMOVE_H

#include <stdio.h>

#include "plan.h"
#include "registry.h"

/*
 * Take the run lock ROOT/.regprune.lock. Return its descriptor, or -1 with
 * an error logged when another run holds it or it cannot be created.
 */
int remove_lock(const char *root);

struct remove_options {
    FILE *audit;        /* JSON lines of every removal, or NULL */
    const char *run_id; /* names the run in the audit log and the trash */
    int trash_fd;       /* the trash's run directory, or -1 to delete */
    FILE *trash_list;   /* the trash's list of moved paths */
};

/*
 * Remove what plan_build marked (into the trash when opt names one).
 * Failures are recorded as problems and the items they protect stay.
 * Return the number of failed removals.
 */
size_t remove_execute(struct registry *reg, struct plan *plan,
                      const struct remove_options *opt);

#endif
