/* inbound_dump: sc_inbound_summary() of each file named on the command
 * line, one JSON line each, for inbound_oracle.py (which compares them
 * with Python's email parser) and for looking at a message by hand:
 *   inbound_dump [--max-body N] FILE...
 * A file that cannot be read prints {"error": "..."}; the exit status is
 * 1 when any did. */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

int main(int argc, char **argv)
{
	size_t max_body = (size_t)1 << 20;
	int status = 0, i = 1;

	if (argc > 2 && !strcmp(argv[1], "--max-body")) {
		max_body = strtoul(argv[2], NULL, 10);
		i = 3;
	}
	for (; i < argc; i++) {
		struct sc_error err = SC_ERROR_INIT;
		cJSON *o = NULL;
		if (sc_inbound_summary(argv[i], max_body, &o, &err) != SC_OK) {
			o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "error", err.message ? err.message : "?");
			status = 1;
		}
		char *s = o ? cJSON_PrintUnformatted(o) : NULL;
		if (!s) {
			fprintf(stderr, "inbound_dump: out of memory\n");
			return 2;
		}
		puts(s);
		free(s);
		cJSON_Delete(o);
		sc_error_clear(&err);
	}
	return status;
}
