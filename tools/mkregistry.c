/*
 * mkregistry: write Docker Registry v2 filesystem storage trees, laid out
 * as the distribution registry 2.8 (Debian docker-registry) stores pushes
 * from skopeo, for tests, demos and benchmarks.
 *
 *   mkregistry [--now TIME] [--force] [-q] --spec FILE ROOT
 *   mkregistry [--now TIME] [--force] [-q] [--layer-size BYTES]
 *              [--scale S] --scenario sample|seed|large|huge ROOT
 *   mkregistry --print-scenario sample|seed|large|huge [--layer-size BYTES]
 *              [--scale S]
 *
 * The tree goes to ROOT/docker/registry/v2. A spec has one statement per
 * line. Blank lines and lines starting with '#' are ignored, and outside
 * raw a word starting with '#' begins a comment. A word may contain
 * double-quoted parts with C escapes (labels="a=x y"). TIME is Unix
 * seconds, RFC 3339, or a duration relative to --now such as -30d or
 * -1d12h (units s m h d w). SIZE is bytes with an optional K or M suffix
 * (powers of 1024). REF is REPO:TAG or REPO@NAME, where NAME is a handle
 * for an untagged manifest, local to the spec.
 *
 *   layer NAME SIZE
 *       Declare a layer: a gzip-compressed tar archive of exactly SIZE
 *       bytes (1559 bytes to 1024M) whose content depends on NAME only.
 *       The same layer in two repositories is the same blob.
 *   image REF [layers=A,B] [pushed=TIME] [created=TIME|none]
 *             [platform=OS/ARCH[/VARIANT]] [format=docker|oci]
 *             [labels=K=V;K2=V2]
 *       Push a manifest, its config and its layers (default: one 2 KiB
 *       layer of its own); tag it when REF is REPO:TAG. pushed defaults to
 *       --now and created to pushed.
 *   index REF children=NAME,NAME [format=docker|oci] [pushed=TIME]
 *       Push a manifest list (docker) or an OCI image index over manifests
 *       pushed before as REPO@NAME in the same repository.
 *   alias REPO:TAG2 REF [pushed=TIME]   tag REF's digest as new tag TAG2
 *   retag REPO:TAG REF [pushed=TIME]    point existing TAG at REF's digest
 *   delete REF
 *       Delete a manifest as the registry API does: remove its revision
 *       link and every tag whose current link names it.
 *   upload REPO NAME [started=TIME] [size=SIZE]
 *       Leave an unfinished blob upload in REPO/_uploads.
 *   raw RELPATH TEXT    write TEXT (C escapes) to v2/RELPATH
 *   rm RELPATH          remove a file or directory tree under v2/
 *   touch RELPATH TIME  set the access and modification times
 *
 * In RELPATH and TEXT, ${layer:NAME}, ${config:REF} and ${manifest:REF}
 * expand to a blob's 64 hex digits, and ${layer-blob:NAME},
 * ${config-blob:REF} and ${manifest-blob:REF} to its directory
 * blobs/sha256/XX/HEX. A REPO:TAG reference names the tag's current digest.
 *
 * Writes follow the registry: a blob's data file is written once and
 * later pushes leave it alone, a repository's layer link is written when
 * the repository first gets the blob, and revision and tag links are
 * rewritten on every push. New files get the push time as mtime.
 */
#include "sha256.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PROGRAM_NAME "mkregistry"
#define TREE_PREFIX "docker/registry/v2"
#define REL_PATH_MAX 4096
#define DIGEST_HEX_SIZE (SHA256_HEX_LENGTH + 1)

/* A layer needs at least a tar header and two zero blocks, the gzip
 * header and trailer (18 bytes) and one stored deflate block header. */
#define TAR_BLOCK 512
#define TAR_OVERHEAD (3 * TAR_BLOCK)
#define GZIP_OVERHEAD 18
#define STORED_BLOCK_MAX 65535
#define STORED_BLOCK_HEADER 5
#define LAYER_MIN_SIZE (GZIP_OVERHEAD + STORED_BLOCK_HEADER + TAR_OVERHEAD)
#define LAYER_MAX_SIZE (UINT64_C(1) << 30)
#define DEFAULT_LAYER_SIZE 2048
#define SEED_LAYER_SIZE 8192

#define MT_DOCKER_MANIFEST                                                     \
    "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST                                                         \
    "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar+gzip"

/*** memory and strings ***/

static void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);

    if (p == NULL) {
        fprintf(stderr, PROGRAM_NAME ": out of memory (%zu bytes)\n", size);
        abort();
    }
    return p;
}

static void *xrealloc(void *old, size_t size)
{
    void *p = realloc(old, size ? size : 1);

    if (p == NULL) {
        fprintf(stderr, PROGRAM_NAME ": out of memory (%zu bytes)\n", size);
        abort();
    }
    return p;
}

static char *xstrdup(const char *s)
{
    size_t len = strlen(s) + 1;

    return memcpy(xmalloc(len), s, len);
}

/* Growable byte string, always NUL-terminated. */
struct buf {
    char *data;
    size_t len;
    size_t cap;
};

static void buf_reserve(struct buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

static void buf_append(struct buf *b, const void *data, size_t len)
{
    buf_reserve(b, len);
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

static void buf_putc(struct buf *b, char c)
{
    buf_append(b, &c, 1);
}

__attribute__((format(printf, 2, 3))) static void
buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* String-keyed hash table with open addressing. It owns copies of the
 * keys but not the values. */
struct map {
    char **keys;
    void **values;
    size_t cap;
    size_t count;
};

static uint64_t hash_string(const char *s)
{
    uint64_t h = 0xcbf29ce484222325u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3u;
    return h;
}

static size_t map_slot(const struct map *m, const char *key)
{
    size_t i = hash_string(key) & (m->cap - 1);

    while (m->keys[i] != NULL && strcmp(m->keys[i], key) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static void *map_get(const struct map *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    size_t i = map_slot(m, key);
    return m->keys[i] ? m->values[i] : NULL;
}

static void map_put(struct map *m, const char *key, void *value)
{
    if (2 * (m->count + 1) > m->cap) {
        struct map grown = {0};
        grown.cap = m->cap ? 2 * m->cap : 64;
        grown.keys = calloc(grown.cap, sizeof(*grown.keys));
        grown.values = calloc(grown.cap, sizeof(*grown.values));
        if (grown.keys == NULL || grown.values == NULL) {
            fprintf(stderr, PROGRAM_NAME ": out of memory\n");
            abort();
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (m->keys[i] == NULL)
                continue;
            size_t j = map_slot(&grown, m->keys[i]);
            grown.keys[j] = m->keys[i];
            grown.values[j] = m->values[i];
        }
        grown.count = m->count;
        free(m->keys);
        free(m->values);
        *m = grown;
    }
    size_t i = map_slot(m, key);
    if (m->keys[i] == NULL) {
        m->keys[i] = xstrdup(key);
        m->count++;
    }
    m->values[i] = value;
}

/* Free the keys, and the values too when free_values is set. */
static void map_free(struct map *m, bool free_values)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->keys[i]);
        if (free_values)
            free(m->values[i]);
    }
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof(*m));
}

/*** diagnostics ***/

/* Name of the spec being read, for messages: a file name or
 * "scenario NAME". */
static const char *spec_name = "";

/* Print a message prefixed with the program name and return -1. */
__attribute__((format(printf, 1, 2))) static int errorf(const char *fmt, ...)
{
    va_list ap;

    fputs(PROGRAM_NAME ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return -1;
}

/* Print a message about a line of the spec and return -1. */
__attribute__((format(printf, 2, 3))) static int
spec_error(int line, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, PROGRAM_NAME ": %s:%d: ", spec_name, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return -1;
}

/*** times, sizes and names ***/

/* Parse a duration such as 30d or 1d12h into seconds. */
static int parse_duration(const char *s, int64_t *seconds)
{
    int64_t total = 0;

    if (*s == '\0')
        return -1;
    while (*s) {
        if (!isdigit((unsigned char)*s))
            return -1;
        char *end;
        errno = 0;
        long long n = strtoll(s, &end, 10);
        int64_t unit;
        switch (*end) {
            case 's':
                unit = 1;
                break;
            case 'm':
                unit = 60;
                break;
            case 'h':
                unit = 3600;
                break;
            case 'd':
                unit = 86400;
                break;
            case 'w':
                unit = 7 * 86400;
                break;
            default:
                return -1;
        }
        if (errno != 0 || n > INT64_MAX / unit / 1000)
            return -1;
        total += n * unit;
        s = end + 1;
    }
    *seconds = total;
    return 0;
}

/* Parse YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM). */
static int parse_rfc3339(const char *s, int64_t *seconds)
{
    struct tm tm = {0};
    int consumed = 0;

    if (sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
               &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
               &consumed) != 6 ||
        consumed != 19)
        return -1;
    s += consumed;
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s))
            return -1;
        while (isdigit((unsigned char)*s))
            s++;
    }
    int64_t offset = 0;
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int hours, minutes;
        if (sscanf(s + 1, "%2d:%2d%n", &hours, &minutes, &consumed) != 2 ||
            consumed != 5)
            return -1;
        offset = (int64_t)(hours * 3600 + minutes * 60) * (*s == '-' ? -1 : 1);
        s += 6;
    } else {
        return -1;
    }
    if (*s != '\0')
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *seconds = (int64_t)timegm(&tm) - offset;
    return 0;
}

/* Parse TIME: Unix seconds, RFC 3339, or -DURATION/+DURATION from now. */
static int parse_time(const char *s, int64_t now, int64_t *seconds)
{
    int64_t delta;

    if (*s == '-' || *s == '+') {
        if (parse_duration(s + 1, &delta) < 0)
            return -1;
        *seconds = *s == '-' ? now - delta : now + delta;
        return 0;
    }
    if (strchr(s, 'T') != NULL || strchr(s, 't') != NULL)
        return parse_rfc3339(s, seconds);
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || !isdigit((unsigned char)*s))
        return -1;
    *seconds = n;
    return 0;
}

/* Parse SIZE: bytes with an optional K or M suffix (1024 and 1048576). */
static int parse_size(const char *s, uint64_t *bytes)
{
    char *end;

    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    uint64_t unit = 1;
    if (*end == 'K' || *end == 'k')
        unit = 1024;
    else if (*end == 'M' || *end == 'm')
        unit = 1024 * 1024;
    if (unit != 1)
        end++;
    if (errno != 0 || *end != '\0' || n > (UINT64_C(1) << 40) / unit)
        return -1;
    *bytes = n * unit;
    return 0;
}

/* Format t as RFC 3339 UTC. Nonzero nanoseconds are added without
 * trailing zeros, like Go's time.RFC3339Nano. */
static void format_rfc3339(int64_t t, long nanoseconds, char out[40])
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    if (nanoseconds > 0) {
        n += (size_t)snprintf(out + n, 40 - n, ".%09ld", nanoseconds);
        while (out[n - 1] == '0')
            n--;
    }
    snprintf(out + n, 40 - n, "Z");
}

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Check a repository name against the distribution grammar: components of
 * [a-z0-9]+ joined by '.', '_', '__' or runs of '-', separated by '/'. */
static bool valid_repo_name(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > 255)
        return false;
    while (*s) {
        if (!is_lower_alnum(*s))
            return false;
        while (is_lower_alnum(*s))
            s++;
        while (*s && *s != '/') {
            const char *sep = s;
            if (*s == '.' || (*s == '_' && s[1] != '_'))
                s++;
            else if (*s == '_')
                s += 2;
            else
                while (*s == '-')
                    s++;
            if (s == sep || !is_lower_alnum(*s))
                return false;
            while (is_lower_alnum(*s))
                s++;
        }
        if (*s == '/') {
            s++;
            if (*s == '\0')
                return false;
        }
    }
    return true;
}

/* Check a tag against the distribution grammar [A-Za-z0-9_][\w.-]{0,127}. */
static bool valid_tag(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > 128 || *s == '.' || *s == '-')
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
            return false;
    return true;
}

/* Layer names and handles: [A-Za-z0-9._-]+. */
static bool valid_local_name(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
            return false;
    return true;
}

/*** pseudo-random content ***/

/* xoshiro256** seeded from the SHA-256 of a label, so content depends on
 * the label only. */
struct prng {
    uint64_t s[4];
};

static void prng_seed(struct prng *rng, const char *kind, const char *name)
{
    struct sha256_ctx ctx;
    unsigned char digest[SHA256_DIGEST_SIZE];

    sha256_init(&ctx);
    sha256_update(&ctx, kind, strlen(kind) + 1);
    sha256_update(&ctx, name, strlen(name));
    sha256_final(&ctx, digest);
    for (int i = 0; i < 4; i++) {
        rng->s[i] = 0;
        for (int j = 0; j < 8; j++)
            rng->s[i] = rng->s[i] << 8 | digest[8 * i + j];
    }
}

static uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t prng_next(struct prng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

static void prng_fill(struct prng *rng, unsigned char *out, size_t len)
{
    while (len > 0) {
        uint64_t x = prng_next(rng);
        size_t n = len < 8 ? len : 8;
        memcpy(out, &x, n);
        out += n;
        len -= n;
    }
}

/*** layer archives ***/

static uint32_t crc32_table[256];

static void crc32_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc32_table[i] = c;
    }
}

static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n)
{
    crc = ~crc;
    while (n--)
        crc = crc32_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static void put_le16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put_le32(unsigned char *p, uint32_t v)
{
    put_le16(p, v & 0xffff);
    put_le16(p + 2, v >> 16);
}

static size_t stored_blocks(size_t tar_len)
{
    return tar_len == 0 ? 1
                        : (tar_len + STORED_BLOCK_MAX - 1) / STORED_BLOCK_MAX;
}

/* Write a ustar header for one regular file into block. */
static void tar_header(unsigned char block[TAR_BLOCK], const char *layer,
                       size_t file_size)
{
    char *h = (char *)block;

    memset(block, 0, TAR_BLOCK);
    int n = snprintf(h, 100, "mkregistry/%s", layer);
    for (int i = 11; i < n && i < 99; i++)
        if (!isalnum((unsigned char)h[i]) && !strchr("._-", h[i]))
            h[i] = '_';
    memcpy(h + 100, "0000644", 8);
    memcpy(h + 108, "0000000", 8);
    memcpy(h + 116, "0000000", 8);
    /* Layer sizes are capped at LAYER_MAX_SIZE, well within the 11 octal
     * digits of the size field. */
    snprintf(h + 124, 12, "%011llo",
             (unsigned long long)file_size & 077777777777ull);
    memcpy(h + 136, "00000000000", 12);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memcpy(h + 265, "root", 5);
    memcpy(h + 297, "root", 5);

    unsigned sum = 0;
    memset(h + 148, ' ', 8);
    for (int i = 0; i < TAR_BLOCK; i++)
        sum += block[i];
    snprintf(h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

/*
 * Build the blob of layer NAME: a tar archive holding one file of
 * pseudo-random bytes, wrapped in gzip with stored (uncompressed) deflate
 * blocks. The file size is the largest multiple of 512 that fits, and a
 * gzip comment (FCOMMENT) takes up the rest, so the blob is exactly size
 * bytes. out must have room for size bytes. The digest of the tar, which
 * is the layer's diff ID, goes to diff_id.
 */
static int build_layer(const char *name, size_t size, unsigned char *out,
                       unsigned char diff_id[SHA256_DIGEST_SIZE])
{
    size_t tar_len = 0, padding = 0;

    if (size < LAYER_MIN_SIZE)
        return -1;
    for (size_t k = (size - LAYER_MIN_SIZE) / TAR_BLOCK + 1;; k--) {
        tar_len = TAR_OVERHEAD + k * TAR_BLOCK;
        size_t fixed = GZIP_OVERHEAD +
                       STORED_BLOCK_HEADER * stored_blocks(tar_len) + tar_len;
        if (fixed <= size) {
            padding = size - fixed;
            break;
        }
    }

    unsigned char *p = out;
    memcpy(p, "\x1f\x8b\x08", 3);
    p[3] = padding ? 0x10 : 0x00; /* FCOMMENT */
    memset(p + 4, 0, 5);          /* MTIME 0, XFL 0 */
    p[9] = 0xff;                  /* OS unknown */
    p += 10;
    if (padding) {
        /* A comment is Latin-1 text ending in a NUL byte. */
        memset(p, ' ', padding - 1);
        p[padding - 1] = '\0';
        p += padding;
    }

    /* Reserve the stored block headers, then lay the tar out between them:
     * build it contiguously at the end of out and move it into place. */
    size_t nblocks = stored_blocks(tar_len);
    unsigned char *tar = out + size - 8 - tar_len;
    size_t file_size = tar_len - TAR_OVERHEAD;
    struct prng rng;
    tar_header(tar, name, file_size);
    prng_seed(&rng, "layer", name);
    prng_fill(&rng, tar + TAR_BLOCK, file_size);
    memset(tar + TAR_BLOCK + file_size, 0, 2 * TAR_BLOCK);
    sha256_digest(tar, tar_len, diff_id);
    uint32_t crc = crc32_update(0, tar, tar_len);

    size_t done = 0;
    for (size_t i = 0; i < nblocks; i++) {
        size_t n = tar_len - done < STORED_BLOCK_MAX ? tar_len - done
                                                     : STORED_BLOCK_MAX;
        p[0] = i + 1 == nblocks ? 1 : 0; /* BFINAL, BTYPE 00 */
        put_le16(p + 1, (unsigned)n);
        put_le16(p + 3, (unsigned)(~n & 0xffff));
        /* Each block moves back by the headers still ahead of it, so
         * it never overwrites the part of the tar not yet moved. */
        memmove(p + 5, tar + done, n);
        p += 5 + n;
        done += n;
    }
    put_le32(p, crc);
    put_le32(p + 4, (uint32_t)tar_len);
    return 0;
}

/*** the storage tree ***/

/* Output tree: a directory descriptor for ROOT/docker/registry/v2 and the
 * path to print in messages. */
struct tree {
    int fd;
    char *path;
};

__attribute__((format(printf, 3, 4))) static int
tree_path(char out[REL_PATH_MAX], int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(out, REL_PATH_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= REL_PATH_MAX)
        return spec_error(line, "path too long");
    return 0;
}

/* Create directory path and any missing parents, trying the deepest
 * first because most parents exist already. path is restored on return. */
static int make_dir_path(struct tree *t, char *path)
{
    if (mkdirat(t->fd, path, 0777) == 0 || errno == EEXIST)
        return 0;
    char *slash = strrchr(path, '/');
    if (errno != ENOENT || slash == NULL || slash == path)
        return errorf("cannot create directory %s/%s: %s", t->path, path,
                      strerror(errno));
    *slash = '\0';
    int rc = make_dir_path(t, path);
    *slash = '/';
    if (rc < 0)
        return -1;
    if (mkdirat(t->fd, path, 0777) < 0 && errno != EEXIST)
        return errorf("cannot create directory %s/%s: %s", t->path, path,
                      strerror(errno));
    return 0;
}

/* Create the directories leading to rel (all of rel when whole is set). */
static int tree_mkdirs(struct tree *t, const char *rel, bool whole)
{
    char path[REL_PATH_MAX];
    size_t len = strlen(rel);

    memcpy(path, rel, len + 1);
    if (!whole) {
        char *slash = strrchr(path, '/');
        if (slash == NULL || slash == path)
            return 0;
        *slash = '\0';
    }
    return make_dir_path(t, path);
}

static bool tree_exists(struct tree *t, const char *rel)
{
    struct stat st;

    return fstatat(t->fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static int set_times(struct tree *t, const char *rel, int fd, int64_t mtime)
{
    struct timespec times[2] = {{.tv_sec = (time_t)mtime},
                                {.tv_sec = (time_t)mtime}};
    int rc = fd >= 0 ? futimens(fd, times)
                     : utimensat(t->fd, rel, times, AT_SYMLINK_NOFOLLOW);

    if (rc < 0)
        return errorf("cannot set times of %s/%s: %s", t->path, rel,
                      strerror(errno));
    return 0;
}

/* Flags of tree_write_file. */
enum {
    /* Leave an existing file alone and return 1. */
    WRITE_EXCLUSIVE = 1,
    /* The file's directory is probably missing: create it before the
     * first open rather than after a failed one. Either way the result is
     * the same; the hint only saves a system call. */
    WRITE_NEW_DIR = 2,
};

/* Write a whole file, creating its directories, with mtime as its access
 * and modification time. */
static int tree_write_file(struct tree *t, const char *rel, const void *data,
                           size_t len, int64_t mtime, unsigned write_flags)
{
    bool exclusive = write_flags & WRITE_EXCLUSIVE;
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC);

    if ((write_flags & WRITE_NEW_DIR) && tree_mkdirs(t, rel, false) < 0)
        return -1;
    int fd = openat(t->fd, rel, flags, 0666);

    if (fd < 0 && errno == ENOENT) {
        if (tree_mkdirs(t, rel, false) < 0)
            return -1;
        fd = openat(t->fd, rel, flags, 0666);
    }
    if (fd < 0 && exclusive && errno == EEXIST)
        return 1;
    if (fd < 0)
        return errorf("cannot create %s/%s: %s", t->path, rel, strerror(errno));

    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            errorf("cannot write %s/%s: %s", t->path, rel, strerror(errno));
            close(fd);
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    if (set_times(t, rel, fd, mtime) < 0) {
        close(fd);
        return -1;
    }
    if (close(fd) < 0)
        return errorf("cannot write %s/%s: %s", t->path, rel, strerror(errno));
    return 0;
}

/* Write a whole file, replacing any old content. */
static int tree_write(struct tree *t, const char *rel, const void *data,
                      size_t len, int64_t mtime, unsigned write_flags)
{
    return tree_write_file(t, rel, data, len, mtime, write_flags) < 0 ? -1
                                                                      : 0;
}

/* Read a link file of the form sha256:<hex>. Return 0, or 1 when it does
 * not exist, or -1 when it cannot be read or is malformed. */
static int tree_read_link(struct tree *t, const char *rel,
                          char hex[DIGEST_HEX_SIZE])
{
    char text[80];
    int fd = openat(t->fd, rel, O_RDONLY | O_CLOEXEC);

    if (fd < 0 && errno == ENOENT)
        return 1;
    if (fd < 0)
        return errorf("cannot open %s/%s: %s", t->path, rel, strerror(errno));
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n < 0)
        return errorf("cannot read %s/%s: %s", t->path, rel, strerror(errno));
    text[n] = '\0';
    if (n != 7 + SHA256_HEX_LENGTH || strncmp(text, "sha256:", 7) != 0)
        return errorf("%s/%s: not a sha256 link", t->path, rel);
    memcpy(hex, text + 7, DIGEST_HEX_SIZE);
    return 0;
}

static int remove_tree_at(int parent_fd, const char *name,
                          const char *display_path)
{
    if (unlinkat(parent_fd, name, 0) == 0)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return errorf("cannot remove %s: %s", display_path, strerror(errno));

    int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errorf("cannot open %s: %s", display_path, strerror(errno));
    DIR *dir = fdopendir(fd);
    if (dir == NULL) {
        close(fd);
        return errorf("cannot open %s: %s", display_path, strerror(errno));
    }
    int rc = 0;
    struct dirent *entry;
    while (rc == 0 && (entry = readdir(dir)) != NULL) {
        if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, ".."))
            continue;
        rc = remove_tree_at(dirfd(dir), entry->d_name, display_path);
    }
    closedir(dir);
    if (rc == 0 && unlinkat(parent_fd, name, AT_REMOVEDIR) < 0)
        return errorf("cannot remove %s: %s", display_path, strerror(errno));
    return rc;
}

/* Remove a file or a directory tree under the root. */
static int tree_remove(struct tree *t, const char *rel)
{
    char display_path[REL_PATH_MAX + 256];

    snprintf(display_path, sizeof(display_path), "%s/%s", t->path, rel);
    return remove_tree_at(t->fd, rel, display_path);
}

/*** spec statements ***/

enum stmt_kind {
    STMT_LAYER,
    STMT_IMAGE,
    STMT_INDEX,
    STMT_ALIAS,
    STMT_RETAG,
    STMT_DELETE,
    STMT_UPLOAD,
    STMT_RAW,
    STMT_RM,
    STMT_TOUCH,
};

enum format { FORMAT_DOCKER, FORMAT_OCI };

/* REPO:TAG (tag set) or REPO@NAME (handle set). */
struct ref {
    char *repo;
    char *tag;
    char *handle;
};

struct label {
    char *key;
    char *value;
};

/* A layer declared by the spec; the digests are filled in on first use. */
struct layer {
    char *name;
    size_t size;
    bool hashed;
    /* The builder's epoch in which the blob's data file was last known to
     * exist, or 0. */
    uint64_t stored_epoch;
    char hex[DIGEST_HEX_SIZE];
    char diff_hex[DIGEST_HEX_SIZE];
};

struct stmt {
    enum stmt_kind kind;
    int line;
    struct ref target;
    struct ref source;     /* alias, retag */
    char *name;            /* layer, upload */
    uint64_t size;         /* layer, upload */
    struct layer **layers; /* image */
    char **children;       /* index: handle names */
    size_t count;          /* entries in layers or children */
    int64_t time;          /* pushed, started, touch time */
    bool created_given;
    bool has_created; /* false for created=none */
    int64_t created;
    char *os, *arch, *variant;
    enum format format;
    struct label *labels;
    size_t label_count;
    char *path; /* raw, rm, touch */
    char *text; /* raw */
    size_t text_len;
};

struct words {
    char **v;
    size_t n;
};

static void words_free(struct words *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->v[i]);
    free(w->v);
    w->v = NULL;
    w->n = 0;
}

/* Decode one backslash escape at *p (just after the backslash). */
static int decode_escape(const char **p, struct buf *out)
{
    char c = **p;
    (*p)++;
    switch (c) {
        case 'n':
            buf_putc(out, '\n');
            return 0;
        case 'r':
            buf_putc(out, '\r');
            return 0;
        case 't':
            buf_putc(out, '\t');
            return 0;
        case '0':
            buf_putc(out, '\0');
            return 0;
        case '\\':
        case '"':
        case '\'':
        case '#':
        case ' ':
            buf_putc(out, c);
            return 0;
        case 'x':
            if (isxdigit((unsigned char)(*p)[0]) &&
                isxdigit((unsigned char)(*p)[1])) {
                char hex[3] = {(*p)[0], (*p)[1], '\0'};
                buf_putc(out, (char)strtol(hex, NULL, 16));
                *p += 2;
                return 0;
            }
            return -1;
        default:
            return -1;
    }
}

/* Split a line into words. Double quotes group spaces into a word,
 * backslash escapes work anywhere, and a word starting with '#' ends the
 * line. */
static int split_words(const char *p, int line, struct words *w)
{
    struct buf word = {0};
    size_t cap = 0;

    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#')
            break;
        bool quoted = false;
        word.len = 0;
        buf_reserve(&word, 0);
        word.data[0] = '\0';
        while (*p && (quoted || (*p != ' ' && *p != '\t'))) {
            if (*p == '"') {
                quoted = !quoted;
                p++;
            } else if (*p == '\\') {
                p++;
                if (decode_escape(&p, &word) < 0) {
                    free(word.data);
                    return spec_error(line, "invalid escape sequence");
                }
            } else {
                buf_putc(&word, *p++);
            }
        }
        if (quoted) {
            free(word.data);
            return spec_error(line, "missing closing quote");
        }
        if (w->n == cap) {
            cap = cap ? 2 * cap : 8;
            w->v = xrealloc(w->v, cap * sizeof(*w->v));
        }
        w->v[w->n++] = xstrdup(word.data);
    }
    free(word.data);
    return 0;
}

static void ref_free(struct ref *r)
{
    free(r->repo);
    free(r->tag);
    free(r->handle);
}

/* Parse REPO:TAG or REPO@NAME. */
static int parse_ref(const char *s, int line, struct ref *r)
{
    const char *at = strchr(s, '@');
    const char *colon = strrchr(s, ':');
    const char *split = at ? at : colon;

    memset(r, 0, sizeof(*r));
    if (split == NULL)
        return spec_error(line, "'%s' is not REPO:TAG or REPO@NAME", s);
    r->repo = xmalloc((size_t)(split - s) + 1);
    memcpy(r->repo, s, (size_t)(split - s));
    r->repo[split - s] = '\0';
    if (!valid_repo_name(r->repo))
        return spec_error(line, "invalid repository name '%s'", r->repo);
    if (at) {
        r->handle = xstrdup(at + 1);
        if (!valid_local_name(r->handle))
            return spec_error(line, "invalid manifest name '%s'", r->handle);
    } else {
        r->tag = xstrdup(colon + 1);
        if (!valid_tag(r->tag))
            return spec_error(line, "invalid tag '%s'", r->tag);
    }
    return 0;
}

/* Join repo and handle into the key of the handle tables. */
static void handle_key(char *out, size_t size, const char *repo,
                       const char *handle)
{
    snprintf(out, size, "%s@%s", repo, handle);
}

/* First-pass state: the declared layers by name (owned) and the line
 * where each REPO@NAME handle was defined. */
struct parser {
    struct map layers;
    struct map handle_lines;
    int64_t now;
};

static int parse_platform(struct stmt *s, const char *value)
{
    char *copy = xstrdup(value);
    char *arch = strchr(copy, '/');
    char *variant = arch ? strchr(arch + 1, '/') : NULL;

    if (arch == NULL || arch == copy || arch[1] == '\0' ||
        (variant && (variant == arch + 1 || variant[1] == '\0' ||
                     strchr(variant + 1, '/')))) {
        free(copy);
        return spec_error(s->line,
                          "invalid platform '%s' "
                          "(expected OS/ARCH or OS/ARCH/VARIANT)",
                          value);
    }
    *arch++ = '\0';
    if (variant)
        *variant++ = '\0';
    free(s->os);
    free(s->arch);
    s->os = xstrdup(copy);
    s->arch = xstrdup(arch);
    s->variant = variant ? xstrdup(variant) : NULL;
    free(copy);
    return 0;
}

static int compare_labels(const void *a, const void *b)
{
    return strcmp(((const struct label *)a)->key,
                  ((const struct label *)b)->key);
}

static int parse_labels(struct stmt *s, const char *value)
{
    char *copy = xstrdup(value);
    char *save = NULL;

    for (char *item = strtok_r(copy, ";", &save); item;
         item = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(item, '=');
        if (eq == NULL || eq == item) {
            spec_error(s->line, "invalid label '%s' (expected K=V)", item);
            free(copy);
            return -1;
        }
        *eq = '\0';
        s->labels =
            xrealloc(s->labels, (s->label_count + 1) * sizeof(*s->labels));
        s->labels[s->label_count].key = xstrdup(item);
        s->labels[s->label_count].value = xstrdup(eq + 1);
        s->label_count++;
    }
    free(copy);
    /* Go encodes a map with sorted keys, so configs list labels sorted. */
    qsort(s->labels, s->label_count, sizeof(*s->labels), compare_labels);
    return 0;
}

static int parse_layer_list(struct parser *ps, struct stmt *s,
                            const char *value)
{
    char *copy = xstrdup(value);
    const char *item = copy;
    int rc = 0;

    for (char *p = copy;; p++) {
        if (*p != ',' && *p != '\0')
            continue;
        bool last = *p == '\0';
        *p = '\0';
        struct layer *layer = map_get(&ps->layers, item);
        if (layer == NULL) {
            rc = spec_error(s->line,
                            "unknown layer '%s' (declare it with "
                            "'layer NAME SIZE' before use)",
                            item);
            break;
        }
        s->layers = xrealloc(s->layers, (s->count + 1) * sizeof(*s->layers));
        s->layers[s->count++] = layer;
        if (last)
            break;
        item = p + 1;
    }
    free(copy);
    return rc;
}

static int parse_children(struct parser *ps, struct stmt *s, const char *value)
{
    char *copy = xstrdup(value);
    char *save = NULL;
    char key[REL_PATH_MAX];

    for (char *item = strtok_r(copy, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        handle_key(key, sizeof(key), s->target.repo, item);
        if (map_get(&ps->handle_lines, key) == NULL) {
            spec_error(s->line,
                       "unknown manifest '%s' (push it first with "
                       "'image %s ...')",
                       key, key);
            free(copy);
            return -1;
        }
        s->children =
            xrealloc(s->children, (s->count + 1) * sizeof(*s->children));
        s->children[s->count++] = xstrdup(item);
    }
    free(copy);
    if (s->count == 0)
        return spec_error(s->line, "index needs children=NAME,...");
    return 0;
}

/* Option names each statement accepts, separated by spaces. */
static const char *allowed_options(enum stmt_kind kind)
{
    switch (kind) {
        case STMT_IMAGE:
            return " layers pushed created platform format labels ";
        case STMT_INDEX:
            return " children format pushed ";
        case STMT_ALIAS:
        case STMT_RETAG:
            return " pushed ";
        case STMT_UPLOAD:
            return " started size ";
        default:
            return " ";
    }
}

static int parse_option(struct parser *ps, struct stmt *s, const char *key,
                        const char *value)
{
    if (!strcmp(key, "pushed") || !strcmp(key, "started")) {
        if (parse_time(value, ps->now, &s->time) < 0)
            return spec_error(s->line,
                              "invalid time '%s' (expected Unix "
                              "seconds, RFC 3339 or -DURATION)",
                              value);
    } else if (!strcmp(key, "created")) {
        s->created_given = true;
        s->has_created = strcmp(value, "none") != 0;
        if (s->has_created && parse_time(value, ps->now, &s->created) < 0)
            return spec_error(s->line,
                              "invalid time '%s' (expected Unix "
                              "seconds, RFC 3339, -DURATION or none)",
                              value);
    } else if (!strcmp(key, "size")) {
        if (parse_size(value, &s->size) < 0)
            return spec_error(s->line, "invalid size '%s'", value);
    } else if (!strcmp(key, "format")) {
        if (!strcmp(value, "docker"))
            s->format = FORMAT_DOCKER;
        else if (!strcmp(value, "oci"))
            s->format = FORMAT_OCI;
        else
            return spec_error(s->line,
                              "invalid format '%s' (expected "
                              "docker or oci)",
                              value);
    } else if (!strcmp(key, "platform")) {
        return parse_platform(s, value);
    } else if (!strcmp(key, "labels")) {
        return parse_labels(s, value);
    } else if (!strcmp(key, "layers")) {
        return parse_layer_list(ps, s, value);
    } else if (!strcmp(key, "children")) {
        return parse_children(ps, s, value);
    }
    return 0;
}

static int parse_options(struct parser *ps, struct stmt *s,
                         const struct words *w, size_t first)
{
    const char *allowed = allowed_options(s->kind);
    char seen[256] = " ";

    for (size_t i = first; i < w->n; i++) {
        char *eq = strchr(w->v[i], '=');
        if (eq == NULL)
            return spec_error(s->line, "unexpected word '%s'", w->v[i]);
        char key[64];
        size_t len = (size_t)(eq - w->v[i]);
        if (len == 0 || len >= 40)
            return spec_error(s->line, "invalid option '%s'", w->v[i]);
        snprintf(key, sizeof(key), " %.*s ", (int)len, w->v[i]);
        if (strstr(allowed, key) == NULL)
            return spec_error(s->line, "unknown option '%.*s' for %s", (int)len,
                              w->v[i], w->v[0]);
        if (strstr(seen, key) != NULL)
            return spec_error(s->line, "option '%.*s' given twice", (int)len,
                              w->v[i]);
        if (strlen(seen) + len + 2 < sizeof(seen))
            strcat(seen, key + 1);
        key[len + 1] = '\0';
        if (parse_option(ps, s, key + 1, eq + 1) < 0)
            return -1;
    }
    return 0;
}

static void stmt_free(struct stmt *s)
{
    ref_free(&s->target);
    ref_free(&s->source);
    free(s->name);
    free(s->layers);
    for (size_t i = 0; s->children && i < s->count; i++)
        free(s->children[i]);
    free(s->children);
    free(s->os);
    free(s->arch);
    free(s->variant);
    for (size_t i = 0; i < s->label_count; i++) {
        free(s->labels[i].key);
        free(s->labels[i].value);
    }
    free(s->labels);
    free(s->path);
    free(s->text);
}

static const struct {
    const char *word;
    enum stmt_kind kind;
    size_t min_args;
    size_t max_args;
} keywords[] = {
    {"layer", STMT_LAYER, 2, 2},   {"image", STMT_IMAGE, 1, 1},
    {"index", STMT_INDEX, 1, 1},   {"alias", STMT_ALIAS, 2, 2},
    {"retag", STMT_RETAG, 2, 2},   {"delete", STMT_DELETE, 1, 1},
    {"upload", STMT_UPLOAD, 2, 2}, {"rm", STMT_RM, 1, 1},
    {"touch", STMT_TOUCH, 2, 2},
};

/* Parse the text of a raw statement: RELPATH, then TEXT up to the end of
 * the line with escapes decoded. */
static int parse_raw(struct stmt *s, const char *p)
{
    struct buf text = {0};

    p += strlen("raw");
    while (*p == ' ' || *p == '\t')
        p++;
    const char *path = p;
    while (*p && *p != ' ' && *p != '\t')
        p++;
    if (p == path)
        return spec_error(s->line, "raw needs RELPATH TEXT");
    s->path = xmalloc((size_t)(p - path) + 1);
    memcpy(s->path, path, (size_t)(p - path));
    s->path[p - path] = '\0';
    if (*p)
        p++;
    buf_reserve(&text, 0);
    while (*p) {
        if (*p != '\\') {
            buf_putc(&text, *p++);
            continue;
        }
        p++;
        if (decode_escape(&p, &text) < 0) {
            free(text.data);
            return spec_error(s->line, "invalid escape sequence");
        }
    }
    s->text = text.data;
    s->text_len = text.len;
    return 0;
}

/* Check the positional arguments of a statement and store them. */
static int parse_arguments(struct parser *ps, struct stmt *s,
                           const struct words *w)
{
    char key[REL_PATH_MAX];

    switch (s->kind) {
        case STMT_LAYER:
            s->name = xstrdup(w->v[1]);
            if (!valid_local_name(s->name))
                return spec_error(s->line, "invalid layer name '%s'", s->name);
            if (parse_size(w->v[2], &s->size) < 0 || s->size < LAYER_MIN_SIZE ||
                s->size > LAYER_MAX_SIZE)
                return spec_error(s->line,
                                  "invalid layer size '%s' (expected "
                                  "%d bytes to 1024M)",
                                  w->v[2], LAYER_MIN_SIZE);
            if (map_get(&ps->layers, s->name))
                return spec_error(s->line, "layer '%s' declared twice",
                                  s->name);
            struct layer *layer = xmalloc(sizeof(*layer));
            memset(layer, 0, sizeof(*layer));
            layer->name = xstrdup(s->name);
            layer->size = (size_t)s->size;
            map_put(&ps->layers, layer->name, layer);
            return 0;
        case STMT_UPLOAD:
            s->target.repo = xstrdup(w->v[1]);
            if (!valid_repo_name(s->target.repo))
                return spec_error(s->line, "invalid repository name '%s'",
                                  s->target.repo);
            s->name = xstrdup(w->v[2]);
            return 0;
        case STMT_RM:
            s->path = xstrdup(w->v[1]);
            return 0;
        case STMT_TOUCH:
            s->path = xstrdup(w->v[1]);
            if (parse_time(w->v[2], ps->now, &s->time) < 0)
                return spec_error(s->line, "invalid time '%s'", w->v[2]);
            return 0;
        default:
            break;
    }

    if (parse_ref(w->v[1], s->line, &s->target) < 0)
        return -1;
    if (s->kind == STMT_ALIAS || s->kind == STMT_RETAG) {
        if (s->target.tag == NULL)
            return spec_error(s->line, "%s needs REPO:TAG first", w->v[0]);
        if (parse_ref(w->v[2], s->line, &s->source) < 0)
            return -1;
        if (strcmp(s->source.repo, s->target.repo) != 0)
            return spec_error(s->line, "%s works within one repository",
                              w->v[0]);
    }
    /* A handle used as a source must name a manifest pushed earlier. */
    const struct ref *used = NULL;
    if (s->kind == STMT_ALIAS || s->kind == STMT_RETAG)
        used = &s->source;
    else if (s->kind == STMT_DELETE)
        used = &s->target;
    if (used && used->handle) {
        handle_key(key, sizeof(key), used->repo, used->handle);
        if (map_get(&ps->handle_lines, key) == NULL)
            return spec_error(s->line, "unknown manifest '%s'", key);
    }
    return 0;
}

/* Give an image without layers= a layer of its own, named after it. */
static void add_default_layer(struct parser *ps, struct stmt *s)
{
    char name[REL_PATH_MAX];

    snprintf(name, sizeof(name), "%s%c%s", s->target.repo,
             s->target.tag ? ':' : '@',
             s->target.tag ? s->target.tag : s->target.handle);
    struct layer *layer = map_get(&ps->layers, name);
    if (layer == NULL) {
        layer = xmalloc(sizeof(*layer));
        memset(layer, 0, sizeof(*layer));
        layer->name = xstrdup(name);
        layer->size = DEFAULT_LAYER_SIZE;
        map_put(&ps->layers, layer->name, layer);
    }
    s->layers = xmalloc(sizeof(*s->layers));
    s->layers[0] = layer;
    s->count = 1;
}

/* Parse one non-empty line into s. */
static int parse_line(struct parser *ps, const char *text, int line,
                      struct stmt *s)
{
    struct words w = {0};
    int rc = -1;

    memset(s, 0, sizeof(*s));
    s->line = line;
    s->time = ps->now;
    if (!strncmp(text, "raw", 3) && (text[3] == ' ' || text[3] == '\t')) {
        s->kind = STMT_RAW;
        return parse_raw(s, text);
    }
    if (split_words(text, line, &w) < 0)
        goto out;
    size_t k = 0;
    while (k < sizeof(keywords) / sizeof(keywords[0]) &&
           strcmp(keywords[k].word, w.v[0]) != 0)
        k++;
    if (k == sizeof(keywords) / sizeof(keywords[0])) {
        spec_error(line, "unknown statement '%s'", w.v[0]);
        goto out;
    }
    s->kind = keywords[k].kind;
    size_t args = 0;
    while (1 + args < w.n &&
           (args < keywords[k].min_args || strchr(w.v[1 + args], '=') == NULL))
        args++;
    if (args < keywords[k].min_args || args > keywords[k].max_args) {
        spec_error(line, "%s needs %zu argument%s", w.v[0],
                   keywords[k].min_args, keywords[k].min_args > 1 ? "s" : "");
        goto out;
    }
    if (parse_arguments(ps, s, &w) < 0 ||
        parse_options(ps, s, &w, 1 + args) < 0)
        goto out;
    if (!s->created_given) {
        s->has_created = true;
        s->created = s->time;
    }
    if (s->kind == STMT_IMAGE && s->layers == NULL)
        add_default_layer(ps, s);
    if (s->kind == STMT_INDEX && s->children == NULL) {
        spec_error(line, "index needs children=NAME,...");
        goto out;
    }
    if ((s->kind == STMT_IMAGE || s->kind == STMT_INDEX) && s->target.handle) {
        char key[REL_PATH_MAX];
        handle_key(key, sizeof(key), s->target.repo, s->target.handle);
        intptr_t first = (intptr_t)map_get(&ps->handle_lines, key);
        if (first) {
            spec_error(line, "manifest '%s' already pushed at line %d", key,
                       (int)first);
            goto out;
        }
        map_put(&ps->handle_lines, key, (void *)(intptr_t)line);
    }
    rc = 0;
out:
    words_free(&w);
    return rc;
}

/*** pushing content ***/

/* A manifest or index pushed by this run. */
struct manifest_info {
    char hex[DIGEST_HEX_SIZE];
    char config_hex[DIGEST_HEX_SIZE]; /* empty for an index */
    const char *media_type;
    size_t size;
    char *os, *arch, *variant;
};

/*
 * The builder remembers which files exist so that a push does not look
 * for them again. An rm statement may remove any file, so it starts a new
 * epoch, which makes everything remembered before it unknown again.
 */
struct builder {
    struct tree tree;
    struct map *layers;     /* borrowed from the parser */
    struct map manifests;   /* hex -> struct manifest_info, owned */
    struct map handles;     /* REPO@NAME -> struct manifest_info */
    struct map upload_dirs; /* repositories whose _uploads exists */
    /* Blobs known to have a _layers link in linked_repo, by hex. Only the
     * repository of the latest push is remembered, which bounds the
     * memory, and specs push a repository's images together. */
    char *linked_repo;
    struct map linked;
    uint64_t epoch;
    /* ROOT was empty and no raw statement has run, so a layer never
     * pushed in this run has no data file yet. */
    bool untouched;
    unsigned char *scratch;
    size_t scratch_size;
    const struct layer *scratch_layer; /* whose blob scratch holds */
    int64_t now;
};

static void digest_hex(const void *data, size_t len, char hex[DIGEST_HEX_SIZE])
{
    unsigned char digest[SHA256_DIGEST_SIZE];

    sha256_digest(data, len, digest);
    sha256_format_hex(digest, hex);
}

/* Build layer's blob into the scratch buffer and record its digests. */
static void build_layer_blob(struct builder *b, struct layer *layer)
{
    unsigned char diff_id[SHA256_DIGEST_SIZE];

    if (b->scratch_size < layer->size) {
        b->scratch = xrealloc(b->scratch, layer->size);
        b->scratch_size = layer->size;
    }
    if (build_layer(layer->name, layer->size, b->scratch, diff_id) < 0) {
        /* The parser and the seed generator keep sizes in range. */
        fprintf(stderr, PROGRAM_NAME ": layer '%s' is too small\n",
                layer->name);
        abort();
    }
    sha256_format_hex(diff_id, layer->diff_hex);
    digest_hex(b->scratch, layer->size, layer->hex);
    layer->hashed = true;
    b->scratch_layer = layer;
}

/* Write a blob's data file unless the blob exists already. */
static int write_blob(struct builder *b, int line, const char *hex,
                      const void *data, size_t len, int64_t mtime)
{
    char rel[REL_PATH_MAX];

    if (tree_path(rel, line, "blobs/sha256/%.2s/%s/data", hex, hex) < 0)
        return -1;
    /* Configs and manifests are almost always new blobs. */
    if (tree_write_file(&b->tree, rel, data, len, mtime,
                        WRITE_EXCLUSIVE | WRITE_NEW_DIR) < 0)
        return -1;
    return 0;
}

/* Write a link file; write_flags as for tree_write_file. */
static int write_link(struct builder *b, const char *rel, const char *hex,
                      int64_t mtime, unsigned write_flags)
{
    char text[8 + SHA256_HEX_LENGTH];

    snprintf(text, sizeof(text), "sha256:%s", hex);
    return tree_write_file(&b->tree, rel, text, strlen(text), mtime,
                           write_flags);
}

/* Forget the files remembered so far (see struct builder). */
static void builder_new_epoch(struct builder *b)
{
    b->epoch++;
    map_free(&b->linked, false);
    free(b->linked_repo);
    b->linked_repo = NULL;
    map_free(&b->upload_dirs, false);
}

/* Link a blob into a repository, as the registry does when an upload
 * finishes. The upload leaves an empty _uploads directory behind. */
static int link_blob(struct builder *b, int line, const char *repo,
                     const char *hex, int64_t mtime)
{
    char rel[REL_PATH_MAX];

    if (b->linked_repo == NULL || strcmp(b->linked_repo, repo) != 0) {
        map_free(&b->linked, false);
        free(b->linked_repo);
        b->linked_repo = xstrdup(repo);
    }
    if (map_get(&b->linked, hex))
        return 0;
    if (tree_path(rel, line, "repositories/%s/_layers/sha256/%s/link", repo,
                  hex) < 0)
        return -1;
    int rc = write_link(b, rel, hex, mtime, WRITE_EXCLUSIVE | WRITE_NEW_DIR);
    if (rc < 0)
        return -1;
    map_put(&b->linked, hex, b);
    if (rc > 0)
        return 0;
    if (map_get(&b->upload_dirs, repo))
        return 0;
    if (tree_path(rel, line, "repositories/%s/_uploads", repo) < 0 ||
        tree_mkdirs(&b->tree, rel, true) < 0)
        return -1;
    map_put(&b->upload_dirs, repo, b);
    return 0;
}

static int push_layer(struct builder *b, int line, const char *repo,
                      struct layer *layer, int64_t mtime)
{
    char rel[REL_PATH_MAX];

    if (!layer->hashed)
        build_layer_blob(b, layer);
    if (layer->stored_epoch == b->epoch)
        return link_blob(b, line, repo, layer->hex, mtime);
    if (tree_path(rel, line, "blobs/sha256/%.2s/%s/data", layer->hex,
                  layer->hex) < 0)
        return -1;
    if ((b->untouched && layer->stored_epoch == 0) ||
        !tree_exists(&b->tree, rel)) {
        if (b->scratch_layer != layer)
            build_layer_blob(b, layer);
        if (tree_write(&b->tree, rel, b->scratch, layer->size, mtime,
                       WRITE_NEW_DIR) < 0)
            return -1;
    }
    layer->stored_epoch = b->epoch;
    return link_blob(b, line, repo, layer->hex, mtime);
}

/* Store a manifest blob and link it as a revision of repo. */
static int push_manifest(struct builder *b, int line, const char *repo,
                         const char *json, int64_t mtime,
                         char hex[DIGEST_HEX_SIZE])
{
    char rel[REL_PATH_MAX];
    size_t len = strlen(json);

    digest_hex(json, len, hex);
    if (write_blob(b, line, hex, json, len, mtime) < 0)
        return -1;
    if (tree_path(rel, line,
                  "repositories/%s/_manifests/revisions/sha256/%s/link", repo,
                  hex) < 0)
        return -1;
    return write_link(b, rel, hex, mtime, WRITE_NEW_DIR) < 0 ? -1 : 0;
}

/* Point a tag at a manifest: add it to the tag's history, then replace
 * the current link, in the order the registry uses. */
static int write_tag(struct builder *b, int line, const char *repo,
                     const char *tag, const char *hex, int64_t mtime)
{
    char rel[REL_PATH_MAX];

    if (tree_path(rel, line,
                  "repositories/%s/_manifests/tags/%s/index/sha256/%s/link",
                  repo, tag, hex) < 0 ||
        write_link(b, rel, hex, mtime, WRITE_NEW_DIR) < 0)
        return -1;
    if (tree_path(rel, line, "repositories/%s/_manifests/tags/%s/current/link",
                  repo, tag) < 0)
        return -1;
    return write_link(b, rel, hex, mtime, 0) < 0 ? -1 : 0;
}

/*** JSON documents ***/

/* Serialise compactly (no spaces), as Go's encoding/json does. The caller
 * frees the result. */
static char *dump_json(json_t *root)
{
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;

    json_decref(root);
    if (text == NULL) {
        fprintf(stderr, PROGRAM_NAME ": out of memory building JSON\n");
        abort();
    }
    return text;
}

/* A content descriptor with the field order of the image library in use:
 * docker schema 2 writes size before digest, OCI digest before size. */
static json_t *descriptor(enum format format, const char *media_type,
                          size_t size, const char *hex)
{
    char digest[8 + SHA256_HEX_LENGTH];
    json_t *d = json_object();

    snprintf(digest, sizeof(digest), "sha256:%s", hex);
    json_object_set_new(d, "mediaType", json_string(media_type));
    if (format == FORMAT_DOCKER)
        json_object_set_new(d, "size", json_integer((json_int_t)size));
    json_object_set_new(d, "digest", json_string(digest));
    if (format == FORMAT_OCI)
        json_object_set_new(d, "size", json_integer((json_int_t)size));
    return d;
}

static json_t *container_config(const struct stmt *s)
{
    json_t *config = json_object();
    json_t *env = json_array();

    json_array_append_new(env, json_string("PATH=/usr/local/sbin:"
                                           "/usr/local/bin:/usr/sbin:"
                                           "/usr/bin:/sbin:/bin"));
    json_object_set_new(config, "Env", env);
    json_object_set_new(config, "Cmd", json_pack("[s]", "/bin/sh"));
    if (s->label_count > 0) {
        json_t *labels = json_object();
        for (size_t i = 0; i < s->label_count; i++)
            json_object_set_new(labels, s->labels[i].key,
                                json_string(s->labels[i].value));
        json_object_set_new(config, "Labels", labels);
    }
    return config;
}

/* Build an image config. Docker configs come from a Go map, so their
 * top-level keys are sorted. OCI configs follow the image-spec struct. */
static char *config_json(const struct stmt *s)
{
    char created[40] = "";
    json_t *rootfs = json_object();
    json_t *diff_ids = json_array();
    json_t *history = json_array();
    const char *arch = s->arch ? s->arch : "amd64";
    const char *os = s->os ? s->os : "linux";

    if (s->has_created) {
        /* Docker records nanoseconds. Derive them from the time itself so
         * that the config stays reproducible. */
        long ns =
            s->format == FORMAT_DOCKER
                ? (long)(((uint64_t)s->created * 2654435761u) % 1000000000u)
                : 0;
        format_rfc3339(s->created, ns, created);
    }
    for (size_t i = 0; i < s->count; i++) {
        char digest[8 + SHA256_HEX_LENGTH];
        char command[REL_PATH_MAX + 64];
        snprintf(digest, sizeof(digest), "sha256:%s", s->layers[i]->diff_hex);
        json_array_append_new(diff_ids, json_string(digest));
        json_t *step = json_object();
        if (s->has_created)
            json_object_set_new(step, "created", json_string(created));
        snprintf(command, sizeof(command),
                 "/bin/sh -c #(nop) ADD file:%s in / ", s->layers[i]->name);
        json_object_set_new(step, "created_by", json_string(command));
        json_array_append_new(history, step);
    }
    json_object_set_new(rootfs, "type", json_string("layers"));
    json_object_set_new(rootfs, "diff_ids", diff_ids);

    json_t *root = json_object();
    if (s->format == FORMAT_DOCKER) {
        json_object_set_new(root, "architecture", json_string(arch));
        json_object_set_new(root, "config", container_config(s));
        if (s->has_created)
            json_object_set_new(root, "created", json_string(created));
        json_object_set_new(root, "history", history);
        json_object_set_new(root, "os", json_string(os));
        json_object_set_new(root, "rootfs", rootfs);
        if (s->variant)
            json_object_set_new(root, "variant", json_string(s->variant));
    } else {
        if (s->has_created)
            json_object_set_new(root, "created", json_string(created));
        json_object_set_new(root, "architecture", json_string(arch));
        if (s->variant)
            json_object_set_new(root, "variant", json_string(s->variant));
        json_object_set_new(root, "os", json_string(os));
        json_object_set_new(root, "config", container_config(s));
        json_object_set_new(root, "rootfs", rootfs);
        json_object_set_new(root, "history", history);
    }
    return dump_json(root);
}

static char *image_manifest_json(const struct stmt *s, const char *config_hex,
                                 size_t config_size)
{
    bool oci = s->format == FORMAT_OCI;
    json_t *root = json_object();
    json_t *layers = json_array();

    json_object_set_new(root, "schemaVersion", json_integer(2));
    json_object_set_new(
        root, "mediaType",
        json_string(oci ? MT_OCI_MANIFEST : MT_DOCKER_MANIFEST));
    json_object_set_new(root, "config",
                        descriptor(s->format,
                                   oci ? MT_OCI_CONFIG : MT_DOCKER_CONFIG,
                                   config_size, config_hex));
    for (size_t i = 0; i < s->count; i++)
        json_array_append_new(
            layers, descriptor(s->format, oci ? MT_OCI_LAYER : MT_DOCKER_LAYER,
                               s->layers[i]->size, s->layers[i]->hex));
    json_object_set_new(root, "layers", layers);
    return dump_json(root);
}

static char *index_json(const struct stmt *s, struct manifest_info **child)
{
    bool oci = s->format == FORMAT_OCI;
    json_t *root = json_object();
    json_t *list = json_array();

    json_object_set_new(root, "schemaVersion", json_integer(2));
    json_object_set_new(root, "mediaType",
                        json_string(oci ? MT_OCI_INDEX : MT_DOCKER_LIST));
    for (size_t i = 0; i < s->count; i++) {
        json_t *d = descriptor(s->format, child[i]->media_type, child[i]->size,
                               child[i]->hex);
        json_t *platform = json_object();
        json_object_set_new(platform, "architecture",
                            json_string(child[i]->arch));
        json_object_set_new(platform, "os", json_string(child[i]->os));
        if (child[i]->variant)
            json_object_set_new(platform, "variant",
                                json_string(child[i]->variant));
        json_object_set_new(d, "platform", platform);
        json_array_append_new(list, d);
    }
    json_object_set_new(root, "manifests", list);
    return dump_json(root);
}

/*** executing statements ***/

static struct manifest_info *record_manifest(struct builder *b, const char *hex,
                                             const char *media_type,
                                             size_t size)
{
    struct manifest_info *info = map_get(&b->manifests, hex);

    if (info != NULL)
        return info;
    info = xmalloc(sizeof(*info));
    memset(info, 0, sizeof(*info));
    memcpy(info->hex, hex, DIGEST_HEX_SIZE);
    info->media_type = media_type;
    info->size = size;
    map_put(&b->manifests, hex, info);
    return info;
}

static void record_handle(struct builder *b, const struct ref *r,
                          struct manifest_info *info)
{
    char key[REL_PATH_MAX];

    if (r->handle == NULL)
        return;
    handle_key(key, sizeof(key), r->repo, r->handle);
    map_put(&b->handles, key, info);
}

/* Find the manifest digest a reference names: a handle's manifest, or a
 * tag's current link. *info is NULL for a manifest not pushed by this
 * run (a tree written before with --force). */
static int resolve_ref(struct builder *b, int line, const struct ref *r,
                       char hex[DIGEST_HEX_SIZE], struct manifest_info **info)
{
    char rel[REL_PATH_MAX];

    if (r->handle) {
        handle_key(rel, sizeof(rel), r->repo, r->handle);
        *info = map_get(&b->handles, rel);
        if (*info == NULL)
            return spec_error(line, "unknown manifest '%s'", rel);
        memcpy(hex, (*info)->hex, DIGEST_HEX_SIZE);
        return 0;
    }
    if (tree_path(rel, line, "repositories/%s/_manifests/tags/%s/current/link",
                  r->repo, r->tag) < 0)
        return -1;
    int rc = tree_read_link(&b->tree, rel, hex);
    if (rc > 0)
        return spec_error(line, "tag '%s:%s' does not exist", r->repo, r->tag);
    if (rc < 0)
        return spec_error(line, "cannot resolve tag '%s:%s'", r->repo, r->tag);
    *info = map_get(&b->manifests, hex);
    return 0;
}

static int exec_image(struct builder *b, const struct stmt *s)
{
    const char *repo = s->target.repo;
    char config_hex[DIGEST_HEX_SIZE], hex[DIGEST_HEX_SIZE];
    int rc = -1;

    for (size_t i = 0; i < s->count; i++)
        if (push_layer(b, s->line, repo, s->layers[i], s->time) < 0)
            return -1;

    char *config = config_json(s);
    size_t config_size = strlen(config);
    digest_hex(config, config_size, config_hex);
    char *manifest = image_manifest_json(s, config_hex, config_size);
    if (write_blob(b, s->line, config_hex, config, config_size, s->time) < 0 ||
        link_blob(b, s->line, repo, config_hex, s->time) < 0 ||
        push_manifest(b, s->line, repo, manifest, s->time, hex) < 0)
        goto out;
    if (s->target.tag &&
        write_tag(b, s->line, repo, s->target.tag, hex, s->time) < 0)
        goto out;

    struct manifest_info *info = record_manifest(
        b, hex, s->format == FORMAT_OCI ? MT_OCI_MANIFEST : MT_DOCKER_MANIFEST,
        strlen(manifest));
    if (info->arch == NULL) {
        memcpy(info->config_hex, config_hex, DIGEST_HEX_SIZE);
        info->os = xstrdup(s->os ? s->os : "linux");
        info->arch = xstrdup(s->arch ? s->arch : "amd64");
        info->variant = s->variant ? xstrdup(s->variant) : NULL;
    }
    record_handle(b, &s->target, info);
    rc = 0;
out:
    free(config);
    free(manifest);
    return rc;
}

static int exec_index(struct builder *b, const struct stmt *s)
{
    struct manifest_info **child = xmalloc(s->count * sizeof(*child));
    char key[REL_PATH_MAX], hex[DIGEST_HEX_SIZE];
    char *json = NULL;
    int rc = -1;

    for (size_t i = 0; i < s->count; i++) {
        handle_key(key, sizeof(key), s->target.repo, s->children[i]);
        child[i] = map_get(&b->handles, key);
        if (child[i] == NULL || child[i]->arch == NULL) {
            spec_error(s->line, "'%s' is not an image manifest", key);
            goto out;
        }
    }
    json = index_json(s, child);
    if (push_manifest(b, s->line, s->target.repo, json, s->time, hex) < 0)
        goto out;
    if (s->target.tag &&
        write_tag(b, s->line, s->target.repo, s->target.tag, hex, s->time) < 0)
        goto out;
    record_handle(
        b, &s->target,
        record_manifest(b, hex,
                        s->format == FORMAT_OCI ? MT_OCI_INDEX : MT_DOCKER_LIST,
                        strlen(json)));
    rc = 0;
out:
    free(json);
    free(child);
    return rc;
}

static int exec_tag(struct builder *b, const struct stmt *s)
{
    char rel[REL_PATH_MAX], hex[DIGEST_HEX_SIZE], old[DIGEST_HEX_SIZE];
    struct manifest_info *info;

    if (resolve_ref(b, s->line, &s->source, hex, &info) < 0)
        return -1;
    if (tree_path(rel, s->line,
                  "repositories/%s/_manifests/tags/%s/current/link",
                  s->target.repo, s->target.tag) < 0)
        return -1;
    int rc = tree_read_link(&b->tree, rel, old);
    if (rc < 0)
        return spec_error(s->line, "cannot read tag '%s:%s'", s->target.repo,
                          s->target.tag);
    if (s->kind == STMT_ALIAS && rc == 0)
        return spec_error(s->line,
                          "tag '%s:%s' exists already (use retag "
                          "to move it)",
                          s->target.repo, s->target.tag);
    if (s->kind == STMT_RETAG && rc > 0)
        return spec_error(s->line,
                          "tag '%s:%s' does not exist (use alias "
                          "to add it)",
                          s->target.repo, s->target.tag);
    return write_tag(b, s->line, s->target.repo, s->target.tag, hex, s->time);
}

/* Delete a manifest the way the registry API does (DELETE
 * /v2/REPO/manifests/DIGEST): remove the revision link, then every tag
 * whose current link names the manifest. Blobs stay until a garbage
 * collection. */
static int exec_delete(struct builder *b, const struct stmt *s)
{
    char rel[REL_PATH_MAX], hex[DIGEST_HEX_SIZE], cur[DIGEST_HEX_SIZE];
    struct manifest_info *info;

    if (resolve_ref(b, s->line, &s->target, hex, &info) < 0)
        return -1;
    if (tree_path(rel, s->line,
                  "repositories/%s/_manifests/revisions/sha256/%s/link",
                  s->target.repo, hex) < 0)
        return -1;
    if (!tree_exists(&b->tree, rel))
        return spec_error(s->line, "manifest sha256:%s is not in '%s'", hex,
                          s->target.repo);
    if (tree_remove(&b->tree, rel) < 0)
        return -1;

    if (tree_path(rel, s->line, "repositories/%s/_manifests/tags",
                  s->target.repo) < 0)
        return -1;
    int fd = openat(b->tree.fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (dir == NULL) {
        if (fd >= 0)
            close(fd);
        return errorf("cannot open %s/%s: %s", b->tree.path, rel,
                      strerror(errno));
    }
    /* Collect first: removing entries while reading a directory may skip
     * or repeat others. */
    struct words doomed = {0};
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        char link[REL_PATH_MAX];
        if (entry->d_name[0] == '.')
            continue;
        if (tree_path(link, s->line, "%s/%s/current/link", rel,
                      entry->d_name) == 0 &&
            tree_read_link(&b->tree, link, cur) == 0 && !strcmp(cur, hex)) {
            doomed.v = xrealloc(doomed.v, (doomed.n + 1) * sizeof(char *));
            doomed.v[doomed.n++] = xstrdup(entry->d_name);
        }
    }
    closedir(dir);
    int rc = 0;
    for (size_t i = 0; i < doomed.n && rc == 0; i++) {
        char tag_dir[REL_PATH_MAX];
        rc = tree_path(tag_dir, s->line, "%s/%s", rel, doomed.v[i]);
        if (rc == 0)
            rc = tree_remove(&b->tree, tag_dir);
    }
    words_free(&doomed);
    return rc;
}

/* Serialise a SHA-256 state as Go's crypto/sha256 MarshalBinary does,
 * because the registry stores the state of an unfinished upload that way.
 * The format is "sha\x03", the eight state words, the pending block padded
 * with zeros to 64 bytes, and the message length, all big-endian. */
static void go_hash_state(const struct sha256_ctx *ctx, unsigned char out[108])
{
    unsigned char *p = out;

    memcpy(p, "sha\x03", 4);
    p += 4;
    for (int i = 0; i < 8; i++, p += 4) {
        p[0] = (unsigned char)(ctx->state[i] >> 24);
        p[1] = (unsigned char)(ctx->state[i] >> 16);
        p[2] = (unsigned char)(ctx->state[i] >> 8);
        p[3] = (unsigned char)ctx->state[i];
    }
    memset(p, 0, SHA256_BLOCK_SIZE);
    memcpy(p, ctx->buffer, ctx->buffered_bytes);
    p += SHA256_BLOCK_SIZE;
    for (int i = 7; i >= 0; i--)
        *p++ = (unsigned char)(ctx->total_bytes >> (8 * i));
}

/* Leave an unfinished upload: REPO/_uploads/UUID with startedat, data and
 * the hash states the registry saves at offset 0 and after each chunk. */
static int exec_upload(struct builder *b, const struct stmt *s)
{
    char dir[REL_PATH_MAX], rel[REL_PATH_MAX], text[40];
    unsigned char id[16], state[108];
    struct prng rng;
    struct sha256_ctx ctx;
    int rc = -1;

    snprintf(rel, sizeof(rel), "%s/%s", s->target.repo, s->name);
    prng_seed(&rng, "upload", rel);
    prng_fill(&rng, id, sizeof(id));
    id[6] = (unsigned char)((id[6] & 0x0f) | 0x40); /* UUID version 4 */
    id[8] = (unsigned char)((id[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    if (tree_path(dir, s->line,
                  "repositories/%s/_uploads/%02x%02x%02x%02x-%02x%02x-"
                  "%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                  s->target.repo, id[0], id[1], id[2], id[3], id[4], id[5],
                  id[6], id[7], id[8], id[9], id[10], id[11], id[12], id[13],
                  id[14], id[15]) < 0)
        return -1;

    unsigned char *data = xmalloc((size_t)s->size);
    prng_seed(&rng, "upload-data", rel);
    prng_fill(&rng, data, (size_t)s->size);
    format_rfc3339(s->time, 0, text);
    sha256_init(&ctx);
    go_hash_state(&ctx, state);
    if (tree_path(rel, s->line, "%s/startedat", dir) < 0 ||
        tree_write(&b->tree, rel, text, strlen(text), s->time, 0) < 0 ||
        tree_path(rel, s->line, "%s/hashstates/sha256/0", dir) < 0 ||
        tree_write(&b->tree, rel, state, sizeof(state), s->time, 0) < 0 ||
        tree_path(rel, s->line, "%s/data", dir) < 0 ||
        tree_write(&b->tree, rel, data, (size_t)s->size, s->time, 0) < 0)
        goto out;
    if (s->size > 0) {
        sha256_update(&ctx, data, (size_t)s->size);
        go_hash_state(&ctx, state);
        if (tree_path(rel, s->line, "%s/hashstates/sha256/%" PRIu64, dir,
                      s->size) < 0 ||
            tree_write(&b->tree, rel, state, sizeof(state), s->time, 0) < 0)
            goto out;
    }
    rc = 0;
out:
    free(data);
    return rc;
}

/* Expand one ${KIND:ARG} reference into out. */
static int expand_reference(struct builder *b, int line, const char *kind,
                            const char *arg, struct buf *out)
{
    char hex[DIGEST_HEX_SIZE];
    size_t kind_len = strlen(kind);
    bool blob_dir = kind_len > 5 && !strcmp(kind + kind_len - 5, "-blob");

    if (!strncmp(kind, "layer", 5) && (kind_len == 5 || blob_dir)) {
        struct layer *layer = map_get(b->layers, arg);
        if (layer == NULL)
            return spec_error(line, "unknown layer '%s'", arg);
        if (!layer->hashed)
            build_layer_blob(b, layer);
        memcpy(hex, layer->hex, DIGEST_HEX_SIZE);
    } else if ((!strncmp(kind, "config", 6) && (kind_len == 6 || blob_dir)) ||
               (!strncmp(kind, "manifest", 8) && (kind_len == 8 || blob_dir))) {
        struct ref r;
        struct manifest_info *info = NULL;
        int rc = parse_ref(arg, line, &r);
        if (rc == 0)
            rc = resolve_ref(b, line, &r, hex, &info);
        ref_free(&r);
        if (rc < 0)
            return -1;
        if (kind[0] == 'c') {
            if (info == NULL || info->config_hex[0] == '\0')
                return spec_error(line,
                                  "'%s' has no config known to this "
                                  "spec",
                                  arg);
            memcpy(hex, info->config_hex, DIGEST_HEX_SIZE);
        }
    } else {
        return spec_error(line,
                          "unknown reference '${%s:...}' (expected "
                          "layer, config or manifest, optionally with "
                          "-blob)",
                          kind);
    }
    if (blob_dir)
        buf_printf(out, "blobs/sha256/%.2s/%s", hex, hex);
    else
        buf_append(out, hex, SHA256_HEX_LENGTH);
    return 0;
}

/* Copy text to out, expanding ${KIND:ARG} references. $${ stands for a
 * literal ${. */
static int expand(struct builder *b, int line, const char *text, size_t len,
                  struct buf *out)
{
    out->len = 0;
    buf_reserve(out, len);
    out->data[0] = '\0';
    for (size_t i = 0; i < len; i++) {
        if (i + 2 < len && !memcmp(text + i, "$${", 3)) {
            buf_append(out, "${", 2);
            i += 2;
            continue;
        }
        if (text[i] != '$' || i + 1 >= len || text[i + 1] != '{') {
            buf_putc(out, text[i]);
            continue;
        }
        const char *start = text + i + 2;
        const char *end = memchr(start, '}', len - (i + 2));
        const char *colon =
            end ? memchr(start, ':', (size_t)(end - start)) : NULL;
        if (colon == NULL)
            return spec_error(line, "invalid reference (expected "
                                    "${KIND:ARG})");
        char kind[32], arg[REL_PATH_MAX];
        snprintf(kind, sizeof(kind), "%.*s", (int)(colon - start), start);
        snprintf(arg, sizeof(arg), "%.*s", (int)(end - colon - 1), colon + 1);
        if (expand_reference(b, line, kind, arg, out) < 0)
            return -1;
        i = (size_t)(end - text);
    }
    return 0;
}

/* Expand a RELPATH and check that it stays inside the tree. */
static int expand_path(struct builder *b, const struct stmt *s, struct buf *out)
{
    if (expand(b, s->line, s->path, strlen(s->path), out) < 0)
        return -1;
    const char *p = out->data;
    if (*p == '/' || *p == '\0' || strlen(p) >= REL_PATH_MAX)
        return spec_error(s->line,
                          "invalid path '%s' (expected a relative "
                          "path under docker/registry/v2)",
                          p);
    while (*p) {
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.') ||
            (n == 2 && p[0] == '.' && p[1] == '.'))
            return spec_error(s->line,
                              "invalid path '%s' (empty, . and .. "
                              "components are not allowed)",
                              out->data);
        p += n;
        if (*p == '/')
            p++;
    }
    return 0;
}

static int exec_file_statement(struct builder *b, const struct stmt *s)
{
    struct buf path = {0}, text = {0};
    int rc = -1;

    if (expand_path(b, s, &path) < 0)
        goto out;
    if (s->kind == STMT_RAW) {
        if (expand(b, s->line, s->text, s->text_len, &text) < 0)
            goto out;
        b->untouched = false;
        rc = tree_write(&b->tree, path.data, text.data, text.len, b->now, 0);
        goto out;
    }
    if (!tree_exists(&b->tree, path.data)) {
        spec_error(s->line, "'%s' does not exist", path.data);
        goto out;
    }
    if (s->kind == STMT_RM) {
        rc = tree_remove(&b->tree, path.data);
        /* The removed tree may have contained any blob, link or _uploads
         * directory. */
        builder_new_epoch(b);
    } else
        rc = set_times(&b->tree, path.data, -1, s->time);
out:
    free(path.data);
    free(text.data);
    return rc;
}

static int exec_stmt(struct builder *b, const struct stmt *s)
{
    switch (s->kind) {
        case STMT_LAYER:
            return 0;
        case STMT_IMAGE:
            return exec_image(b, s);
        case STMT_INDEX:
            return exec_index(b, s);
        case STMT_ALIAS:
        case STMT_RETAG:
            return exec_tag(b, s);
        case STMT_DELETE:
            return exec_delete(b, s);
        case STMT_UPLOAD:
            return exec_upload(b, s);
        case STMT_RAW:
        case STMT_RM:
        case STMT_TOUCH:
            return exec_file_statement(b, s);
    }
    return -1;
}

/*** reading a spec ***/

struct spec {
    struct stmt *stmts;
    size_t count;
};

static void spec_free(struct spec *spec)
{
    for (size_t i = 0; i < spec->count; i++)
        stmt_free(&spec->stmts[i]);
    free(spec->stmts);
}

/* Parse every line of text; report each bad line and fail if any. */
static int parse_spec(struct parser *ps, const char *text, struct spec *spec)
{
    size_t cap = 0;
    int errors = 0, line = 0;
    struct buf current = {0};

    while (*text && errors < 20) {
        size_t len = strcspn(text, "\n");
        line++;
        current.len = 0;
        buf_append(&current, text, len);
        text += len + (text[len] == '\n');
        if (current.len > 0 && current.data[current.len - 1] == '\r')
            current.data[--current.len] = '\0';
        const char *p = current.data;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        if (spec->count == cap) {
            cap = cap ? 2 * cap : 64;
            spec->stmts = xrealloc(spec->stmts, cap * sizeof(*spec->stmts));
        }
        if (parse_line(ps, p, line, &spec->stmts[spec->count]) < 0)
            errors++;
        spec->count++;
    }
    free(current.data);
    return errors ? -1 : 0;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    struct buf text = {0};
    char chunk[65536];
    size_t n;

    if (f == NULL) {
        errorf("cannot open spec %s: %s", path, strerror(errno));
        return NULL;
    }
    buf_reserve(&text, 0);
    text.data[0] = '\0';
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(&text, chunk, n);
    if (ferror(f)) {
        errorf("cannot read spec %s: %s", path, strerror(errno));
        free(text.data);
        text.data = NULL;
    }
    fclose(f);
    return text.data;
}

/*** built-in scenarios ***/

/* A small demo registry. */
static const char *const sample_spec[] = {
    "# Five repositories pushed over the last 120 days, sharing base",
    "# layers, with a multi-arch index, retagged latest tags, version and",
    "# branch tags, a manifest without tags and an abandoned upload.",
    "",
    "layer debian-12-rootfs 300K",
    "layer debian-12-rootfs-arm64 290K",
    "layer debian-12-ca-certificates 36K",
    "layer alpine-3.19-rootfs 120K",
    "layer python-3.12-runtime 280K",
    "layer python-3.12-pip 64K",
    "layer node-20-runtime 320K",
    "",
    "# library/nginx: latest moves from 1.24 to a two-platform 1.25 index",
    "layer nginx-1.24 150K",
    "layer nginx-1.25-amd64 160K",
    "layer nginx-1.25-arm64 155K",
    "layer nginx-conf 4K",
    "image library/nginx:1.24 "
    "layers=debian-12-rootfs,nginx-1.24,nginx-conf pushed=-118d "
    "created=-119d labels=org.opencontainers.image.version=1.24.0",
    "alias library/nginx:latest library/nginx:1.24 pushed=-118d",
    "image library/nginx@1.25-amd64 "
    "layers=debian-12-rootfs,nginx-1.25-amd64,nginx-conf "
    "platform=linux/amd64 pushed=-40d created=-41d "
    "labels=org.opencontainers.image.version=1.25.3",
    "image library/nginx@1.25-arm64 "
    "layers=debian-12-rootfs-arm64,nginx-1.25-arm64,nginx-conf "
    "platform=linux/arm64/v8 pushed=-40d created=-41d "
    "labels=org.opencontainers.image.version=1.25.3",
    "index library/nginx:1.25 children=1.25-amd64,1.25-arm64 pushed=-40d",
    "alias library/nginx:1.25.3 library/nginx:1.25 pushed=-40d",
    "retag library/nginx:latest library/nginx:1.25 pushed=-40d",
    "",
    "# team/api: version tags that sort wrongly as strings, latest retagged",
    "# at each release, a nightly build left without a tag",
    "layer api-deps-1 200K",
    "layer api-deps-2 210K",
    "layer api-app-1.9.0 40K",
    "layer api-app-1.10.0 42K",
    "layer api-app-2.0.0-rc.9 45K",
    "layer api-app-2.0.0-rc.10 45K",
    "layer api-app-2.0.0 46K",
    "layer api-app-nightly 44K",
    "image team/api:v1.9.0 layers=debian-12-rootfs,debian-12-ca-certificates,"
    "python-3.12-runtime,api-deps-1,api-app-1.9.0 pushed=-110d "
    "created=-110d labels=org.opencontainers.image.version=1.9.0",
    "alias team/api:latest team/api:v1.9.0 pushed=-110d",
    "image team/api:v1.10.0 layers=debian-12-rootfs,debian-12-ca-certificates,"
    "python-3.12-runtime,api-deps-1,api-app-1.10.0 pushed=-80d "
    "created=-80d labels=org.opencontainers.image.version=1.10.0",
    "retag team/api:latest team/api:v1.10.0 pushed=-80d",
    "image team/api:2.0.0-rc.9 layers=debian-12-rootfs,"
    "debian-12-ca-certificates,python-3.12-runtime,api-deps-2,"
    "api-app-2.0.0-rc.9 pushed=-35d created=-35d",
    "image team/api:2.0.0-rc.10 layers=debian-12-rootfs,"
    "debian-12-ca-certificates,python-3.12-runtime,api-deps-2,"
    "api-app-2.0.0-rc.10 pushed=-28d created=-28d",
    "image team/api:2.0.0 layers=debian-12-rootfs,debian-12-ca-certificates,"
    "python-3.12-runtime,api-deps-2,api-app-2.0.0 pushed=-21d "
    "created=-21d labels=org.opencontainers.image.version=2.0.0",
    "retag team/api:latest team/api:2.0.0 pushed=-21d",
    "image team/api@nightly layers=debian-12-rootfs,"
    "debian-12-ca-certificates,python-3.12-runtime,api-deps-2,"
    "api-app-nightly pushed=-12d created=-12d",
    "upload team/api interrupted started=-9d size=48K",
    "",
    "# team/worker: shares the Python layers with team/api",
    "layer worker-deps 150K",
    "layer worker-app-0.9 30K",
    "layer worker-app-1.0 31K",
    "layer worker-app-1.1 32K",
    "image team/worker:0.9 layers=debian-12-rootfs,debian-12-ca-certificates,"
    "python-3.12-runtime,python-3.12-pip,worker-deps,worker-app-0.9 "
    "pushed=-100d",
    "image team/worker:1.0 layers=debian-12-rootfs,debian-12-ca-certificates,"
    "python-3.12-runtime,python-3.12-pip,worker-deps,worker-app-1.0 "
    "pushed=-61d",
    "image team/worker:1.1 layers=debian-12-rootfs,debian-12-ca-certificates,"
    "python-3.12-runtime,python-3.12-pip,worker-deps,worker-app-1.1 "
    "pushed=-9d",
    "alias team/worker:latest team/worker:1.1 pushed=-9d",
    "",
    "# team/web/frontend: OCI images from branch builds",
    "layer frontend-deps-1 180K",
    "layer frontend-deps-2 190K",
    "layer frontend-main-118 30K",
    "layer frontend-main-120 31K",
    "layer frontend-feature-x-7 33K",
    "layer frontend-main-123 32K",
    "layer frontend-feature-login-2 29K",
    "image team/web/frontend:main-118 format=oci layers=alpine-3.19-rootfs,"
    "node-20-runtime,frontend-deps-1,frontend-main-118 pushed=-30d "
    "labels=org.opencontainers.image.revision=4f1c2a9;"
    "org.opencontainers.image.source=https://git.example.com/team/web",
    "image team/web/frontend:main-120 format=oci layers=alpine-3.19-rootfs,"
    "node-20-runtime,frontend-deps-1,frontend-main-120 pushed=-20d "
    "labels=org.opencontainers.image.revision=9be07d3",
    "image team/web/frontend:feature-x-7 format=oci "
    "layers=alpine-3.19-rootfs,node-20-runtime,frontend-deps-2,"
    "frontend-feature-x-7 pushed=-15d "
    "labels=org.opencontainers.image.revision=c0ffee1",
    "image team/web/frontend:main-123 format=oci layers=alpine-3.19-rootfs,"
    "node-20-runtime,frontend-deps-2,frontend-main-123 pushed=-6d "
    "labels=org.opencontainers.image.revision=12ab34c",
    "image team/web/frontend:feature-login-2 format=oci "
    "layers=alpine-3.19-rootfs,node-20-runtime,frontend-deps-2,"
    "frontend-feature-login-2 pushed=-3d "
    "labels=org.opencontainers.image.revision=77e1d05",
    "alias team/web/frontend:latest team/web/frontend:main-123 pushed=-6d",
    "",
    "# tools/ci: runner images, two of them built without a created time",
    "layer ci-runner-2024.01 90K",
    "layer ci-runner-2024.02 92K",
    "layer ci-runner-2024.03 95K",
    "layer ci-runner-2024.03-arm64 93K",
    "image tools/ci:runner-2024.01 format=oci "
    "layers=alpine-3.19-rootfs,ci-runner-2024.01 pushed=-95d created=none",
    "image tools/ci:runner-2024.02 format=oci "
    "layers=alpine-3.19-rootfs,ci-runner-2024.02 pushed=-65d created=none",
    "image tools/ci@runner-2024.03-amd64 format=oci "
    "layers=alpine-3.19-rootfs,ci-runner-2024.03 platform=linux/amd64 "
    "pushed=-2d created=-2d",
    "image tools/ci@runner-2024.03-arm64 format=oci "
    "layers=alpine-3.19-rootfs,ci-runner-2024.03-arm64 "
    "platform=linux/arm64/v8 pushed=-2d created=-2d",
    "index tools/ci:runner-2024.03 format=oci "
    "children=runner-2024.03-amd64,runner-2024.03-arm64 pushed=-2d",
    "alias tools/ci:latest tools/ci:runner-2024.03 pushed=-2d",
};

static void sample_text(struct buf *out)
{
    for (size_t i = 0; i < sizeof(sample_spec) / sizeof(sample_spec[0]); i++)
        buf_printf(out, "%s\n", sample_spec[i]);
}

/* Everything the seed generator needs to declare layers on first use. */
struct seed {
    struct buf *out;
    struct buf list;
    struct map declared;
    size_t max_size;
};

/* Append a layer to the current list, declaring it first if new. Its size
 * lies between a quarter of the maximum and the maximum and depends on
 * the name only. */
__attribute__((format(printf, 2, 3))) static void
seed_layer(struct seed *sd, const char *fmt, ...)
{
    char name[128];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(name, sizeof(name), fmt, ap);
    va_end(ap);
    if (map_get(&sd->declared, name) == NULL) {
        size_t lo = sd->max_size / 4;
        if (lo < LAYER_MIN_SIZE)
            lo = LAYER_MIN_SIZE;
        size_t span = sd->max_size > lo ? sd->max_size - lo + 1 : 1;
        buf_printf(sd->out, "layer %s %zu\n", name,
                   lo + (size_t)(hash_string(name) % span));
        map_put(&sd->declared, name, sd);
    }
    buf_printf(&sd->list, "%s%s", sd->list.len ? "," : "", name);
}

/* Emit an image statement using the current layer list, then clear it. */
static void seed_image(struct seed *sd, const char *ref, int64_t pushed_min,
                       const char *extra)
{
    buf_printf(sd->out,
               "image %s layers=%s pushed=-%" PRId64 "m "
               "created=-%" PRId64 "m%s\n",
               ref, sd->list.data, pushed_min, pushed_min + 7 + pushed_min % 31,
               extra);
    sd->list.len = 0;
    sd->list.data[0] = '\0';
}

/* Tag of build b in the main repository: release, feature or main. */
static void seed_main_tag(int b, char *tag, size_t size)
{
    static const char *const features[] = {"login", "search", "cache", "ui"};

    if (b % 5 == 4)
        snprintf(tag, size, "v1.%d.0", b / 5);
    else if (b % 7 == 3)
        snprintf(tag, size, "feature-%s-%d", features[b % 4], b);
    else
        snprintf(tag, size, "main-%d", 1000 + b);
}

/* Number of consecutive builds of acme/app that share the layer at
 * position p (counted from the base). */
static int layer_period(int p)
{
    if (p < 24)
        return 34;
    if (p < 32)
        return 12;
    if (p < 40)
        return 6;
    if (p < 46)
        return 3;
    return 2;
}

/* acme/app: 69 CI builds of 30 to 50 layers and latest, 70 tags. Lower
 * layers change rarely and upper ones often, so consecutive builds share
 * most layers. */
static void seed_main_repo(struct seed *sd)
{
    const int builds = 69;
    char tag[64], ref[128], extra[160];

    for (int b = 0; b < builds; b++) {
        int count = 30 + b * 20 / (builds - 1);
        for (int p = 0; p < count; p++) {
            if (p < 10)
                seed_layer(sd, "base-os-%d", p);
            else if (p < 16)
                seed_layer(sd, "runtime-node-%d", p - 10);
            else if (p >= count - 2)
                seed_layer(sd, "app-build%d-top%d", b, p - (count - 2));
            else
                seed_layer(sd, "app-p%d-g%d", p, b / layer_period(p));
        }
        seed_main_tag(b, tag, sizeof(tag));
        int64_t pushed = (int64_t)(builds - 1 - b) * 38 * 60 + (b * 17) % 60;
        snprintf(ref, sizeof(ref), "acme/app:%s", tag);
        snprintf(extra, sizeof(extra),
                 " labels=org.opencontainers.image.revision=%08" PRIx64,
                 hash_string(tag) & 0xffffffffu);
        seed_image(sd, ref, pushed + 1, extra);
        if (b == 0)
            buf_printf(sd->out,
                       "alias acme/app:latest %s pushed=-%" PRId64 "m\n", ref,
                       pushed);
        else if (b % 10 == 9 || b == builds - 1)
            buf_printf(sd->out,
                       "retag acme/app:latest %s pushed=-%" PRId64 "m\n", ref,
                       pushed);
    }
}

/* Layers of build t of repository r for one architecture. */
static void seed_repo_layers(struct seed *sd, int r, int t, const char *arch)
{
    static const char *const runtimes[] = {"python", "node", "go"};
    int own = 3 + r % 6;

    for (int p = 0; p < 6 + r % 5; p++)
        seed_layer(sd, "base-os%s-%d", arch, p);
    for (int p = 0; p < 6; p++)
        seed_layer(sd, "runtime-%s%s-%d", runtimes[r % 3], arch, p);
    for (int q = 0; q < own; q++)
        seed_layer(sd, "r%d%s-q%d-g%d", r, arch, q,
                   q == own - 1 ? t : t / ((own - q) * 2));
}

/* Twelve other repositories of 5 to 20 tags on the same base layers. */
static void seed_other_repos(struct seed *sd)
{
    static const char *const names[] = {
        "acme/api",           "acme/worker",   "acme/web",     "acme/docs",
        "acme/tools/migrate", "base/debian",   "base/python",  "base/node",
        "infra/proxy",        "infra/metrics", "infra/backup", "sandbox/demo",
    };
    char ref[160], extra[64];

    for (int r = 0; r < 12; r++) {
        int tags = 5 + (r * 7) % 16;
        bool multi_arch = r == 8;
        const char *format = multi_arch || r % 4 == 1 ? " format=oci" : "";
        for (int t = 0; t < tags; t++) {
            int64_t pushed =
                (int64_t)(tags - 1 - t) * (110 * 24 * 60 / tags) + r * 37 + 5;
            if (r % 2 == 0)
                snprintf(ref, sizeof(ref), "%s:1.%d.%d", names[r], t / 4,
                         t % 4);
            else
                snprintf(ref, sizeof(ref), "%s:main-%d", names[r], 200 + t * 3);
            if (multi_arch) {
                seed_repo_layers(sd, r, t, "");
                snprintf(extra, sizeof(extra), "%s platform=linux/amd64",
                         format);
                char child[160];
                snprintf(child, sizeof(child), "%s@b%d-amd64", names[r], t);
                seed_image(sd, child, pushed + 1, extra);
                seed_repo_layers(sd, r, t, "-arm64");
                snprintf(extra, sizeof(extra), "%s platform=linux/arm64/v8",
                         format);
                snprintf(child, sizeof(child), "%s@b%d-arm64", names[r], t);
                seed_image(sd, child, pushed + 1, extra);
                buf_printf(sd->out,
                           "index %s children=b%d-amd64,b%d-arm64"
                           "%s pushed=-%" PRId64 "m\n",
                           ref, t, t, format, pushed);
            } else {
                seed_repo_layers(sd, r, t, "");
                seed_image(sd, ref, pushed, format);
            }
            buf_printf(sd->out, "%s %s:latest %s pushed=-%" PRId64 "m\n",
                       t == 0 ? "alias" : "retag", names[r], ref, pushed);
            if (r % 3 == 0 && t == tags - 1) {
                seed_repo_layers(sd, r, t + 1, "");
                snprintf(ref, sizeof(ref), "%s@nightly", names[r]);
                seed_image(sd, ref, pushed > 60 ? pushed - 60 : 1, format);
            }
        }
    }
}

static void seed_text(struct buf *out, size_t max_layer_size)
{
    struct seed sd = {.out = out, .max_size = max_layer_size};

    buf_reserve(&sd.list, 0);
    sd.list.data[0] = '\0';
    buf_printf(out,
               "# Benchmark registry: acme/app has 70 tags of 30 to 50 "
               "layers, twelve\n# other repositories share its base "
               "layers. Layers of up to %zu bytes.\n",
               max_layer_size);
    seed_main_repo(&sd);
    seed_other_repos(&sd);
    free(sd.list.data);
    map_free(&sd.declared, false);
}

/*
 * The large and huge scenarios: many repositories of 70 tags each, built
 * as in a CI system over 136 days. Every image has 11 layers: 3 of a base
 * image and 3 of a language runtime, both shared by many repositories and
 * rebuilt a few times over the period, then 2 dependency layers that
 * change every 4 and 10 builds and 3 application layers of the build's
 * own.
 */
#define LARGE_BUILDS 68
#define LARGE_REPOS 1000
#define HUGE_REPOS 2500
#define LARGE_LAYER_SIZE 4096

/* Repository r's name. One in four is nested below the name before it,
 * so a repository directory also contains another repository. */
static void large_repo_name(int r, char *name, size_t size)
{
    static const char *const orgs[] = {
        "acme",   "globex", "initech", "umbrella", "hooli",   "stark",
        "wayne",  "wonka",  "tyrell",  "cyberdyne", "soylent", "vandelay",
    };
    const char *org = orgs[r % 12];

    switch (r % 4) {
        case 0:
            snprintf(name, size, "%s/svc-%d", org, r);
            break;
        case 1:
            snprintf(name, size, "%s/team-%d/svc-%d", org, r / 12 % 30, r);
            break;
        case 2:
            snprintf(name, size, "%s/team-%d/group-%d/svc-%d", org,
                     r / 12 % 30, r % 7, r);
            break;
        default:
            large_repo_name(r - 1, name, size);
            snprintf(name + strlen(name), size - strlen(name), "/cache");
            break;
    }
}

/* Layers of build b of repository r for one architecture ("" or
 * "-arm64"); variant names the application layers of a rebuild. */
static void large_layers(struct seed *sd, int r, int b, const char *arch,
                         const char *variant)
{
    static const char *const bases[] = {"debian", "alpine", "ubuntu",
                                        "ubi",    "distroless", "busybox"};
    static const char *const runtimes[] = {"python", "node", "go", "jre",
                                           "ruby"};
    int base_generation = (b + r % 23) / 24;
    int runtime_generation = (b + r % 11) / 15;

    for (int p = 0; p < 3; p++)
        seed_layer(sd, "base-%s%s-g%d-%d", bases[r % 6], arch,
                   base_generation, p);
    for (int p = 0; p < 3; p++)
        seed_layer(sd, "rt-%s%s-g%d-%d", runtimes[r / 6 % 5], arch,
                   runtime_generation, p);
    seed_layer(sd, "r%d%s-deps-g%d", r, arch, b / 10);
    seed_layer(sd, "r%d%s-libs-g%d", r, arch, b / 4);
    for (int p = 0; p < 3; p++)
        seed_layer(sd, "r%d%s-b%d-app%s-%d", r, arch, b, variant, p);
}

/* Push build b of repository r as REPO:TAG: one image, or for a
 * multi-arch repository an index over two images. */
static void large_build(struct seed *sd, int r, const char *repo,
                        const char *tag, int b, int64_t pushed,
                        const char *variant)
{
    const char *format = r % 4 == 1 || r % 20 == 5 ? " format=oci" : "";
    char ref[320], extra[160];

    snprintf(extra, sizeof(extra),
             "%s labels=org.opencontainers.image.revision=%08" PRIx64, format,
             (hash_string(repo) ^ (uint64_t)b) & 0xffffffffu);
    if (r % 10 != 5) {
        large_layers(sd, r, b, "", variant);
        snprintf(ref, sizeof(ref), "%s:%s", repo, tag);
        seed_image(sd, ref, pushed + 1, extra);
        return;
    }
    large_layers(sd, r, b, "", variant);
    snprintf(ref, sizeof(ref), "%s@b%d-amd64", repo, b);
    size_t len = strlen(extra);
    snprintf(extra + len, sizeof(extra) - len, " platform=linux/amd64");
    seed_image(sd, ref, pushed + 1, extra);
    large_layers(sd, r, b, "-arm64", variant);
    snprintf(ref, sizeof(ref), "%s@b%d-arm64", repo, b);
    snprintf(extra + len, sizeof(extra) - len, " platform=linux/arm64/v8");
    seed_image(sd, ref, pushed + 1, extra);
    buf_printf(sd->out,
               "index %s:%s children=b%d-amd64,b%d-arm64%s "
               "pushed=-%" PRId64 "m\n",
               repo, tag, b, b, format, pushed);
}

/*
 * Repository r: 68 builds, each tagged, with latest retagged at every
 * build and stable at every tenth, so both have a long tag history. Some
 * repositories rebuild a tag (the first manifest stays as an untagged
 * revision), push untagged nightlies, delete one of them through the API,
 * or leave an upload behind.
 */
static void large_repo(struct seed *sd, int r)
{
    char repo[256], tag[64];

    large_repo_name(r, repo, sizeof(repo));
    for (int b = 0; b < LARGE_BUILDS; b++) {
        int64_t pushed =
            (int64_t)(LARGE_BUILDS - 1 - b) * 2880 + (r * 37) % 1440 + 10;

        seed_main_tag(b, tag, sizeof(tag));
        if (r % 4 == 0 && b % 9 == 2)
            large_build(sd, r, repo, tag, b, pushed + 5, "-pre");
        large_build(sd, r, repo, tag, b, pushed, "");
        buf_printf(sd->out, "%s %s:latest %s:%s pushed=-%" PRId64 "m\n",
                   b == 0 ? "alias" : "retag", repo, repo, tag, pushed);
        if (b % 10 == 9)
            buf_printf(sd->out, "%s %s:stable %s:%s pushed=-%" PRId64 "m\n",
                       b == 9 ? "alias" : "retag", repo, repo, tag, pushed);
        if (r % 3 == 1 && b % 15 == 14) {
            char ref[320];
            large_layers(sd, r, b, "", "-nightly");
            snprintf(ref, sizeof(ref), "%s@nightly-%d", repo, b);
            seed_image(sd, ref, pushed > 30 ? pushed - 30 : 1, "");
        }
    }
    if (r % 30 == 7)
        buf_printf(sd->out, "delete %s@nightly-14\n", repo);
    if (r % 50 == 0)
        buf_printf(sd->out, "upload %s abandoned started=-3d size=4K\n", repo);
}

static void large_text(struct buf *out, size_t max_layer_size, int repos)
{
    struct seed sd = {.out = out, .max_size = max_layer_size};

    buf_reserve(&sd.list, 0);
    sd.list.data[0] = '\0';
    buf_printf(out,
               "# Large benchmark registry: %d repositories of 70 tags, "
               "images of 11 layers\n# sharing base and runtime layers. "
               "Layers of up to %zu bytes.\n",
               repos, max_layer_size);
    for (int r = 0; r < repos; r++)
        large_repo(&sd, r);
    free(sd.list.data);
    map_free(&sd.declared, false);
}

/*** summary ***/

struct summary {
    size_t repos;
    size_t tags;
    size_t blobs;
    uint64_t blob_bytes;
};

static size_t count_entries(int parent_fd, const char *name)
{
    int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    size_t count = 0;

    if (dir == NULL) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    for (struct dirent *e; (e = readdir(dir)) != NULL;)
        if (e->d_name[0] != '.')
            count++;
    closedir(dir);
    return count;
}

/* Count repositories (directories with _manifests, _layers or _uploads)
 * and their tags below the directory name in parent_fd. */
static void count_repos(int parent_fd, const char *name, struct summary *sum)
{
    int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    bool is_repo = false;

    if (dir == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    for (struct dirent *e; (e = readdir(dir)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        if (e->d_name[0] == '_') {
            is_repo = true;
            if (!strcmp(e->d_name, "_manifests"))
                sum->tags += count_entries(dirfd(dir), "_manifests/tags");
        } else {
            count_repos(dirfd(dir), e->d_name, sum);
        }
    }
    sum->repos += is_repo;
    closedir(dir);
}

static void count_blobs(struct tree *t, struct summary *sum)
{
    int fd = openat(t->fd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *top = fd >= 0 ? fdopendir(fd) : NULL;

    if (top == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    for (struct dirent *e; (e = readdir(top)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        int sub_fd =
            openat(dirfd(top), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *sub = sub_fd >= 0 ? fdopendir(sub_fd) : NULL;
        if (sub == NULL) {
            if (sub_fd >= 0)
                close(sub_fd);
            continue;
        }
        for (struct dirent *b; (b = readdir(sub)) != NULL;) {
            char rel[300];
            struct stat st;
            if (b->d_name[0] == '.')
                continue;
            snprintf(rel, sizeof(rel), "%s/data", b->d_name);
            if (fstatat(dirfd(sub), rel, &st, 0) == 0) {
                sum->blobs++;
                sum->blob_bytes += (uint64_t)st.st_size;
            }
        }
        closedir(sub);
    }
    closedir(top);
}

/*** main ***/

/* Create ROOT and ROOT/docker/registry/v2 and open the latter. An existing
 * ROOT must be empty unless force is set; *empty tells whether it was. */
static int open_tree(struct tree *t, const char *root, bool force,
                     bool *empty)
{
    struct tree cwd = {.fd = AT_FDCWD, .path = (char *)"."};

    if (strlen(root) >= REL_PATH_MAX - sizeof(TREE_PREFIX) - 1)
        return errorf("%s: path too long", root);
    if (tree_mkdirs(&cwd, root, true) < 0)
        return -1;
    *empty = count_entries(AT_FDCWD, root) == 0;
    if (!force && !*empty)
        return errorf("%s is not empty (pass --force to add to it)", root);

    int root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0)
        return errorf("cannot open %s: %s", root, strerror(errno));
    struct tree in_root = {.fd = root_fd, .path = (char *)root};
    if (tree_mkdirs(&in_root, TREE_PREFIX, true) < 0) {
        close(root_fd);
        return -1;
    }
    t->fd = openat(root_fd, TREE_PREFIX, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    close(root_fd);
    if (t->fd < 0)
        return errorf("cannot open %s/%s: %s", root, TREE_PREFIX,
                      strerror(errno));
    size_t len = strlen(root) + sizeof(TREE_PREFIX) + 1;
    t->path = xmalloc(len);
    snprintf(t->path, len, "%s/%s", root, TREE_PREFIX);
    return 0;
}

static void usage(FILE *out)
{
    fputs("usage: " PROGRAM_NAME " [options] --spec FILE ROOT\n"
          "       " PROGRAM_NAME " [options] --scenario NAME ROOT\n"
          "       " PROGRAM_NAME " [options] --print-scenario NAME\n"
          "\n"
          "Write a Docker Registry v2 storage tree under "
          "ROOT/docker/registry/v2.\n"
          "\n"
          "  --spec FILE          build the tree FILE describes (see "
          "tools/README.md)\n"
          "  --scenario NAME      build a built-in tree: sample (demo), seed "
          "(benchmark),\n"
          "                       large (1,000 repositories of 70 tags) or "
          "huge (2,500)\n"
          "  --print-scenario NAME  print a built-in scenario as a spec\n"
          "  --now TIME           clock for relative times, Unix seconds or "
          "RFC 3339\n"
          "                       (default: the current time); fix it for "
          "reproducible digests\n"
          "  --layer-size BYTES   seed, large, huge: largest layer size "
          "(default 8192 for\n"
          "                       seed, 4096 for large and huge; minimum "
          "1559)\n"
          "  --scale S            large, huge: multiply the number of "
          "repositories by S\n"
          "                       (0.1 gives 100 for large; at most 100)\n"
          "  --force              write into a ROOT that is not empty\n"
          "  -q, --quiet          do not print the summary line\n"
          "  -h, --help           show this help\n"
          "\n"
          "Exit status: 0 success, 1 failure, 2 usage error.\n",
          out);
}

struct options {
    const char *spec_path;
    const char *scenario;
    const char *print_scenario;
    const char *root;
    int64_t now;
    size_t layer_size; /* 0 when --layer-size is not given */
    double scale;
    bool force;
    bool quiet;
};

/* Built-in scenarios, for --scenario and --print-scenario. */
static const char *const scenario_names[] = {"sample", "seed", "large",
                                             "huge"};

static bool known_scenario(const char *name)
{
    for (size_t i = 0; i < sizeof(scenario_names) / sizeof(*scenario_names);
         i++)
        if (!strcmp(name, scenario_names[i]))
            return true;
    return false;
}

/* Parse the command line; return 0, or 2 after printing a usage error, or
 * -1 after --help. */
static int parse_options_argv(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"spec", required_argument, NULL, 's'},
        {"scenario", required_argument, NULL, 'S'},
        {"print-scenario", required_argument, NULL, 'P'},
        {"now", required_argument, NULL, 'n'},
        {"layer-size", required_argument, NULL, 'L'},
        {"scale", required_argument, NULL, 'x'},
        {"force", no_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t size;
    int c;

    while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        switch (c) {
            case 's':
                o->spec_path = optarg;
                break;
            case 'S':
                o->scenario = optarg;
                break;
            case 'P':
                o->print_scenario = optarg;
                break;
            case 'f':
                o->force = true;
                break;
            case 'q':
                o->quiet = true;
                break;
            case 'h':
                usage(stdout);
                return -1;
            case 'n':
                if (parse_time(optarg, 0, &o->now) < 0 || optarg[0] == '-' ||
                    optarg[0] == '+') {
                    errorf("invalid --now '%s' (expected Unix seconds or RFC "
                           "3339)",
                           optarg);
                    return 2;
                }
                break;
            case 'L':
                if (parse_size(optarg, &size) < 0 || size < LAYER_MIN_SIZE ||
                    size > (64u << 20)) {
                    errorf(
                        "invalid --layer-size '%s' (expected %d to %u bytes)",
                        optarg, LAYER_MIN_SIZE, 64u << 20);
                    return 2;
                }
                o->layer_size = (size_t)size;
                break;
            case 'x': {
                char *end;
                errno = 0;
                o->scale = strtod(optarg, &end);
                if (errno != 0 || end == optarg || *end != '\0' ||
                    !(o->scale > 0 && o->scale <= 100)) {
                    errorf("invalid --scale '%s' (expected a number above 0 "
                           "and at most 100)",
                           optarg);
                    return 2;
                }
                break;
            }
            default:
                usage(stderr);
                return 2;
        }
    }
    const char *scenario = o->print_scenario ? o->print_scenario : o->scenario;
    int sources = !!o->spec_path + !!o->scenario + !!o->print_scenario;
    if (sources != 1) {
        errorf("give exactly one of --spec, --scenario and --print-scenario");
        return 2;
    }
    if (scenario && !known_scenario(scenario)) {
        errorf("unknown scenario '%s' (expected sample, seed, large or huge)",
               scenario);
        return 2;
    }
    if (o->scale > 0 &&
        (scenario == NULL || (strcmp(scenario, "large") &&
                              strcmp(scenario, "huge")))) {
        errorf("--scale applies to the large and huge scenarios only");
        return 2;
    }
    if (o->print_scenario ? optind != argc : optind + 1 != argc) {
        errorf(o->print_scenario ? "--print-scenario takes no ROOT"
                                 : "expected one ROOT directory");
        return 2;
    }
    o->root = o->print_scenario ? NULL : argv[optind];
    return 0;
}

static int build(const struct options *o, const char *text)
{
    struct parser ps = {.now = o->now};
    struct spec spec = {0};
    struct builder b = {.now = o->now, .epoch = 1};
    int rc = 1;

    b.tree.fd = -1;
    if (parse_spec(&ps, text, &spec) < 0)
        goto out;
    if (open_tree(&b.tree, o->root, o->force, &b.untouched) < 0)
        goto out;
    b.layers = &ps.layers;
    for (size_t i = 0; i < spec.count; i++)
        if (exec_stmt(&b, &spec.stmts[i]) < 0)
            goto out;
    if (!o->quiet) {
        struct summary sum = {0};
        count_repos(b.tree.fd, "repositories", &sum);
        count_blobs(&b.tree, &sum);
        printf("%s: %zu repositories, %zu tags, %zu blobs, %" PRIu64 " bytes\n",
               o->root, sum.repos, sum.tags, sum.blobs, sum.blob_bytes);
    }
    rc = 0;
out:
    if (b.tree.fd >= 0)
        close(b.tree.fd);
    free(b.tree.path);
    free(b.scratch);
    for (size_t i = 0; i < b.manifests.cap; i++) {
        struct manifest_info *info = b.manifests.values[i];
        if (info) {
            free(info->os);
            free(info->arch);
            free(info->variant);
        }
    }
    map_free(&b.manifests, true);
    map_free(&b.handles, false);
    map_free(&b.upload_dirs, false);
    map_free(&b.linked, false);
    free(b.linked_repo);
    for (size_t i = 0; i < ps.layers.cap; i++) {
        struct layer *layer = ps.layers.values[i];
        if (layer)
            free(layer->name);
    }
    map_free(&ps.layers, true);
    map_free(&ps.handle_lines, false);
    spec_free(&spec);
    return rc;
}

int main(int argc, char **argv)
{
    struct options o = {.now = (int64_t)time(NULL)};
    struct buf text = {0};
    int rc;

    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    rc = parse_options_argv(argc, argv, &o);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    crc32_init();

    const char *scenario = o.print_scenario ? o.print_scenario : o.scenario;
    if (scenario && !strcmp(scenario, "sample")) {
        sample_text(&text);
        spec_name = "scenario sample";
    } else if (scenario && !strcmp(scenario, "seed")) {
        seed_text(&text, o.layer_size ? o.layer_size : SEED_LAYER_SIZE);
        spec_name = "scenario seed";
    } else if (scenario) {
        bool huge = !strcmp(scenario, "huge");
        double repos = (huge ? HUGE_REPOS : LARGE_REPOS) *
                       (o.scale > 0 ? o.scale : 1.0);
        large_text(&text, o.layer_size ? o.layer_size : LARGE_LAYER_SIZE,
                   repos < 1.5 ? 1 : (int)(repos + 0.5));
        spec_name = huge ? "scenario huge" : "scenario large";
    } else {
        text.data = read_file(o.spec_path);
        if (text.data == NULL)
            return 1;
        spec_name = o.spec_path;
    }
    if (o.print_scenario) {
        fputs(text.data, stdout);
        rc = fflush(stdout) == 0 ? 0 : 1;
    } else {
        rc = build(&o, text.data);
    }
    free(text.data);
    return rc;
}
