#define _GNU_SOURCE
#include "policy.h"
#include "policy_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <signal.h>
#include <unistd.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "path.h"
#include "rx.h"
#include "scan.h"
#include "timeparse.h"
#include "version.h"
#include "xalloc.h"

/* Instructions between two checks of the budget. */
#define HOOK_INTERVAL 1000
/* Largest policy file read. */
#define POLICY_MAX_BYTES (1024 * 1024)

/* Registry keys: addresses of these variables. */
static const char policy_key = 0;

struct policy *policy_of(lua_State *L)
{
    struct policy *p;

    lua_rawgetp(L, LUA_REGISTRYINDEX, &policy_key);
    p = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return p;
}

/*** sandbox ***/

/*
 * The wall-clock limit of one policy call. The instruction hook cannot
 * stop C code such as a backtracking string.find, so the alarm ends the
 * process outright. Policies run before anything is removed, so nothing
 * is deleted then.
 */
static void deadline_expired(int sig)
{
    static const char msg[] =
        "regprune: error: a policy call ran past its time limit "
        "(--policy-timeout); nothing was deleted\n";
    ssize_t ignored;

    (void)sig;
    ignored = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)ignored;
    _exit(1);
}

static void policy_deadline_start(int64_t seconds)
{
    struct itimerval deadline = {{0, 0}, {0, 0}};
    struct sigaction sa;

    if (seconds <= 0)
        return;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = deadline_expired;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    deadline.it_value.tv_sec = seconds > 86400 ? 86400 : (time_t)seconds;
    setitimer(ITIMER_REAL, &deadline, NULL);
}

static void policy_deadline_stop(void)
{
    static const struct itimerval off;

    setitimer(ITIMER_REAL, &off, NULL);
}

void policy_need_configs(struct policy *p, struct repo *repo)
{
    static const struct itimerval off;
    struct itimerval left;

    if (!repo || repo->configs_read || p->reg->v2_fd < 0)
        return;
    /* The deadline pauses, to the microsecond, because reading is not the
     * policy's time. */
    setitimer(ITIMER_REAL, &off, &left);
    scan_repo_configs(p->reg, repo);
    if (left.it_value.tv_sec || left.it_value.tv_usec)
        setitimer(ITIMER_REAL, &left, NULL);
    p->want_configs = 1;
}

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct policy *p = ud;
    size_t old = ptr ? osize : 0;

    if (nsize == 0) {
        p->memory_used -= old;
        free(ptr);
        return NULL;
    }
    if (nsize > old && p->memory_used + (nsize - old) > p->opt->max_memory) {
        p->memory_exceeded = 1;
        return NULL;
    }
    ptr = realloc(ptr, nsize);
    if (ptr)
        p->memory_used = p->memory_used - old + nsize;
    return ptr;
}

/* Once the budget is spent, every later hook raises again, so a policy's
 * own pcall cannot swallow the stop. */
static void count_hook(lua_State *L, lua_Debug *ar)
{
    struct policy *p = policy_of(L);

    (void)ar;
    p->instructions += HOOK_INTERVAL;
    if (p->instructions > p->opt->max_instructions) {
        /* From now on raise at every instruction, so that a pcall in a
         * loop cannot catch each stop and carry on. */
        if (!p->budget_exceeded)
            lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
        p->budget_exceeded = 1;
        luaL_error(L, "policy exceeded its budget of %I instructions for "
                   "one repository (--max-instructions)",
                   (lua_Integer)p->opt->max_instructions);
    }
}

/* __index of a policy's environment: allowed globals, else an error. */
static int l_env_index(lua_State *L)
{
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
    if (!lua_isnil(L, -1))
        return 1;
    if (lua_type(L, 2) == LUA_TSTRING)
        return luaL_error(L, "undefined global '%s'", lua_tostring(L, 2));
    return luaL_error(L, "undefined global");
}

/* __newindex: globals may be defined while the file loads, not later. */
static int l_env_newindex(lua_State *L)
{
    struct policy *p = policy_of(L);

    if (!p->loading)
        return luaL_error(L, "assignment to global '%s' inside policy(); "
                          "use a local variable",
                          lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2)
                                                        : "?");
    lua_rawset(L, 1);
    return 0;
}

static int l_readonly_newindex(lua_State *L)
{
    return luaL_error(L, "attempt to modify a read-only table");
}

static int l_readonly_len(lua_State *L)
{
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "__data");
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, -1));
    return 1;
}

static int l_readonly_pairs(lua_State *L)
{
    /* A tag table makes its platforms and labels before it lists them. */
    lua_getmetatable(L, 1);
    if (lua_getfield(L, -1, "__lazy") == LUA_TBOOLEAN) {
        static const char *const lazy[] = {"created", "platforms", "labels",
                                           "siblings", "referrers",
                                           "history", NULL};

        for (size_t i = 0; lazy[i]; i++) {
            lua_getfield(L, 1, lazy[i]);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 2);
    lua_getglobal(L, "next");
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "__data");
    lua_remove(L, -2);
    lua_pushnil(L);
    return 3;
}

void policy_make_readonly(lua_State *L)
{
    lua_newtable(L);             /* data proxy */
    lua_createtable(L, 0, 6);    /* data proxy mt */
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__data");
    lua_pushcfunction(L, l_readonly_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, l_readonly_len);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, l_readonly_pairs);
    lua_setfield(L, -2, "__pairs");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);     /* data proxy */
    lua_remove(L, -2);           /* proxy */
}

static int l_print(lua_State *L)
{
    luaL_Buffer b;
    int n = lua_gettop(L);

    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    log_msg(LOG_INFO, "policy: %s", lua_tostring(L, -1));
    return 0;
}

/* Errors while a file loads are mostly about its parameters. Their message
 * names the line, so only errors while a file judges a repository get a
 * traceback. */
static int message_handler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);

    if (!msg)
        msg = luaL_tolstring(L, 1, NULL);
    if (policy_of(L)->loading)
        lua_pushstring(L, msg);
    else
        luaL_traceback(L, L, msg, 1);
    return 1;
}

/*** tags as Lua sees them ***/

size_t policy_check_tag(lua_State *L, struct policy *p, int arg,
                        const char *fname)
{
    lua_Integer index;

    /* A finalizer may run while no repository is being evaluated. */
    if (!p->repo || p->lookup_ref == LUA_NOREF)
        return (size_t)luaL_error(L, "%s: tags exist only inside "
                                  "policy(repo), not while the file loads",
                                  fname);
    if (!lua_istable(L, arg) && lua_type(L, arg) != LUA_TSTRING)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: expected a tag or a "
                      "tag name, got %s", fname, luaL_typename(L, arg)));
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->lookup_ref);
    lua_pushvalue(L, arg);
    lua_rawget(L, -2);
    index = lua_tointeger(L, -1);
    lua_pop(L, 2);
    if (index <= 0 && lua_type(L, arg) == LUA_TSTRING)
        return (size_t)luaL_error(L, "%s: no tag '%s' in repository %s",
                                  fname, lua_tostring(L, arg),
                                  p->repo->name);
    if (index <= 0)
        return (size_t)luaL_error(L, "%s: the table is not a tag of "
                                  "repository %s", fname, p->repo->name);
    return (size_t)index - 1;
}

void policy_push_tag(lua_State *L, struct policy *p, size_t index)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->lookup_ref);
    lua_rawgeti(L, -1, -(lua_Integer)index - 1);
    lua_remove(L, -2);
}

/* "file:line" of the Lua code that called the running C function, shared
 * through the registry's strings. */
static const char *caller_source(lua_State *L, struct registry *reg)
{
    char buf[PATH_MAX + 32];
    lua_Debug ar;

    if (!lua_getstack(L, 1, &ar) || !lua_getinfo(L, "Sl", &ar))
        return NULL;
    snprintf(buf, sizeof(buf), "%s:%d",
             ar.source[0] == '@' ? ar.source + 1 : ar.short_src,
             ar.currentline);
    return registry_intern_string(reg, buf);
}

enum verdict_call { CALL_DELETE, CALL_KEEP, CALL_PROTECT };

static int record_verdict(lua_State *L, enum verdict_call call)
{
    static const char *const names[] = {"delete", "keep", "protect"};
    struct policy *p = policy_of(L);
    size_t index = policy_check_tag(L, p, 1, names[call]);
    const char *reason = luaL_optstring(L, 2, NULL);
    struct tag *t = &p->repo->tags[index];
    const char *source = caller_source(L, p->reg);

    if (p->opt->record_events)
        registry_add_event(t, names[call], reason, source);
    switch (call) {
    case CALL_PROTECT:
        if (t->protect)
            break;
        /* The protecting reason replaces any earlier keep reason. */
        free(t->keep_reason);
        t->protect = t->keep = 1;
        t->keep_reason = xstrdup(reason ? reason : "protected by policy");
        t->keep_source = source;
        break;
    case CALL_KEEP:
        if (t->keep)
            break;
        t->keep = 1;
        t->keep_reason = xstrdup(reason ? reason : "kept by policy");
        t->keep_source = source;
        break;
    case CALL_DELETE:
        if (t->delete)
            break;
        t->delete = 1;
        t->delete_reason = xstrdup(reason ? reason : "deleted by policy");
        t->delete_source = source;
        break;
    }
    return 0;
}

static int l_keep(lua_State *L)
{
    return record_verdict(L, CALL_KEEP);
}

static int l_protect(lua_State *L)
{
    return record_verdict(L, CALL_PROTECT);
}

static int l_delete(lua_State *L)
{
    return record_verdict(L, CALL_DELETE);
}

/* Build the table of globals every policy may read; leaves it on top. */
static void open_sandbox(lua_State *L, const struct policy_options *opt)
{
    static const char *const removed[] = {"dofile", "loadfile", "load",
                                          "collectgarbage", "require", NULL};
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},       {LUA_STRLIBNAME, luaopen_string},
        {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8}, {NULL, NULL},
    };

    for (const luaL_Reg *lib = libs; lib->func; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    lua_pushglobaltable(L);
    for (const char *const *name = removed; *name; name++) {
        lua_pushnil(L);
        lua_setfield(L, -2, *name);
    }
    /* string.dump would hand out bytecode; nothing needs it. */
    lua_getfield(L, -1, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    /* Hide the string metatable, whose __index is the shared string
     * library. */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
    lua_pushcfunction(L, l_print);
    lua_setfield(L, -2, "print");
    lua_pushcfunction(L, l_keep);
    lua_setfield(L, -2, "keep");
    lua_pushcfunction(L, l_delete);
    lua_setfield(L, -2, "delete");
    lua_pushcfunction(L, l_protect);
    lua_setfield(L, -2, "protect");
    policy_lib_open(L, opt);
    lua_setfield(L, -2, "regprune");
}

/*
 * Read a policy file, as the lua program would take it: a UTF-8 byte order
 * mark is dropped, and a first line starting with '#' (such as "#!") is
 * blanked, which keeps the line numbers.
 */
static char *read_policy_file(const char *path, size_t *len, char **err)
{
    /* O_NONBLOCK: a FIFO with no writer must not hang the run. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    FILE *f;
    char *buf;

    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        *err = xasprintf("cannot read policy %s: not a regular file", path);
        return NULL;
    }
    f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        *err = xasprintf("cannot open policy %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    buf = xmalloc(POLICY_MAX_BYTES + 1);
    *len = fread(buf, 1, POLICY_MAX_BYTES + 1, f);
    if (ferror(f) || *len > POLICY_MAX_BYTES) {
        *err = ferror(f) ? xasprintf("cannot read policy %s: %s", path,
                                     strerror(errno))
                         : xasprintf("policy %s is larger than %d bytes",
                                     path, POLICY_MAX_BYTES);
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    if (*len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
        memmove(buf, buf + 3, *len - 3);
        *len -= 3;
    }
    if (*len > 0 && buf[0] == '#')
        for (size_t i = 0; i < *len && buf[i] != '\n'; i++)
            buf[i] = ' ';
    return buf;
}

/* Run the chunk on top of the stack with the budget reset. */
static int protected_call(struct policy *p, int nargs, char **err,
                          const char *what)
{
    lua_State *L = p->L;
    int base = lua_gettop(L) - nargs;
    int rc;

    lua_pushcfunction(L, message_handler);
    lua_insert(L, base);
    p->instructions = 0;
    p->budget_exceeded = p->memory_exceeded = 0;
    lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_INTERVAL);
    policy_deadline_start(p->opt->timeout_sec);
    rc = lua_pcall(L, nargs, 0, base);
    policy_deadline_stop();
    if (rc == LUA_OK && !p->budget_exceeded && !p->memory_exceeded) {
        lua_remove(L, base);
        return 0;
    }
    if (rc != LUA_OK) {
        *err = xasprintf("%s: %s", what, lua_tostring(L, -1));
        lua_pop(L, 1);
    } else {
        *err = xasprintf("%s: the policy caught the error that stopped it: "
                         "%s", what,
                         p->budget_exceeded ? "instruction budget exceeded "
                                              "(--max-instructions)"
                                            : "memory limit exceeded "
                                              "(--max-memory)");
    }
    if (p->memory_exceeded && rc != LUA_OK) {
        char *full = xasprintf("%s\n(the policy used more than its memory "
                               "limit of %zu bytes, --max-memory)", *err,
                               p->opt->max_memory);
        free(*err);
        *err = full;
    }
    lua_remove(L, base);
    return -1;
}

static int load_file(struct policy *p, size_t i, char **err)
{
    lua_State *L = p->L;
    const char *path = p->opt->files[i];
    size_t len;
    char *buf = read_policy_file(path, &len, err);
    char *chunkname, *what;
    int rc;

    if (!buf)
        return -1;
    chunkname = xasprintf("@%s", path);
    rc = luaL_loadbufferx(L, buf, len, chunkname, "t");
    free(chunkname);
    free(buf);
    if (rc != LUA_OK) {
        *err = xasprintf("cannot load policy: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->env_refs[i]);
    lua_setupvalue(L, -2, 1);
    what = xasprintf("policy %s failed while loading", path);
    rc = protected_call(p, 0, err, what);
    free(what);
    if (rc)
        return -1;
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->env_refs[i]);
    lua_pushliteral(L, "policy");
    rc = lua_rawget(L, -2) == LUA_TFUNCTION;
    lua_pop(L, 2);
    if (!rc) {
        *err = xasprintf("policy %s does not define a function "
                         "policy(repo)", path);
        return -1;
    }
    return 0;
}

/*
 * Push a copy of the sandbox's globals for one policy file: library tables
 * are copied and regprune is built anew, so that one file changing
 * string.format or regprune.sort cannot change what another file runs.
 * _G, which would reach the shared table, is left out.
 */
static void push_file_globals(lua_State *L, int sandbox,
                              const struct policy_options *opt)
{
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, sandbox)) {
        const char *key = lua_tostring(L, -2);

        if (strcmp(key, "_G") == 0) {
            lua_pop(L, 1);
            continue;
        }
        if (strcmp(key, "regprune") == 0) {
            lua_pop(L, 1);
            policy_lib_open(L, opt);
        } else if (lua_istable(L, -1)) {
            int lib = lua_gettop(L);
            lua_newtable(L);
            lua_pushnil(L);
            while (lua_next(L, lib)) {
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_rawset(L, -4);
            }
            lua_remove(L, lib);
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
}

/* Push a new environment for one policy file: its own globals first, then
 * its copy of the sandbox's, and an error for any other name. */
static void push_environment(lua_State *L, int sandbox,
                             const struct policy_options *opt)
{
    lua_newtable(L);
    lua_createtable(L, 0, 3);
    push_file_globals(L, sandbox, opt);
    lua_pushcclosure(L, l_env_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_env_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
}

/* Protected entry: build the sandbox and one environment per file, which
 * may run out of the memory the state allows. */
static int l_build_sandbox(lua_State *L)
{
    struct policy *p = policy_of(L);
    int sandbox;

    lua_newtable(L);
    p->known_params_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    open_sandbox(L, p->opt);
    sandbox = lua_gettop(L);
    for (size_t i = 0; i < p->opt->file_count; i++) {
        push_environment(L, sandbox, p->opt);
        p->env_refs[i] = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return 0;
}

struct policy *policy_load(const struct policy_options *opt, char **err)
{
    struct policy *p = xcalloc(1, sizeof(*p));
    lua_State *L;

    p->opt = opt;
    p->lookup_ref = LUA_NOREF;
    L = p->L = lua_newstate(capped_alloc, p);
    if (!L) {
        *err = xasprintf("cannot create the Lua state");
        free(p);
        return NULL;
    }
    lua_pushlightuserdata(L, p);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &policy_key);
    lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_INTERVAL);
    p->rx = rx_cache_new();
    p->env_refs = xcalloc(opt->file_count + 1, sizeof(int));
    lua_pushcfunction(L, l_build_sandbox);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        *err = xasprintf("cannot set up the policy sandbox: %s "
                         "(--max-memory)", lua_tostring(L, -1));
        policy_free(p);
        return NULL;
    }
    p->loading = 1;
    for (size_t i = 0; i < opt->file_count; i++) {
        if (load_file(p, i, err) != 0) {
            policy_free(p);
            return NULL;
        }
    }
    p->loading = 0;
    if (policy_lib_check_params(p, err) != 0) {
        policy_free(p);
        return NULL;
    }
    return p;
}

void policy_free(struct policy *p)
{
    if (!p)
        return;
    lua_close(p->L);
    rx_cache_free(p->rx);
    free(p->policy_names);
    free(p->env_refs);
    free(p);
}

/*** evaluation ***/

/* Push a read-only array of strings. */
static void push_string_array(lua_State *L, const char *const *items,
                              size_t count)
{
    lua_createtable(L, (int)count, 0);
    for (size_t i = 0; i < count; i++) {
        lua_pushstring(L, items[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    policy_make_readonly(L);
}

/* Push a read-only array of the names of repo's other tags on digest. */
static void push_siblings(lua_State *L, const struct repo *repo,
                          const struct tag *t)
{
    lua_Integer n = 0;

    lua_newtable(L);
    for (size_t i = 0; i < repo->tag_count; i++) {
        if (&repo->tags[i] == t || repo->tags[i].digest != t->digest)
            continue;
        lua_pushstring(L, repo->tags[i].name);
        lua_rawseti(L, -2, ++n);
    }
    policy_make_readonly(L);
}

static void push_labels(lua_State *L, const struct tag *t)
{
    lua_createtable(L, 0, (int)t->label_count);
    for (size_t i = 0; i < t->label_count; i++) {
        lua_pushstring(L, t->labels[2 * i + 1]);
        lua_setfield(L, -2, t->labels[2 * i]);
    }
    policy_make_readonly(L);
}

/*
 * Push tag.referrers: the manifests attached to the tag's manifest, by
 * their "subject" field or by a sha256-<hex>.sig/.att/.sbom tag, each as
 * {digest = ..., tag = name or nil}.
 */
static void push_referrers(lua_State *L, struct registry *reg,
                           const struct repo *repo, const struct tag *t)
{
    char digest[DIGEST_TEXT_LEN + 1];
    lua_Integer n = 0;

    lua_newtable(L);
    for (size_t i = 0; i < repo->revision_count; i++) {
        const struct manifest *m = reg->manifests[repo->revisions[i]];
        if (!m || m->subject != t->digest)
            continue;
        digest_to_text(&reg->ids.digests[repo->revisions[i]], digest);
        lua_createtable(L, 0, 1);
        lua_pushstring(L, digest);
        lua_setfield(L, -2, "digest");
        policy_make_readonly(L);
        lua_rawseti(L, -2, ++n);
    }
    for (size_t i = 0; i < repo->tag_count; i++) {
        const struct tag *a = &repo->tags[i];
        if (a->follows != t->digest)
            continue;
        digest_to_text(&reg->ids.digests[a->digest], digest);
        lua_createtable(L, 0, 2);
        lua_pushstring(L, digest);
        lua_setfield(L, -2, "digest");
        lua_pushstring(L, a->name);
        lua_setfield(L, -2, "tag");
        policy_make_readonly(L);
        lua_rawseti(L, -2, ++n);
    }
    policy_make_readonly(L);
}

/*
 * __index of a tag table: its fields, and on first use "platforms",
 * "labels", "siblings", "referrers", "history" (the digests the tag has
 * named, oldest first, as {digest, time}) and "pushed_first" (the oldest
 * of those times, else pushed).
 */
static int l_tag_index(lua_State *L)
{
    struct policy *p = policy_of(L);
    size_t index = (size_t)lua_tointeger(L, lua_upvalueindex(2));
    /* The table's own repository: a policy may keep a tag table and read
     * it while it judges a later repository. */
    struct repo *repo = lua_touserdata(L, lua_upvalueindex(3));
    struct history_entry *entries = NULL;
    char digest[DIGEST_TEXT_LEN + 1];
    const struct tag *t;
    size_t count;
    const char *key = lua_tostring(L, 2);

    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL || !key || !repo ||
        index >= repo->tag_count)
        return 1;
    lua_pop(L, 1);
    t = &repo->tags[index];
    /* These come from image configs, which are read when a policy first
     * reads one of them. */
    if (strcmp(key, "created") == 0) {
        policy_need_configs(p, repo);
        if (!t->has_created) {
            lua_pushnil(L);
            return 1;
        }
        lua_pushinteger(L, (lua_Integer)t->created);
        lua_pushvalue(L, -1);
        lua_setfield(L, lua_upvalueindex(1), key);
        return 1;
    }
    /* Few policies read these, and building them for every tag would
     * cost most of a tag table's memory. */
    if (strcmp(key, "platforms") == 0 || strcmp(key, "labels") == 0) {
        policy_need_configs(p, repo);
        if (key[0] == 'p')
            push_string_array(L, (const char *const *)t->platforms,
                              t->platform_count);
        else
            push_labels(L, t);
        lua_pushvalue(L, -1);
        lua_setfield(L, lua_upvalueindex(1), key);
        return 1;
    }
    /* Each of these looks at the whole repository, so it is worked out
     * only for the tags a policy asks about. */
    if (strcmp(key, "siblings") == 0 || strcmp(key, "referrers") == 0) {
        if (key[0] == 's')
            push_siblings(L, repo, t);
        else
            push_referrers(L, p->reg, repo, t);
        lua_pushvalue(L, -1);
        lua_setfield(L, lua_upvalueindex(1), key);
        return 1;
    }
    if (strcmp(key, "history") && strcmp(key, "pushed_first")) {
        lua_pushnil(L);
        return 1;
    }
    count = scan_tag_history(p->reg, repo, t, &entries);
    lua_createtable(L, (int)count, 0);
    for (size_t e = 0; e < count; e++) {
        digest_to_text(&p->reg->ids.digests[entries[e].digest], digest);
        lua_createtable(L, 0, 2);
        lua_pushstring(L, digest);
        lua_setfield(L, -2, "digest");
        lua_pushinteger(L, (lua_Integer)entries[e].time);
        lua_setfield(L, -2, "time");
        policy_make_readonly(L);
        lua_rawseti(L, -2, (lua_Integer)e + 1);
    }
    policy_make_readonly(L);
    lua_setfield(L, lua_upvalueindex(1), "history");
    lua_pushinteger(L, (lua_Integer)(count ? entries[0].time : t->pushed));
    lua_setfield(L, lua_upvalueindex(1), "pushed_first");
    free(entries);
    lua_getfield(L, lua_upvalueindex(1), key);
    return 1;
}

/* Push the read-only tag table for repo->tags[i]. */
static void push_tag(lua_State *L, struct registry *reg,
                     const struct repo *repo, size_t i)
{
    const struct tag *t = &repo->tags[i];
    char digest[DIGEST_TEXT_LEN + 1];

    digest_to_text(&reg->ids.digests[t->digest], digest);
    lua_createtable(L, 0, 6);
    lua_pushstring(L, t->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, digest);
    lua_setfield(L, -2, "digest");
    lua_pushinteger(L, (lua_Integer)t->pushed);
    lua_setfield(L, -2, "pushed");
    if (repo->configs_read && t->has_created) {
        lua_pushinteger(L, (lua_Integer)t->created);
        lua_setfield(L, -2, "created");
    }
    lua_pushinteger(L, (lua_Integer)t->size);
    lua_setfield(L, -2, "size");
    lua_pushstring(L, t->kind ? t->kind : "unknown");
    lua_setfield(L, -2, "kind");
    lua_pushvalue(L, -1); /* data, for the closure */
    policy_make_readonly(L);
    /* Platforms, labels and history are made when a policy reads them. */
    lua_getmetatable(L, -1);
    lua_pushvalue(L, -3);
    lua_pushinteger(L, (lua_Integer)i);
    lua_pushlightuserdata(L, (void *)repo);
    lua_pushcclosure(L, l_tag_index, 3);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "__lazy");
    lua_pop(L, 1);
    lua_remove(L, -2); /* data */
}

/* Push repo.untagged: {digest, kind, pushed} of every revision no tag
 * names. */
static void push_untagged(lua_State *L, struct registry *reg,
                          const struct repo *repo)
{
    char digest[DIGEST_TEXT_LEN + 1];
    lua_Integer n = 0;
    /* Revisions some tag names, found once per tag rather than once per
     * revision and tag. */
    uint8_t *tagged = xcalloc(repo->revision_count + 1, 1);

    for (size_t t = 0; t < repo->tag_count; t++) {
        long pos = registry_find_revision(repo, repo->tags[t].digest);
        if (pos >= 0)
            tagged[pos] = 1;
    }
    lua_newtable(L);
    for (size_t i = 0; i < repo->revision_count; i++) {
        uint32_t id = repo->revisions[i];
        const struct manifest *m = reg->manifests[id];

        if (tagged[i])
            continue;
        digest_to_text(&reg->ids.digests[id], digest);
        lua_createtable(L, 0, 3);
        lua_pushstring(L, digest);
        lua_setfield(L, -2, "digest");
        if (reg->v2_fd >= 0) {
            /* When the manifest was pushed: its revision link's mtime. */
            char path[PATH_MAX];
            struct stat st;
            pathf(path, sizeof(path),
                  "repositories/%s/_manifests/revisions/sha256/%s/link",
                  repo->name, digest + 7);
            if (fstatat(reg->v2_fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                lua_pushinteger(L, (lua_Integer)st.st_mtim.tv_sec);
                lua_setfield(L, -2, "pushed");
            }
        }
        lua_pushstring(L, m && m->subject != DIGEST_NONE ? "referrer"
                          : m && m->child_count      ? "index"
                                                     : "image");
        lua_setfield(L, -2, "kind");
        policy_make_readonly(L);
        lua_rawseti(L, -2, ++n);
    }
    free(tagged);
    policy_make_readonly(L);
}

/* Push the repo table and fill the lookup table for check_tag. */
static void push_repo(struct policy *p, struct registry *reg,
                      struct repo *repo)
{
    lua_State *L = p->L;
    int lookup, tags;

    lua_createtable(L, (int)repo->tag_count, (int)repo->tag_count * 2);
    lookup = lua_gettop(L);
    lua_createtable(L, (int)repo->tag_count, 0);
    tags = lua_gettop(L);
    for (size_t i = 0; i < repo->tag_count; i++) {
        lua_Integer index = (lua_Integer)i + 1;

        /* Signature, attestation and SBOM tags go with their subject. */
        if (repo->tags[i].follows != DIGEST_NONE)
            continue;
        push_tag(L, reg, repo, i);
        lua_pushvalue(L, -1);
        lua_pushinteger(L, index);
        lua_rawset(L, lookup);
        lua_pushvalue(L, -1);
        lua_rawseti(L, lookup, -index);
        lua_rawseti(L, tags, (lua_Integer)lua_rawlen(L, tags) + 1);
        lua_pushstring(L, repo->tags[i].name);
        lua_pushinteger(L, index);
        lua_rawset(L, lookup);
    }
    policy_make_readonly(L); /* tags */
    lua_createtable(L, 0, 3);
    lua_pushstring(L, repo->name);
    lua_setfield(L, -2, "name");
    lua_insert(L, -2);
    lua_setfield(L, -2, "tags");
    push_untagged(L, reg, repo);
    lua_setfield(L, -2, "untagged");
    policy_make_readonly(L); /* repo */
    lua_insert(L, lookup);
    p->lookup_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Protected entry for push_repo: building the tables may run out of the
 * memory the sandbox allows. Returns the repo table. */
static int l_build_repo(lua_State *L)
{
    struct policy *p = policy_of(L);

    push_repo(p, p->reg, p->repo);
    return 1;
}

/* Keep the most recently pushed tag of a repository the policy emptied. */
/* Whether a tag names an image or an index, not a signature, SBOM or
 * other artifact. */
static int names_image(const struct tag *t)
{
    return t->kind &&
           (strcmp(t->kind, "image") == 0 || strcmp(t->kind, "index") == 0);
}

static void protect_last_tag(struct repo *repo)
{
    struct tag *newest = NULL;

    for (size_t i = 0; i < repo->tag_count; i++) {
        struct tag *t = &repo->tags[i];
        int better;

        if (t->follows != DIGEST_NONE)
            continue;
        if (!t->remove)
            return;
        /* An image beats an artifact; then the newest push wins. */
        better = !newest || (names_image(t) && !names_image(newest)) ||
                 (names_image(t) == names_image(newest) &&
                  (t->pushed > newest->pushed ||
                   (t->pushed == newest->pushed &&
                    version_compare_names(t->name, newest->name) > 0)));
        if (better)
            newest = t;
    }
    if (!newest)
        return;
    newest->remove = 0;
    newest->keep = 1;
    free(newest->keep_reason);
    newest->keep_reason = xstrdup("last tag of the repository; "
                                  "--allow-empty lets a policy delete it");
}

int policy_evaluate(struct policy *p, struct registry *reg, struct repo *repo,
                    char **err)
{
    lua_State *L = p->L;
    int rc = 0;

    p->reg = reg;
    p->repo = repo;
    if (p->want_configs)
        policy_need_configs(p, repo);
    lua_pushcfunction(L, l_build_repo);
    if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
        *err = xasprintf("cannot build the tables of repository %s for the "
                         "policy: %s (--max-memory)",
                         repo->name, lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    for (size_t i = 0; i < p->opt->file_count && rc == 0; i++) {
        char *what;

        lua_rawgeti(L, LUA_REGISTRYINDEX, p->env_refs[i]);
        lua_getfield(L, -1, "policy");
        lua_remove(L, -2);
        lua_pushvalue(L, -2);
        what = xasprintf("policy %s failed on repository %s",
                         p->opt->files[i], repo->name);
        rc = protected_call(p, 1, err, what);
        free(what);
    }
    lua_pop(L, 1);
    luaL_unref(L, LUA_REGISTRYINDEX, p->lookup_ref);
    p->lookup_ref = LUA_NOREF;
    if (rc) {
        p->repo = NULL;
        return -1;
    }
    for (size_t i = 0; i < repo->tag_count; i++)
        repo->tags[i].remove = repo->tags[i].delete && !repo->tags[i].keep;
    if (!p->opt->allow_empty)
        protect_last_tag(repo);
    /* Give the next repository the memory this one used; finalizers that
     * run now find no repository. */
    p->repo = NULL;
    lua_gc(L, LUA_GCCOLLECT);
    return 0;
}
