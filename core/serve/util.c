/* Ids and the event log of `serve`. */
#include "serve.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void serve_new_id(char out[17])
{
	unsigned char r[8];
	if (RAND_bytes(r, sizeof r) != 1) { /* never expected; still unique enough per process */
		static unsigned long n;
		unsigned long long t = (unsigned long long)time(NULL) << 20 ^ ++n;
		for (int i = 0; i < 8; i++)
			r[i] = (unsigned char)(t >> (i * 8));
	}
	for (int i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

void serve_log(const char *id, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *t = core_vasprintf(fmt, ap);
	va_end(ap);
	/* one write per line: lines from the loop and the workers never mix */
	char *line = sc_asprintf("%s: %s\n", id, t ? t : "(out of memory)");
	if (line)
		fputs(line, stderr);
	free(line);
	free(t);
}
