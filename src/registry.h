/*
 * The in-memory model of one registry storage tree: repositories with their
 * tags, revisions and layer links, and every digest met, numbered by the
 * registry's digest table. scan.c builds it, policy.c writes verdicts into
 * the tags, plan.c marks what goes, and remove.c carries that out.
 */
#ifndef REGPRUNE_REGISTRY_H
#define REGPRUNE_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "manifest.h"

/* One keep, delete or protect call, kept for explain. */
struct verdict_event {
    const char *call; /* "keep", "delete", "protect" or "in use": static */
    char *reason;
    const char *source; /* "file:line" (registry_intern_string), or NULL */
};

struct tag {
    char *name;
    /* What the policy and the report show, set by registry_describe_tags
     * or read from an inventory. */
    const char *kind; /* "image", "index", "artifact", "referrer", ... */
    char **platforms;
    char **labels; /* key, value, key, value, ... */
    /* Verdicts as recorded; keep wins over delete, and protect (a keep
     * whose reason no later call replaces) over both. */
    char *keep_reason, *delete_reason;
    /* "file:line" of the call, from registry_intern_string, or NULL. */
    const char *keep_source, *delete_source;
    struct verdict_event *events; /* every call in order, for explain */
    size_t event_count, event_capacity;
    int64_t pushed; /* mtime of current/link, Unix seconds */
    int64_t created;
    int64_t size;
    uint32_t digest; /* id of the manifest current/link names */
    /* For a tag named by the sha256-<hex>.sig/.att/.sbom convention: the
     * manifest it belongs to, which it stays and goes with; else
     * DIGEST_NONE. Policies do not see such tags. */
    uint32_t follows;
    uint32_t platform_count;
    uint32_t label_count; /* pairs */
    unsigned has_created : 1;
    unsigned keep : 1, delete : 1, protect : 1;
    unsigned remove : 1; /* plan: this tag goes */
    unsigned remove_failed : 1; /* it was to go, but stays */
    /* The strings of platforms and labels, and the labels array, belong
     * to the manifests (registry_describe_tags); else to the tag. */
    unsigned borrowed : 1;
};

struct repo {
    char *name;
    struct tag *tags;
    size_t tag_count;
    uint32_t *revisions; /* manifest ids with a revision link */
    size_t revision_count;
    uint8_t *revision_remove; /* plan, per revision */
    uint32_t *layers; /* blob ids with a _layers link */
    size_t layer_count;
    uint8_t *layer_remove; /* plan, per layer link */
    char **uploads; /* names under _uploads */
    size_t upload_count;
    uint8_t *upload_remove;
    char *frozen; /* why nothing here may be deleted, or NULL */
    char *pinned; /* why every revision and layer link stays, or NULL */
    unsigned selected : 1; /* the command applies to this repository */
    /* The image configs its tags reach were read (scan_configs), or an
     * inventory gave their creation times, platforms and labels. */
    unsigned configs_read : 1;
    unsigned child_missing_noted : 1;
};

/* What one manifest blob holds, shared by every repository linking it. */
enum manifest_state {
    MSTATE_UNREAD,
    MSTATE_OK,
    MSTATE_UNKNOWN, /* parsed, but of a kind whose references are unknown */
    MSTATE_MISSING, /* no blob data */
    MSTATE_INVALID  /* unreadable, too large or not a manifest */
};

struct manifest {
    char *error; /* for UNKNOWN, MISSING and INVALID */
    int64_t blob_size;
    int64_t config_size;
    int64_t created;
    uint32_t *layers; /* blob ids, config excluded */
    int64_t *layer_sizes;
    uint8_t *layer_external; /* 1 for layers with "urls" */
    uint32_t *children;
    char **child_platforms;
    char *platform;
    char **labels; /* from the image config: key, value, ... */
    uint32_t layer_count;
    uint32_t child_count;
    uint32_t label_count; /* pairs */
    uint32_t config;  /* DIGEST_NONE when absent */
    uint32_t subject; /* DIGEST_NONE when absent */
    uint8_t state;    /* enum manifest_state */
    uint8_t kind;     /* enum manifest_kind */
    unsigned artifact : 1;
    unsigned has_created : 1;
    unsigned config_read : 1;
};

/* Per-id flags in struct registry. */
enum {
    ID_REFERENCED = 1, /* referenced by a manifest or link when scanned */
    ID_LIVE = 2,       /* plan: something that remains needs this blob */
    ID_CANDIDATE = 4,  /* plan: may be deleted if not live */
    ID_IN_STORE = 8,   /* listed under blobs/ */
    ID_CHECKED = 16,   /* check: the blob's data file was looked for */
    ID_MISSING = 32,   /* check: and not found */
    ID_QUEUED = 64     /* scan: handed to a worker to read */
};

struct problem {
    char *repo; /* NULL for problems outside a repository */
    char *path; /* relative to the v2 directory */
    char *message;
};

struct registry {
    char *root;     /* the rootdirectory given */
    int v2_fd;      /* ROOT/docker/registry/v2 */
    int *blob_fds;  /* blobs/sha256/<xx> by first byte, or -1; or NULL */
    int check_layer_links; /* scan: read every layer link as well */
    int64_t scan_started; /* wall clock, Unix seconds */
    struct digest_table ids;
    size_t ids_capacity; /* allocated length of the per-id arrays */
    struct manifest **manifests; /* per id, NULL when not a manifest */
    uint8_t *flags;              /* per id, ID_* bits */
    struct repo *repos;          /* sorted by name */
    size_t repo_count;
    struct problem *problems;
    size_t problem_count, problem_capacity;
    int problems_in_report; /* check: problems go to the report, not the log */
    int incomplete; /* part of the repositories tree could not be read */
    int64_t newest_upload; /* mtime of the newest _uploads entry, or 0 */
    char *newest_upload_repo;
    /* registry_image_size's scratch: a bit per id, and the ids set. */
    uint8_t *size_marks;
    size_t size_marks_count; /* ids the bits cover */
    uint32_t *size_marked;
    size_t size_marked_count, size_marked_capacity;
    /* Directories an interrupted run half removed (relative to v2), for
     * this run to finish; a leading "?" marks one to remove only when
     * empty. */
    char **leftovers;
    size_t leftover_count, leftover_capacity;
    /* registry_intern_string's set: open addressing, NULL when empty. */
    char **strings;
    size_t string_count, string_mask;
};

/* Return the id of d, growing the per-id arrays as needed. */
uint32_t registry_intern(struct registry *reg, const struct digest *d);
/*
 * Allocate m's layers, layer_sizes and layer_external for count layers,
 * zeroed, in one block that manifest_free frees through layer_sizes.
 */
void registry_alloc_layers(struct manifest *m, size_t count);
/* Record a problem; it is also logged at warning level. */
void registry_problem(struct registry *reg, const char *repo,
                      const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Freeze a repository with a reason, keeping the first reason given. */
void registry_freeze(struct repo *repo, const char *reason);
void registry_free(struct registry *reg);
/* Forget every verdict recorded in repo's tags. */
void registry_reset_verdicts(struct repo *repo);
/*
 * Return the registry's copy of s, made on first use and freed with the
 * registry. Tags share the few "file:line" sources a policy has this way.
 */
const char *registry_intern_string(struct registry *reg, const char *s);
/* Append an event to a tag's list; call must be a string literal and
 * source NULL or from registry_intern_string. */
void registry_add_event(struct tag *t, const char *call, const char *reason,
                        const char *source);
struct repo *registry_find_repo(struct registry *reg, const char *name);
struct tag *registry_find_tag(struct repo *repo, const char *name);
/* Return the position of manifest id in repo's revisions, or -1. */
long registry_find_revision(const struct repo *repo, uint32_t id);
/*
 * The manifest a tag named "sha256-<hex>.sig", ".att" or ".sbom" (the
 * signature, attestation and SBOM convention of cosign and others) belongs
 * to, when repo holds it; else DIGEST_NONE.
 */
uint32_t registry_convention_subject(struct registry *reg,
                                     const struct repo *repo,
                                     const char *name);

/* Fill each tag's created, size, kind, platforms and labels from the
 * manifests and the configs read so far; call it again when more configs
 * are read. */
void registry_describe_tags(struct registry *reg, struct repo *repo);

/*
 * For each repository, the bytes of the blobs its manifests reference
 * (size) and of those no other repository references (reclaimable).
 * Fill size[] and reclaimable[], each of reg->repo_count entries.
 */
void registry_repo_bytes(struct registry *reg, int64_t *size,
                         int64_t *reclaimable);

/*
 * Bytes of a tag's image: manifest, config and layers, and for an index
 * every platform's, each blob counted once. Unknown sizes count as 0.
 */
int64_t registry_image_size(struct registry *reg, const struct repo *repo,
                            uint32_t manifest_id);

#endif
