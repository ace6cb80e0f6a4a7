/*
 * Reading a registry storage tree into struct registry. Only reads: no
 * function here changes anything on disk.
 */
#ifndef REGPRUNE_SCAN_H
#define REGPRUNE_SCAN_H

#include <stddef.h>

#include "registry.h"

/*
 * Open ROOT (the registry's rootdirectory) and check that it holds
 * docker/registry/v2. Return 0, or -1 with err set.
 */
int scan_open(struct registry *reg, const char *root, char *err,
              size_t err_size);

/*
 * Read every repository: tags, revisions, layer links and uploads, then
 * every manifest they name. Problems are recorded in reg and freeze the
 * repository they belong to. Return 0, or -1 with err set when the tree
 * cannot be read at all.
 */
int scan_registry(struct registry *reg, char *err, size_t err_size);

/*
 * Read the image config of each image the tags of the selected
 * repositories reach, then describe those tags (registry_describe_tags).
 * A config that cannot be read leaves the creation time, platform and
 * labels unknown.
 */
void scan_configs(struct registry *reg);
/* The same for one repository, selected or not. Reading a repository's
 * configs twice reads nothing the second time. */
void scan_repo_configs(struct registry *reg, struct repo *repo);

/*
 * List every revision and layer link in the tree again, as it is now, and
 * set ID_LIVE on each blob they link or their manifests reference, so that
 * a push that landed during the run keeps its blobs. The removal of
 * revisions and layer links this run made must be done before. Sets
 * reg->incomplete when part of the tree cannot be read.
 */
void scan_refresh(struct registry *reg);

struct history_entry {
    uint32_t digest;
    int64_t time; /* mtime of the entry's link: when the tag got it */
};

/*
 * Read a tag's history, tags/<tag>/index/sha256/<hex>/link, oldest first.
 * Return the number of entries and set *out (the caller frees it); 0 when
 * there is none or it cannot be read.
 */
size_t scan_tag_history(struct registry *reg, const struct repo *repo,
                        const struct tag *t, struct history_entry **out);

/* List blobs/sha256 and set ID_IN_STORE for every blob found. */
int scan_blob_store(struct registry *reg, char *err, size_t err_size);

/*
 * Open blobs/sha256 and each two-digit directory in it once, so that
 * reading, sizing or removing a blob resolves two path components instead
 * of five. Called by scan_registry; a directory made later is reached
 * through v2_fd.
 */
void scan_open_blob_dirs(struct registry *reg);

/*
 * Where blob id's directory (file NULL) or a file in it lives: return the
 * descriptor to resolve rel against and write rel, relative to its
 * two-digit directory when that is open, else to v2.
 */
int scan_blob_at(const struct registry *reg, uint32_t id, const char *file,
                 char *rel, size_t size);

/*
 * Whether s is a tag name of the distribution grammar
 * [A-Za-z0-9_][A-Za-z0-9_.-]*, at most 128 characters.
 */
int scan_valid_tag_name(const char *s);

/* Size of a blob's data file, or -1 when it cannot be read. */
long long scan_blob_size(const struct registry *reg, uint32_t id,
                         long long *mtime);

#endif
