/*
 * The removal journal, ROOT/.regprune.journal: before a run removes
 * anything it lists every revision, layer link and blob it plans to
 * remove, and deletes the list once all removals succeeded. A run that was
 * stopped part way leaves the list behind, and the next run that deletes
 * finishes those removals, so that revisions whose tags were already
 * removed do not linger untagged.
 */
#ifndef REGPRUNE_JOURNAL_H
#define REGPRUNE_JOURNAL_H

#include <stddef.h>

#include "plan.h"
#include "registry.h"

/*
 * Read the journal, when there is one, and mark its entries as removal
 * candidates: plan_build then removes those that nothing remaining needs.
 * Repositories with entries are selected. Return the number of entries
 * (0 without a journal), or -1 with err set when it cannot be read.
 */
long journal_apply(struct registry *reg, char *err, size_t err_size);

/* Write the journal for plan atomically. Return 0, or -1 with err set. */
int journal_write(struct registry *reg, const struct plan *plan, char *err,
                  size_t err_size);

/* Delete the journal after a run whose removals all succeeded. */
void journal_remove(struct registry *reg);

#endif
