/* Ids and the event log of `serve`. */
#include "serve.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* RAND_bytes costs about as much for 256 bytes as for 8 (its per-call
 * locking and DRBG bookkeeping dominate), and serve takes two or three
 * ids per message: each thread draws them from a pool of its own. Ids
 * are names, not secrets, so the pool is not wiped. serve never forks
 * (a child would hand out its parent's next ids again). */
#define ID_POOL 256

void serve_new_id(char out[17])
{
	static _Thread_local unsigned char pool[ID_POOL];
	static _Thread_local size_t left;
	unsigned char r[8];
	if (left < sizeof r && RAND_bytes(pool, sizeof pool) == 1)
		left = sizeof pool;
	if (left >= sizeof r) {
		memcpy(r, pool + sizeof pool - left, sizeof r);
		left -= sizeof r;
	} else { /* never expected; still unique enough per process */
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
