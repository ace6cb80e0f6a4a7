#include "manifest.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

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
static char *platform_string(json_t *obj, const char *os_key,
                             const char *arch_key)
{
    const char *os = json_string_value(json_object_get(obj, os_key));
    const char *arch = json_string_value(json_object_get(obj, arch_key));
    const char *variant = json_string_value(json_object_get(obj, "variant"));

    if (!os && !arch)
        return NULL;
    if (variant && *variant)
        return xasprintf("%s/%s/%s", os ? os : "unknown",
                         arch ? arch : "unknown", variant);
    return xasprintf("%s/%s", os ? os : "unknown", arch ? arch : "unknown");
}

static int parse_digest_field(json_t *obj, const char *key,
                              struct digest *out, char *err, size_t err_size)
{
    json_t *v = json_object_get(obj, key);
    const char *s = json_string_value(v);

    if (!s) {
        snprintf(err, err_size, "descriptor has no string \"%s\"", key);
        return -1;
    }
    if (digest_parse(s, json_string_length(v), out) != 0) {
        snprintf(err, err_size, "unsupported or invalid digest \"%.80s\"", s);
        return -1;
    }
    return 0;
}

static int parse_descriptor(json_t *desc, struct manifest_ref *out, char *err,
                            size_t err_size)
{
    json_t *size;

    if (!json_is_object(desc)) {
        snprintf(err, err_size, "descriptor is not an object");
        return -1;
    }
    if (parse_digest_field(desc, "digest", &out->digest, err, err_size))
        return -1;
    out->external = json_array_size(json_object_get(desc, "urls")) > 0;
    size = json_object_get(desc, "size");
    out->size = json_is_integer(size) && json_integer_value(size) >= 0
                    ? json_integer_value(size)
                    : -1;
    return 0;
}

static int parse_layers(json_t *root, struct manifest_info *m, char *err,
                        size_t err_size)
{
    json_t *config = json_object_get(root, "config");
    json_t *layers = json_object_get(root, "layers");
    size_t i;
    json_t *desc;

    if (config) {
        const char *type =
            json_string_value(json_object_get(config, "mediaType"));
        if (parse_descriptor(config, &m->config, err, err_size))
            return -1;
        m->has_config = 1;
        m->artifact =
            type &&
            strcmp(type, "application/vnd.docker.container.image.v1+json") &&
            strcmp(type, "application/vnd.oci.image.config.v1+json");
    }
    if (layers && !json_is_array(layers)) {
        snprintf(err, err_size, "\"layers\" is not an array");
        return -1;
    }
    m->layers = xcalloc(json_array_size(layers), sizeof(*m->layers));
    json_array_foreach(layers, i, desc)
    {
        if (parse_descriptor(desc, &m->layers[m->layer_count], err, err_size))
            return -1;
        m->layer_count++;
    }
    return 0;
}

static int parse_children(json_t *root, struct manifest_info *m, char *err,
                          size_t err_size)
{
    json_t *list = json_object_get(root, "manifests");
    size_t i;
    json_t *desc;

    if (!json_is_array(list)) {
        snprintf(err, err_size, "\"manifests\" is not an array");
        return -1;
    }
    m->children = xcalloc(json_array_size(list), sizeof(*m->children));
    json_array_foreach(list, i, desc)
    {
        struct manifest_ref ref;
        struct manifest_child *c = &m->children[m->child_count];

        if (parse_descriptor(desc, &ref, err, err_size))
            return -1;
        c->digest = ref.digest;
        c->size = ref.size;
        c->platform = platform_string(json_object_get(desc, "platform"), "os",
                                      "architecture");
        m->child_count++;
    }
    return 0;
}

/* Schema 1 lists layers newest first, often with repeats. */
static int parse_schema1(json_t *root, struct manifest_info *m, char *err,
                         size_t err_size)
{
    json_t *fs = json_object_get(root, "fsLayers");
    json_t *history = json_object_get(root, "history");
    json_t *first, *layer;
    size_t i;

    if (!json_is_array(fs)) {
        snprintf(err, err_size, "schema 1 manifest has no \"fsLayers\" array");
        return -1;
    }
    m->layers = xcalloc(json_array_size(fs), sizeof(*m->layers));
    json_array_foreach(fs, i, layer)
    {
        struct digest d;
        int seen = 0;

        if (!json_is_object(layer) ||
            parse_digest_field(layer, "blobSum", &d, err, err_size))
            return -1;
        for (size_t j = 0; j < m->layer_count && !seen; j++)
            seen = memcmp(&m->layers[j].digest, &d, sizeof(d)) == 0;
        if (seen)
            continue;
        m->layers[m->layer_count].digest = d;
        m->layers[m->layer_count].size = -1;
        m->layer_count++;
    }
    /* The newest history entry is an image config in a string. */
    first = json_array_get(history, 0);
    if (json_is_object(first)) {
        const char *v1 = json_string_value(
            json_object_get(first, "v1Compatibility"));
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
        }
    }
    return 0;
}

static enum manifest_kind detect_kind(json_t *root, char *err,
                                      size_t err_size)
{
    json_t *version = json_object_get(root, "schemaVersion");
    const char *media_type =
        json_string_value(json_object_get(root, "mediaType"));

    if (json_is_integer(version) && json_integer_value(version) == 1)
        return MANIFEST_SCHEMA1;
    if (media_type) {
        for (size_t i = 0; i < sizeof(media_types) / sizeof(media_types[0]);
             i++)
            if (strcmp(media_type, media_types[i].media_type) == 0)
                return media_types[i].kind;
        snprintf(err, err_size, "unknown manifest media type \"%.100s\"",
                 media_type);
        return MANIFEST_UNKNOWN;
    }
    /* OCI allows the media type to be left out. */
    if (json_is_integer(version) && json_integer_value(version) == 2) {
        if (json_object_get(root, "manifests"))
            return MANIFEST_OCI_INDEX;
        if (json_object_get(root, "config"))
            return MANIFEST_OCI;
    }
    snprintf(err, err_size, "manifest has neither a known \"mediaType\" nor "
             "the fields of an OCI manifest or index");
    return MANIFEST_UNKNOWN;
}

int manifest_parse(const char *buf, size_t len, struct manifest_info *out,
                   char *err, size_t err_size)
{
    json_error_t jerr;
    json_t *root;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    root = json_loadb(buf, len, 0, &jerr);
    if (!root) {
        snprintf(err, err_size, "invalid JSON at line %d column %d: %s",
                 jerr.line, jerr.column, jerr.text);
        return -1;
    }
    if (!json_is_object(root)) {
        snprintf(err, err_size, "manifest is not a JSON object");
        json_decref(root);
        return -1;
    }
    out->kind = detect_kind(root, err, err_size);
    switch (out->kind) {
    case MANIFEST_SCHEMA1:
        rc = parse_schema1(root, out, err, err_size);
        break;
    case MANIFEST_DOCKER_V2:
    case MANIFEST_OCI:
        rc = parse_layers(root, out, err, err_size);
        break;
    case MANIFEST_DOCKER_LIST:
    case MANIFEST_OCI_INDEX:
        rc = parse_children(root, out, err, err_size);
        break;
    case MANIFEST_UNKNOWN:
        break;
    }
    if (rc == 0 && json_object_get(root, "subject")) {
        struct manifest_ref subject;
        rc = parse_descriptor(json_object_get(root, "subject"), &subject, err,
                              err_size);
        out->has_subject = rc == 0;
        out->subject = subject.digest;
    }
    json_decref(root);
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

int manifest_parse_config(const char *buf, size_t len,
                          struct image_config *out, char *err,
                          size_t err_size)
{
    json_error_t jerr;
    json_t *root, *created;

    memset(out, 0, sizeof(*out));
    root = json_loadb(buf, len, 0, &jerr);
    if (!root) {
        snprintf(err, err_size, "invalid JSON at line %d column %d: %s",
                 jerr.line, jerr.column, jerr.text);
        return -1;
    }
    if (!json_is_object(root)) {
        snprintf(err, err_size, "image config is not a JSON object");
        json_decref(root);
        return -1;
    }
    created = json_object_get(root, "created");
    if (json_is_string(created) &&
        timeparse_rfc3339(json_string_value(created),
                          json_string_length(created), &out->created) == 0)
        out->has_created = 1;
    out->platform = platform_string(root, "os", "architecture");
    {
        json_t *labels = json_object_get(json_object_get(root, "config"),
                                         "Labels");
        const char *key;
        json_t *value;

        out->labels = xcalloc(2 * json_object_size(labels) + 1,
                              sizeof(char *));
        json_object_foreach(labels, key, value)
        {
            if (!json_is_string(value))
                continue;
            out->labels[2 * out->label_count] = xstrdup(key);
            out->labels[2 * out->label_count + 1] =
                xstrdup(json_string_value(value));
            out->label_count++;
        }
    }
    json_decref(root);
    return 0;
}
