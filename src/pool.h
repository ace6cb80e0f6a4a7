/*
 * A worker pool for independent items: reading the files of many
 * repositories or manifests, and removing many blobs, on every core.
 */
#ifndef REGPRUNE_POOL_H
#define REGPRUNE_POOL_H

#include <stddef.h>

/* Most workers --jobs accepts. */
#define POOL_MAX_JOBS 64

/* Number of workers pool_run uses; 1 runs every item in the caller. */
extern unsigned pool_jobs;

/* The number of online processors, at least 1 and at most POOL_MAX_JOBS. */
unsigned pool_default_jobs(void);

/*
 * Call fn(ctx, i) once for each i in [0, count), on up to pool_jobs
 * threads including the caller's, and return when every call has. Items
 * are handed out in order, one at a time, so a slow one does not hold up
 * the rest. fn must not touch state other calls write: no logging, no
 * interning, no registry_problem; collect results per item instead.
 */
void pool_run(size_t count, void (*fn)(void *ctx, size_t i), void *ctx);

#endif
