/*
 * The report on stdout: the plan or the inventory as aligned text for
 * people, or as one JSON document for programs (see README for its shape).
 */
#ifndef REGPRUNE_REPORT_H
#define REGPRUNE_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "plan.h"
#include "registry.h"

struct report_options {
    const char *command; /* "prune", "delete" or "gc" */
    int dry_run;
    int json;
    int64_t now;
    const char *trash_run; /* where removals went, or NULL */
    int64_t grace;         /* the plan's grace window, for apply */
    int untagged;
};

/* Write the plan of a prune, delete or gc run. Return 0, or -1 on a write
 * error. */
int report_plan(FILE *out, struct registry *reg, const struct plan *plan,
                const struct report_options *opt);

/* Write the inventory of the selected repositories (the ls command), in
 * order of sort: "name" (or NULL), "size" or "reclaimable", largest
 * first. */
int report_inventory(FILE *out, struct registry *reg, int json,
                     const char *sort);

struct check_result;

/* Write the outcome of the check command: its counts and every problem. */
int report_check(FILE *out, struct registry *reg,
                 const struct check_result *result, int json);

/* Format bytes in binary units ("12.3 MiB") into buf. */
void report_format_size(int64_t bytes, char *buf, size_t size);

#endif
