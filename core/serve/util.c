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
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 8; i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[16] = '\0';
}

void serve_log(const char *id, const char *fmt, ...)
{
	/* One line, one write: lines from the loop and the workers never mix.
	 * Formatted on the stack when it fits (they nearly all do: several
	 * per message on the event loop), else allocated. */
	char buf[512];
	va_list ap;
	int n = snprintf(buf, sizeof buf, "%s: ", id);
	va_start(ap, fmt);
	int m = n < 0 || (size_t)n >= sizeof buf
	            ? -1
	            : vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
	va_end(ap);
	if (m >= 0 && (size_t)n + (size_t)m + 1 < sizeof buf) {
		buf[n + m] = '\n';
		fwrite(buf, 1, (size_t)n + (size_t)m + 1, stderr);
		return;
	}
	va_start(ap, fmt);
	char *t = core_vasprintf(fmt, ap);
	va_end(ap);
	char *line = sc_asprintf("%s: %s\n", id, t ? t : "(out of memory)");
	if (line)
		fputs(line, stderr);
	free(line);
	free(t);
}
