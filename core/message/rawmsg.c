/* Header fields of a raw message: positions only, nothing rewritten
 * (rules in message.h, "Raw messages"). The one raw-header parser: send
 * rawemail reads the envelope with it, and message.c looks up Date and
 * Message-ID with it, so both always see the same fields. Every length travels with its pointer;
 * the text may contain any byte, NUL included. */
#include "core.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define QUOTE_MAX 60 /* bytes of an offending line quoted in a message */

size_t sc_rawmsg_expand_newlines(char *text, size_t len)
{
	if (memchr(text, '\n', len) || memchr(text, '\r', len))
		return len;
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\\' && i + 1 < len && text[i + 1] == 'n') {
			text[o++] = '\n';
			i++;
		} else {
			text[o++] = text[i];
		}
	}
	return o;
}

/* End of the line starting at `p` (the first CR or LF, or `len`), and in
 * *next the start of the following line (CRLF is one line ending). */
static size_t line_end(const char *t, size_t len, size_t p, size_t *next)
{
	size_t e = p;
	while (e < len && t[e] != '\r' && t[e] != '\n')
		e++;
	*next = e;
	if (e < len)
		*next = e + 1 + (t[e] == '\r' && e + 1 < len && t[e + 1] == '\n');
	return e;
}

/* The start of a line, for an error message: at most QUOTE_MAX bytes,
 * valid UTF-8 as is, every other byte (controls, broken UTF-8) as \xNN,
 * so the message is always printable and valid JSON text. */
static char *quote_line(const char *t, size_t len)
{
	size_t n = len < QUOTE_MAX ? len : QUOTE_MAX;
	char *q = malloc(4 * n + 4), *o = q;
	if (!q)
		return NULL;
	const unsigned char *s = (const unsigned char *)t;
	for (size_t i = 0; i < n;) {
		size_t k = s[i] >= 0x80 ? sc_utf8_len(s + i, n - i) : 0;
		if (k) {
			memcpy(o, s + i, k);
			o += k;
			i += k;
		} else if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\') {
			*o++ = (char)s[i++];
		} else {
			static const char hex[] = "0123456789abcdef";
			*o++ = '\\';
			*o++ = 'x';
			*o++ = hex[s[i] >> 4];
			*o++ = hex[s[i++] & 15];
		}
	}
	if (len > n)
		memcpy(o, "...", 3), o += 3;
	*o = '\0';
	return q;
}

static int line_error(struct sc_error *err, size_t line, const char *t, size_t len, const char *why)
{
	char *q = quote_line(t, len);
	sc_error_set(err, SC_EINPUT, "line %zu (\"%s\") %s", line, q ? q : "", why);
	free(q);
	return SC_EINPUT;
}

#define LINE_MAX_OCTETS 998 /* RFC 5322 §2.1.1, the line end not counted */

static int long_line(struct sc_error *err, size_t line, size_t octets, int header)
{
	return sc_error_set(err, SC_EINPUT,
	                    "line %zu is %zu octets long, and a line of a message "
	                    "may hold at most 998 (RFC 5322 §2.1.1); %s. Nothing was sent",
	                    line, octets,
	                    header
	                        ? "fold the header field onto continuation lines that start "
	                          "with a space"
	                        : "break the line, or encode the body (Content-Transfer-Encoding: "
	                          "quoted-printable or base64)");
}

static int add_field(struct sc_rawmsg *m, size_t *cap, const struct sc_rawmsg_field *f)
{
	if (m->n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		if (c > SIZE_MAX / sizeof *m->f)
			return SC_ENOMEM;
		struct sc_rawmsg_field *nf = realloc(m->f, c * sizeof *nf);
		if (!nf)
			return SC_ENOMEM;
		m->f = nf;
		*cap = c;
	}
	m->f[m->n++] = *f;
	return SC_OK;
}

/* One line of the header section: a new field or a continuation. */
static int header_line(struct sc_rawmsg *m, size_t *cap, size_t p, size_t e, size_t next,
                       size_t line, struct sc_error *err)
{
	const char *t = m->text;
	if (t[p] == ' ' || t[p] == '\t') {
		size_t q = p;
		while (q < e && (t[q] == ' ' || t[q] == '\t'))
			q++;
		if (q == e)
			return line_error(
			    err, line, t + p, e - p,
			    "has only blanks: an empty line "
			    "ends the headers, so make it empty if that is what it is for");
		if (m->n == 0)
			return line_error(
			    err, line, t + p, e - p,
			    "starts with a blank, which makes "
			    "it the continuation of a header field, but no field comes before it");
		m->f[m->n - 1].end = next;
		return SC_OK;
	}
	size_t q = p;
	while (q < e && (unsigned char)t[q] > 32 && (unsigned char)t[q] < 127 && t[q] != ':')
		q++;
	size_t name_end = q;
	while (q < e && (t[q] == ' ' || t[q] == '\t'))
		q++;
	if (name_end == p || q == e || t[q] != ':')
		return line_error(
		    err, line, t + p, e - p,
		    "is not a header field (\"Name: value\") "
		    "nor a continuation line; an empty line must separate the headers "
		    "from the body");
	struct sc_rawmsg_field f = {p, next, name_end - p, q + 1, line};
	return add_field(m, cap, &f) ? sc_error_set(err, SC_ENOMEM, "out of memory") : SC_OK;
}

int sc_rawmsg_parse(const char *text, size_t len, struct sc_rawmsg *out, struct sc_error *err)
{
	memset(out, 0, sizeof *out);
	out->text = text;
	out->len = len;
	out->body = len;
	size_t cap = 0, p = 0, line = 1;
	while (p < len) {
		size_t next, e = line_end(text, len, p, &next);
		if (e == p) {
			out->body = next;
			break;
		}
		int rc = header_line(out, &cap, p, e, next, line, err);
		if (!rc && e - p > LINE_MAX_OCTETS)
			rc = long_line(err, line, e - p, 1);
		if (rc)
			return rc;
		p = next;
		line++;
	}
	/* the body too: a server refuses an overlong line after DATA, when
	 * the envelope is already sent */
	for (p = out->body, line++; p < len; line++) { /* the empty line was `line` */
		size_t next, e = line_end(text, len, p, &next);
		if (e - p > LINE_MAX_OCTETS)
			return long_line(err, line, e - p, 0);
		p = next;
	}
	out->header_8bit = sc_has_8bit(text, out->body);
	out->body_8bit = sc_has_8bit(text + out->body, len - out->body);
	return SC_OK;
}

void sc_rawmsg_free(struct sc_rawmsg *m)
{
	free(m->f);
	m->f = NULL;
	m->n = 0;
}

int sc_rawmsg_is(const struct sc_rawmsg *m, size_t i, const char *name)
{
	const struct sc_rawmsg_field *f = &m->f[i];
	return strlen(name) == f->name_len &&
	       strncasecmp(m->text + f->start, name, f->name_len) == 0;
}

size_t sc_rawmsg_find(const struct sc_rawmsg *m, const char *name, size_t from)
{
	for (size_t i = from; i < m->n; i++)
		if (sc_rawmsg_is(m, i, name))
			return i;
	return m->n;
}

char *sc_rawmsg_value(const struct sc_rawmsg *m, size_t i, size_t *vlen)
{
	const struct sc_rawmsg_field *f = &m->f[i];
	size_t a = f->value, b = f->end;
	char *v = malloc(b - a + 1), *o = v;
	if (!v)
		return NULL;
	for (size_t k = a; k < b; k++)
		if (m->text[k] != '\r' && m->text[k] != '\n')
			*o++ = m->text[k];
	*o = '\0';
	char *s = v;
	while (*s == ' ' || *s == '\t')
		s++;
	while (o > s && (o[-1] == ' ' || o[-1] == '\t'))
		*--o = '\0';
	size_t n = (size_t)(o - s);
	memmove(v, s, n + 1);
	if (vlen)
		*vlen = n;
	return v;
}

char *sc_rawmsg_without(const struct sc_rawmsg *m,
                        int (*drop)(const struct sc_rawmsg *m, size_t i, void *arg), void *arg,
                        size_t *outlen)
{
	char *o = malloc(m->len + 1);
	if (!o)
		return NULL;
	size_t n = 0, from = 0;
	for (size_t i = 0; i < m->n; i++) {
		if (!drop(m, i, arg))
			continue;
		memcpy(o + n, m->text + from, m->f[i].start - from);
		n += m->f[i].start - from;
		from = m->f[i].end;
	}
	memcpy(o + n, m->text + from, m->len - from);
	n += m->len - from;
	o[n] = '\0';
	*outlen = n;
	return o;
}
