/*
 * The regprune.* functions policies call: durations, regular expressions,
 * version ordering, sorting and selection of tags, and tag ages.
 */
#define _GNU_SOURCE
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_internal.h"
#include "registry.h"
#include "scan.h"
#include "timeparse.h"
#include "version.h"
#include "xalloc.h"


static int l_duration(lua_State *L)
{
    const char *s = luaL_checkstring(L, 1);
    int64_t seconds;

    if (timeparse_duration(s, &seconds) != 0)
        return luaL_error(L, "regprune.duration: invalid duration '%s': "
                          "expected numbers with units s, m, h, d or w, "
                          "such as \"30d\" or \"1d12h\"", s);
    lua_pushinteger(L, (lua_Integer)seconds);
    return 1;
}

static int regex_match(lua_State *L, int whole)
{
    struct policy *p = policy_of(L);
    size_t slen, plen;
    const char *s = luaL_checklstring(L, 1, &slen);
    const char *pattern = luaL_checklstring(L, 2, &plen);
    char err[512];
    int rc = rx_match(p->rx, pattern, plen, s, slen, whole, err, sizeof(err));

    if (rc < 0)
        return luaL_error(L, "regprune.%s: %s",
                          whole ? "fullmatch" : "search", err);
    lua_pushboolean(L, rc);
    return 1;
}

static int l_fullmatch(lua_State *L)
{
    return regex_match(L, 1);
}

static int l_search(lua_State *L)
{
    return regex_match(L, 0);
}

struct sort_key {
    size_t index;
    const struct tag *tag;
    int has_created;
    int64_t created;
};

static int compare_pushed(const struct sort_key *a, const struct sort_key *b)
{
    if (a->tag->pushed != b->tag->pushed)
        return a->tag->pushed > b->tag->pushed ? -1 : 1;
    return -version_compare_names(a->tag->name, b->tag->name);
}

static int compare_keys(const void *x, const void *y, void *arg)
{
    const struct sort_key *a = x, *b = y;
    const char *order = arg;

    switch (order[0]) {
    case 'v': {
        int c = version_compare_names(a->tag->name, b->tag->name);
        return c ? -c : compare_pushed(a, b);
    }
    case 'c':
        if (a->has_created != b->has_created)
            return a->has_created ? -1 : 1;
        if (a->has_created && a->created != b->created)
            return a->created > b->created ? -1 : 1;
        return compare_pushed(a, b);
    case 'n':
        return -natural_compare(a->tag->name, b->tag->name);
    default:
        return compare_pushed(a, b);
    }
}

static int l_sort(lua_State *L)
{
    static const char *const orders[] = {"version", "pushed", "created",
                                         "name", NULL};
    struct policy *p = policy_of(L);
    int order = luaL_checkoption(L, 2, "pushed", orders);
    lua_Integer n;
    struct sort_key *keys;

    luaL_checktype(L, 1, LUA_TTABLE);
    if (!p->repo)
        return luaL_error(L, "regprune.sort: tags exist only inside "
                          "policy(repo), not while the file loads");
    n = luaL_len(L, 1);
    if (n < 0 || (size_t)n > p->repo->tag_count * 64 + 64)
        return luaL_error(L, "regprune.sort: the list has %I entries, "
                          "more than the repository's tags", n);
    /* Check every element before allocating, since checks may raise. */
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        policy_check_tag(L, p, lua_gettop(L), "regprune.sort");
        lua_pop(L, 1);
    }
    if (strcmp(orders[order], "created") == 0)
        policy_need_configs(p, p->repo);
    keys = lua_newuserdatauv(L, (size_t)n * sizeof(*keys) + 1, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        struct sort_key *k = &keys[i - 1];

        lua_geti(L, 1, i);
        k->index = policy_check_tag(L, p, lua_gettop(L), "regprune.sort");
        lua_pop(L, 1);
        k->tag = &p->repo->tags[k->index];
        k->has_created = k->tag->has_created;
        k->created = k->tag->created;
    }
    qsort_r(keys, (size_t)n, sizeof(*keys), compare_keys,
            (void *)orders[order]);
    lua_createtable(L, (int)n, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->lookup_ref);
    for (lua_Integer i = 1; i <= n; i++) {
        /* The lookup table maps index+1 back to the tag table too. */
        lua_rawgeti(L, -1, -(lua_Integer)keys[i - 1].index - 1);
        lua_rawseti(L, -3, i);
    }
    lua_pop(L, 1);
    return 1;
}

/*** versions ***/

static void set_string_field(lua_State *L, const char *key, const char *s,
                             size_t len)
{
    if (!s)
        return;
    lua_pushlstring(L, s, len);
    lua_setfield(L, -2, key);
}

/* regprune.version(s): the parts of a version, or nil. */
static int l_version(lua_State *L)
{
    const char *s = luaL_checkstring(L, 1);
    static const char *const names[] = {"major", "minor", "patch", "build_number"};
    struct version v;

    if (version_parse(s, &v) != 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, 8);
    lua_createtable(L, v.nparts, 0);
    for (int i = 0; i < v.nparts; i++) {
        lua_pushinteger(L, (lua_Integer)v.parts[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "parts");
    for (int i = 0; i < VERSION_MAX_PARTS && i < 3; i++) {
        lua_pushinteger(L, (lua_Integer)v.parts[i]);
        lua_setfield(L, -2, names[i]);
    }
    set_string_field(L, "prerelease", v.prerelease, v.prerelease_len);
    set_string_field(L, "build", v.build, v.build_len);
    if (v.describe_commits >= 0) {
        lua_pushinteger(L, (lua_Integer)v.describe_commits);
        lua_setfield(L, -2, "commits");
    }
    return 1;
}

/* regprune.compare_versions(a, b): -1, 0 or 1 in the "version" order. */
static int l_compare_versions(lua_State *L)
{
    int c = version_compare_names(luaL_checkstring(L, 1),
                                  luaL_checkstring(L, 2));

    lua_pushinteger(L, (c > 0) - (c < 0));
    return 1;
}

/*** selection ***/

/* regprune.newest(tags, n [, {by = order}]): the first n of the sort. */
static int l_newest(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 2);
    lua_Integer len;

    lua_settop(L, 3); /* the options, or nil, stay at index 3 */
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argcheck(L, n >= 0, 2, "the count must be 0 or more");
    lua_pushcfunction(L, l_sort);
    lua_pushvalue(L, 1);
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "by");
    } else {
        luaL_argcheck(L, lua_isnoneornil(L, 3), 3,
                      "expected a table such as {by = \"version\"}");
        lua_pushnil(L);
    }
    lua_call(L, 2, 1);
    len = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = len; i > n; i--) {
        lua_pushnil(L);
        lua_rawseti(L, -2, i);
    }
    return 1;
}

/*
 * regprune.group(tags, fn): a table from fn(tag) to the array of tags that
 * gave that key, in their order; tags for which fn returns nil are left
 * out.
 */
static int l_group(lua_State *L)
{
    lua_Integer n;

    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    n = luaL_len(L, 1);
    lua_newtable(L);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_pushvalue(L, 2);
        lua_geti(L, 1, i);
        lua_call(L, 1, 1);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -1);
        if (lua_rawget(L, 3) == LUA_TNIL) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -2);
            lua_pushvalue(L, -2);
            lua_rawset(L, 3);
        }
        lua_geti(L, 1, i);
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        lua_pop(L, 2);
    }
    return 1;
}

/*
 * regprune.images(tags): the tags grouped by digest, in the order of each
 * digest's first tag: an array of {digest = ..., tags = {...}}, so that a
 * policy can count images rather than tags.
 */
static int l_images(lua_State *L)
{
    lua_Integer n;

    luaL_checktype(L, 1, LUA_TTABLE);
    n = luaL_len(L, 1);
    lua_newtable(L); /* result, index 2 */
    lua_newtable(L); /* digest -> image, index 3 */
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        if (lua_getfield(L, -1, "digest") != LUA_TSTRING)
            return luaL_error(L, "regprune.images: element %I is not a tag",
                              i);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, 3) == LUA_TNIL) {
            lua_pop(L, 1);
            lua_createtable(L, 0, 2);
            lua_pushvalue(L, -2);
            lua_setfield(L, -2, "digest");
            lua_newtable(L);
            lua_setfield(L, -2, "tags");
            lua_pushvalue(L, -2);
            lua_pushvalue(L, -2);
            lua_rawset(L, 3);
            lua_pushvalue(L, -1);
            lua_rawseti(L, 2, (lua_Integer)lua_rawlen(L, 2) + 1);
        }
        lua_getfield(L, -1, "tags");
        lua_pushvalue(L, -4);
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        lua_pop(L, 4);
    }
    lua_pop(L, 1);
    return 1;
}

/*
 * regprune.format_duration(seconds): the units d, h, m and s, leaving out
 * zero parts: 3888000 gives "45d", 5400 gives "1h30m", 0 gives "0s".
 */
static int l_format_duration(lua_State *L)
{
    static const struct {
        char unit;
        lua_Integer seconds;
    } units[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
    lua_Integer left = luaL_checkinteger(L, 1);
    luaL_Buffer b;

    luaL_argcheck(L, left >= 0, 1, "a duration is 0 or more seconds");
    if (left == 0) {
        lua_pushliteral(L, "0s");
        return 1;
    }
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        lua_Integer amount = left / units[i].seconds;
        char part[32];

        if (amount == 0)
            continue;
        snprintf(part, sizeof(part), "%lld%c", (long long)amount,
                 units[i].unit);
        luaL_addstring(&b, part);
        left -= amount * units[i].seconds;
    }
    luaL_pushresult(&b);
    return 1;
}

/*** name patterns ***/

/* Maximum length of a glob pattern or subject; names are at most 255
 * bytes. */
#define GLOB_MAX 512
#define GLOB_MAX_ALTERNATIVES 256

/* Whether c is in the class pat[start, end) ("a-z" ranges allowed). */
static int class_has(const char *pat, size_t start, size_t end, char c)
{
    for (size_t m = start; m < end; m++) {
        if (m + 2 < end && pat[m + 1] == '-') {
            if (c >= pat[m] && c <= pat[m + 2])
                return 1;
            m += 2;
        } else if (c == pat[m]) {
            return 1;
        }
    }
    return 0;
}

/*
 * One step of glob_match_plain: from the subject positions row[] reached
 * before pat[i], set next[] to those reached after it. Return the pattern
 * characters the step used, or 0 for an unclosed class.
 */
static size_t glob_step(const char *pat, size_t plen, size_t i,
                        const char *s, size_t slen, const unsigned char *row,
                        unsigned char *next)
{
    if (pat[i] == '*') {
        int any = i + 1 < plen && pat[i + 1] == '*';
        for (size_t j = 0; j <= slen; j++)
            next[j] = row[j] ||
                      (j > 0 && next[j - 1] && (any || s[j - 1] != '/'));
        return any ? 2 : 1;
    }
    if (pat[i] == '[') {
        size_t k = i + 1;
        int negate = k < plen && (pat[k] == '!' || pat[k] == '^');
        size_t start = k + (size_t)negate, end = start;

        if (end < plen && pat[end] == ']')
            end++;
        while (end < plen && pat[end] != ']')
            end++;
        if (end >= plen)
            return 0;
        for (size_t j = 0; j < slen; j++)
            if (row[j] && s[j] != '/' &&
                class_has(pat, start, end, s[j]) != negate)
                next[j + 1] = 1;
        return end + 1 - i;
    }
    if (pat[i] == '?') {
        for (size_t j = 0; j < slen; j++)
            if (row[j] && s[j] != '/')
                next[j + 1] = 1;
        return 1;
    }
    {
        int escaped = pat[i] == '\\' && i + 1 < plen;
        char c = pat[i + (escaped ? 1 : 0)];

        for (size_t j = 0; j < slen; j++)
            if (row[j] && s[j] == c)
                next[j + 1] = 1;
        return escaped ? 2 : 1;
    }
}

/*
 * Match one glob without braces by dynamic programming over (pattern,
 * subject) positions: "*" is any run without "/", "**" any run, "?" one
 * character but "/", "[...]" a class ("[!...]" or "[^...]" negated).
 * Return 1, 0, or -1 on an unclosed class.
 */
static int glob_match_plain(const char *pat, size_t plen, const char *s,
                            size_t slen, unsigned char *row, unsigned char *next)
{
    memset(row, 0, slen + 1);
    row[0] = 1;
    for (size_t i = 0; i < plen;) {
        size_t step;

        memset(next, 0, slen + 1);
        step = glob_step(pat, plen, i, s, slen, row, next);
        if (step == 0)
            return -1;
        memcpy(row, next, slen + 1);
        i += step;
    }
    return row[slen];
}

/* Expand the first {a,b,...} group of pat and match each alternative. */
static int glob_match(const char *pat, const char *s, int *budget)
{
    const char *open = NULL, *close = NULL;
    int depth = 0;

    if (--*budget < 0)
        return -2;
    for (const char *p = pat; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
        } else if (*p == '{') {
            if (depth++ == 0)
                open = p;
        } else if (*p == '}' && depth > 0 && --depth == 0) {
            close = p;
            break;
        }
    }
    if (!open || !close) {
        size_t slen = strlen(s);
        unsigned char row[GLOB_MAX + 1], next[GLOB_MAX + 1];
        return glob_match_plain(pat, strlen(pat), s, slen, row, next);
    }
    for (const char *alt = open + 1; alt <= close;) {
        const char *end = alt;
        char expanded[GLOB_MAX + 1];
        int rc;

        depth = 0;
        while (end < close && !(depth == 0 && *end == ',')) {
            if (*end == '\\' && end + 1 < close)
                end++;
            else if (*end == '{')
                depth++;
            else if (*end == '}')
                depth--;
            end++;
        }
        if ((size_t)(open - pat) + (size_t)(end - alt) + strlen(close + 1) >
            GLOB_MAX)
            return -1;
        snprintf(expanded, sizeof(expanded), "%.*s%.*s%s", (int)(open - pat),
                 pat, (int)(end - alt), alt, close + 1);
        rc = glob_match(expanded, s, budget);
        if (rc != 0)
            return rc;
        alt = end + 1;
    }
    return 0;
}

/* regprune.glob(s, pattern): doublestar glob, as Harbor's rules use. */
static int l_glob(lua_State *L)
{
    size_t slen, plen;
    const char *s = luaL_checklstring(L, 1, &slen);
    const char *pattern = luaL_checklstring(L, 2, &plen);
    int budget = GLOB_MAX_ALTERNATIVES;
    int rc;

    if (slen > GLOB_MAX || plen > GLOB_MAX)
        return luaL_error(L, "regprune.glob: pattern and name are limited to "
                          "%d bytes", GLOB_MAX);
    rc = glob_match(pattern, s, &budget);
    if (rc == -1)
        return luaL_error(L, "regprune.glob: invalid pattern '%s': unclosed "
                          "'[' or too long once braces are expanded",
                          pattern);
    if (rc == -2)
        return luaL_error(L, "regprune.glob: pattern '%s' expands to more "
                          "than %d alternatives", pattern,
                          GLOB_MAX_ALTERNATIVES);
    lua_pushboolean(L, rc);
    return 1;
}

/* regprune.prefix(s, prefix): s starts with prefix. */
static int l_prefix(lua_State *L)
{
    size_t slen, plen;
    const char *s = luaL_checklstring(L, 1, &slen);
    const char *prefix = luaL_checklstring(L, 2, &plen);

    lua_pushboolean(L, plen <= slen && memcmp(s, prefix, plen) == 0);
    return 1;
}

/*** parameters ***/

static int compare_cstrings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * regprune.parameters(policy_name, defaults): the --set values merged over
 * defaults, a table from each known name to its default string (false for
 * a parameter with no default). --set names missing from the table are
 * left out here; once every file has loaded, policy_load rejects a name
 * that no file declares.
 */
static int l_parameters(lua_State *L)
{
    struct policy *p = policy_of(L);
    const char *policy_name = luaL_checkstring(L, 1);
    const struct policy_options *opt = p->opt;

    luaL_checktype(L, 2, LUA_TTABLE);
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->known_params_ref); /* 3 */
    lua_newtable(L); /* result, 4 */
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        if (lua_type(L, -2) != LUA_TSTRING ||
            (lua_type(L, -1) != LUA_TSTRING && !lua_isboolean(L, -1)))
            return luaL_error(L, "regprune.parameters: defaults map names "
                              "to strings, or to false for no default");
        lua_pushvalue(L, -2);
        lua_pushstring(L, policy_name);
        lua_rawset(L, 3);
        if (lua_type(L, -1) == LUA_TSTRING) {
            lua_pushvalue(L, -2);
            lua_pushvalue(L, -2);
            lua_rawset(L, 4);
        }
        lua_pop(L, 1);
    }
    for (size_t i = 0; i < opt->param_count; i++) {
        lua_getfield(L, 2, opt->params[i].name);
        if (!lua_isnil(L, -1)) {
            lua_pushstring(L, opt->params[i].value);
            lua_setfield(L, 4, opt->params[i].name);
        } else if (opt->file_count == 1) {
            /* With one file, say so at once, before it judges anything. */
            char *msg = NULL;
            free(p->policy_names);
            p->policy_names = xstrdup(policy_name);
            policy_lib_check_params(p, &msg);
            lua_pushstring(L, msg ? msg : "unknown parameter");
            free(msg);
            return lua_error(L);
        }
        lua_pop(L, 1);
    }
    if (!p->policy_names)
        p->policy_names = xstrdup(policy_name);
    else if (!strstr(p->policy_names, policy_name)) {
        char *joined = xasprintf("%s, %s", p->policy_names, policy_name);
        free(p->policy_names);
        p->policy_names = joined;
    }
    lua_settop(L, 4);
    return 1;
}

/* Mark name as a parameter that some file reads from regprune.params,
 * when it does so at the top level. */
static void note_param_read(lua_State *L, struct policy *p, int name)
{
    if (!p->loading || lua_type(L, name) != LUA_TSTRING)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->known_params_ref);
    lua_pushvalue(L, name);
    if (lua_rawget(L, -2) == LUA_TNIL) {
        lua_pushvalue(L, name);
        lua_pushliteral(L, "regprune.params");
        lua_rawset(L, -4);
    }
    lua_pop(L, 2);
}

/* __index of regprune.params: the --set value, and the name counts as
 * known to the check of --set names. */
static int l_params_index(lua_State *L)
{
    note_param_read(L, policy_of(L), 2);
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
    return 1;
}

/* __pairs of regprune.params: a file that lists the values takes them
 * all. */
static int l_params_pairs(lua_State *L)
{
    struct policy *p = policy_of(L);

    lua_pushnil(L);
    while (lua_next(L, lua_upvalueindex(1))) {
        lua_pop(L, 1);
        note_param_read(L, p, lua_gettop(L));
    }
    lua_getglobal(L, "next");
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushnil(L);
    return 3;
}

int policy_lib_check_params(struct policy *p, char **err)
{
    lua_State *L = p->L;
    const struct policy_options *opt = p->opt;
    const char *known[256];
    size_t known_count = 0;
    int rc = 0;

    if (!p->policy_names)
        return 0; /* no file declared its parameters */
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->known_params_ref);
    lua_pushnil(L);
    while (lua_next(L, -2) && known_count < 256) {
        known[known_count++] = lua_tostring(L, -2);
        lua_pop(L, 1);
    }
    qsort(known, known_count, sizeof(known[0]), compare_cstrings);
    for (size_t i = 0; i < opt->param_count && rc == 0; i++) {
        lua_getfield(L, -1, opt->params[i].name);
        if (lua_isnil(L, -1)) {
            size_t len = 0, used = 0;
            char *list;
            for (size_t k = 0; k < known_count; k++)
                len += strlen(known[k]) + 2;
            list = xcalloc(len + 1, 1);
            for (size_t k = 0; k < known_count; k++)
                used += (size_t)snprintf(list + used, len + 1 - used,
                                         "%s%s", k ? ", " : "", known[k]);
            *err = xasprintf("%s: unknown parameter '%s' (known parameters: "
                             "%s)", p->policy_names, opt->params[i].name,
                             list);
            free(list);
            rc = -1;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return rc;
}

/*** ages ***/

/* Image creation times that carry no information: the epoch, and the
 * 1980-01-01 that reproducible builds write. */
#define EPOCH_1980 315532800

/* Push the time of a tag's field ("pushed" or "created"), or nil when the
 * time is unknown. */
static void push_tag_time(lua_State *L, struct policy *p, size_t index,
                          const char *field)
{
    const struct tag *t = &p->repo->tags[index];

    if (strcmp(field, "pushed_first") == 0) {
        struct history_entry *entries;
        size_t count = scan_tag_history(p->reg, p->repo, t, &entries);
        lua_pushinteger(L, (lua_Integer)(count ? entries[0].time
                                               : t->pushed));
        free(entries);
    } else if (strcmp(field, "pushed") == 0) {
        lua_pushinteger(L, (lua_Integer)t->pushed);
    } else {
        policy_need_configs(p, p->repo);
        if (t->has_created && t->created != 0 && t->created != EPOCH_1980)
            lua_pushinteger(L, (lua_Integer)t->created);
        else
            lua_pushnil(L);
    }
}

static const char *const time_fields[] = {"pushed", "created",
                                          "pushed_first", NULL};

/* regprune.age(tag [, field]): seconds since the tag's time, or nil. */
static int l_age(lua_State *L)
{
    struct policy *p = policy_of(L);
    size_t index = policy_check_tag(L, p, 1, "regprune.age");
    int field = luaL_checkoption(L, 2, "pushed", time_fields);

    push_tag_time(L, p, index, time_fields[field]);
    if (!lua_isnil(L, -1))
        lua_pushinteger(L, (lua_Integer)p->opt->now - lua_tointeger(L, -1));
    return 1;
}

/*
 * regprune.older_than(tag, duration [, field]): the tag's time is more
 * than duration before regprune.now; false when the time is unknown, so a
 * missing creation time never makes an image look ancient.
 */
static int l_older_than(lua_State *L)
{
    struct policy *p = policy_of(L);
    size_t index = policy_check_tag(L, p, 1, "regprune.older_than");
    const char *duration = luaL_checkstring(L, 2);
    int field = luaL_checkoption(L, 3, "pushed", time_fields);
    int64_t seconds;

    if (timeparse_duration(duration, &seconds) != 0)
        return luaL_error(L, "regprune.older_than: invalid duration '%s': "
                          "expected numbers with units s, m, h, d or w, "
                          "such as \"30d\"", duration);
    push_tag_time(L, p, index, time_fields[field]);
    lua_pushboolean(L, !lua_isnil(L, -1) &&
                           p->opt->now - lua_tointeger(L, -1) > seconds);
    return 1;
}

void policy_lib_open(lua_State *L, const struct policy_options *opt)
{
    static const luaL_Reg funcs[] = {
        {"duration", l_duration},
        {"format_duration", l_format_duration},
        {"fullmatch", l_fullmatch},
        {"search", l_search},
        {"sort", l_sort},
        {"version", l_version},
        {"compare_versions", l_compare_versions},
        {"newest", l_newest},
        {"group", l_group},
        {"images", l_images},
        {"glob", l_glob},
        {"prefix", l_prefix},
        {"age", l_age},
        {"older_than", l_older_than},
        {"parameters", l_parameters},
        {NULL, NULL},
    };

    luaL_newlib(L, funcs);
    lua_pushinteger(L, (lua_Integer)opt->now);
    lua_setfield(L, -2, "now");
    lua_createtable(L, 0, (int)opt->param_count);
    for (size_t i = 0; i < opt->param_count; i++) {
        lua_pushstring(L, opt->params[i].value);
        lua_setfield(L, -2, opt->params[i].name);
    }
    lua_pushvalue(L, -1);
    policy_make_readonly(L);
    lua_getmetatable(L, -1);
    lua_pushvalue(L, -3);
    lua_pushcclosure(L, l_params_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, -3);
    lua_pushcclosure(L, l_params_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_pop(L, 1);
    lua_remove(L, -2);
    lua_setfield(L, -2, "params");
    policy_make_readonly(L);
}

