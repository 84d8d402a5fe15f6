/* A JSON Schema (2020-12) validator for the keywords smtp-connector's
 * schemas use. A keyword it does not implement makes core_schema_check
 * fail, so a schema can never silently mean less than it says. */
#ifndef SC_SCHEMA_H
#define SC_SCHEMA_H

#include "core.h"

/* Resolves "$ref": "<name>" to another document (NULL: unknown). */
typedef const cJSON *(*core_schema_resolver)(const char *ref, void *arg);

/* Every keyword in `schema` (recursively) is implemented. */
int core_schema_check(const cJSON *schema, struct sc_error *err);

/* Validate `inst` against `schema`. `path` names the instance in messages
 * ("asset", "parameters[0]"). On failure: SC_EINPUT and a message naming
 * the field, what is wrong and how to fix it. */
int core_schema_validate(const cJSON *schema, const cJSON *inst, const char *path,
                         core_schema_resolver resolve, void *arg, struct sc_error *err);

/* "a string", "an integer", ... for messages. */
const char *core_json_type_name(const cJSON *v);
/* Levenshtein distance, capped: for "did you mean" hints. */
size_t core_edit_distance(const char *a, const char *b);

#endif
