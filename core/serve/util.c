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
	va_list ap;
	va_start(ap, fmt);
	core_log_line(id, ": ", fmt, ap);
	va_end(ap);
}
