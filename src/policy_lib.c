/*
 * The regprune.* functions policies call: durations, regular expressions,
 * version ordering, sorting and selection of tags, and tag ages.
 */
#define _GNU_SOURCE
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "policy_internal.h"
#include "registry.h"
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
    keys = lua_newuserdatauv(L, (size_t)n * sizeof(*keys) + 1, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        const struct manifest *m;
        struct sort_key *k = &keys[i - 1];

        lua_geti(L, 1, i);
        k->index = policy_check_tag(L, p, lua_gettop(L), "regprune.sort");
        lua_pop(L, 1);
        k->tag = &p->repo->tags[k->index];
        m = p->reg->manifests[k->tag->digest];
        k->has_created = m && m->has_created;
        k->created = k->has_created ? m->created : 0;
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

void policy_lib_open(lua_State *L, const struct policy_options *opt)
{
    static const luaL_Reg funcs[] = {
        {"duration", l_duration},   {"fullmatch", l_fullmatch},
        {"search", l_search},       {"sort", l_sort},
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
    policy_make_readonly(L);
    lua_setfield(L, -2, "params");
    policy_make_readonly(L);
}

