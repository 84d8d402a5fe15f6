/* Byte-level text helpers every message builder shares: the one UTF-8
 * sequence check, the one 8-bit test and the one CRLF normaliser of the
 * tree (message.h). Each used to exist in up to four private copies
 * (address, encode, rawmsg, html), which drifted: one accepted overlong
 * forms, another surrogates. */
#include "text.h"

#include <string.h>

/* RFC 3629 §4: no overlong forms, no surrogates, nothing above
 * U+10FFFF. The narrowed second-byte ranges are what rules those out. */
size_t sc_utf8_len(const void *text, size_t n)
{
	const unsigned char *s = text;
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;

	if (n == 0)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

int sc_has_8bit(const void *text, size_t n)
{
	const unsigned char *s = text;
	for (size_t i = 0; i < n; i++)
		if (s[i] >= 0x80)
			return 1;
	return 0;
}

int sc_str_8bit(const char *s)
{
	return s && sc_has_8bit(s, strlen(s));
}

size_t core_crlf_len(const char *s, size_t len)
{
	size_t n = len;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')
			i++;
		else if (s[i] == '\r' || s[i] == '\n')
			n++;
	}
	return n;
}

/* Runs without CR or LF are copied with one memcpy each: this is on the
 * path of every byte of a 50 MB body. */
int sc_buf_add_crlf(struct sc_buf *b, const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		size_t j = i;
		while (j < len && s[j] != '\r' && s[j] != '\n')
			j++;
		if (j > i && sc_buf_add(b, s + i, j - i))
			return SC_ENOMEM;
		if (j == len)
			break;
		if (sc_buf_add(b, "\r\n", 2))
			return SC_ENOMEM;
		i = j + 1 + (s[j] == '\r' && j + 1 < len && s[j + 1] == '\n');
	}
	if (!b->p)
		return sc_buf_add(b, "", 0);
	return SC_OK;
}
