/* Text bodies encoded as they are read (body_stream.h). One read turns
 * the next CHUNK octets of the caller's text into CRLF form (a window,
 * with the few octets the previous step could not encode yet in front),
 * encodes what it can of the window, and hands that out. Memory is a
 * window and its encoding, whatever the size of the body. The output is
 * byte for byte what sc_text_encode() makes of the whole text at once. */
#include "body_stream.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK (57 * 1024) /* raw octets per step; a multiple of 57 */
#define B64_IN 57

enum mode { M_7BIT, M_QP, M_B64 };

struct body_stream {
	const char *text; /* borrowed, or `owned` */
	char *owned;
	size_t len;
	enum mode mode;
	size_t size;       /* of the whole encoded body */
	size_t rpos;       /* octets of text taken into the window */
	struct sc_buf win; /* CRLF form, not yet encoded */
	struct sc_buf out; /* encoded, not yet read */
	size_t opos;
	size_t col; /* quoted-printable column */
};

/* Base64 of whole 57-octet groups of the window (all of it when final),
 * as sc_base64_lines() lays it out. Returns the octets consumed. */
static size_t b64_step(struct sc_buf *out, const char *d, size_t n, int final)
{
	size_t take = final ? n : n - n % B64_IN;
	if (!take)
		return 0;
	size_t elen = 0;
	char *e = sc_base64_lines((const unsigned char *)d, take, &elen);
	int rc = e ? sc_buf_add(out, e, elen) : SC_ENOMEM;
	free(e);
	return rc ? (size_t)-1 : take;
}

/* The next raw chunk ends after a CR only if no LF follows it, so a CRLF
 * is never cut in two (it would become two line breaks). */
static size_t chunk_end(const struct body_stream *s)
{
	size_t e = s->len - s->rpos < CHUNK ? s->len : s->rpos + CHUNK;
	if (e < s->len && s->text[e - 1] == '\r' && s->text[e] == '\n')
		e++;
	return e;
}

/* Refill `out` with the next encoded block. 0: ok (out may stay empty
 * only at the end); -1: out of memory. */
static int step(struct body_stream *s)
{
	s->out.len = 0;
	s->opos = 0;
	if (s->rpos < s->len) {
		size_t e = chunk_end(s);
		if (sc_buf_add_crlf(&s->win, s->text + s->rpos, e - s->rpos))
			return -1;
		s->rpos = e;
	}
	int final = s->rpos == s->len;
	size_t used;
	if (s->mode == M_7BIT)
		used = sc_buf_add(&s->out, s->win.p, s->win.len) ? (size_t)-1 : s->win.len;
	else if (s->mode == M_QP)
		used = core_qp_step(&s->out, &s->col, s->win.p, s->win.len, final);
	else
		used = b64_step(&s->out, s->win.p, s->win.len, final);
	if (used == (size_t)-1)
		return -1;
	memmove(s->win.p, s->win.p + used, s->win.len - used);
	s->win.len -= used;
	return 0;
}

static int at_end(const struct body_stream *s)
{
	return s->rpos == s->len && s->win.len == 0 && s->opos == s->out.len;
}

size_t body_stream_read(struct body_stream *s, char *buf, size_t cap)
{
	size_t n = 0;
	while (n < cap && !at_end(s)) {
		if (s->opos == s->out.len && step(s))
			return (size_t)-1;
		size_t k = s->out.len - s->opos < cap - n ? s->out.len - s->opos : cap - n;
		if (k)
			memcpy(buf + n, s->out.p + s->opos, k);
		s->opos += k;
		n += k;
	}
	return n;
}

void body_stream_rewind(struct body_stream *s)
{
	s->rpos = 0;
	s->win.len = 0;
	s->out.len = 0;
	s->opos = 0;
	s->col = 0;
}

size_t body_stream_size(const struct body_stream *s)
{
	return s->size;
}

void body_stream_free(struct body_stream *s)
{
	if (!s)
		return;
	sc_buf_free(&s->win);
	sc_buf_free(&s->out);
	free(s->owned);
	free(s);
}

/* The size, by running the encoder once over the whole text. */
static int measure(struct body_stream *s)
{
	s->size = 0;
	while (!at_end(s)) {
		if (step(s))
			return -1;
		s->size += s->out.len;
		s->opos = s->out.len;
	}
	body_stream_rewind(s);
	return 0;
}

struct body_stream *body_stream_new(const char *text, size_t len, int copy, const char **cte)
{
	struct body_stream *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	if (copy) {
		s->owned = malloc(len + 1);
		if (!s->owned) {
			free(s);
			return NULL;
		}
		memcpy(s->owned, text, len);
		s->owned[len] = '\0';
		text = s->owned;
	}
	s->text = text;
	s->len = len;
	*cte = core_text_encoding(text, len);
	s->mode = !strcmp(*cte, "7bit") ? M_7BIT : !strcmp(*cte, "base64") ? M_B64 : M_QP;
	if (sc_buf_add(&s->win, "", 0) || sc_buf_add(&s->out, "", 0) || measure(s)) {
		body_stream_free(s);
		return NULL;
	}
	return s;
}

size_t body_stream_curl_read(char *buf, size_t size, size_t nitems, void *arg)
{
	size_t n = body_stream_read(arg, buf, size * nitems);
	return n == (size_t)-1 ? CURL_READFUNC_ABORT : n;
}

int body_stream_curl_seek(void *arg, curl_off_t offset, int origin)
{
	if (offset != 0 || origin != SEEK_SET)
		return CURL_SEEKFUNC_CANTSEEK;
	body_stream_rewind(arg);
	return CURL_SEEKFUNC_OK;
}

void body_stream_curl_free(void *arg)
{
	body_stream_free(arg);
}
