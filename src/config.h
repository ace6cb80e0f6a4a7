/*
 * The storage settings of the distribution registry's own config.yml
 * (Debian: /etc/docker/registry/config.yml), read with libyaml, with the
 * registry's REGISTRY_STORAGE* environment overrides applied on top.
 * struct registry_config owns its strings, and config_free releases them.
 */
#ifndef REGPRUNE_CONFIG_H
#define REGPRUNE_CONFIG_H

#include <stddef.h>

/* The filesystem driver's rootdirectory when the configuration sets none,
 * as the distribution documentation gives it. */
#define CONFIG_DEFAULT_ROOT "/var/lib/registry"
/* A registry configuration is a few kilobytes; larger files are rejected
 * before parsing. */
#define CONFIG_FILE_MAX_BYTES (1024 * 1024)
/* Mappings and lists nested deeper than this are rejected before the
 * document is composed, because libyaml 0.2.5 sets no limit itself. */
#define CONFIG_MAX_DEPTH 64

struct registry_config {
    char *path;           /* the file read */
    char *driver;         /* always "filesystem" after a successful load */
    char *root_directory; /* absolute; CONFIG_DEFAULT_ROOT when unset */
    /* Origin of root_directory: "FILE:LINE:COLUMN", the name of an
     * environment variable, or "default". */
    char *root_source;
    int readonly; /* storage.maintenance.readonly.enabled */
    /* Origin of readonly in the form of root_source, or NULL when the
     * configuration has no storage.maintenance.readonly. */
    char *readonly_source;
    int delete_enabled; /* storage.delete.enabled */
};

/*
 * Read the registry configuration at path into out, then apply the
 * overrides among envp the way the registry does. envp holds "NAME=VALUE"
 * strings and ends with NULL, like environ, or is NULL for no overrides.
 * The variables read are REGISTRY_STORAGE, REGISTRY_STORAGE_FILESYSTEM
 * [_ROOTDIRECTORY], REGISTRY_STORAGE_DELETE[_ENABLED],
 * REGISTRY_STORAGE_MAINTENANCE[_READONLY] and any other
 * REGISTRY_STORAGE_<DRIVER>, applied in the byte order of their names.
 * REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED is an error unless the
 * configuration sets readonly, because the registry does not start then.
 *
 * Return 0, or -1 with err naming the file, line and column (or the
 * environment variable) and the key at fault. A storage driver other than
 * filesystem, no driver or several drivers are errors. On failure out is
 * left empty, so config_free on it is safe either way.
 */
int config_load(const char *path, char *const *envp,
                struct registry_config *out, char *err, size_t err_size);

/* Free the strings of c and zero it. */
void config_free(struct registry_config *c);

#endif
