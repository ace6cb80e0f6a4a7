/*
 * Verifying a registry tree without changing it: what the registry needs
 * to serve each repository's tags is present and consistent.
 */
#ifndef REGPRUNE_CHECK_H
#define REGPRUNE_CHECK_H

#include <stddef.h>

#include "registry.h"

struct check_result {
    size_t repositories;
    size_t manifests;
    size_t blobs_verified;
};

/*
 * Check the selected repositories: every blob a manifest references
 * exists (layers with external URLs may be absent) and has a _layers link
 * in the repository, and every tag names a revision. With verify, hash
 * every blob in the store and compare with its name (call
 * scan_blob_store first). Problems are recorded in reg.
 */
void check_registry(struct registry *reg, int verify,
                    struct check_result *result);

#endif
