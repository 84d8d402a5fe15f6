/* Byte-level text helpers every message builder shares: the one 8-bit
 * test, the one "control codes become spaces" rule (sc_str_one_line: send
 * event's subjects, the http sink's headers and excerpts, OAuth's
 * printable excerpts) and the one CRLF normaliser of the tree (message.h); the one
 * UTF-8 sequence check, sc_utf8_len, is core/runtime/utf8.c's. Each used to exist in up to four
 * private copies (address, encode, rawmsg, html), which drifted: one accepted overlong forms,
 * another surrogates. */
#include "text.h"

#include <string.h>

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

char *sc_str_one_line(char *s)
{
	for (char *p = s; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return s;
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
