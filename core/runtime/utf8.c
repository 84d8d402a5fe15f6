/* UTF-8 checks shared by the whole core (see utf8.h). Written out from
 * Unicode's table of well-formed byte sequences rather than decoding to a
 * code point and range-checking it, so that the length of an ill-formed
 * prefix (how much one U+FFFD replaces) falls out of the same walk. */
#include "utf8.h"

#include <smtp-connector/message.h>

#include <stdlib.h>
#include <string.h>

/* The bytes allowed after lead byte b as its second byte; 0: b does not
 * begin a multi-byte sequence. */
static int second_range(unsigned char b, unsigned char *lo, unsigned char *hi)
{
	*lo = 0x80;
	*hi = 0xBF;
	if (b >= 0xC2 && b <= 0xDF)
		return 2;
	if (b == 0xE0)
		*lo = 0xA0; /* E0 80..9F would be overlong */
	else if (b == 0xED)
		*hi = 0x9F; /* ED A0..BF would be a surrogate */
	if (b >= 0xE0 && b <= 0xEF)
		return 3;
	if (b == 0xF0)
		*lo = 0x90; /* overlong */
	else if (b == 0xF4)
		*hi = 0x8F; /* past U+10FFFF */
	if (b >= 0xF0 && b <= 0xF4)
		return 4;
	return 0;
}

/* Bytes of the sequence at p: *ok and its length when well formed, else
 * the length (at least 1) of its maximal ill-formed subpart. */
static size_t step(const unsigned char *p, size_t n, int *ok)
{
	unsigned char lo, hi;
	*ok = 0;
	if (n == 0)
		return 0;
	if (p[0] < 0x80) {
		*ok = 1;
		return 1;
	}
	size_t want = (size_t)second_range(p[0], &lo, &hi);
	if (want == 0)
		return 1;
	size_t i = 1;
	for (; i < want; i++) {
		if (i >= n || p[i] < lo || p[i] > hi)
			return i;
		lo = 0x80;
		hi = 0xBF;
	}
	*ok = 1;
	return want;
}

/* The one sequence check of the tree, declared for plugins in message.h
 * (message building, HTML) and here for the core. */
size_t sc_utf8_len(const void *text, size_t n)
{
	int ok;
	size_t k = step(text, n, &ok);
	return ok ? k : 0;
}

int core_utf8_valid(const char *s, size_t len, size_t *bad_offset)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		/* ASCII runs are the common case: no table walk for them */
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		int ok;
		size_t k = step(p + i, len - i, &ok);
		if (!ok) {
			if (bad_offset)
				*bad_offset = i;
			return 0;
		}
		i += k;
	}
	return 1;
}

/* Writes the sanitized form of s[0..len) to out (when not NULL) and
 * returns its length: run once to size the copy, once to fill it. */
static size_t replace_bad(const unsigned char *p, size_t len, char *out)
{
	size_t i = 0, o = 0;
	while (i < len) {
		int ok;
		size_t k = step(p + i, len - i, &ok);
		if (out)
			memcpy(out + o, ok ? (const char *)p + i : "\xEF\xBF\xBD", ok ? k : 3);
		o += ok ? k : 3;
		i += k;
	}
	return o;
}

char *core_utf8_sanitize(const char *s, size_t len, size_t *out_len)
{
	const unsigned char *p = (const unsigned char *)s;
	/* an ill-formed subpart is at least one byte and becomes three, so
	 * the size cannot pass 3 * len: refuse a len where that overflows */
	if (len > ((size_t)-1 - 1) / 3)
		return NULL;
	int valid = core_utf8_valid(s, len, NULL);
	size_t n = valid ? len : replace_bad(p, len, NULL);
	char *out = malloc(n + 1);
	if (!out)
		return NULL;
	if (valid)
		memcpy(out, s, len);
	else
		replace_bad(p, len, out);
	out[n] = '\0';
	if (out_len)
		*out_len = n;
	return out;
}
