/*
 * The trash (--trash DIR): instead of deleting, a run moves what it
 * removes into DIR/<run id>/, under the path it had below
 * docker/registry/v2, by rename on the same filesystem, and lists each
 * path in DIR/<run id>/MOVED. `regprune restore` puts a run
 * back; `gc --empty-trash DIR --older-than D` frees old runs.
 */
#ifndef REGPRUNE_TRASH_H
#define REGPRUNE_TRASH_H

#include <stddef.h>
#include <stdint.h>

#include "remove.h"

/* Check that DIR can be the trash of the registry on v2_fd at root. */
int trash_check(const char *dir, const char *root, int v2_fd, char *err,
                size_t err_size);

/*
 * Create the run directory DIR/<run_id> after checking that DIR is a
 * directory on the filesystem of v2_fd and outside root. Fill
 * opt->trash_fd and opt->trash_list. Return 0, or -1 with err set.
 */
int trash_open(const char *dir, const char *root, int v2_fd,
               const char *run_id, struct remove_options *opt, char *err,
               size_t err_size);
void trash_close(struct remove_options *opt);

/* Move v2/path into the open run directory. Return 0, or -1 with errno. */
int trash_move(const struct remove_options *opt, int v2_fd,
               const char *path);

/*
 * Put a run directory's paths back under v2_fd, in reverse order; a path
 * that exists again is left in the trash and reported. Set *restored to
 * the number of paths put back. Return the number of paths that could not
 * be restored, or -1 with err set.
 */
long trash_restore(const char *run_dir, int v2_fd, long *restored,
                   char *err, size_t err_size);

/* Delete the run directories (regprune-*) in DIR whose MOVED list is
 * older than seconds, or with dry_run only list them. Return how many, or
 * -1 with err set. */
long trash_empty(const char *dir, int64_t older_than, int dry_run,
                 char *err, size_t err_size);

#endif
