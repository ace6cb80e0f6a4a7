/*
 * Parsing of the manifests and image configs that the registry stores as
 * blobs. Only memory is read here; scan.c supplies the bytes. Results own
 * their strings and arrays and are released with the matching _free call.
 */
#ifndef REGPRUNE_MANIFEST_H
#define REGPRUNE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "digest.h"

/* The registry's own cap on a manifest body. */
#define MANIFEST_MAX_BYTES (4 * 1024 * 1024)
/* Image configs carry history and can be larger; nothing sane is bigger. */
#define CONFIG_MAX_BYTES (16 * 1024 * 1024)

enum manifest_kind {
    MANIFEST_UNKNOWN,
    MANIFEST_SCHEMA1,     /* Docker image manifest, schema 1 */
    MANIFEST_DOCKER_V2,   /* Docker image manifest, schema 2 */
    MANIFEST_DOCKER_LIST, /* Docker manifest list */
    MANIFEST_OCI,         /* OCI image manifest */
    MANIFEST_OCI_INDEX    /* OCI image index */
};

struct manifest_ref {
    struct digest digest;
    int64_t size; /* bytes, or -1 when the manifest does not say */
    int external; /* has "urls": the blob may be absent by design */
};

struct manifest_child {
    struct digest digest;
    int64_t size;
    char *platform; /* "os/arch[/variant]", or NULL */
};

struct manifest_info {
    enum manifest_kind kind;
    int has_config;
    struct manifest_ref config;
    struct manifest_ref *layers; /* schema1 duplicates are removed */
    size_t layer_count;
    struct manifest_child *children; /* indexes and lists only */
    size_t child_count;
    int has_subject; /* OCI referrer: the manifest it is attached to */
    struct digest subject;
    int artifact; /* the config's media type is not an image config's */
    /* Schema 1 carries these itself; for the other kinds see the config. */
    int has_created;
    int64_t created;
    char *platform;
};

/*
 * Parse a manifest body. Return 0 with out filled, or -1 when the bytes are
 * not a JSON object or a field has the wrong type; err says what. A
 * well-formed manifest of unknown media type returns 0 with kind
 * MANIFEST_UNKNOWN and a reason in err.
 */
int manifest_parse(const char *buf, size_t len, struct manifest_info *out,
                   char *err, size_t err_size);
void manifest_info_free(struct manifest_info *m);
const char *manifest_kind_name(enum manifest_kind kind);

struct image_config {
    int has_created;
    int64_t created;
    char *platform; /* "os/arch[/variant]", or NULL */
    char **labels;  /* config.Labels as key, value, key, value, ... */
    size_t label_count; /* pairs */
};

/* Parse an image config; return 0, or -1 with err set. */
int manifest_parse_config(const char *buf, size_t len,
                          struct image_config *out, char *err,
                          size_t err_size);
void image_config_free(struct image_config *c);

#endif
