#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "path.h"
#include "scan.h"
#include "sha256.h"

/* Whether blob id has a data file, looked up once per run. */
static int blob_exists(struct registry *reg, uint32_t id)
{
    if (!(reg->flags[id] & ID_CHECKED)) {
        reg->flags[id] |= ID_CHECKED;
        if (scan_blob_size(reg, id, NULL) < 0)
            reg->flags[id] |= ID_MISSING;
    }
    return !(reg->flags[id] & ID_MISSING);
}

static int has_layer_link(const struct repo *repo, uint32_t id)
{
    size_t lo = 0, hi = repo->layer_count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (repo->layers[mid] == id)
            return 1;
        if (repo->layers[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static void check_blob_ref(struct registry *reg, const struct repo *repo,
                           uint32_t manifest_id, uint32_t blob_id,
                           int external)
{
    char mhex[DIGEST_HEX_LEN + 1], bhex[DIGEST_HEX_LEN + 1];
    char path[PATH_MAX];

    if (external && !blob_exists(reg, blob_id))
        return;
    digest_to_hex(&reg->ids.digests[manifest_id], mhex);
    digest_to_hex(&reg->ids.digests[blob_id], bhex);
    pathf(path, sizeof(path), "repositories/%s/_manifests/revisions/sha256/%s",
          repo->name, mhex);
    if (!blob_exists(reg, blob_id))
        registry_problem(reg, repo->name, path,
                         "the manifest references blob sha256:%s, which is "
                         "missing from the blob store; pulls of this image "
                         "fail",
                         bhex);
    else if (!has_layer_link(repo, blob_id))
        registry_problem(reg, repo->name, path,
                         "the manifest references blob sha256:%s, which has "
                         "no _layers link in the repository; the registry "
                         "does not serve it from here",
                         bhex);
}

static void check_repo(struct registry *reg, const struct repo *repo,
                       struct check_result *result)
{
    for (size_t i = 0; i < repo->revision_count; i++) {
        uint32_t id = repo->revisions[i];
        const struct manifest *m = reg->manifests[id];

        result->manifests++;
        if (!m || m->state != MSTATE_OK)
            continue; /* scanning recorded it already */
        if (m->config != DIGEST_NONE)
            check_blob_ref(reg, repo, id, m->config, 0);
        for (size_t j = 0; j < m->layer_count; j++)
            check_blob_ref(reg, repo, id, m->layers[j],
                           m->layer_external[j]);
    }
}

/* Hash the data file of blob id; 1 when it matches its name. */
static int verify_blob(struct registry *reg, uint32_t id)
{
    char path[128], hex[DIGEST_HEX_LEN + 1];
    unsigned char buf[65536], sum[SHA256_DIGEST_SIZE];
    struct sha256_ctx ctx;
    struct stat st;
    ssize_t n;
    int fd;

    digest_to_hex(&reg->ids.digests[id], hex);
    pathf(path, sizeof(path), "blobs/sha256/%.2s/%s/data", hex, hex);
    fd = path_open(reg->v2_fd, path, O_RDONLY | O_NONBLOCK);
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        fd = -1;
        errno = EISDIR;
    }
    if (fd < 0) {
        registry_problem(reg, NULL, path, "cannot read blob: %s",
                         errno == EISDIR ? "not a regular file"
                                         : strerror(errno));
        return 0;
    }
    sha256_init(&ctx);
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        sha256_update(&ctx, buf, (size_t)n);
    close(fd);
    if (n < 0) {
        registry_problem(reg, NULL, path, "cannot read blob: %s",
                         strerror(errno));
        return 0;
    }
    sha256_final(&ctx, sum);
    if (memcmp(sum, reg->ids.digests[id].bytes, sizeof(sum)) != 0) {
        char actual[SHA256_HEX_LENGTH + 1];
        sha256_format_hex(sum, actual);
        registry_problem(reg, NULL, path, "content hashes to sha256:%s, not "
                         "to its name; the blob is corrupt",
                         actual);
        return 0;
    }
    return 1;
}

void check_registry(struct registry *reg, int verify,
                    struct check_result *result)
{
    memset(result, 0, sizeof(*result));
    for (size_t r = 0; r < reg->repo_count; r++) {
        if (!reg->repos[r].selected)
            continue;
        result->repositories++;
        check_repo(reg, &reg->repos[r], result);
    }
    if (!verify)
        return;
    for (uint32_t id = 0; id < reg->ids.count; id++) {
        if (!(reg->flags[id] & ID_IN_STORE))
            continue;
        verify_blob(reg, id);
        result->blobs_verified++;
    }
}
