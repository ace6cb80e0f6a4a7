/*
 * Registries read from an inventory, the JSON that `regprune ls --json`
 * writes (or one written by hand), so that a policy can be evaluated with
 * no registry at hand.
 */
#ifndef REGPRUNE_INVENTORY_H
#define REGPRUNE_INVENTORY_H

#include <stddef.h>

#include "registry.h"

/*
 * Fill reg (which must be zeroed) from the inventory at path. Tags need
 * "name" and "digest"; "pushed", "created", "size", "kind", "platforms"
 * and "labels" are optional. Return 0, or -1 with err naming the file and
 * the value at fault.
 */
int inventory_load(struct registry *reg, const char *path, char *err,
                   size_t err_size);

#endif
