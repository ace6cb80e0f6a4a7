/* Unit tests for manifest.c: every manifest kind and image configs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "manifest.h"

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HEX_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define HEX_D "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
#define HEX_E "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"

#define MT_DOCKER_V2 "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST                                                        \
    "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define MT_DOCKER_FOREIGN                                                     \
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
#define MT_OCI "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar+gzip"

/* 2024-05-01T12:00:00Z */
#define MAY_FIRST_NOON INT64_C(1714564800)

struct parsed {
    struct manifest_info info;
    char err[256];
    int rc;
};

static struct parsed *parse(void **state, const char *json)
{
    struct parsed *p = *state;

    memset(p, 0, sizeof(*p));
    p->rc = manifest_parse(json, strlen(json), &p->info, p->err,
                           sizeof(p->err));
    return p;
}

static struct digest digest_of(const char *hex)
{
    struct digest d;

    if (digest_parse_hex(hex, strlen(hex), &d) != 0)
        fail_msg("test digest %s is not 64 lowercase hex digits", hex);
    return d;
}

#define assert_digest(actual, hex)                                            \
    do {                                                                      \
        struct digest expected_ = digest_of(hex);                             \
        assert_memory_equal((actual).bytes, expected_.bytes,                  \
                            sizeof(expected_.bytes));                         \
    } while (0)

static int setup(void **state)
{
    static struct parsed p;

    memset(&p, 0, sizeof(p));
    *state = &p;
    return 0;
}

static int teardown(void **state)
{
    struct parsed *p = *state;

    manifest_info_free(&p->info);
    return 0;
}

/*** image manifests ***/

static void test_manifest_docker_v2(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 2, \"mediaType\": \"" MT_DOCKER_V2 "\","
        " \"config\": {\"mediaType\": \"" MT_DOCKER_CONFIG "\","
        "   \"size\": 1469, \"digest\": \"sha256:" HEX_A "\"},"
        " \"layers\": ["
        "  {\"mediaType\": \"" MT_DOCKER_LAYER "\", \"size\": 3000,"
        "   \"digest\": \"sha256:" HEX_B "\"},"
        "  {\"mediaType\": \"" MT_DOCKER_LAYER "\", \"size\": 4000,"
        "   \"digest\": \"sha256:" HEX_C "\"}]}");

    assert_int_equal(p->rc, 0);
    assert_int_equal(p->info.kind, MANIFEST_DOCKER_V2);
    assert_true(p->info.has_config);
    assert_digest(p->info.config.digest, HEX_A);
    assert_int_equal(p->info.config.size, 1469);
    assert_int_equal(p->info.layer_count, 2);
    assert_digest(p->info.layers[0].digest, HEX_B);
    assert_int_equal(p->info.layers[0].size, 3000);
    assert_digest(p->info.layers[1].digest, HEX_C);
    assert_int_equal(p->info.layers[1].size, 4000);
    assert_int_equal(p->info.child_count, 0);
    assert_false(p->info.has_subject);
    assert_false(p->info.has_created);
    assert_null(p->info.platform);
}

static void test_manifest_docker_list_platforms(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 2, \"mediaType\": \"" MT_DOCKER_LIST "\","
        " \"manifests\": ["
        "  {\"mediaType\": \"" MT_DOCKER_V2 "\", \"size\": 528,"
        "   \"digest\": \"sha256:" HEX_A "\","
        "   \"platform\": {\"architecture\": \"amd64\", \"os\": \"linux\"}},"
        "  {\"mediaType\": \"" MT_DOCKER_V2 "\", \"size\": 529,"
        "   \"digest\": \"sha256:" HEX_B "\","
        "   \"platform\": {\"architecture\": \"arm64\", \"os\": \"linux\","
        "                  \"variant\": \"v8\"}},"
        "  {\"mediaType\": \"" MT_DOCKER_V2 "\", \"size\": 530,"
        "   \"digest\": \"sha256:" HEX_C "\"}]}");

    assert_int_equal(p->rc, 0);
    assert_int_equal(p->info.kind, MANIFEST_DOCKER_LIST);
    assert_false(p->info.has_config);
    assert_int_equal(p->info.layer_count, 0);
    assert_int_equal(p->info.child_count, 3);
    assert_digest(p->info.children[0].digest, HEX_A);
    assert_int_equal(p->info.children[0].size, 528);
    assert_string_equal(p->info.children[0].platform, "linux/amd64");
    assert_digest(p->info.children[1].digest, HEX_B);
    assert_string_equal(p->info.children[1].platform, "linux/arm64/v8");
    assert_digest(p->info.children[2].digest, HEX_C);
    assert_null(p->info.children[2].platform);
}

static void test_manifest_oci_with_media_type(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 2, \"mediaType\": \"" MT_OCI "\","
        " \"config\": {\"mediaType\": \"" MT_OCI_CONFIG "\", \"size\": 700,"
        "   \"digest\": \"sha256:" HEX_A "\"},"
        " \"layers\": [{\"mediaType\": \"" MT_OCI_LAYER "\", \"size\": 10,"
        "   \"digest\": \"sha256:" HEX_B "\"}],"
        " \"annotations\": {\"org.opencontainers.image.created\":"
        "   \"2024-05-01T12:00:00Z\"}}");

    assert_int_equal(p->rc, 0);
    assert_int_equal(p->info.kind, MANIFEST_OCI);
    assert_true(p->info.has_config);
    assert_digest(p->info.config.digest, HEX_A);
    assert_int_equal(p->info.layer_count, 1);
    assert_digest(p->info.layers[0].digest, HEX_B);
}

static void test_manifest_oci_without_media_type(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 2,"
        " \"config\": {\"mediaType\": \"" MT_OCI_CONFIG "\", \"size\": 700,"
        "   \"digest\": \"sha256:" HEX_A "\"},"
        " \"layers\": [{\"mediaType\": \"" MT_OCI_LAYER "\", \"size\": 10,"
        "   \"digest\": \"sha256:" HEX_B "\"}]}");

    assert_int_equal(p->rc, 0);
    assert_int_equal(p->info.kind, MANIFEST_OCI);
    assert_true(p->info.has_config);
    assert_int_equal(p->info.layer_count, 1);
}

static void test_manifest_oci_index_without_media_type(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 2, \"manifests\": ["
        "  {\"mediaType\": \"" MT_OCI "\", \"size\": 400,"
        "   \"digest\": \"sha256:" HEX_A "\","
        "   \"platform\": {\"architecture\": \"arm\", \"os\": \"linux\","
        "                  \"variant\": \"v7\"}}]}");

    assert_int_equal(p->rc, 0);
    assert_int_equal(p->info.kind, MANIFEST_OCI_INDEX);
    assert_int_equal(p->info.child_count, 1);
    assert_string_equal(p->info.children[0].platform, "linux/arm/v7");
}

static void test_manifest_oci_index_with_media_type(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 2, \"mediaType\": \"" MT_OCI_INDEX "\","
        " \"manifests\": []}");

    assert_int_equal(p->rc, 0);
    assert_int_equal(p->info.kind, MANIFEST_OCI_INDEX);
    assert_int_equal(p->info.child_count, 0);
}

/* An index may list another index, which is then a plain descriptor. */
static void test_manifest_nested_index_child(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 2, \"mediaType\": \"" MT_OCI_INDEX "\","
        " \"manifests\": ["
        "  {\"mediaType\": \"" MT_OCI_INDEX "\", \"size\": 300,"
        "   \"digest\": \"sha256:" HEX_A "\"},"
        "  {\"mediaType\": \"" MT_OCI "\", \"size\": 400,"
        "   \"digest\": \"sha256:" HEX_B "\","
        "   \"platform\": {\"architecture\": \"amd64\", \"os\": \"linux\"}}]}");

    assert_int_equal(p->rc, 0);
    assert_int_equal(p->info.kind, MANIFEST_OCI_INDEX);
    assert_int_equal(p->info.child_count, 2);
    assert_digest(p->info.children[0].digest, HEX_A);
    assert_int_equal(p->info.children[0].size, 300);
    assert_null(p->info.children[0].platform);
    assert_digest(p->info.children[1].digest, HEX_B);
}

static void test_manifest_index_platform_without_os(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 2, \"mediaType\": \"" MT_OCI_INDEX "\","
        " \"manifests\": [{\"mediaType\": \"" MT_OCI "\", \"size\": 1,"
        "   \"digest\": \"sha256:" HEX_A "\","
        "   \"platform\": {\"architecture\": \"riscv64\"}}]}");

    assert_int_equal(p->rc, 0);
    assert_string_equal(p->info.children[0].platform, "unknown/riscv64");
}

/*** schema 1 ***/

static void test_manifest_schema1_deduplicates_layers(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 1, \"name\": \"team/app\", \"tag\": \"v1\","
        " \"architecture\": \"amd64\","
        " \"fsLayers\": ["
        "  {\"blobSum\": \"sha256:" HEX_A "\"},"
        "  {\"blobSum\": \"sha256:" HEX_B "\"},"
        "  {\"blobSum\": \"sha256:" HEX_A "\"},"
        "  {\"blobSum\": \"sha256:" HEX_A "\"},"
        "  {\"blobSum\": \"sha256:" HEX_C "\"}],"
        " \"history\": ["
        "  {\"v1Compatibility\": \"{\\\"id\\\": \\\"x\\\","
        "     \\\"created\\\": \\\"2024-05-01T12:00:00.123456789Z\\\","
        "     \\\"os\\\": \\\"linux\\\","
        "     \\\"architecture\\\": \\\"amd64\\\"}\"},"
        "  {\"v1Compatibility\": \"{\\\"id\\\": \\\"y\\\","
        "     \\\"created\\\": \\\"2020-01-01T00:00:00Z\\\"}\"}]}");

    assert_int_equal(p->rc, 0);
    assert_int_equal(p->info.kind, MANIFEST_SCHEMA1);
    assert_false(p->info.has_config);
    assert_int_equal(p->info.layer_count, 3);
    assert_digest(p->info.layers[0].digest, HEX_A);
    assert_digest(p->info.layers[1].digest, HEX_B);
    assert_digest(p->info.layers[2].digest, HEX_C);
    assert_int_equal(p->info.layers[0].size, -1);
}

static void test_manifest_schema1_created_from_history(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 1, \"name\": \"team/app\", \"tag\": \"v1\","
        " \"fsLayers\": [{\"blobSum\": \"sha256:" HEX_A "\"}],"
        " \"history\": ["
        "  {\"v1Compatibility\": \"{\\\"created\\\":"
        "     \\\"2024-05-01T14:00:00.5+02:00\\\", \\\"os\\\": \\\"linux\\\","
        "     \\\"architecture\\\": \\\"arm64\\\","
        "     \\\"variant\\\": \\\"v8\\\"}\"}],"
        " \"signatures\": [{\"header\": {}, \"signature\": \"x\","
        "   \"protected\": \"y\"}]}");

    assert_int_equal(p->rc, 0);
    assert_int_equal(p->info.kind, MANIFEST_SCHEMA1);
    assert_true(p->info.has_created);
    assert_int_equal(p->info.created, MAY_FIRST_NOON);
    assert_non_null(p->info.platform);
    assert_string_equal(p->info.platform, "linux/arm64/v8");
}

static void test_manifest_schema1_without_history(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 1,"
        " \"fsLayers\": [{\"blobSum\": \"sha256:" HEX_A "\"}]}");

    assert_int_equal(p->rc, 0);
    assert_int_equal(p->info.kind, MANIFEST_SCHEMA1);
    assert_int_equal(p->info.layer_count, 1);
    assert_false(p->info.has_created);
    assert_null(p->info.platform);
}

static void test_manifest_schema1_bad_blobsum(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 1,"
        " \"fsLayers\": [{\"blobSum\": \"sha256:" HEX_A "\"},"
        "               {\"blobSum\": \"md5:0123\"}]}");

    assert_int_equal(p->rc, -1);
    assert_non_null(strstr(p->err, "md5:0123"));
}

static void test_manifest_schema1_without_fslayers(void **state)
{
    struct parsed *p = parse(state, "{\"schemaVersion\": 1}");

    assert_int_equal(p->rc, -1);
    assert_non_null(strstr(p->err, "fsLayers"));
}

/*** artifacts, referrers and foreign layers ***/

static void test_manifest_oci_artifact(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 2, \"mediaType\": \"" MT_OCI "\","
        " \"artifactType\": \"application/vnd.example.sbom+json\","
        " \"config\": {\"mediaType\": \"application/vnd.example.sbom.config"
        "+json\", \"size\": 2, \"digest\": \"sha256:" HEX_A "\"},"
        " \"layers\": [{\"mediaType\": \"application/spdx+json\","
        "   \"size\": 1234, \"digest\": \"sha256:" HEX_B "\"}]}");

    assert_int_equal(p->rc, 0);
    assert_int_equal(p->info.kind, MANIFEST_OCI);
    assert_true(p->info.has_config);
    assert_digest(p->info.config.digest, HEX_A);
    assert_int_equal(p->info.config.size, 2);
    assert_int_equal(p->info.layer_count, 1);
    assert_digest(p->info.layers[0].digest, HEX_B);
}

static void test_manifest_subject(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 2, \"mediaType\": \"" MT_OCI "\","
        " \"artifactType\": \"application/vnd.example.signature\","
        " \"config\": {\"mediaType\": \"application/vnd.oci.empty.v1+json\","
        "   \"size\": 2, \"digest\": \"sha256:" HEX_A "\"},"
        " \"layers\": [{\"mediaType\": \"application/octet-stream\","
        "   \"size\": 10, \"digest\": \"sha256:" HEX_B "\"}],"
        " \"subject\": {\"mediaType\": \"" MT_OCI "\", \"size\": 500,"
        "   \"digest\": \"sha256:" HEX_C "\"}}");

    assert_int_equal(p->rc, 0);
    assert_int_equal(p->info.kind, MANIFEST_OCI);
    assert_true(p->info.has_subject);
    assert_digest(p->info.subject, HEX_C);
}

static void test_manifest_subject_invalid_digest(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 2, \"mediaType\": \"" MT_OCI "\","
        " \"config\": {\"size\": 2, \"digest\": \"sha256:" HEX_A "\"},"
        " \"layers\": [],"
        " \"subject\": {\"size\": 500, \"digest\": \"sha256:xyz\"}}");

    assert_int_equal(p->rc, -1);
    assert_non_null(strstr(p->err, "sha256:xyz"));
}

static void test_manifest_layers_with_urls(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 2, \"mediaType\": \"" MT_DOCKER_V2 "\","
        " \"config\": {\"mediaType\": \"" MT_DOCKER_CONFIG "\","
        "   \"size\": 1000, \"digest\": \"sha256:" HEX_A "\"},"
        " \"layers\": ["
        "  {\"mediaType\": \"" MT_DOCKER_FOREIGN "\", \"size\": 99999,"
        "   \"digest\": \"sha256:" HEX_B "\","
        "   \"urls\": [\"https://example.com/layer.tar.gz\"]},"
        "  {\"mediaType\": \"" MT_DOCKER_LAYER "\", \"size\": 100,"
        "   \"digest\": \"sha256:" HEX_C "\"}]}");

    assert_int_equal(p->rc, 0);
    assert_int_equal(p->info.kind, MANIFEST_DOCKER_V2);
    assert_int_equal(p->info.layer_count, 2);
    assert_digest(p->info.layers[0].digest, HEX_B);
    assert_int_equal(p->info.layers[0].size, 99999);
    assert_digest(p->info.layers[1].digest, HEX_C);
}

static void test_manifest_missing_size(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 2, \"mediaType\": \"" MT_OCI "\","
        " \"config\": {\"digest\": \"sha256:" HEX_A "\"},"
        " \"layers\": [{\"digest\": \"sha256:" HEX_B "\", \"size\": -5}]}");

    assert_int_equal(p->rc, 0);
    assert_int_equal(p->info.config.size, -1);
    assert_int_equal(p->info.layers[0].size, -1);
}

/*** unknown and invalid input ***/

static void test_manifest_unknown_media_type(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 2,"
        " \"mediaType\": \"application/vnd.example.thing.v1+json\","
        " \"config\": {\"size\": 2, \"digest\": \"sha256:" HEX_A "\"}}");

    assert_int_equal(p->rc, 0);
    assert_int_equal(p->info.kind, MANIFEST_UNKNOWN);
    assert_non_null(strstr(p->err, "application/vnd.example.thing.v1+json"));
    assert_false(p->info.has_config);
    assert_int_equal(p->info.layer_count, 0);
}

static void test_manifest_empty_object_unknown(void **state)
{
    struct parsed *p = parse(state, "{}");

    assert_int_equal(p->rc, 0);
    assert_int_equal(p->info.kind, MANIFEST_UNKNOWN);
    assert_true(strlen(p->err) > 0);
}

static void test_manifest_non_sha256_layer_digest(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 2, \"mediaType\": \"" MT_OCI "\","
        " \"config\": {\"size\": 2, \"digest\": \"sha256:" HEX_A "\"},"
        " \"layers\": [{\"size\": 10, \"digest\": \"sha512:" HEX_B HEX_B
        "\"}]}");

    assert_int_equal(p->rc, -1);
    assert_non_null(strstr(p->err, "sha512:"));
    assert_int_equal(p->info.layer_count, 0);
    assert_null(p->info.layers);
}

static void test_manifest_uppercase_config_digest(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 2, \"mediaType\": \"" MT_OCI "\","
        " \"config\": {\"size\": 2, \"digest\": \"sha256:"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        "\"}, \"layers\": []}");

    assert_int_equal(p->rc, -1);
    assert_non_null(strstr(p->err, "digest"));
}

static void test_manifest_descriptor_without_digest(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 2, \"mediaType\": \"" MT_OCI_INDEX "\","
        " \"manifests\": [{\"size\": 10}]}");

    assert_int_equal(p->rc, -1);
    assert_non_null(strstr(p->err, "\"digest\""));
}

static void test_manifest_descriptor_not_object(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 2, \"mediaType\": \"" MT_DOCKER_V2 "\","
        " \"config\": {\"size\": 2, \"digest\": \"sha256:" HEX_A "\"},"
        " \"layers\": [\"sha256:" HEX_B "\"]}");

    assert_int_equal(p->rc, -1);
    assert_non_null(strstr(p->err, "not an object"));
}

static void test_manifest_layers_not_array(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 2, \"mediaType\": \"" MT_DOCKER_V2 "\","
        " \"config\": {\"size\": 2, \"digest\": \"sha256:" HEX_A "\"},"
        " \"layers\": {\"digest\": \"sha256:" HEX_B "\"}}");

    assert_int_equal(p->rc, -1);
    assert_non_null(strstr(p->err, "layers"));
}

static void test_manifest_manifests_not_array(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 2, \"mediaType\": \"" MT_DOCKER_LIST "\","
        " \"manifests\": \"none\"}");

    assert_int_equal(p->rc, -1);
    assert_non_null(strstr(p->err, "manifests"));
}

static void test_manifest_invalid_json(void **state)
{
    struct parsed *p = parse(state,
        "{\n"
        "  \"schemaVersion\": 2,\n"
        "  \"mediaType\" \"" MT_OCI "\"\n"
        "}\n");

    assert_int_equal(p->rc, -1);
    assert_non_null(strstr(p->err, "line 3"));
    assert_non_null(strstr(p->err, "column"));
}

static void test_manifest_truncated_json(void **state)
{
    struct parsed *p = parse(state,
        "{\"schemaVersion\": 2, \"mediaType\": \"" MT_OCI "\", \"lay");

    assert_int_equal(p->rc, -1);
    assert_non_null(strstr(p->err, "invalid JSON"));
}

static void test_manifest_non_object_json(void **state)
{
    struct parsed *p = parse(state, "[{\"schemaVersion\": 2}]");

    assert_int_equal(p->rc, -1);
    assert_non_null(strstr(p->err, "not a JSON object"));
}

static void test_manifest_empty_input(void **state)
{
    struct parsed *p = parse(state, "");

    assert_int_equal(p->rc, -1);
    assert_true(strlen(p->err) > 0);
}

/* The length argument counts, not a NUL terminator. */
static void test_manifest_length_argument_respected(void **state)
{
    struct parsed *p = *state;
    static const char json[] =
        "{\"schemaVersion\": 2, \"mediaType\": \"" MT_OCI_INDEX "\","
        " \"manifests\": []}garbage";

    p->rc = manifest_parse(json, strlen(json) - strlen("garbage"), &p->info,
                           p->err, sizeof(p->err));
    assert_int_equal(p->rc, 0);
    assert_int_equal(p->info.kind, MANIFEST_OCI_INDEX);
}

static void test_manifest_kind_names(void **state)
{
    (void)state;
    assert_string_equal(manifest_kind_name(MANIFEST_SCHEMA1), "schema1");
    assert_string_equal(manifest_kind_name(MANIFEST_DOCKER_V2), "docker-v2");
    assert_string_equal(manifest_kind_name(MANIFEST_DOCKER_LIST),
                        "docker-list");
    assert_string_equal(manifest_kind_name(MANIFEST_OCI), "oci");
    assert_string_equal(manifest_kind_name(MANIFEST_OCI_INDEX), "oci-index");
    assert_string_equal(manifest_kind_name(MANIFEST_UNKNOWN), "unknown");
}

/*** image configs ***/

static int parse_config(const char *json, struct image_config *c, char *err,
                        size_t err_size)
{
    return manifest_parse_config(json, strlen(json), c, err, err_size);
}

static void test_manifest_config_created_fraction_offset(void **state)
{
    struct image_config c;
    char err[256] = "";

    (void)state;
    assert_int_equal(
        parse_config("{\"architecture\": \"arm\", \"os\": \"linux\","
                     " \"variant\": \"v7\","
                     " \"created\": \"2024-05-01T14:00:00.123456789+02:00\","
                     " \"config\": {}, \"rootfs\": {\"type\": \"layers\","
                     " \"diff_ids\": []}}",
                     &c, err, sizeof(err)),
        0);
    assert_true(c.has_created);
    assert_int_equal(c.created, MAY_FIRST_NOON);
    assert_string_equal(c.platform, "linux/arm/v7");
    image_config_free(&c);
}

static void test_manifest_config_missing_created(void **state)
{
    struct image_config c;
    char err[256] = "";

    (void)state;
    assert_int_equal(parse_config("{\"architecture\": \"amd64\","
                                  " \"os\": \"linux\"}",
                                  &c, err, sizeof(err)),
                     0);
    assert_false(c.has_created);
    assert_string_equal(c.platform, "linux/amd64");
    image_config_free(&c);
}

static void test_manifest_config_invalid_created(void **state)
{
    struct image_config c;
    char err[256] = "";

    (void)state;
    assert_int_equal(parse_config("{\"created\": \"yesterday\"}", &c, err,
                                  sizeof(err)),
                     0);
    assert_false(c.has_created);
    assert_null(c.platform);
    image_config_free(&c);
}

static void test_manifest_config_created_not_string(void **state)
{
    struct image_config c;
    char err[256] = "";

    (void)state;
    assert_int_equal(parse_config("{\"created\": 1714564800}", &c, err,
                                  sizeof(err)),
                     0);
    assert_false(c.has_created);
    image_config_free(&c);
}

static void test_manifest_config_empty_variant(void **state)
{
    struct image_config c;
    char err[256] = "";

    (void)state;
    assert_int_equal(parse_config("{\"architecture\": \"amd64\","
                                  " \"os\": \"linux\", \"variant\": \"\"}",
                                  &c, err, sizeof(err)),
                     0);
    assert_string_equal(c.platform, "linux/amd64");
    image_config_free(&c);
}

static void test_manifest_config_not_object(void **state)
{
    struct image_config c;
    char err[256] = "";

    (void)state;
    assert_int_equal(parse_config("[]", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a JSON object"));
    assert_null(c.platform);
}

static void test_manifest_config_invalid_json(void **state)
{
    struct image_config c;
    char err[256] = "";

    (void)state;
    assert_int_equal(parse_config("{\"os\": }", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line 1"));
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_manifest_docker_v2),
        TEST(test_manifest_docker_list_platforms),
        TEST(test_manifest_oci_with_media_type),
        TEST(test_manifest_oci_without_media_type),
        TEST(test_manifest_oci_index_without_media_type),
        TEST(test_manifest_oci_index_with_media_type),
        TEST(test_manifest_nested_index_child),
        TEST(test_manifest_index_platform_without_os),
        TEST(test_manifest_schema1_deduplicates_layers),
        TEST(test_manifest_schema1_created_from_history),
        TEST(test_manifest_schema1_without_history),
        TEST(test_manifest_schema1_bad_blobsum),
        TEST(test_manifest_schema1_without_fslayers),
        TEST(test_manifest_oci_artifact),
        TEST(test_manifest_subject),
        TEST(test_manifest_subject_invalid_digest),
        TEST(test_manifest_layers_with_urls),
        TEST(test_manifest_missing_size),
        TEST(test_manifest_unknown_media_type),
        TEST(test_manifest_empty_object_unknown),
        TEST(test_manifest_non_sha256_layer_digest),
        TEST(test_manifest_uppercase_config_digest),
        TEST(test_manifest_descriptor_without_digest),
        TEST(test_manifest_descriptor_not_object),
        TEST(test_manifest_layers_not_array),
        TEST(test_manifest_manifests_not_array),
        TEST(test_manifest_invalid_json),
        TEST(test_manifest_truncated_json),
        TEST(test_manifest_non_object_json),
        TEST(test_manifest_empty_input),
        TEST(test_manifest_length_argument_respected),
        cmocka_unit_test(test_manifest_kind_names),
        cmocka_unit_test(test_manifest_config_created_fraction_offset),
        cmocka_unit_test(test_manifest_config_missing_created),
        cmocka_unit_test(test_manifest_config_invalid_created),
        cmocka_unit_test(test_manifest_config_created_not_string),
        cmocka_unit_test(test_manifest_config_empty_variant),
        cmocka_unit_test(test_manifest_config_not_object),
        cmocka_unit_test(test_manifest_config_invalid_json),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
