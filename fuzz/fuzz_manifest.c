/*
 * Fuzz the manifest and image config parsers on arbitrary blob contents,
 * checking the result contracts that scan.c relies on.
 */
#include "fuzz.h"

#include "manifest.h"

static void check_error_text(const char *err, size_t err_size)
{
    FUZZ_CHECK(memchr(err, '\0', err_size) != NULL);
    FUZZ_CHECK(err[0] != '\0');
}

static void check_manifest(const char *buf, size_t len)
{
    struct manifest_info info;
    char err[512];
    int rc;

    memset(err, 0, sizeof(err));
    rc = manifest_parse(buf, len, &info, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc != 0) {
        check_error_text(err, sizeof(err));
        /* A failed parse leaves nothing to free. */
        FUZZ_CHECK(info.layers == NULL && info.children == NULL);
        FUZZ_CHECK(info.platform == NULL);
        return;
    }
    FUZZ_CHECK(manifest_kind_name(info.kind) != NULL);
    if (info.kind == MANIFEST_UNKNOWN)
        check_error_text(err, sizeof(err));
    if (info.child_count > 0)
        FUZZ_CHECK(info.kind == MANIFEST_DOCKER_LIST ||
                   info.kind == MANIFEST_OCI_INDEX);
    if (info.layer_count > 0)
        FUZZ_CHECK(info.kind == MANIFEST_SCHEMA1 ||
                   info.kind == MANIFEST_DOCKER_V2 ||
                   info.kind == MANIFEST_OCI);
    if (info.kind == MANIFEST_SCHEMA1) {
        /* Schema 1 repeats are removed. */
        for (size_t i = 0; i < info.layer_count; i++)
            for (size_t j = i + 1; j < info.layer_count; j++)
                FUZZ_CHECK(memcmp(&info.layers[i].digest,
                                  &info.layers[j].digest,
                                  sizeof(struct digest)) != 0);
    }
    if (info.has_config)
        FUZZ_CHECK(info.config.size >= -1);
    for (size_t i = 0; i < info.layer_count; i++)
        FUZZ_CHECK(info.layers[i].size >= -1);
    for (size_t i = 0; i < info.child_count; i++) {
        FUZZ_CHECK(info.children[i].size >= -1);
        if (info.children[i].platform)
            FUZZ_CHECK(strchr(info.children[i].platform, '/') != NULL);
    }
    if (info.platform)
        FUZZ_CHECK(strchr(info.platform, '/') != NULL);
    manifest_info_free(&info);
    FUZZ_CHECK(info.layers == NULL && info.children == NULL);
}

static void check_config(const char *buf, size_t len)
{
    struct image_config config;
    char err[256];

    memset(err, 0, sizeof(err));
    if (manifest_parse_config(buf, len, &config, err, sizeof(err)) != 0) {
        check_error_text(err, sizeof(err));
        FUZZ_CHECK(config.platform == NULL);
        return;
    }
    if (config.platform)
        FUZZ_CHECK(strchr(config.platform, '/') != NULL);
    image_config_free(&config);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy without a NUL, as path_read_file hands over. */
    char *buf = malloc(size ? size : 1);

    if (!buf)
        abort();
    memcpy(buf, data, size);
    check_manifest(buf, size);
    check_config(buf, size);
    free(buf);
    return 0;
}
