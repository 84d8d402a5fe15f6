/* addr_dump: one JSON line per stdin line, so that address_oracle.py can
 * compare sc_address_list_parse() with Python's email.utils:
 *   {"ok":true,"list":[["display or empty","addr"],...]}
 *   {"ok":false,"error":"..."}
 * Only the trailing LF is stripped: a CR before it stays in the input, to
 * be refused like any other line break. */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

static cJSON *dump_one(const char *line, size_t len)
{
	struct sc_address_list l;
	struct sc_error err = SC_ERROR_INIT;
	cJSON *o = cJSON_CreateObject();

	if (sc_address_list_parse(line, len, &l, &err) != SC_OK) {
		cJSON_AddFalseToObject(o, "ok");
		cJSON_AddStringToObject(o, "error", err.message ? err.message : "(no message)");
	} else {
		cJSON *arr = cJSON_AddArrayToObject(o, "list");
		cJSON_AddTrueToObject(o, "ok");
		for (size_t i = 0; i < l.n; i++) {
			const char *pair[2] = {l.v[i].display ? l.v[i].display : "", l.v[i].addr};
			cJSON_AddItemToArray(arr, cJSON_CreateStringArray(pair, 2));
		}
	}
	sc_address_list_free(&l);
	sc_error_clear(&err);
	return o;
}

int main(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, stdin)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			n--;
		cJSON *o = dump_one(line, (size_t)n);
		char *s = o ? cJSON_PrintUnformatted(o) : NULL;
		if (!s) {
			fputs("addr_dump: out of memory\n", stderr);
			return 1;
		}
		puts(s);
		free(s);
		cJSON_Delete(o);
	}
	free(line);
	return ferror(stdin) ? 1 : 0;
}
