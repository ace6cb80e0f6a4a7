/*
 * Fuzz the policy sandbox and the regprune.* functions. A fixed policy
 * passes strings from the input to every regprune.* function, reads the
 * tag tables and records verdicts on a small registry built in memory.
 * The input is newline-separated: a pattern, a duration, a sort order, a
 * --now value, then tag names. Policy errors are expected; crashes,
 * sanitizer reports and broken invariants are not.
 */
#include "fuzz.h"

#include <unistd.h>

#include "policy.h"
#include "registry.h"
#include "timeparse.h"
#include "xalloc.h"

#define HEADER_FIELDS 4
#define MAX_TAGS 32
#define MANIFESTS 4
#define NOW 1714564800 /* 2024-05-01T12:00:00Z */
/* 0000-01-01T00:00:00Z, which an image config may carry. */
#define YEAR_ZERO (-62167219200LL)

/*
 * Errors that the policy expects (bad pattern, bad duration, unknown tag)
 * are caught with pcall. A broken invariant raises INVARIANT_MARK, which
 * the harness turns into a crash. The mark contains newlines, which no
 * input field can, so a tag name cannot fake it.
 */
#define INVARIANT_MARK "\nfuzz-invariant\n"

static const char policy_text[] =
    "local params = regprune.parameters('fuzz', {pattern = false,\n"
    "                                    age = '30d', order = 'version'})\n"
    "local pattern = params.pattern or ''\n"
    "local age = params.age\n"
    "local order = params.order\n"
    "local orders = {'version', 'pushed', 'created', 'name'}\n"
    "\n"
    "local function invariant(ok, what)\n"
    "    if not ok then error('\\nfuzz-invariant\\n' .. what) end\n"
    "end\n"
    "\n"
    "local function check_names(a, b)\n"
    "    local ab = regprune.compare_versions(a, b)\n"
    "    invariant(ab == -regprune.compare_versions(b, a), 'antisymmetry')\n"
    "    invariant(regprune.prefix(a, a), 'prefix of itself')\n"
    "    regprune.version(a)\n"
    "    pcall(regprune.glob, a, b)\n"
    "    pcall(regprune.fullmatch, b, a)\n"
    "end\n"
    "\n"
    "local function check_tag(tag, seconds)\n"
    "    local full_ok, full = pcall(regprune.fullmatch, tag.name, pattern)\n"
    "    local found_ok, found = pcall(regprune.search, tag.name, pattern)\n"
    "    if full_ok and found_ok then\n"
    "        invariant(not full or found, 'fullmatch without search')\n"
    "    end\n"
    "    check_names(tag.name, pattern)\n"
    "    check_names(tag.name, age)\n"
    "    pcall(regprune.duration, tag.name)\n"
    "    for _, field in ipairs({'pushed', 'created'}) do\n"
    "        local a = regprune.age(tag, field)\n"
    "        local ok, old = pcall(regprune.older_than, tag, age, field)\n"
    "        if ok and seconds then\n"
    "            invariant(old == (a ~= nil and a > seconds), 'older_than')\n"
    "        end\n"
    "    end\n"
    "    if full_ok and full then\n"
    "        keep(tag, 'matches ' .. pattern)\n"
    "    elseif found_ok and found then\n"
    "        delete(tag.name)\n"
    "    elseif seconds and regprune.older_than(tag, age) then\n"
    "        delete(tag, 'older than ' .. age)\n"
    "    end\n"
    "    if regprune.glob(tag.name, '{v,release-}*') then\n"
    "        protect(tag)\n"
    "    end\n"
    "    for key, value in pairs(tag.labels) do\n"
    "        pcall(regprune.fullmatch, value, key)\n"
    "    end\n"
    "    for _, ref in ipairs(tag.referrers) do\n"
    "        invariant(ref.digest ~= tag.digest, 'referrer of itself')\n"
    "        if ref.tag then pcall(keep, ref.tag) end\n"
    "    end\n"
    "    invariant(#tag.platforms <= 2 and tag.kind ~= nil, 'description')\n"
    "    for _, sibling in ipairs(tag.siblings) do\n"
    "        pcall(delete, sibling)\n"
    "    end\n"
    "end\n"
    "\n"
    "local function check_lists(repo)\n"
    "    for _, o in ipairs(orders) do\n"
    "        local sorted = regprune.sort(repo.tags, o)\n"
    "        invariant(#sorted == #repo.tags, 'sort lost tags')\n"
    "        invariant(#regprune.newest(repo.tags, 2, {by = o}) <=\n"
    "                  math.min(2, #repo.tags), 'newest too long')\n"
    "    end\n"
    "    local mixed = {}\n"
    "    for i, tag in ipairs(repo.tags) do\n"
    "        mixed[2 * i - 1] = tag.name\n"
    "        mixed[2 * i] = tag\n"
    "    end\n"
    "    invariant(#regprune.sort(mixed, 'version') == #mixed, 'sort names')\n"
    "    pcall(regprune.sort, repo.tags, order)\n"
    "    local count = 0\n"
    "    for _, image in ipairs(regprune.images(repo.tags)) do\n"
    "        count = count + #image.tags\n"
    "    end\n"
    "    invariant(count == #repo.tags, 'images lost tags')\n"
    "    regprune.group(repo.tags, function(tag)\n"
    "        local v = regprune.version(tag.name)\n"
    "        return v and v.major\n"
    "    end)\n"
    "end\n"
    "\n"
    "function policy(repo)\n"
    "    local ok, seconds = pcall(regprune.duration, age)\n"
    "    if not ok then seconds = nil end\n"
    "    for _, tag in ipairs(repo.tags) do\n"
    "        check_tag(tag, seconds)\n"
    "    end\n"
    "    check_lists(repo)\n"
    "    for _, m in ipairs(repo.untagged) do\n"
    "        invariant(#m.digest == 71 and m.kind ~= nil, 'untagged')\n"
    "    end\n"
    "    pcall(keep, pattern)\n"
    "    pcall(delete, order, age)\n"
    "    invariant(not pcall(function() regprune.params.x = 1 end),\n"
    "              'params writable')\n"
    "    pcall(string.rep, pattern, #age * 4096)\n"
    "end\n";

static char policy_path[64];

static void remove_policy_file(void)
{
    unlink(policy_path);
}

/* policy_load reads files only, so write the policy once per process. */
static void write_policy_file(void)
{
    const char *dir = getenv("TMPDIR");
    size_t len = sizeof(policy_text) - 1;
    int fd;

    if (policy_path[0])
        return;
    snprintf(policy_path, sizeof(policy_path), "%s/fuzz-policy.XXXXXX",
             dir && strlen(dir) < 40 ? dir : "/tmp");
    fd = mkstemp(policy_path);
    if (fd < 0 || write(fd, policy_text, len) != (ssize_t)len) {
        perror("fuzz_policy: cannot write the policy file");
        abort();
    }
    close(fd);
    atexit(remove_policy_file);
}

static uint64_t hash_bytes(const uint8_t *data, size_t size)
{
    uint64_t h = 14695981039346656037u;

    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211u;
    return h;
}

static uint32_t intern_number(struct registry *reg, uint8_t n)
{
    struct digest d;

    memset(&d, 0, sizeof(d));
    d.bytes[0] = n;
    d.bytes[31] = 0x5a;
    return registry_intern(reg, &d);
}

static struct manifest *new_manifest(struct registry *reg, uint32_t id,
                                     int64_t size)
{
    struct manifest *m = xcalloc(1, sizeof(*m));

    m->state = MSTATE_OK;
    m->kind = MANIFEST_OCI;
    m->blob_size = size;
    m->config = DIGEST_NONE;
    m->subject = DIGEST_NONE;
    registry_alloc_layers(m, 1);
    m->layers[0] = intern_number(reg, (uint8_t)(100 + id));
    m->layer_sizes[0] = 1000 * (int64_t)(id + 1);
    m->layer_count = 1;
    reg->manifests[id] = m;
    return m;
}

/*
 * Manifests 0 and 1 are images (1 has no creation time), 2 is an index of
 * both, created in year 0, and 3 is an untagged referrer of 0. Image 0
 * carries one label made of two input fields. Every repository contains
 * revisions for all four.
 */
static void add_manifests(struct registry *reg, const char *label_key,
                          const char *label_value)
{
    struct manifest *m;
    uint32_t ids[MANIFESTS];

    for (uint8_t i = 0; i < MANIFESTS; i++)
        ids[i] = intern_number(reg, i);
    m = new_manifest(reg, ids[0], 500);
    m->has_created = 1;
    m->created = NOW - 86400;
    m->platform = xstrdup("linux/amd64");
    m->config = intern_number(reg, 50);
    m->config_size = 300;
    m->labels = xmalloc(2 * sizeof(char *));
    m->labels[0] = xstrdup(label_key);
    m->labels[1] = xstrdup(label_value);
    m->label_count = 1;
    m = new_manifest(reg, ids[1], 600);
    m->platform = xstrdup("linux/arm64/v8");
    m = new_manifest(reg, ids[2], 400);
    m->kind = MANIFEST_OCI_INDEX;
    m->has_created = 1;
    m->created = YEAR_ZERO;
    m->children = xmalloc(2 * sizeof(*m->children));
    m->child_platforms = xmalloc(2 * sizeof(char *));
    m->children[0] = ids[0];
    m->children[1] = ids[1];
    m->child_platforms[0] = xstrdup("linux/amd64");
    m->child_platforms[1] = NULL;
    m->child_count = 2;
    m = new_manifest(reg, ids[3], 300);
    m->artifact = 1;
    m->subject = ids[0];
}

static int has_tag(const struct repo *repo, const char *name)
{
    for (size_t i = 0; i < repo->tag_count; i++)
        if (strcmp(repo->tags[i].name, name) == 0)
            return 1;
    return 0;
}

/*
 * Add a tag unless the name is empty or taken, as scan.c never produces
 * those. Some tags get a push time before 1970, which ext4 can store. A
 * name such as sha256-<hex>.sig follows its subject, as in scan.c.
 */
static void add_tag(struct registry *reg, struct repo *repo, const char *name,
                    uint64_t seed)
{
    struct tag *t;

    if (name[0] == '\0' || has_tag(repo, name))
        return;
    t = &repo->tags[repo->tag_count++];
    t->name = xstrdup(name);
    t->digest = (uint32_t)(seed % 3);
    t->follows = registry_convention_subject(reg, repo, name);
    if (seed & 8)
        t->pushed = -(int64_t)(seed % ((uint64_t)1 << 31));
    else
        t->pushed = NOW - (int64_t)(seed % (90 * 86400));
}

static void init_repo(struct repo *repo, const char *name)
{
    repo->name = xstrdup(name);
    repo->tags = xcalloc(MAX_TAGS, sizeof(*repo->tags));
    repo->revisions = xmalloc(MANIFESTS * sizeof(*repo->revisions));
    for (uint32_t i = 0; i < MANIFESTS; i++)
        repo->revisions[i] = i;
    repo->revision_count = MANIFESTS;
    repo->selected = 1;
}

static void check_verdicts(const struct repo *repo, int allow_empty)
{
    size_t policy_tags = 0, remaining = 0;

    for (size_t i = 0; i < repo->tag_count; i++) {
        const struct tag *t = &repo->tags[i];

        FUZZ_CHECK(!t->remove || t->delete);
        FUZZ_CHECK(!(t->remove && t->keep));
        FUZZ_CHECK(!t->protect || t->keep);
        FUZZ_CHECK(!t->keep || t->keep_reason);
        FUZZ_CHECK(!t->delete || t->delete_reason);
        if (t->follows != DIGEST_NONE) {
            /* Policies never see a tag that follows its subject. */
            FUZZ_CHECK(!t->keep && !t->delete);
            continue;
        }
        policy_tags++;
        remaining += !t->remove;
    }
    if (!allow_empty && policy_tags > 0)
        FUZZ_CHECK(remaining > 0);
}

static void evaluate(struct policy *p, struct registry *reg, struct repo *repo,
                     int allow_empty)
{
    char *err = NULL;

    if (policy_evaluate(p, reg, repo, &err) == 0) {
        FUZZ_CHECK(err == NULL);
        check_verdicts(repo, allow_empty);
        return;
    }
    FUZZ_CHECK(err != NULL);
    if (strstr(err, INVARIANT_MARK)) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *files[1] = {policy_path};
    char *fields[HEADER_FIELDS + MAX_TAGS];
    size_t nfields = 0, start = 0;
    uint64_t seed = hash_bytes(data, size);
    struct policy_param params[3];
    struct policy_options opt;
    struct registry reg;
    struct policy *p;
    char *err = NULL;

    write_policy_file();
    while (nfields < HEADER_FIELDS + MAX_TAGS &&
           (start < size || nfields < HEADER_FIELDS)) {
        const uint8_t *nl = memchr(data + start, '\n', size - start);
        size_t end = nl ? (size_t)(nl - data) : size;

        fields[nfields++] = fuzz_strndup(data + start, end - start);
        start = nl ? end + 1 : size;
    }
    params[0] = (struct policy_param){"pattern", fields[0]};
    params[1] = (struct policy_param){"age", fields[1]};
    params[2] = (struct policy_param){"order", fields[2]};
    memset(&opt, 0, sizeof(opt));
    opt.files = files;
    opt.file_count = 1;
    opt.params = params;
    opt.param_count = 3;
    if (timeparse_instant(fields[3], &opt.now) != 0)
        opt.now = NOW;
    opt.allow_empty = (int)(seed & 1);
    opt.record_events = (int)(seed >> 1 & 1);
    opt.max_instructions = 200000;
    opt.max_memory = (size_t)1 << 20; /* the smallest --max-memory */

    memset(&reg, 0, sizeof(reg));
    reg.v2_fd = -1;
    digest_table_init(&reg.ids);
    add_manifests(&reg, fields[0], fields[1]);
    reg.repos = xcalloc(2, sizeof(*reg.repos));
    reg.repo_count = 2;
    init_repo(&reg.repos[0], "fuzz/a");
    init_repo(&reg.repos[1], "fuzz/b");
    /* Tags alternate between the two repositories. */
    for (size_t i = HEADER_FIELDS; i < nfields; i++)
        add_tag(&reg, &reg.repos[i % 2], fields[i],
                hash_bytes((const uint8_t *)fields[i], strlen(fields[i])));
    registry_describe_tags(&reg, &reg.repos[0]);
    registry_describe_tags(&reg, &reg.repos[1]);

    p = policy_load(&opt, &err);
    if (p) {
        evaluate(p, &reg, &reg.repos[0], opt.allow_empty);
        evaluate(p, &reg, &reg.repos[1], opt.allow_empty);
        policy_free(p);
    } else {
        FUZZ_CHECK(err != NULL);
        fprintf(stderr, "%s\n", err);
        abort(); /* the fixed policy always loads */
    }
    registry_free(&reg);
    for (size_t i = 0; i < nfields; i++)
        free(fields[i]);
    return 0;
}
