/* Building the result JSON (interface.md §6). */
#ifndef SC_RESULT_H
#define SC_RESULT_H

#include "core.h"

struct sc_result {
	cJSON *obj; /* the action_result object */
	int failed;
};

struct core_report {
	cJSON *root;
	cJSON *action_results;
	struct sc_result *results;
	size_t n, cap;
	int total, ok;
};

/* A report for `action` ("send email") / `identifier` (may be NULL). */
int core_report_init(struct core_report *rep, const char *action, const char *identifier);
/* A new action_result for parameter set `params` (copied). */
struct sc_result *core_report_add(struct core_report *rep, const cJSON *params);
/* Mark `r` finished: status from `code`, message from err when failed. */
void core_report_close(struct core_report *rep, struct sc_result *r, int code,
                       const struct sc_error *err);
/* The whole request failed before any parameter set ran. */
void core_report_fail(struct core_report *rep, const char *message);
/* Top-level status, message and summary; print one line on `out`. */
void core_report_print(struct core_report *rep, FILE *out);
void core_report_free(struct core_report *rep);
/* Makes every string and member name of `item`, its siblings after it and
 * everything below them valid UTF-8, each ill-formed part replaced by
 * U+FFFD (utf8.h). Referenced items (cJSON_IsReference) are not touched:
 * they belong to another tree. 0, or -1 when out of memory. */
int core_json_sanitize(cJSON *item);

#endif
