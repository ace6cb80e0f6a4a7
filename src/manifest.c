#include "manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "timeparse.h"
#include "xalloc.h"

static const struct {
    const char *media_type;
    enum manifest_kind kind;
} media_types[] = {
    {"application/vnd.docker.distribution.manifest.v1+json", MANIFEST_SCHEMA1},
    {"application/vnd.docker.distribution.manifest.v1+prettyjws",
     MANIFEST_SCHEMA1},
    {"application/vnd.docker.distribution.manifest.v2+json",
     MANIFEST_DOCKER_V2},
    {"application/vnd.docker.distribution.manifest.list.v2+json",
     MANIFEST_DOCKER_LIST},
    {"application/vnd.oci.image.manifest.v1+json", MANIFEST_OCI},
    {"application/vnd.oci.image.index.v1+json", MANIFEST_OCI_INDEX},
};

const char *manifest_kind_name(enum manifest_kind kind)
{
    switch (kind) {
    case MANIFEST_SCHEMA1:
        return "schema1";
    case MANIFEST_DOCKER_V2:
        return "docker-v2";
    case MANIFEST_DOCKER_LIST:
        return "docker-list";
    case MANIFEST_OCI:
        return "oci";
    case MANIFEST_OCI_INDEX:
        return "oci-index";
    default:
        return "unknown";
    }
}

void manifest_info_free(struct manifest_info *m)
{
    for (size_t i = 0; i < m->child_count; i++)
        free(m->children[i].platform);
    free(m->children);
    free(m->layers);
    free(m->platform);
    memset(m, 0, sizeof(*m));
}

/* Build "os/arch[/variant]" from an object holding those keys, or NULL. */
static char *platform_string(const struct json_doc *d, int obj,
                             const char *os_key, const char *arch_key)
{
    char *os = json_doc_strdup(d, json_doc_get(d, obj, os_key));
    char *arch = json_doc_strdup(d, json_doc_get(d, obj, arch_key));
    char *variant = json_doc_strdup(d, json_doc_get(d, obj, "variant"));
    char *out = NULL;

    if (os || arch) {
        if (variant && *variant)
            out = xasprintf("%s/%s/%s", os ? os : "unknown",
                            arch ? arch : "unknown", variant);
        else
            out = xasprintf("%s/%s", os ? os : "unknown",
                            arch ? arch : "unknown");
    }
    free(os);
    free(arch);
    free(variant);
    return out;
}

static int parse_digest_field(const struct json_doc *d, int obj,
                              const char *key, struct digest *out, char *err,
                              size_t err_size)
{
    int v = json_doc_get(d, obj, key);
    char text[128];
    size_t len;

    if (!json_doc_is(d, v, JSON_T_STRING)) {
        snprintf(err, err_size, "descriptor has no string \"%s\"", key);
        return -1;
    }
    if (json_doc_string(d, v, text, sizeof(text), &len) != 0 ||
        digest_parse(text, len, out) != 0) {
        char *quoted = json_doc_strdup(d, v);
        snprintf(err, err_size, "unsupported or invalid digest \"%.80s\"",
                 quoted);
        free(quoted);
        return -1;
    }
    return 0;
}

static int parse_descriptor(const struct json_doc *d, int desc,
                            struct manifest_ref *out, char *err,
                            size_t err_size)
{
    int urls;
    int64_t size;

    if (!json_doc_is(d, desc, JSON_T_OBJECT)) {
        snprintf(err, err_size, "descriptor is not an object");
        return -1;
    }
    if (parse_digest_field(d, desc, "digest", &out->digest, err, err_size))
        return -1;
    urls = json_doc_get(d, desc, "urls");
    out->external = json_doc_is(d, urls, JSON_T_ARRAY) &&
                    json_doc_size(d, urls) > 0;
    out->size = json_doc_integer(d, json_doc_get(d, desc, "size"), &size) == 0
                        && size >= 0
                    ? size
                    : -1;
    return 0;
}

static int parse_layers(const struct json_doc *d, struct manifest_info *m,
                        char *err, size_t err_size)
{
    int config = json_doc_get(d, 0, "config");
    int layers = json_doc_get(d, 0, "layers");
    size_t count = json_doc_size(d, layers);
    int desc;

    if (config >= 0) {
        int type = json_doc_get(d, config, "mediaType");
        if (parse_descriptor(d, config, &m->config, err, err_size))
            return -1;
        m->has_config = 1;
        m->artifact =
            json_doc_is(d, type, JSON_T_STRING) &&
            !json_doc_streq(d, type,
                            "application/vnd.docker.container.image.v1+json") &&
            !json_doc_streq(d, type,
                            "application/vnd.oci.image.config.v1+json");
    }
    if (layers >= 0 && !json_doc_is(d, layers, JSON_T_ARRAY)) {
        snprintf(err, err_size, "\"layers\" is not an array");
        return -1;
    }
    m->layers = xcalloc(count, sizeof(*m->layers));
    desc = json_doc_first(d, layers);
    for (size_t i = 0; i < count; i++, desc = json_doc_next(d, desc)) {
        if (parse_descriptor(d, desc, &m->layers[m->layer_count], err,
                             err_size))
            return -1;
        m->layer_count++;
    }
    return 0;
}

static int parse_children(const struct json_doc *d, struct manifest_info *m,
                          char *err, size_t err_size)
{
    int list = json_doc_get(d, 0, "manifests");
    size_t count = json_doc_size(d, list);
    int desc;

    if (!json_doc_is(d, list, JSON_T_ARRAY)) {
        snprintf(err, err_size, "\"manifests\" is not an array");
        return -1;
    }
    m->children = xcalloc(count, sizeof(*m->children));
    desc = json_doc_first(d, list);
    for (size_t i = 0; i < count; i++, desc = json_doc_next(d, desc)) {
        struct manifest_ref ref;
        struct manifest_child *c = &m->children[m->child_count];

        if (parse_descriptor(d, desc, &ref, err, err_size))
            return -1;
        c->digest = ref.digest;
        c->size = ref.size;
        c->platform = platform_string(d, json_doc_get(d, desc, "platform"),
                                      "os", "architecture");
        m->child_count++;
    }
    return 0;
}

/* Schema 1 lists layers newest first, often with repeats. */
static int parse_schema1(const struct json_doc *d, struct manifest_info *m,
                         char *err, size_t err_size)
{
    int fs = json_doc_get(d, 0, "fsLayers");
    int history = json_doc_get(d, 0, "history");
    size_t count = json_doc_size(d, fs);
    int first, layer;

    if (!json_doc_is(d, fs, JSON_T_ARRAY)) {
        snprintf(err, err_size, "schema 1 manifest has no \"fsLayers\" array");
        return -1;
    }
    m->layers = xcalloc(count, sizeof(*m->layers));
    layer = json_doc_first(d, fs);
    for (size_t i = 0; i < count; i++, layer = json_doc_next(d, layer)) {
        struct digest dg;
        int seen = 0;

        if (!json_doc_is(d, layer, JSON_T_OBJECT) ||
            parse_digest_field(d, layer, "blobSum", &dg, err, err_size))
            return -1;
        for (size_t j = 0; j < m->layer_count && !seen; j++)
            seen = memcmp(&m->layers[j].digest, &dg, sizeof(dg)) == 0;
        if (seen)
            continue;
        m->layers[m->layer_count].digest = dg;
        m->layers[m->layer_count].size = -1;
        m->layer_count++;
    }
    /* The newest history entry is an image config in a string. */
    first = json_doc_is(d, history, JSON_T_ARRAY) ? json_doc_first(d, history)
                                                  : -1;
    if (json_doc_is(d, first, JSON_T_OBJECT)) {
        char *v1 = json_doc_strdup(d, json_doc_get(d, first,
                                                   "v1Compatibility"));
        if (v1) {
            struct image_config c;
            char ignored[64];
            if (manifest_parse_config(v1, strlen(v1), &c, ignored,
                                      sizeof(ignored)) == 0) {
                m->has_created = c.has_created;
                m->created = c.created;
                m->platform = c.platform;
                c.platform = NULL;
                image_config_free(&c);
            }
            free(v1);
        }
    }
    return 0;
}

static enum manifest_kind detect_kind(const struct json_doc *d, char *err,
                                      size_t err_size)
{
    int64_t version = 0;
    int has_version =
        json_doc_integer(d, json_doc_get(d, 0, "schemaVersion"),
                         &version) == 0;
    int type = json_doc_get(d, 0, "mediaType");

    if (has_version && version == 1)
        return MANIFEST_SCHEMA1;
    if (json_doc_is(d, type, JSON_T_STRING)) {
        char *quoted;
        for (size_t i = 0; i < sizeof(media_types) / sizeof(media_types[0]);
             i++)
            if (json_doc_streq(d, type, media_types[i].media_type))
                return media_types[i].kind;
        quoted = json_doc_strdup(d, type);
        snprintf(err, err_size, "unknown manifest media type \"%.100s\"",
                 quoted);
        free(quoted);
        return MANIFEST_UNKNOWN;
    }
    /* OCI allows the media type to be left out. */
    if (has_version && version == 2) {
        if (json_doc_get(d, 0, "manifests") >= 0)
            return MANIFEST_OCI_INDEX;
        if (json_doc_get(d, 0, "config") >= 0)
            return MANIFEST_OCI;
    }
    snprintf(err, err_size, "manifest has neither a known \"mediaType\" nor "
             "the fields of an OCI manifest or index");
    return MANIFEST_UNKNOWN;
}

/* Parse buf as a JSON object into d; on failure set err and return -1. */
static int load_object(struct json_doc *d, const char *buf, size_t len,
                       const char *what, char *err, size_t err_size)
{
    char jerr[200];

    if (json_doc_parse(d, buf, len, jerr, sizeof(jerr)) != 0) {
        snprintf(err, err_size, "invalid JSON at %s", jerr);
        return -1;
    }
    if (!json_doc_is(d, 0, JSON_T_OBJECT)) {
        snprintf(err, err_size, "%s is not a JSON object", what);
        json_doc_free(d);
        return -1;
    }
    return 0;
}

int manifest_parse(const char *buf, size_t len, struct manifest_info *out,
                   char *err, size_t err_size)
{
    struct json_doc d;
    int rc = 0, subject;

    memset(out, 0, sizeof(*out));
    if (load_object(&d, buf, len, "manifest", err, err_size) != 0)
        return -1;
    out->kind = detect_kind(&d, err, err_size);
    switch (out->kind) {
    case MANIFEST_SCHEMA1:
        rc = parse_schema1(&d, out, err, err_size);
        break;
    case MANIFEST_DOCKER_V2:
    case MANIFEST_OCI:
        rc = parse_layers(&d, out, err, err_size);
        break;
    case MANIFEST_DOCKER_LIST:
    case MANIFEST_OCI_INDEX:
        rc = parse_children(&d, out, err, err_size);
        break;
    case MANIFEST_UNKNOWN:
        break;
    }
    subject = json_doc_get(&d, 0, "subject");
    if (rc == 0 && subject >= 0) {
        struct manifest_ref ref;
        rc = parse_descriptor(&d, subject, &ref, err, err_size);
        out->has_subject = rc == 0;
        out->subject = ref.digest;
    }
    json_doc_free(&d);
    if (rc != 0)
        manifest_info_free(out);
    return rc;
}

void image_config_free(struct image_config *c)
{
    for (size_t i = 0; i < 2 * c->label_count; i++)
        free(c->labels[i]);
    free(c->labels);
    free(c->platform);
    memset(c, 0, sizeof(*c));
}

struct label_copy {
    const struct json_doc *doc;
    struct image_config *out;
};

static int copy_label(void *ctx, int key, int value)
{
    struct label_copy *l = ctx;
    struct image_config *c = l->out;
    char *k;

    if (!json_doc_is(l->doc, value, JSON_T_STRING))
        return 0;
    k = json_doc_strdup(l->doc, key);
    /* A key given twice keeps its last value. */
    for (size_t i = 0; i < c->label_count; i++)
        if (strcmp(c->labels[2 * i], k) == 0) {
            free(k);
            free(c->labels[2 * i + 1]);
            c->labels[2 * i + 1] = json_doc_strdup(l->doc, value);
            return 0;
        }
    c->labels[2 * c->label_count] = k;
    c->labels[2 * c->label_count + 1] = json_doc_strdup(l->doc, value);
    c->label_count++;
    return 0;
}

int manifest_parse_config(const char *buf, size_t len,
                          struct image_config *out, char *err,
                          size_t err_size)
{
    struct json_doc d;
    int created, labels;
    char text[128];
    size_t n;

    memset(out, 0, sizeof(*out));
    if (load_object(&d, buf, len, "image config", err, err_size) != 0)
        return -1;
    created = json_doc_get(&d, 0, "created");
    if (json_doc_string(&d, created, text, sizeof(text), &n) == 0 &&
        timeparse_rfc3339(text, n, &out->created) == 0)
        out->has_created = 1;
    out->platform = platform_string(&d, 0, "os", "architecture");
    labels = json_doc_get(&d, json_doc_get(&d, 0, "config"), "Labels");
    {
        struct label_copy l = {&d, out};
        out->labels = xcalloc(2 * json_doc_size(&d, labels) + 1,
                              sizeof(char *));
        json_doc_members(&d, labels, copy_label, &l);
    }
    json_doc_free(&d);
    return 0;
}
