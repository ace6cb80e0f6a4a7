#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

unsigned pool_jobs = 1;

unsigned pool_default_jobs(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (n < 1)
        return 1;
    return n > POOL_MAX_JOBS ? POOL_MAX_JOBS : (unsigned)n;
}

struct pool_run_state {
    void (*fn)(void *ctx, size_t i);
    void *ctx;
    size_t count;
    atomic_size_t next;
};

static void *worker(void *arg)
{
    struct pool_run_state *s = arg;
    size_t i;

    while ((i = atomic_fetch_add(&s->next, 1)) < s->count)
        s->fn(s->ctx, i);
    return NULL;
}

void pool_run(size_t count, void (*fn)(void *ctx, size_t i), void *ctx)
{
    struct pool_run_state s = {fn, ctx, count, 0};
    pthread_t threads[POOL_MAX_JOBS] = {0};
    size_t started = 0, want = pool_jobs;

    if (want > count)
        want = count;
    /* The caller is one of the workers. */
    while (started + 1 < want) {
        int rc = pthread_create(&threads[started], NULL, worker, &s);
        if (rc != 0) {
            /* Fewer workers only make the run slower. */
            break;
        }
        started++;
    }
    worker(&s);
    for (size_t t = 0; t < started; t++) {
        int rc = pthread_join(threads[t], NULL);
        if (rc != 0) {
            fprintf(stderr, "regprune: fatal: pthread_join: %s\n",
                    strerror(rc));
            abort();
        }
    }
}
