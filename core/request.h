/* Reading requests from stdin: one JSON document, or JSON Lines. */
#ifndef SC_REQUEST_H
#define SC_REQUEST_H

#include "core.h"
#include <stdio.h>

struct core_doc {
	cJSON *json;  /* NULL when the text was not JSON */
	char *error;  /* why not, with line and column */
};

/* Read all of `in` and split it into documents: each JSON value in turn
 * (so both a pretty-printed object and JSON Lines work). A broken line in
 * JSON Lines becomes one error document and reading resumes on the next
 * line. Returns SC_OK or SC_EIO/SC_ENOMEM. */
int core_requests_read(FILE *in, struct core_doc **docs, size_t *n,
		       struct sc_error *err);
void core_requests_free(struct core_doc *docs, size_t n);

#endif
