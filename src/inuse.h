/*
 * Images that run somewhere (--in-use FILE): references read from a list
 * or from `kubectl get pods -A -o json`, applied as protection that no
 * policy can override.
 */
#ifndef REGPRUNE_INUSE_H
#define REGPRUNE_INUSE_H

#include <stddef.h>

#include "registry.h"

struct inuse_ref {
    char *text;       /* the reference as written, for reasons */
    char *repository; /* without a registry host, or NULL */
    char *tag;        /* or NULL */
    int has_digest;
    struct digest digest;
};

struct inuse {
    struct inuse_ref *refs;
    size_t count, capacity;
};

/*
 * Read FILE: one reference or digest per line ('#' starts a comment), or
 * the JSON of a Kubernetes pod list, whose "image" and "imageID" strings
 * are taken. Return 0, or -1 with err naming the file and the problem.
 */
int inuse_load(const char *path, struct inuse *out, char *err,
               size_t err_size);

/*
 * Keep every tag that a reference names: by repository and tag, or by
 * digest in any repository, including an index that lists the digest as
 * one of its platforms. Return the number of tags protected.
 */
size_t inuse_apply(const struct inuse *in, struct registry *reg);

void inuse_free(struct inuse *in);

#endif
